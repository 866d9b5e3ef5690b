"""Seatdesk as `python -m bot serve` runs it, on a throwaway database with the demo data, in
anonymous development mode on 127.0.0.1 (the load generator is its Bot Connector).
Usage: python -m bench.seatdesk_server PORT DATABASE_URL"""
from __future__ import annotations

import asyncio
import logging
import sys

from aiohttp import web

from bot.app import create_app
from bot.config import Settings
from services import db as database
from services.clock import SystemClock
from services.importer import load_demo


async def _load_demo(url: str) -> None:
    engine = database.create_engine(url)
    try:
        await load_demo(database.session_factory(engine), clock=SystemClock())
    finally:
        await engine.dispose()


def main() -> None:
    port, url = int(sys.argv[1]), sys.argv[2]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = Settings(database_url=url, host="127.0.0.1", port=port, allow_anonymous=True, load_demo=True)
    settings.check_can_serve()
    database.migrate(url)
    asyncio.run(_load_demo(url))
    web.run_app(create_app(settings), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()

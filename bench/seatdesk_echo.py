"""The stock echo bot's turn (bench/echo_bot.py: the same ActivityHandler) behind Seatdesk's edge
instead of the stock CloudAdapter: Seatdesk's request checks, authentication, adapter and Bot
Connector client, no database work in the turn. It separates what the adapter layer costs from
what Seatdesk's own turns (identity, state, data) cost. Usage: python -m bench.seatdesk_echo PORT DATABASE_URL"""
from __future__ import annotations

import logging
import sys

from aiohttp import web

from bench.echo_bot import EchoBot
from bot.app import RUNTIME, create_app
from bot.config import Settings
from services import db as database


def main() -> None:
    port, url = int(sys.argv[1]), sys.argv[2]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = Settings(database_url=url, host="127.0.0.1", port=port, allow_anonymous=True)
    settings.check_can_serve()
    database.migrate(url)  # /healthz pings the database
    app = create_app(settings)
    app[RUNTIME].bot = EchoBot()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()

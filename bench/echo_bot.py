"""The stock botbuilder 4.17.1 echo bot (the SDK sample, unchanged in substance): CloudAdapter,
ConfigurationBotFrameworkAuthentication, an ActivityHandler that echoes. Anonymous (no app id),
served on 127.0.0.1 only. Usage: python -m bench.echo_bot PORT"""
from __future__ import annotations

import sys

from aiohttp import web
from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity


class DefaultConfig:
    PORT = 3978
    APP_ID = ""
    APP_PASSWORD = ""
    APP_TYPE = "MultiTenant"
    APP_TENANTID = ""


class EchoBot(ActivityHandler):
    async def on_message_activity(self, turn_context: TurnContext):
        await turn_context.send_activity(MessageFactory.text(f"Echo: {turn_context.activity.text}"))


ADAPTER = CloudAdapter(ConfigurationBotFrameworkAuthentication(DefaultConfig()))
BOT = EchoBot()


async def messages(req: web.Request) -> web.Response:
    # The sample's handler: botbuilder reads the body, authenticates and runs the turn.
    return await ADAPTER.process(req, BOT)


def main() -> None:
    port = int(sys.argv[1])
    app = web.Application()
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", lambda request: web.json_response({"status": "ok"}))
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()

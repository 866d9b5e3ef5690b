"""Results that come after their turn (dialogs/slow.py): posted in the conversation the request came
from, with the clicked card brought up to date; and the bot's token for files Teams hosts."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from botbuilder.core import TurnContext
from botbuilder.schema import ActivityTypes

from bot.connector import TokenError
from cards.common import card, line
from cards.text import text
from dialogs.base import Outcome, Reply

log = logging.getLogger("seatdesk.follow_up")


class TurnFollowUp:
    """A `dialogs.slow.FollowUp` for one turn: its conversation (a group chat too, not only the
    person's 1:1 chat as `ProactiveNotifier` uses) and the activity holding the clicked card."""

    def __init__(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        self._adapter = turn_context.adapter
        self._reference = TurnContext.get_conversation_reference(activity)
        self._reference.activity_id = None  # a new message in the conversation, not a reply to the request
        # An invoke's replyToId is the message holding the clicked card (a message's would be a thread).
        self._card_id = activity.reply_to_id if activity.type == ActivityTypes.invoke else None

    async def deliver(self, outcome: Outcome, locale: str | None, *, on_card: bool) -> None:
        from bot.handler import to_activity  # bot.handler imports this module

        replies = list(outcome.replies)
        texts = [reply.text for reply in replies if reply.text]

        async def callback(turn_context: TurnContext) -> None:
            nonlocal replies
            if on_card and self._card_id and not outcome.keep_card:
                shown = next((reply.card for reply in replies if reply.card is not None), None) or card([line(t) for t in texts])
                update = to_activity(Reply(card=shown))
                update.id = self._card_id
                try:
                    await turn_context.update_activity(update)
                except Exception:  # noqa: BLE001 - then everything is posted as new messages below
                    log.warning("could not update card %s with a late result", self._card_id, exc_info=True)
                else:
                    # A card update does not notify anyone: a message says that it is done.
                    replies = [Reply(text=t) for t in texts] or [Reply(text=text(locale, "slow.finished"))]
            if replies:
                await turn_context.send_activities([to_activity(reply) for reply in replies])

        await self._adapter.continue_conversation(self._reference, callback)


def file_token(turn_context: TurnContext) -> Callable[[str], Awaitable[str | None]] | None:
    """The bot's own Bot Framework token for a pasted image's contentUrl (FlowContext.file_token)."""
    connector = getattr(turn_context.adapter, "connector", None)
    if connector is None:
        return None

    async def token(url: str) -> str | None:
        if not connector.file_hosts.allows(url):
            # Logged so that a Teams media host missing from SEATDESK_FILE_HOSTS can be found and added.
            log.info("a pasted image's host %r is not on SEATDESK_FILE_HOSTS; downloading it without the bot's token", urlsplit(url).hostname)
            return None
        try:
            return await connector.token_for(url)
        except TokenError:
            log.warning("no bot token for a pasted image; downloading it without one")
            return None

    return token

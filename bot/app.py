"""The aiohttp application: POST /api/messages (the Bot Framework protocol) and GET /healthz."""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass

from aiohttp import web
from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.schema import Activity, ActivityTypes
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapter import SeatdeskAdapter
from bot.auth import DEFAULT_FILE_HOSTS, KeysUnavailable, RequestAuthenticator, ServiceUrlPolicy, Unauthorized
from bot.config import Settings
from bot.connector import BotConnector, ConversationPacer, from_json, token_source
from bot.handler import SeatdeskBot, invoke_body
from bot.helpdesk_api import add_routes as add_helpdesk_routes
from bot.proactive import ProactiveNotifier
from bot.worker import Worker
from bot.storage import SeatdeskConversationState, SqlStorage, StateConflict
from cards.text import text
from knowledge.answering import KnowledgeService
from services import db as database
from services.clock import Clock, SystemClock
from services.language_model import tool_router
from services.llm import chat_model

log = logging.getLogger("seatdesk.app")

MAX_BODY = 512 * 1024


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    adapter: SeatdeskAdapter
    bot: SeatdeskBot
    authenticator: RequestAuthenticator
    knowledge: KnowledgeService | None = None


RUNTIME = web.AppKey("seatdesk.runtime", Runtime)


def _problem(status: int, message: str, correlation_id: str | None = None) -> web.Response:
    body = {"error": message}
    if correlation_id:
        body["correlationId"] = correlation_id
    return web.json_response(body, status=status)


def service_url_policy(settings: Settings) -> ServiceUrlPolicy:
    # Loopback (the Agents Playground, tests) only in anonymous development mode: a real bot answers Teams only.
    return ServiceUrlPolicy.parse(settings.service_url_allowlist, allow_loopback=not settings.auth_enabled and settings.allow_anonymous)


def file_host_policy(settings: Settings) -> ServiceUrlPolicy:
    """The hosts a file may be downloaded from with the bot's token; loopback as for serviceUrls."""
    return ServiceUrlPolicy.parse(
        settings.file_hosts, allow_loopback=not settings.auth_enabled and settings.allow_anonymous, defaults=DEFAULT_FILE_HOSTS
    )


def make_connector(settings: Settings) -> BotConnector:
    return BotConnector(
        policy=service_url_policy(settings),
        file_hosts=file_host_policy(settings),
        tokens=token_source(settings.app_id, settings.app_password, settings.app_type, settings.app_tenant_id),
        pacer=ConversationPacer(),
    )


def _make_adapter(settings: Settings) -> SeatdeskAdapter:
    adapter = SeatdeskAdapter(make_connector(settings), settings.app_id)

    async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
        correlation_id = uuid.uuid4().hex[:12]
        activity = turn_context.activity
        if isinstance(error, StateConflict):
            log.warning("state conflict on %s [%s]", error.key, correlation_id)
            message = text(activity.locale, "error.conflict")
        else:
            log.exception("turn failed [%s] type=%s id=%s", correlation_id, activity.type, activity.id)
            message = text(activity.locale, "error.apology", contact=settings.support_contact, ref=correlation_id)
        try:
            if activity.type == ActivityTypes.invoke:
                body = invoke_body(500, "application/vnd.microsoft.error", {"code": "InternalError", "message": message})
                await turn_context.send_activity(Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=200, body=body)))
            else:
                await turn_context.send_activity(message)
        except Exception:  # noqa: BLE001 - the connector may be the thing that failed
            log.exception("could not tell the user about [%s]", correlation_id)

    adapter.on_turn_error = on_turn_error
    return adapter


async def messages(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    if "application/json" not in request.headers.get("Content-Type", ""):
        return _problem(415, "Content-Type must be application/json")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _problem(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return _problem(400, "the body must be a JSON object (an activity)")
    try:
        activity = from_json(Activity, body)
    except Exception:  # noqa: BLE001 - msrest raises many kinds on malformed input
        return _problem(400, "the body is not a valid activity")
    if not activity.type or not isinstance(activity.type, str):
        return _problem(400, "the activity has no type")
    if not activity.service_url or not activity.service_url.startswith(("https://", "http://")):
        return _problem(400, "the activity has no valid serviceUrl")
    if activity.conversation is None or not activity.conversation.id:
        return _problem(400, "the activity has no conversation")
    try:
        authenticated = await runtime.authenticator.authenticate(
            request.headers.get("Authorization"), channel_id=activity.channel_id, service_url=activity.service_url
        )
    except Unauthorized as refused:
        log.warning("refused an unauthenticated request: %s", refused)
        return _problem(401, "unauthorized")
    except KeysUnavailable:
        correlation_id = uuid.uuid4().hex[:12]
        log.exception("cannot check tokens: signing keys unavailable [%s]", correlation_id)
        return _problem(503, "Seatdesk could not check this request's token; try again", correlation_id)
    if not runtime.adapter.connector.policy.allows(activity.service_url):
        log.warning("refused an activity whose serviceUrl is not on the allow-list: %r", activity.service_url)
        return _problem(403, "the activity's serviceUrl is not allowed")
    try:
        response = await runtime.adapter.process_activity(authenticated, activity, runtime.bot.on_turn)
    except Exception:  # noqa: BLE001 - never a traceback or a 500 to the channel
        correlation_id = uuid.uuid4().hex[:12]
        log.exception("request failed before the turn ran [%s]", correlation_id)
        return _problem(503, "Seatdesk could not process this activity; try again", correlation_id)
    if response is None:
        return web.Response(status=201)
    # botbuilder 4.17.1 runs serializer_helper on bodies that are already plain JSON (HTTP 500); ours are dicts.
    payload = response.body
    if payload is not None and not isinstance(payload, (dict, list, str, int, float, bool)):
        payload = payload.serialize()
    return web.json_response(payload, status=response.status)


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        await database.ping(runtime.engine)
    except Exception:  # noqa: BLE001
        log.exception("health check: database unreachable")
        return web.json_response({"status": "unhealthy", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


def create_app(
    settings: Settings, *, clock: Clock | None = None, engine: AsyncEngine | None = None, worker_interval: float | None = None
) -> web.Application:
    """Build the web app; the database must already be migrated (see `bot.__main__`)."""
    clock = clock or SystemClock()
    engine = engine or database.create_engine(settings.database_url)
    db = database.session_factory(engine)
    storage = SqlStorage(db, clock)
    conversation_state = SeatdeskConversationState(storage)
    # Built once: articles are read and indexed here, never at question time.
    knowledge = KnowledgeService.load(settings.knowledge_dir, model=chat_model(settings.llm_config()))
    # Partner Center and Graph when configured (docs/partner-center.md); the built-in ledger otherwise.
    provider = graph = sync_job = order_submitter = None
    pc_config = settings.partner_center_config()
    if pc_config is not None:
        from services.graph import GraphClient
        from services.partnercenter import PartnerCenter, PartnerCenterProvider, SyncJob, TokenSource

        tokens = TokenSource(pc_config.credentials, pc_config.authority_url)
        partner_center = PartnerCenter.connect(pc_config, tokens)
        provider = PartnerCenterProvider(partner_center)
        graph = GraphClient.connect(pc_config, tokens)
        sync_job = SyncJob(db, partner_center, clock, pc_config.sync_interval_seconds)
        from services.order_backend import PartnerCenterOrderBackend
        from services.ordering import BackendOrders

        order_submitter = BackendOrders(PartnerCenterOrderBackend(partner_center, db))
    bot = SeatdeskBot(
        db=db,
        clock=clock,
        storage=storage,
        knowledge=knowledge,
        conversation_state=conversation_state,
        page_size=settings.page_size,
        support_contact=settings.support_contact,
        provider=provider,
        graph=graph,
        language_model=tool_router(settings.llm_config()) if settings.language_model else None,
        turn_deadline_seconds=settings.turn_deadline_seconds,
    )
    language_model = bot.language_model
    if order_submitter is not None:
        bot.order_submitter = order_submitter
    adapter = _make_adapter(settings)
    bot.notifier = ProactiveNotifier(adapter, db, settings.app_id)
    app = web.Application(client_max_size=MAX_BODY)
    authenticator = RequestAuthenticator(
        app_id=settings.app_id, allow_anonymous=settings.allow_anonymous, metadata_url=settings.openid_metadata_url
    )
    app[RUNTIME] = Runtime(
        settings=settings, clock=clock, engine=engine, adapter=adapter, bot=bot, knowledge=knowledge, authenticator=authenticator
    )
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    add_helpdesk_routes(app)

    if worker_interval:
        worker = Worker(db, bot.provider, clock, bot.notifier, worker_interval, bot.order_submitter, graph)
        app.on_startup.append(worker.start)
        app.on_cleanup.append(worker.stop)

    async def _dispose(app: web.Application) -> None:
        # Notices and late results still on their way finish (within the grace) before the connector and database close.
        await bot.drain(settings.shutdown_grace_seconds)
        await knowledge.close()
        if language_model is not None:
            await language_model.close()
        await adapter.close()
        await authenticator.close()
        await engine.dispose()

    app.on_cleanup.append(_dispose)
    if sync_job is not None and worker_interval:
        # Runs with the worker (python -m bot serve), not in tests that build the app without one.
        app.on_startup.append(sync_job.start)
        app.on_cleanup.append(sync_job.stop)
    if graph is not None:
        if worker_interval:
            from services.graph import refresh_assigned_seats
            from services.periodic import Periodic

            # Assigned seats (Graph's consumedUnits) for the overview, details and the "unassigned" insight.
            seats = Periodic("seatdesk-graph-seats", max(worker_interval, 900), lambda: refresh_assigned_seats(db, graph))
            app.on_startup.append(seats.start)
            app.on_cleanup.append(seats.stop)
        app.on_cleanup.append(lambda app: graph.close())
    return app

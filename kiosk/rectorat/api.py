"""The rectorat's sync API over HTTP (Starlette), as docs/sync-protocol.md describes it.

The endpoints only read requests and answer; the rules are in
:mod:`kiosk.rectorat.service`. Database work runs in Starlette's thread pool, each call
with its own connection taken and given back (a pool with PostgreSQL). Tokens and
passwords are never logged.

Cheap refusals come first: the credential, from the headers, then the kiosk's rate
(:mod:`kiosk.rectorat.limits`), and only then is the body read, within a size and a time
limit.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.responses import JSONResponse as _StarletteJSONResponse
from starlette.routing import Route

from kiosk.clock import Clock, instant_text
from kiosk.passwords import Hasher
from kiosk.rectorat.codes import CodeRefused, PasswordRefused
from kiosk.rectorat.feed import DEFAULT_LIMIT, MAX_CURSOR, MAX_LIMIT, LoginRefused
from kiosk.rectorat.kiosks import KioskIdentity
from kiosk.rectorat.limits import DEFAULT_RATES, Rate, RateLimiter
from kiosk.rectorat.mail import RectoratMail
from kiosk.rectorat.pages import activated_page, confirm_page, not_activated_page
from kiosk.rectorat.service import MAX_BATCH, RectoratService
from kiosk.rectorat.store import RectoratStore, open_store
from kiosk.rectorat.wire import PushedBody, common_batch

log = logging.getLogger(__name__)

MAX_BODY = 20 * 1024 * 1024  # a full batch (MAX_BATCH items) of 10 KB each
MAX_LOGIN_BODY = 16 * 1024
BODY_TIMEOUT = 30.0
"""Seconds a body may take to arrive, whole (a kiosk gives up on an answer after 10 s)."""
SEQUENCE_INTERVAL = 1.0
PRUNE_INTERVAL = 6 * 3600.0
"""How often the sequencer's thread applies the feed's retention rule (and once at start)."""
UNAUTHORISED = {"error": "unauthorised"}


class JSONResponse(_StarletteJSONResponse):
    """Starlette's JSON response written by orjson: a push's answer and a page of the
    feed are hundreds of objects, encoded several times faster."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def make_app(
    store: RectoratStore,
    clock: Clock,
    *,
    hasher: Hasher | None = None,
    service: RectoratService | None = None,
    max_body: int = MAX_BODY,
    body_timeout: float = BODY_TIMEOUT,
    rates: Mapping[str, Rate] | None = DEFAULT_RATES,
    limiter: RateLimiter | None = None,
    sequence_interval: float | None = SEQUENCE_INTERVAL,
    close_store: bool = False,
    public_url: str | None = None,
    mail: RectoratMail | None = None,
) -> Starlette:
    """The Starlette app over ``store``. ``sequence_interval``: how often a background
    thread numbers the change feed (``None``: only before each pull). ``close_store``:
    close the store when the app shuts down (the app owns it, and is the process's
    server: it also settles the garbage collector when it starts). ``rates``: each
    kiosk's rate of pushes, pulls and logins elsewhere (``None``: no limit), or
    ``limiter``, made already."""
    service = service or RectoratService(store, clock, hasher, mail=mail)
    db = store.db
    # Where candidates reach this service from home: the activation links of their mail.
    if public_url is None:
        public_url = os.environ.get(PUBLIC_URL_ENVIRONMENT, "")
    public_url = public_url.rstrip("/")
    if limiter is None and rates is not None:
        limiter = RateLimiter(rates)

    def with_db(function: Callable[..., Any], *args: Any) -> Any:
        with db.connection_context():
            return function(*args)

    async def call(function: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(with_db, function, *args)

    def credential_of(request: Request) -> tuple[str, str] | None:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        name, colon, token = credential.strip().partition(":")
        if scheme.lower() != "bearer" or not colon or not name or not token:
            return None
        return name, token

    async def kiosk_of(request: Request) -> KioskIdentity | None:
        credential = credential_of(request)
        return None if credential is None else await call(service.authenticate, *credential)

    async def admitted(request: Request, kind: str) -> KioskIdentity | JSONResponse:
        """The kiosk, from the headers alone, within its rate; else the answer that
        refuses the request, its body unread."""
        kiosk = await kiosk_of(request)
        if kiosk is None:
            return JSONResponse(UNAUTHORISED, status_code=401)
        wait = limiter.wait(kiosk.id, kind) if limiter is not None else 0
        if wait:
            # A login's is the answer of a delay: the same, whatever the address.
            error = "locked" if kind == "login" else "rate_limited"
            return JSONResponse(
                {"error": error, "retry_after": wait},
                status_code=429,
                headers={"Retry-After": str(wait)},
            )
        return kiosk

    async def json_body(request: Request, limit: int) -> Any:
        return parse_json(await body_of(request, limit))

    def parse_json(body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:  # invalid UTF-8 included
            raise _BadRequest(400, "the body is not valid JSON") from None

    async def body_of(request: Request, limit: int = max_body) -> bytes:
        """The whole body, at most ``limit`` bytes, arrived within ``body_timeout``."""
        too_large = _BadRequest(413, f"request body larger than {limit} bytes")
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    raise too_large
            except ValueError:
                raise _BadRequest(400, "bad Content-Length") from None
        chunks, size = [], 0
        try:
            with anyio.fail_after(body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise too_large
                    chunks.append(chunk)
        except TimeoutError:
            raise _BadRequest(408, f"request body not received within {body_timeout:g} s") from None
        except ClientDisconnect:
            raise _BadRequest(400, "the client went away") from None
        return b"".join(chunks)

    def health(request: Request) -> JSONResponse:
        try:
            with db.connection_context():
                db.execute_sql("SELECT 1")
        except Exception as error:  # the store cannot be reached: not « en ligne »
            log.warning("health: store unreachable: %s", type(error).__name__)
            return JSONResponse({"ok": False, "now": instant_text(clock.now())}, status_code=503)
        return JSONResponse({"ok": True, "now": instant_text(clock.now())})

    async def push(request: Request) -> JSONResponse:
        kiosk = await admitted(request, "push")
        if isinstance(kiosk, JSONResponse):
            return kiosk
        try:
            body = await body_of(request)
        except _BadRequest as bad:
            return JSONResponse({"error": bad.message}, status_code=bad.status)
        return await call(push_body, kiosk, body)

    def push_body(kiosk: KioskIdentity, body: bytes) -> JSONResponse:
        """The body, then the batch: one trip to the thread pool and one connection."""
        try:
            items = items_of(body)
            if len(items) > MAX_BATCH:
                raise _BadRequest(400, f"at most {MAX_BATCH} items a batch")
        except _BadRequest as bad:
            return JSONResponse({"error": bad.message}, status_code=bad.status)
        results = service.push(kiosk, items, clock.now())
        return JSONResponse({"results": results, "now": instant_text(clock.now())})

    def items_of(body: bytes) -> Sequence[Any]:
        """A push body's items: typed when the body has the common shape (see
        :mod:`kiosk.rectorat.wire`), else as decoded JSON."""
        typed = common_batch(body)
        if typed is not None:
            return PushedBody(body, typed)
        parsed = parse_json(body)
        items = parsed.get("items") if isinstance(parsed, dict) else None
        if not isinstance(items, list):
            raise _BadRequest(400, 'expected {"items": [...]}')
        return items

    async def changes(request: Request) -> JSONResponse:
        kiosk = await admitted(request, "pull")
        if isinstance(kiosk, JSONResponse):
            return kiosk
        try:
            after = int(request.query_params.get("after", "0"))
            limit = int(request.query_params.get("limit", str(DEFAULT_LIMIT)))
        except ValueError:
            return JSONResponse({"error": "after and limit are integers"}, status_code=400)
        if not 0 <= after <= MAX_CURSOR or not 1 <= limit <= MAX_LIMIT:
            return JSONResponse(
                {"error": f"0 <= after <= {MAX_CURSOR} and 1 <= limit <= {MAX_LIMIT}"},
                status_code=400,
            )
        answer = await call(service.changes, kiosk, after, limit)
        if public_url:
            answer["public_url"] = public_url
        return JSONResponse(answer)

    async def login(request: Request) -> JSONResponse:
        kiosk = await admitted(request, "login")
        if isinstance(kiosk, JSONResponse):
            return kiosk
        try:
            body = await json_body(request, MAX_LOGIN_BODY)
        except _BadRequest as bad:
            return JSONResponse({"error": bad.message}, status_code=bad.status)
        texts = isinstance(body, dict) and all(
            isinstance(body.get(k), str) for k in ("email_key", "password")
        )
        if not texts:
            return JSONResponse(
                {"error": 'expected {"email_key": "...", "password": "..."}'}, status_code=400
            )
        try:
            found = await call(
                service.login, kiosk, body["email_key"], body["password"], clock.now()
            )
        except LoginRefused as refused:
            if refused.reason == "locked":
                return JSONResponse(
                    {"error": "locked", "retry_after": refused.retry_after},
                    status_code=429,
                    headers={"Retry-After": str(refused.retry_after)},
                )
            if refused.reason == "pending":
                return JSONResponse({"error": "pending"}, status_code=403)
            return JSONResponse({"error": "login"}, status_code=401)
        return JSONResponse(found)

    async def sign_up(request: Request) -> JSONResponse:
        # A sign-up is a candidate at the kiosk, as a login elsewhere is: the same rate.
        kiosk = await admitted(request, "login")
        if isinstance(kiosk, JSONResponse):
            return kiosk
        try:
            body = await json_body(request, MAX_LOGIN_BODY)
        except _BadRequest as bad:
            return JSONResponse({"error": bad.message}, status_code=bad.status)
        if not isinstance(body, dict) or not isinstance(body.get("item"), dict):
            return JSONResponse({"error": 'expected {"item": {...}}'}, status_code=400)
        return JSONResponse(await call(service.sign_up, kiosk, body["item"], clock.now()))

    async def candidate_call(
        request: Request, fields: tuple[str, ...]
    ) -> tuple[KioskIdentity, dict] | JSONResponse:
        """The kiosk and the body of a call made for a candidate at it: an object of
        small texts, within the login rate."""
        kiosk = await admitted(request, "login")
        if isinstance(kiosk, JSONResponse):
            return kiosk
        try:
            body = await json_body(request, MAX_LOGIN_BODY)
        except _BadRequest as bad:
            return JSONResponse({"error": bad.message}, status_code=bad.status)
        if not isinstance(body, dict) or not all(isinstance(body.get(f), str) for f in fields):
            expected = ", ".join(f'"{f}": "..."' for f in fields)
            return JSONResponse({"error": f"expected {{{expected}}}"}, status_code=400)
        return kiosk, body

    async def activate(request: Request) -> JSONResponse:
        called = await candidate_call(request, ("email_key", "code"))
        if isinstance(called, JSONResponse):
            return called
        kiosk, body = called
        try:
            lent = await call(service.activate, kiosk, body["email_key"], body["code"])
        except CodeRefused as refused:
            return code_refused(refused)
        return JSONResponse(lent)

    async def request_reset(request: Request) -> JSONResponse:
        called = await candidate_call(request, ("email_key",))
        if isinstance(called, JSONResponse):
            return called
        kiosk, body = called
        await call(service.request_reset, kiosk, body["email_key"])
        return JSONResponse({"ok": True}, status_code=202)

    async def reset(request: Request) -> JSONResponse:
        called = await candidate_call(request, ("email_key", "code", "password"))
        if isinstance(called, JSONResponse):
            return called
        kiosk, body = called
        try:
            lent = await call(
                service.reset, kiosk, body["email_key"], body["code"], body["password"]
            )
        except CodeRefused as refused:
            return code_refused(refused)
        except PasswordRefused as refused:
            problem = refused.problem
            return JSONResponse(
                {"error": "password", "key": problem.key, "params": problem.params},
                status_code=422,
            )
        return JSONResponse(lent)

    def code_refused(refused: CodeRefused) -> JSONResponse:
        if refused.reason == "locked":
            return JSONResponse(
                {"error": "locked", "retry_after": refused.retry_after},
                status_code=429,
                headers={"Retry-After": str(refused.retry_after)},
            )
        return JSONResponse({"error": "code"}, status_code=401)

    async def document(request: Request) -> Response:
        # A document is fetched once per kiosk, after the feed has described it: the pull's rate.
        kiosk = await admitted(request, "pull")
        if isinstance(kiosk, JSONResponse):
            return kiosk
        sha256 = request.path_params["sha256"]
        content = None
        if len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256):
            content = await call(service.document_content, kiosk, sha256)
        if content is None:  # unknown, or not for a candidate this kiosk holds: the same
            return JSONResponse({"error": "not_found"}, status_code=404)
        return Response(content, media_type="application/pdf")

    def activation_page(request: Request) -> HTMLResponse:
        # Nothing is changed by opening the link: a mail scanner may open it first.
        return HTMLResponse(confirm_page(request.url.path), headers=PAGE_HEADERS)

    async def activation(request: Request) -> HTMLResponse:
        token = request.path_params["token"]
        if await call(service.activate_by_link, token):
            return HTMLResponse(activated_page(), headers=PAGE_HEADERS)
        return HTMLResponse(not_activated_page(), status_code=410, headers=PAGE_HEADERS)

    async def server_error(request: Request, error: Exception) -> JSONResponse:
        log.error(
            "%s %s failed: %s",
            request.method,
            request.url.path,
            type(error).__name__,
            exc_info=error,
        )
        return JSONResponse({"error": "internal"}, status_code=500)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        if close_store:
            _settle_garbage_collector()
        stop = threading.Event()
        worker = None
        if sequence_interval:
            worker = threading.Thread(
                target=_sequence_until,
                args=(store, stop, sequence_interval),
                name="rectorat-sequencer",
                daemon=True,
            )
            worker.start()
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                worker.join(timeout=10)
            if close_store:
                store.close()

    app = Starlette(
        routes=[
            Route("/v1/health", health, methods=["GET"]),
            Route("/v1/push", push, methods=["POST"]),
            Route("/v1/changes", changes, methods=["GET"]),
            Route("/v1/accounts/login", login, methods=["POST"]),
            Route("/v1/accounts/signup", sign_up, methods=["POST"]),
            Route("/v1/accounts/activate", activate, methods=["POST"]),
            Route("/v1/accounts/reset-request", request_reset, methods=["POST"]),
            Route("/v1/accounts/reset", reset, methods=["POST"]),
            Route("/v1/documents/{sha256}", document, methods=["GET"]),
            Route("/activation/{token}", activation_page, methods=["GET"]),
            Route("/activation/{token}", activation, methods=["POST"]),
        ],
        exception_handlers={500: server_error},
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.store = store
    return app


COLLECTION_THRESHOLD = 100_000
"""Objects the collector lets a push make before it collects: a batch of 2,000 items makes
about 23,000 (5,000 decoding it, 18,000 deciding and writing it) and frees them once
answered; four batches can be at work at once."""


def _settle_garbage_collector() -> None:
    """Leave what start-up made (modules, classes, the app) out of the collector's walks,
    and let a push work without a collection.

    A push parses thousands of objects, and the collections they set off walked every
    object of the process each time: about a sixth of a batch's time. What is alive once
    the server has started stays alive; it is collected once, then frozen. The objects of
    a batch live as long as its push: collections during it walked them for nothing, 21 to
    34 a batch of 2,000 (2 to 4 ms).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(COLLECTION_THRESHOLD)


def _sequence_until(
    store: RectoratStore,
    stop: threading.Event,
    interval: float,
    prune_interval: float = PRUNE_INTERVAL,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    next_prune = monotonic() + min(prune_interval, 60.0)  # soon after start, then regularly
    while not stop.wait(interval):
        try:
            with store.db.connection_context():
                store.sequence()
                if monotonic() >= next_prune:
                    next_prune = monotonic() + prune_interval
                    pruned = store.prune_feed()
                    if pruned:
                        log.info("feed: %d change rows pruned (superseded or deleted)", pruned)
        except Exception as error:  # keep numbering: the next round may succeed
            log.warning("sequencer: %s: %s", type(error).__name__, error)


DB_ENVIRONMENT = "KIOSK_RECTORAT_DB"
PUBLIC_URL_ENVIRONMENT = "KIOSK_RECTORAT_PUBLIC_URL"
# The candidates' pages: nothing from elsewhere, no framing, nothing kept.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def app_from_environment() -> Starlette:
    """The app for ``uvicorn --factory`` (several workers): the store from
    ``KIOSK_RECTORAT_DB``, the clock from ``KIOSK_NOW``."""
    url = os.environ.get(DB_ENVIRONMENT)
    if not url:
        raise RuntimeError(f"{DB_ENVIRONMENT} is not set")
    from kiosk.rectorat.mail import mail_from_config
    from kiosk.runtime.config import load_config

    clock = Clock.from_setting(os.environ.get("KIOSK_NOW"))
    mail = mail_from_config(load_config(), clock)
    store = open_store(url, pool=True)
    return make_app(store, clock, close_store=True, mail=mail)

"""The revocation feed: the issuer's revocation log, followed over HTTP by
resource servers in verify-only mode.

The issuer serves ``GET {prefix}/revocations`` to its introspection clients
(``JWT_AUTH_INTROSPECTION_CLIENTS``, HTTP Basic):

* without ``after``: every live revocation and the log's highest sequence number;
* ``after=N`` (and ``gaps=a,b,...``, numbers below ``N`` not seen yet): the rows
  after ``N`` and those of the gaps; with ``wait=SECONDS`` (at most 25) it holds
  the answer until one arrives or the time is up (a long poll).

A resource server with ``JWT_AUTH_REVOCATION_SYNC = "push"`` and
``JWT_AUTH_REVOCATION_FEED_URL`` follows it from a thread of its own
(:class:`HttpFollower`), asking with ``wait`` a quarter of
``JWT_AUTH_REVOCATION_MAX_DELAY``, so that each answer confirms it current. It
resumes from its highest sequence number after a network cut, and starts from a
full load after a restart. Past the bound without an answer it refuses tokens
with 503: it has no database to fall back on.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
import typing as t
import urllib.error
import urllib.parse
import urllib.request

from flask import Response
from flask import jsonify
from flask import request

from . import revocation
from .errors import InvalidRequest
from .errors import TemporarilyUnavailable
from .inputs import no_store
from .jwks_fetch import display_url
from .revocation import Entry
from .revocation import RevocationCache

if t.TYPE_CHECKING:
    from .introspection import IntrospectionClients
    from .revocation import PushSettings
    from .state import AppState

logger = logging.getLogger("flask_jwt_authentication")

#: The longest a feed request may hold its answer.
MAX_WAIT = 25.0
#: How often a held answer looks for new rows.
WAIT_STEP = 0.02
#: The most gaps a feed request may name.
MAX_FEED_GAPS = 1000
#: The longest wait after a failed feed request before the next one.
MAX_BACKOFF = 1.0
#: The wait after the feed refused the request (4xx: credentials, URL).
REFUSED_BACKOFF = 5.0
#: Seconds between two log lines of one outage.
LOG_INTERVAL = 30.0

_HINTS = {
    401: "check JWT_AUTH_REVOCATION_FEED_CLIENT_ID and _SECRET against the issuer's"
    " JWT_AUTH_INTROSPECTION_CLIENTS",
    404: "JWT_AUTH_REVOCATION_FEED_URL must be the issuer's {prefix}/revocations URL",
}


def _describe(error: Exception) -> str:
    """A failed feed request in words, with the fix where one is known; never a
    credential."""
    if isinstance(error, urllib.error.HTTPError):
        text = f"HTTP {error.code}"
        try:
            body = json.loads(error.read(10_000))
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                text += f" {body['error']}"
        except (OSError, ValueError):
            pass
        hint = _HINTS.get(error.code)
        return f"{text} ({hint})" if hint else text
    if isinstance(error, urllib.error.URLError):
        return f"unreachable ({error.reason})"
    return type(error).__name__


# The issuer's endpoint ----------------------------------------------------------------


def _number(name: str, value: str, maximum: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a number.") from None
    if not 0 <= number <= maximum:
        raise InvalidRequest(f"{name} must be from 0 to {maximum:g}.")
    return number


def _feed_params() -> tuple[int | None, list[int], float]:
    args = request.args
    after = args.get("after")
    seq = None if after is None else int(_number("after", after, 2**63 - 1))
    gaps: list[int] = []
    if args.get("gaps"):
        parts = args["gaps"].split(",")
        if len(parts) > MAX_FEED_GAPS:
            raise InvalidRequest(f"At most {MAX_FEED_GAPS} gaps.")
        gaps = [int(_number("gaps", part, 2**63 - 1)) for part in parts]
    wait = _number("wait", args.get("wait", "0"), MAX_WAIT)
    return seq, gaps, wait


def make_feed(
    clients: IntrospectionClients,
    authenticate: t.Callable[[AppState, IntrospectionClients], None],
    get_state: t.Callable[[], AppState],
) -> t.Callable[[], Response]:
    """The feed view for the configured introspection ``clients``."""

    def revocations() -> Response:
        """``GET {prefix}/revocations``: the revocation log, for resource
        servers."""
        state = get_state()
        authenticate(state, clients)
        after, gaps, wait = _feed_params()
        store = state.store
        table = state.tables.revocations
        deadline = time.monotonic() + wait
        with store.unavailable_on_error():
            while True:
                connection = store.db.session.connection()
                highest = revocation.last_seq(connection, table)
                if after is None:
                    entries = revocation.read_after(
                        connection, table, 0, live_at=int(time.time())
                    )
                else:
                    entries = revocation.read_after(connection, table, after, gaps)
                # A fresh snapshot for the next look, and no transaction held.
                store.rollback()
                if entries or after is None or time.monotonic() >= deadline:
                    break
                _wait_for_rows(state, min(WAIT_STEP, deadline - time.monotonic()))
        body = {"entries": [e.to_list() for e in entries], "highest": highest}
        return no_store(jsonify(body))

    return revocations


def _wait_for_rows(state: AppState, seconds: float) -> None:
    cache = state.revocations
    if cache is None:
        time.sleep(max(seconds, 0.0))
        return
    # Push mode: woken as soon as this worker learns of a revocation.
    with cache.arrived:
        cache.arrived.wait(max(seconds, 0.0))


# The resource server's follower -----------------------------------------------------


class HttpFollower:
    """Keeps a resource server's cache current from the issuer's feed.

    :param cache: the worker's cache.
    :param settings: the ``JWT_AUTH_REVOCATION_*`` settings (feed URL and client).
    """

    def __init__(self, cache: RevocationCache, settings: PushSettings) -> None:
        self.cache = cache
        self.url = t.cast(str, settings.feed_url)
        credentials = f"{settings.feed_client_id}:{settings.feed_client_secret}"
        self._authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
        #: How long each feed request may be held by the issuer.
        self.wait = cache.max_delay / 4
        self.loaded = threading.Event()
        self._stop = threading.Event()
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        #: What the last failed feed request met, until one succeeds.
        self.failure: str | None = None

    def ensure_running(self) -> None:
        """Start the thread in this process if it is not running."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop.clear()
            self.loaded.clear()
            self.cache.lapse()
            self._thread = threading.Thread(
                target=self._follow, name="jwt-auth revocation feed", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait for it (tests, and an app torn down)."""
        self._stop.set()
        self._pid = None
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def check(self, claims: t.Mapping[str, t.Any]) -> str | None:
        """Why the token of ``claims`` is revoked, or ``None``.

        :raises TemporarilyUnavailable: the feed has not confirmed this server
            current within ``JWT_AUTH_REVOCATION_MAX_DELAY``.
        """
        self.ensure_running()
        cache = self.cache
        if not cache.is_current():
            # Just started: the first answer is on its way.
            self.loaded.wait(cache.max_delay)
            if not cache.is_current():
                raise TemporarilyUnavailable(
                    "Revocations cannot be checked: the issuer's revocation feed"
                    " has not answered in time.",
                    retry_after=1,
                )
        return cache.status(
            claims["jti"],
            claims["sid"],
            claims["uid"],
            claims["iat"],
        )

    def _query(self) -> str:
        if not self.loaded.is_set():
            return ""
        params = {"after": str(self.cache.highest), "wait": f"{self.wait:.3f}"}
        if self.cache.gaps:
            params["gaps"] = ",".join(map(str, sorted(self.cache.gaps)))
        return urllib.parse.urlencode(params)

    def _follow(self) -> None:
        backoff = 0.05
        failing_since: float | None = None
        next_log = 0.0
        while not self._stop.is_set():
            asked_at = time.monotonic()
            query = self._query()
            url = (
                self.url + ("&" if "?" in self.url else "?") + query
                if query
                else self.url
            )
            try:
                body = self._get(url)
                entries = [Entry.from_list(item) for item in body["entries"]]
                highest = body["highest"]
                if isinstance(highest, bool) or not isinstance(highest, int):
                    raise ValueError("highest must be an integer")
            except (OSError, ValueError, KeyError, TypeError) as e:
                refused = isinstance(e, urllib.error.HTTPError) and e.code < 500
                self.failure = _describe(e)
                if failing_since is None or time.monotonic() >= next_log:
                    logger.warning(
                        "The revocation feed %s failed: %s; protected requests get"
                        " 503 once %.2f s have passed without an answer.",
                        display_url(self.url),
                        self.failure,
                        self.cache.max_delay,
                    )
                    next_log = time.monotonic() + LOG_INTERVAL
                if failing_since is None:
                    failing_since = time.monotonic()
                # A refusal will not change by itself: ask again more slowly.
                self._stop.wait(REFUSED_BACKOFF if refused else backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            if failing_since is not None:
                logger.warning(
                    "The revocation feed %s answers again, after %.1f s.",
                    display_url(self.url),
                    time.monotonic() - failing_since,
                )
                failing_since, self.failure = None, None
            backoff = 0.05
            if self.loaded.is_set():
                self.cache.apply(entries)
            else:
                self.cache.load(entries, highest)
            self.cache.confirm(asked_at)
            self.loaded.set()

    def _get(self, url: str) -> dict[str, t.Any]:
        req = urllib.request.Request(  # noqa: S310 - the configured https URL
            url,
            headers={
                "Authorization": self._authorization,
                "Accept": "application/json",
            },
        )
        timeout = self.wait + max(self.cache.max_delay, 1.0)
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310
            if response.status != 200:
                raise ValueError(f"status {response.status}")
            body = json.loads(response.read(10_000_000))
        if not isinstance(body, dict) or not isinstance(body.get("entries"), list):
            raise ValueError("not a revocation feed answer")
        return body

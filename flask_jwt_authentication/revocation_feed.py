"""Push mode: how a worker's :class:`~.revocation.RevocationCache` follows the
revocation log.

One daemon thread per worker process asks the log for what is new on a
connection of its own, and each answer confirms the cache current as of the
moment the question was sent. Between questions it sleeps until woken, or for
at most the poll interval:

* PostgreSQL: a revocation sends ``NOTIFY`` in its transaction, delivered at
  commit; a second thread ``LISTEN``\\ s and wakes the follower. The poll is a
  heartbeat (a quarter of ``JWT_AUTH_REVOCATION_MAX_DELAY``).
* ``JWT_AUTH_REVOCATION_REDIS_URL``: the revoking worker publishes after its
  commit; a thread subscribed to the channel wakes the follower (any database,
  MariaDB included).
* SQLite: ``PRAGMA data_version`` every 10 ms tells whether another connection
  committed anything; the log is read only then. SQLite in memory lives in one
  process, whose own revocations are applied at commit: there is nothing to
  follow, and no follower is made.
* MariaDB and MySQL without Redis: the log is polled every 50 ms.

The follower thread also does the periodic reloads of the stored settings and
keys, so that no protected request ever waits for a query.

The revoking worker applies its own revocations when its transaction commits
(a session event), before the response leaves. A worker that cannot reach the
database stops confirming, and once ``JWT_AUTH_REVOCATION_MAX_DELAY`` has passed
the protected routes ask the database again, which answers or fails closed.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import typing as t

import sqlalchemy as sa
from sqlalchemy.pool import SingletonThreadPool
from sqlalchemy.pool import StaticPool

from . import revocation
from .errors import ConfigurationError
from .revocation import Entry
from .revocation import RevocationCache

if t.TYPE_CHECKING:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from .revocation import PushSettings
    from .state import AppState

logger = logging.getLogger("flask_jwt_authentication")

CHANNEL = revocation.NOTIFY_CHANNEL
#: How often SQLite's data version is read.
SQLITE_INTERVAL = 0.01
#: How often the log is polled on MariaDB and MySQL without Redis.
POLL_INTERVAL = 0.05
#: The longest wait after a failure before the next attempt.
MAX_BACKOFF = 1.0


def in_memory_sqlite(db: SQLAlchemy) -> bool:
    """Whether the app's database is SQLite in memory (one shared connection)."""
    return isinstance(db.engine.pool, (StaticPool, SingletonThreadPool))


class DatabaseFollower:
    """Keeps one worker's cache current from the revocation log.

    :param cache: the worker's cache.
    :param db: the app's Flask-SQLAlchemy object (its engine is used outside of
        any request).
    :param table: the revocation log.
    :param redis_url: wake on Redis pub/sub instead of the database's own
        notifications.
    """

    def __init__(
        self,
        cache: RevocationCache,
        db: SQLAlchemy,
        table: sa.Table,
        redis_url: str | None = None,
        *,
        app: Flask | None = None,
        reload: t.Callable[[], None] | None = None,
    ) -> None:
        self.cache = cache
        self.db = db
        self.table = table
        self.redis_url = redis_url
        self.app = app
        #: The other periodic reloads (stored settings, keys), done by the
        #: follower thread so that no request waits for them.
        self.reload = reload
        #: Set once the thread has done the reloads (requests do them till then).
        self.reloading = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pid: int | None = None
        self._started = threading.Lock()
        self._redis: t.Any = None
        self._threads: list[threading.Thread] = []
        #: Seconds between questions when nothing wakes the follower.
        self.interval = POLL_INTERVAL
        #: Set once the first load is done.
        self.loaded = threading.Event()

    #: The database's dialect name, known once the threads start.
    dialect = ""

    # Starting, in every worker process --------------------------------------------

    def ensure_running(self) -> None:
        """Start the threads in this process if they are not running (the first
        protected request of each worker; a fork leaves them behind)."""
        if self._pid == os.getpid():
            return
        with self._started:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop.clear()
            self.loaded.clear()
            self.reloading.clear()
            self.cache.lapse()
            self._start_threads()

    def before_request(self) -> None:
        """Start the threads if needed; until they do the periodic reloads, the
        request does them."""
        self.ensure_running()
        if not self.reloading.is_set() and self.reload is not None:
            self.reload()

    def _start_threads(self) -> None:
        engine = self.db.engine
        self.dialect = engine.dialect.name
        max_delay = self.cache.max_delay
        if self.dialect == "sqlite":
            self.interval = SQLITE_INTERVAL
        elif self.redis_url or self.dialect == "postgresql":
            self.interval = min(0.25, max_delay / 4)
        else:
            self.interval = min(POLL_INTERVAL, max_delay / 4)
            logger.info(
                "Push mode on %s without JWT_AUTH_REVOCATION_REDIS_URL: the"
                " revocation log is polled every %.0f ms.",
                self.dialect,
                self.interval * 1000,
            )
        self._spawn(self._follow, engine, "follower")
        if self.redis_url:
            self._spawn(self._listen_redis, None, "Redis listener")
        elif self.dialect == "postgresql":
            self._spawn(self._listen_postgresql, engine, "PostgreSQL listener")

    def _spawn(self, target: t.Callable[[t.Any], None], arg: t.Any, what: str) -> None:
        thread = threading.Thread(
            target=target, args=(arg,), name=f"jwt-auth revocation {what}", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads and wait for them to close their connections (tests,
        and an app torn down before its engine is disposed)."""
        self._stop.set()
        self._wake.set()
        self._pid = None
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        if self._redis is not None:
            self._redis.close()
            self._redis = None

    def wake(self) -> None:
        """Ask the log now (a notification arrived)."""
        self._wake.set()

    # The follower --------------------------------------------------------------------

    def _follow(self, engine: sa.Engine) -> None:
        backoff = 0.05
        connection: sa.Connection | None = None
        version: t.Any = None
        while not self._stop.is_set():
            asked_at = time.monotonic()
            try:
                if connection is None:
                    connection = engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT"
                    )
                    version = None
                version = self.ask(connection, version)
            except Exception as e:
                logger.warning(
                    "The revocation follower lost the database (%s); protected"
                    " routes ask the database until it is back.",
                    type(e).__name__,
                )
                if connection is not None:
                    try:
                        connection.invalidate()
                        connection.close()
                    except Exception:  # noqa: S110 - already broken
                        pass
                connection = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.05
            self.cache.confirm(asked_at)
            self._reload()
            self._wake.wait(self.interval)
            self._wake.clear()
        if connection is not None:
            connection.close()

    def _reload(self) -> None:
        if self.reload is None or self.app is None:
            return
        try:
            with self.app.app_context():
                self.reload()
        except Exception as e:
            logger.warning("A periodic reload failed (%s).", type(e).__name__)
            self.reloading.clear()
            return
        self.reloading.set()

    def ask(self, connection: sa.Connection, version: t.Any) -> t.Any:
        """One question to the database: what is new in the log (on SQLite only
        if its data version moved since ``version``). Returns the version seen.

        :raises sqlalchemy.exc.SQLAlchemyError: the database did not answer.
        """
        if self.dialect != "sqlite":
            self._catch_up(connection)
            return None
        current = connection.exec_driver_sql("PRAGMA data_version").scalar()
        if current != version or not self.loaded.is_set():
            self._catch_up(connection)
        return current

    def _catch_up(self, connection: sa.Connection) -> None:
        if not self.loaded.is_set():
            highest = revocation.last_seq(connection, self.table)
            entries = revocation.read_after(
                connection, self.table, 0, live_at=int(time.time())
            )
            self.cache.load(entries, highest)
            self.loaded.set()
            return
        entries = revocation.read_after(
            connection, self.table, self.cache.highest, self.cache.gaps
        )
        if entries:
            self.cache.apply(entries)

    # Wake-ups ------------------------------------------------------------------------

    def _listen_postgresql(self, engine: sa.Engine) -> None:
        try:
            import psycopg
        except ImportError:
            logger.warning(
                "Push mode on PostgreSQL listens with psycopg (pip install"
                " 'psycopg[binary]'); without it the revocation log is polled"
                " every %.0f ms.",
                self.interval * 1000,
            )
            return
        url = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )

        def listen() -> None:
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute(f"LISTEN {CHANNEL}")
                self.wake()  # anything sent while not listening
                while not self._stop.is_set():
                    for _ in connection.notifies(timeout=0.2, stop_after=1):
                        self.wake()

        self._keep_listening("PostgreSQL", listen)

    def _keep_listening(self, what: str, listen: t.Callable[[], None]) -> None:
        """Run ``listen`` (which wakes the follower on each notification) until
        the follower stops, reconnecting after a failure, with a backoff."""
        backoff = 0.05
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                listen()
            except Exception as e:
                logger.warning(
                    "The revocation listener lost %s (%s); reconnecting.",
                    what,
                    type(e).__name__,
                )
                if time.monotonic() - started > 1.0:
                    backoff = 0.05  # it had been listening
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _redis_client(self) -> t.Any:
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(
                t.cast(str, self.redis_url),
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
            )
        return self._redis

    def _listen_redis(self, _: None) -> None:
        def listen() -> None:
            client = self._redis_client()
            with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                pubsub.subscribe(CHANNEL)
                self.wake()
                while not self._stop.is_set():
                    if pubsub.get_message(timeout=0.2) is not None:
                        self.wake()

        self._keep_listening("Redis", listen)

    def published(self) -> None:
        """Tell the other workers that this one committed revocations."""
        if not self.redis_url:
            return
        try:
            self._redis_client().publish(CHANNEL, b"")
        except Exception as e:
            logger.warning(
                "Could not publish a revocation on Redis (%s); other workers see"
                " it at their next poll.",
                type(e).__name__,
            )


def install(
    db: SQLAlchemy,
    pending_key: str,
    cache: RevocationCache,
    follower: DatabaseFollower | None,
) -> None:
    """Apply this worker's revocations to its cache when their transaction
    commits, and tell the others; forget them on a rollback.

    :param pending_key: where the app's store notes them in ``session.info``.
    """
    session_class = db.session

    @sa.event.listens_for(session_class, "after_commit")
    def applied(session: sa.orm.Session) -> None:
        pending: list[Entry] | None = session.info.pop(pending_key, None)
        if pending:
            cache.apply(pending, from_log=False)
            if follower is not None:
                follower.published()
                follower.wake()

    @sa.event.listens_for(session_class, "after_rollback")
    def forgotten(session: sa.orm.Session) -> None:
        session.info.pop(pending_key, None)


#: Seconds a revocation log row for a session or a user is kept beyond the last
#: access token it covers (clock differences between workers).
REVOCATION_MARGIN = 60


def set_up(
    app: Flask, state: AppState, push: PushSettings, configured_ttl: int
) -> None:
    """Wire the revocation log and, in push mode, the worker's cache and its
    follower into ``state``; register the periodic reloads before each request
    (or, with a follower, in its thread).

    :param configured_ttl: the configured access-token lifetime.
    """

    def horizon(now: int) -> int:
        # The last access token issued by now expires by then, even if the
        # lifetime was lowered at run time meanwhile.
        current = state.overrides.settings()
        ttl = max(configured_ttl, current.access_token_ttl)
        return now + ttl + current.leeway + REVOCATION_MARGIN

    state.store.horizon = horizon

    def reload() -> None:
        state.overrides.refresh()
        state.keys.refresh()

    follower = None
    if push.redis_url and not push.push:
        raise ConfigurationError(
            "JWT_AUTH_REVOCATION_REDIS_URL is set but JWT_AUTH_REVOCATION_SYNC is"
            " not 'push': set it to 'push', or remove the URL.",
            setting="JWT_AUTH_REVOCATION_SYNC",
        )
    if push.redis_url:
        try:
            import redis  # noqa: F401 - only whether it is installed
        except ImportError:
            raise ConfigurationError(
                "JWT_AUTH_REVOCATION_REDIS_URL needs the redis package: pip install"
                " 'flask_jwt_authentication[redis]'.",
                setting="JWT_AUTH_REVOCATION_REDIS_URL",
            ) from None
    if push.push:
        cache = RevocationCache(push.max_delay)
        with app.app_context():
            in_memory = in_memory_sqlite(state.db)
        if in_memory:
            # One process, one connection: every revocation is its own.
            cache.confirm(math.inf)
        else:
            follower = DatabaseFollower(
                cache,
                state.db,
                state.tables.revocations,
                push.redis_url,
                app=app,
                reload=reload,
            )
        install(state.db, state.store.pending_key, cache, follower)
        state.revocations, state.follower = cache, follower
    app.before_request(reload if follower is None else follower.before_request)

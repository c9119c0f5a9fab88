"""When a worker reloads what it keeps in memory from the database (the key set,
the stored settings): at most every ``interval`` seconds, one loader at a time,
and after a failed load again within a second, keeping what it has meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t

from sqlalchemy import exc as sa_exc

logger = logging.getLogger("flask_jwt_authentication")


class Periodic:
    """The reload schedule of one in-memory copy.

    :param interval: seconds between reloads.
    :param what: what is loaded, for the log line of a failed load.
    """

    def __init__(self, interval: float, what: str) -> None:
        self.interval = interval
        self.what = what
        #: Held while loading; hold it too to change the copy in other ways.
        self.lock = threading.Lock()
        self._next_at = 0.0

    @property
    def due(self) -> bool:
        """Whether the copy is older than the interval."""
        return time.monotonic() >= self._next_at

    def invalidate(self) -> None:
        """Reload on the next use (after a change made by this process)."""
        self._next_at = 0.0

    def loaded(self) -> None:
        """The copy is current now (a change this process made and applied)."""
        self._next_at = time.monotonic() + self.interval

    def run(self, load: t.Callable[[], None]) -> None:
        """Call ``load`` if the copy is still due once the lock is held (another
        thread may have reloaded meanwhile). A database error is logged and
        retried within a second."""
        with self.lock:
            if not self.due:
                return
            try:
                load()
            except sa_exc.SQLAlchemyError as e:
                logger.warning("Could not load %s (%s).", self.what, type(e).__name__)
                self._next_at = time.monotonic() + min(self.interval, 1.0)
                return
            self.loaded()

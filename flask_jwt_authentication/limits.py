"""Brute-force limits on the token endpoints, counted by the ``limits`` library on
Flask-Limiter's storage settings.

Failed log-ins are limited per client address, per username *and* address, and
per account across all addresses (a much wider limit, against guessing spread
over many addresses); failed refreshes per client address. An IPv6 client is
counted by its network (``JWT_AUTH_IPV6_PREFIX_LENGTH``, a /64 by default), since
one host commonly holds a whole /64.

A log-in attempt is *reserved* (counted) before the password is checked, so
concurrent guesses cannot slip past the limit; a success gives its reservation
back and clears its username-and-address counters, never the address's or the
account's (else an attacker would interleave log-ins of its own). The per-user
counters are kept both under the name typed and under the identity of the user
the lookup found, so no spelling the database matches to the account (an accent
variant under a case- and accent-insensitive collation, say) has a counter of its
own. Failures from other addresses do not block a log-in while the account limit
holds.

A refresh token has 256 bits: guessing one is hopeless, so only failed refreshes
are counted, after the fact, and a valid token is never refused for other
clients' failures on a shared address.

Counting uses the fixed-window strategy, the only one of ``limits`` whose counts
can be given back; a burst at a window's edge can therefore reach twice a limit
within a short span, never more.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
import threading
import time
import typing as t
import unicodedata

import limits
from limits.storage import MemoryStorage
from limits.storage import Storage
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from .errors import ConfigurationError
from .errors import TemporarilyUnavailable
from .errors import TooManyRequests
from .settings_registry import read

logger = logging.getLogger("flask_jwt_authentication")

#: Seconds between attempts to return to the configured storage after a failure,
#: when the in-memory fallback is on.
RECHECK_INTERVAL = 10.0


def normalize_username(username: str) -> str:
    """The default username normaliser: Unicode NFKC and no surrounding spaces.

    The user lookup receives this form; the flood counter also folds case, so
    every variant of one account shares one counter.
    """
    return unicodedata.normalize("NFKC", username).strip()


def _parse(config: t.Mapping[str, t.Any], key: str) -> limits.RateLimitItem | None:
    """The limit under ``key``; ``None`` (or an empty string) turns it off."""
    return t.cast("limits.RateLimitItem | None", read(config, key))


def address_key(address: str, ipv6_prefix: int = 64) -> str:
    """The client an address counts as: an IPv4 address itself, an IPv6 address
    its network of ``ipv6_prefix`` bits (an IPv4-mapped IPv6 address its IPv4
    address). Anything else (a Unix socket, say) counts as itself."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, ipv6_prefix), strict=False))
    return str(ip)


@dataclasses.dataclass
class _Counter:
    """One limit and the identifiers it is counted under."""

    item: limits.RateLimitItem
    scope: str


class FloodControl:
    """The log-in and refresh limits of one application.

    :param config: the application's configuration. Reads ``JWT_AUTH_FLOOD_IP_LIMIT``,
        ``JWT_AUTH_FLOOD_USER_LIMIT``, ``JWT_AUTH_FLOOD_REFRESH_LIMIT`` and
        Flask-Limiter's ``RATELIMIT_ENABLED``, ``RATELIMIT_STORAGE_URI``,
        ``RATELIMIT_STORAGE_OPTIONS``, ``RATELIMIT_KEY_PREFIX`` and
        ``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED``.
    :raises ConfigurationError: a limit does not parse or the storage URI is unknown.
    """

    def __init__(self, config: t.Mapping[str, t.Any]) -> None:
        self.enabled = bool(config.get("RATELIMIT_ENABLED", True))
        self.set_limits(config)
        self.prefix = str(config.get("RATELIMIT_KEY_PREFIX") or "") + "jwt-auth"
        uri = config.get("RATELIMIT_STORAGE_URI") or "memory://"
        options = dict(config.get("RATELIMIT_STORAGE_OPTIONS") or {})
        try:
            storage = storage_from_string(uri, **options)
        except Exception as e:  # limits raises ConfigurationError or ImportError
            # Neither the URI nor the library's message (which may quote it) is
            # repeated: it may hold a password.
            match = re.match(r"([A-Za-z][A-Za-z0-9+.-]{0,31})://", str(uri))
            scheme = match[1] if match else "none"
            hint = (
                " (install flask_jwt_authentication[redis] for redis://)"
                if isinstance(e, ImportError)
                else ""
            )
            raise ConfigurationError(
                f"RATELIMIT_STORAGE_URI cannot be used ({type(e).__name__}{hint}):"
                f" scheme {scheme!r}; use memory:// or a storage URI of the limits"
                " library such as redis://host:6379 (the value is not shown)."
            ) from None
        if not isinstance(storage, Storage):
            raise ConfigurationError(
                "RATELIMIT_STORAGE_URI must name a synchronous storage, not async+..."
            )
        self._storage = storage
        self._primary = FixedWindowRateLimiter(storage)
        self.fail_open = bool(config.get("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", False))
        self._fallback = FixedWindowRateLimiter(MemoryStorage())
        self._dead_since: float | None = None
        self._lock = threading.Lock()

    def set_limits(self, config: t.Mapping[str, t.Any]) -> None:
        """Read the ``JWT_AUTH_FLOOD_*`` limits from ``config`` (again, when
        they are edited at run time); counts already taken are kept.

        :raises ConfigurationError: a limit does not parse; nothing changes.
        """
        ip_limit = _parse(config, "JWT_AUTH_FLOOD_IP_LIMIT")
        user_limit = _parse(config, "JWT_AUTH_FLOOD_USER_LIMIT")
        account_limit = _parse(config, "JWT_AUTH_FLOOD_ACCOUNT_LIMIT")
        refresh_limit = _parse(config, "JWT_AUTH_FLOOD_REFRESH_LIMIT")
        ipv6_prefix: int = read(config, "JWT_AUTH_IPV6_PREFIX_LENGTH")
        self.ip_limit, self.user_limit = ip_limit, user_limit
        self.account_limit, self.refresh_limit = account_limit, refresh_limit
        self.ipv6_prefix = ipv6_prefix

    def client(self, address: str) -> str:
        """The client ``address`` counts as (see :func:`address_key`)."""
        return address_key(address, self.ipv6_prefix)

    # Strategy selection with the in-memory fallback --------------------------------

    def _strategy(self) -> FixedWindowRateLimiter:
        if self._dead_since is None:
            return self._primary
        if time.monotonic() - self._dead_since >= RECHECK_INTERVAL:
            with self._lock:
                try:
                    healthy = self._storage.check()
                except Exception:
                    healthy = False
                if healthy:
                    logger.warning("Rate-limit storage is back; leaving the fallback.")
                    self._dead_since = None
                    return self._primary
                self._dead_since = time.monotonic()
        return self._fallback

    def _call(self, op: str, counter: _Counter, cost: int = 1) -> t.Any:
        """Run ``op`` ("hit", "clear" or "get_window_stats") on ``counter``."""
        strategy = self._strategy()
        try:
            return self._run(strategy, op, counter, cost)
        except Exception as e:
            if strategy is self._fallback:
                raise
            logger.error(
                "Rate-limit storage unavailable (%s); %s.",
                type(e).__name__,
                "counting in memory" if self.fail_open else "refusing log-ins",
            )
            if not self.fail_open:
                raise TemporarilyUnavailable() from e
            with self._lock:
                self._dead_since = time.monotonic()
            return self._run(self._fallback, op, counter, cost)

    def _run(
        self, strategy: FixedWindowRateLimiter, op: str, counter: _Counter, cost: int
    ) -> t.Any:
        if op == "hit":
            return strategy.hit(counter.item, self.prefix, counter.scope, cost=cost)
        if op == "clear":
            return strategy.clear(counter.item, self.prefix, counter.scope)
        return strategy.get_window_stats(counter.item, self.prefix, counter.scope)

    # Reservations --------------------------------------------------------------------

    def _counters(self, **scopes: str | None) -> list[_Counter]:
        items = {
            "ip": self.ip_limit,
            "user": self.user_limit,
            "account": self.account_limit,
            "refresh": self.refresh_limit,
        }
        counters = []
        for name, value in scopes.items():
            item = items[name]
            if value is not None and item is not None:
                counters.append(_Counter(item, f"{name}:{value}"))
        return counters

    def reserve(self, **scopes: str | None) -> Reservation:
        """Count one attempt on each named limit (``ip=``, ``user=``,
        ``account=``, ``refresh=``).

        :returns: the reservation, to give back with :meth:`Reservation.succeeded`.
        :raises TooManyRequests: a limit is exhausted; no count is kept for it, and
            the counts already taken for this attempt are given back.
        :raises TemporarilyUnavailable: the storage cannot be reached and the
            in-memory fallback is off.
        """
        reservation = Reservation(self, [])
        reservation.extend(**scopes)
        return reservation

    def failed(self, **scopes: str | None) -> None:
        """Count a failure after the fact (a refresh token that did not work).

        :raises TooManyRequests: a limit was exhausted already: answer 429
            rather than the failure itself.
        :raises TemporarilyUnavailable: as :meth:`reserve`.
        """
        self.reserve(**scopes)

    def _hit_all(self, counters: list[_Counter], taken: list[_Counter]) -> None:
        for counter in counters:
            if not self._call("hit", counter):
                self._give_back([counter, *taken])
                taken.clear()
                retry = self._retry_after(counter)
                raise TooManyRequests(
                    "Too many failed attempts; try again later.", retry_after=retry
                )
            taken.append(counter)

    def _retry_after(self, counter: _Counter) -> int:
        try:
            stats = self._call("get_window_stats", counter)
            return max(1, int(stats.reset_time - time.time()) + 1)
        except Exception:
            return int(counter.item.get_expiry())

    def _give_back(self, counters: t.Iterable[_Counter]) -> None:
        for counter in counters:
            try:
                # The window the attempt was counted in may have ended: giving
                # back in a fresh window would start it at -1, one attempt over.
                stats = self._call("get_window_stats", counter)
                if stats.remaining >= counter.item.amount:
                    continue
                self._call("hit", counter, cost=-1)
            except Exception:
                logger.warning("Could not give back a rate-limit reservation.")

    def clear(self, counter: _Counter) -> None:
        """Reset a counter (a successful log-in clears its username's)."""
        try:
            self._call("clear", counter)
        except Exception:
            logger.warning("Could not clear a rate-limit counter.")

    @staticmethod
    def user_key(username: str) -> str:
        """The username's counter key: normalised and case-folded."""
        return "name:" + normalize_username(username).casefold()

    @staticmethod
    def identity_key(user_key: str) -> str:
        """The counter key of a user the lookup found: its identity (JSON)."""
        return "id:" + user_key


@dataclasses.dataclass
class Reservation:
    """Attempts counted before a credential check."""

    flood: FloodControl
    counters: list[_Counter]

    def extend(self, **scopes: str | None) -> None:
        """Count this attempt on more limits (see :meth:`FloodControl.reserve`);
        if one is exhausted, every count of the attempt is given back."""
        if self.flood.enabled:
            self.flood._hit_all(self.flood._counters(**scopes), self.counters)

    def cancel(self) -> None:
        """The attempt reached no verdict (storage was down): give its counts back."""
        self.flood._give_back(self.counters)

    def succeeded(self) -> None:
        """The attempt succeeded: give its counts back and clear the username's."""
        for counter in self.counters:
            if counter.scope.startswith("user:"):
                self.flood.clear(counter)
            else:
                self.flood._give_back([counter])

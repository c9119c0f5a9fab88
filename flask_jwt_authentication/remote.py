"""Verify-only mode: accept the access tokens of another application (the auth
server) with the public keys of its JWKS document alone.

An application with ``JWT_AUTH_JWKS_URL`` holds no secret and no database: it
fetches the JWK Set (RFC 7517 §5) over HTTP, keeps it in memory, and verifies tokens
exactly as the auth server does, except for revocation, which needs the auth
server's database (see ``docs/resource-server.rst``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import typing as t
import urllib.error
import urllib.parse
import urllib.request

from flask import Flask
from jwt.exceptions import PyJWTError

from . import config
from .dpop_state import load_dpop_state
from .errors import ConfigurationError
from .errors import TemporarilyUnavailable
from .jwks_fetch import JWKSError
from .jwks_fetch import display_url
from .jwks_fetch import fetch_jwks
from .keys import _PYJWT_ALGORITHMS
from .keys import ALGORITHMS
from .keys import MAX_KID_LENGTH
from .keys import Key
from .keys import KeySet
from .keys import _check_key_type
from .revocation import RevocationCache
from .revocation import load_push_settings
from .revocation_remote import HttpFollower
from .settings_registry import read
from .state import VerifyOnlyState

if t.TYPE_CHECKING:
    from .extension import JWTAuthentication

logger = logging.getLogger("flask_jwt_authentication")

#: The public members of each key type (RFC 7518 §6.2.1, §6.3.1; RFC 8037 §2):
#: nothing else of a JWK is ever handed to a key parser.
_PUBLIC_MEMBERS: t.Mapping[str, tuple[str, ...]] = {
    "RSA": ("n", "e"),
    "EC": ("crv", "x", "y"),
    "OKP": ("crv", "x"),
}
#: Members that only a private or secret key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: The curve each algorithm needs (RFC 7518 §3.4, RFC 8037 §3.1).
_CURVES: t.Mapping[str, tuple[str, ...]] = {
    "ES256": ("P-256",),
    "ES384": ("P-384",),
    "ES512": ("P-521",),
    "EdDSA": ("Ed25519", "Ed448"),
}
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class UnusableKey(ValueError):
    """A JWK of the set cannot verify tokens of the configured algorithm; the
    message says why. Such keys are skipped."""


# Reading JWKs -----------------------------------------------------------------------


def public_key_from_jwk(jwk: object, algorithm: str) -> Key:
    """A verifying key from one member of a JWK Set.

    The key must name a ``kid``, be meant for signatures (``use``, ``key_ops``),
    and fit ``algorithm`` (``alg`` when present, ``kty``, ``crv``, and for RSA at
    least 2048 bits and no ROCA fingerprint). Only the public members are read:
    private members such as ``d`` are ignored, so no private key is ever loaded
    from a JWKS.

    :param jwk: the JWK, as parsed from JSON.
    :param algorithm: the configured JWS algorithm.
    :raises UnusableKey: the key cannot verify ``algorithm`` tokens.
    """
    family = ALGORITHMS[algorithm][0]
    if family == "oct":
        raise UnusableKey(f"{algorithm} needs a shared secret, never published")
    if not isinstance(jwk, dict):
        raise UnusableKey("the key is not a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
        raise UnusableKey("the key has no valid kid")
    use = jwk.get("use")
    if use is not None and use != "sig":
        # RFC 7517 §4.2: an encryption key never verifies a signature.
        raise UnusableKey(f"key {kid!r} is for use {use!r}, not 'sig'")
    operations = jwk.get("key_ops")
    # RFC 7517 §4.3; "sign" too: that is what a (wrongly published) private
    # signing key lists, and its public part verifies.
    if operations is not None and (
        not isinstance(operations, list)
        or not any(op in ("verify", "sign") for op in operations)
    ):
        raise UnusableKey(f"key {kid!r} does not allow the 'verify' operation")
    alg = jwk.get("alg")
    if alg is not None and alg != algorithm:
        raise UnusableKey(f"key {kid!r} is for {alg!r}, not {algorithm}")
    kty = jwk.get("kty")
    if kty != family:
        raise UnusableKey(f"key {kid!r} has kty {kty!r}; {algorithm} needs {family}")
    curves = _CURVES.get(algorithm)
    if curves is not None and jwk.get("crv") not in curves:
        raise UnusableKey(
            f"key {kid!r} is on curve {jwk.get('crv')!r}; {algorithm} needs "
            + " or ".join(curves)
        )
    public = {"kty": family}
    for name in _PUBLIC_MEMBERS[family]:
        value = jwk.get(name)
        if not isinstance(value, str) or not value:
            raise UnusableKey(f"key {kid!r} has no valid {name!r} member")
        public[name] = value
    if _PRIVATE_MEMBERS & jwk.keys():
        logger.warning(
            "The JWKS publishes private key material for key %s; only its public"
            " part is used. Remove it from the auth server's JWKS at once.",
            kid,
        )
    try:
        verifying_key = _PYJWT_ALGORITHMS[algorithm].from_jwk(public)
        _check_key_type(f"JWKS key {kid!r}", algorithm, verifying_key)
    except ConfigurationError as e:
        raise UnusableKey(str(e)) from None
    except (PyJWTError, ValueError, TypeError, KeyError) as e:
        raise UnusableKey(f"key {kid!r} does not parse ({type(e).__name__})") from None
    return Key(
        kid=kid,
        algorithm=algorithm,
        signing_key=None,
        verifying_key=verifying_key,
        public_jwk={**public, "kid": kid, "alg": algorithm, "use": "sig"},
    )


def parse_jwks(document: object, algorithm: str) -> tuple[Key, ...]:
    """The keys of a JWK Set that verify ``algorithm`` tokens, in document order.

    Keys that cannot (see :func:`public_key_from_jwk`) are skipped; of keys sharing
    a ``kid`` the first is kept.

    :param document: the JWKS document, as parsed from JSON.
    :param algorithm: the configured JWS algorithm.
    :raises JWKSError: the document is not a JWK Set.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JWKSError('the document is not a JWK Set (no "keys" list)')
    keys: dict[str, Key] = {}
    for jwk in document["keys"]:
        try:
            key = public_key_from_jwk(jwk, algorithm)
        except UnusableKey as e:
            logger.debug("Skipped a JWKS key: %s.", e)
            continue
        if key.kid in keys:
            logger.warning("The JWKS has several keys %s; the first is used.", key.kid)
            continue
        keys[key.kid] = key
    return tuple(keys.values())


class RemoteKeys:
    """The keys of a JWKS endpoint, fetched when needed and kept in memory.

    The document is fetched on first use, again when the cached one is older than
    ``cache_ttl``, and when a token names a ``kid`` it does not hold (a rotation
    on the auth server), but never twice within ``min_refresh_interval``, so
    tokens with made-up kids cannot make it hammer the auth server. A failed
    fetch keeps the keys already held. Thread-safe: one thread fetches while the
    others go on with the cached keys, or wait for it when they have none.

    :param url: the JWKS URL.
    :param algorithm: the configured algorithm; keys for others are skipped.
    :param cache_ttl: seconds a fetched document is used before it is fetched again.
    :param min_refresh_interval: the fewest seconds between two fetches.
    :param timeout: seconds one fetch may take.
    """

    def __init__(
        self,
        url: str,
        algorithm: str,
        *,
        cache_ttl: float,
        min_refresh_interval: float,
        timeout: float,
    ) -> None:
        self.url = url
        self.algorithm = algorithm
        self.cache_ttl = cache_ttl
        self.min_refresh_interval = min_refresh_interval
        self.timeout = timeout
        self._keyset: KeySet | None = None
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._lock = threading.Lock()

    def keyset(self, kid: object = None) -> KeySet:
        """The keys to verify a token with header ``kid``, fetched first if needed.

        The first key of the document stands for the current key: a token without
        ``kid`` is tried against it alone.

        :raises TemporarilyUnavailable: no key could be fetched yet.
        """
        asked_at = time.monotonic()
        keyset = self._keyset
        if keyset is None or _unknown(keyset, kid):
            self._refresh(asked_at, wait=True)
        elif asked_at - self._fetched_at >= self.cache_ttl:
            self._refresh(asked_at, wait=False)
        keyset = self._keyset
        if keyset is None:
            raise TemporarilyUnavailable(
                "The keys that verify tokens cannot be fetched; try again shortly.",
                retry_after=self._retry_after(),
            )
        return keyset

    def _retry_after(self) -> int:
        since = time.monotonic() - self._attempted_at
        return max(1, math.ceil(self.min_refresh_interval - since))

    def _refresh(self, asked_at: float, *, wait: bool) -> None:
        # A thread that needs the keys waits for the fetch under way, which
        # serves it too, but never longer than one fetch may take.
        acquired = (
            self._lock.acquire(timeout=self.timeout + 1)
            if wait
            else self._lock.acquire(blocking=False)
        )
        if not acquired:
            return  # another thread is fetching; go on with the cached keys
        try:
            if self._attempted_at >= asked_at:
                return  # fetched (or tried) while this thread waited
            started = time.monotonic()
            if started - self._attempted_at < self.min_refresh_interval:
                return
            self._attempted_at = started
            self._fetch(started)
        finally:
            self._lock.release()

    def _fetch(self, started: float) -> None:
        url = display_url(self.url)
        try:
            document = fetch_jwks(self.url, self.timeout)
            keys = parse_jwks(document, self.algorithm)
        except JWKSError as e:
            held = len(self._keyset.by_kid) if self._keyset is not None else 0
            logger.warning(
                "Could not fetch the JWKS at %s (%s); keeping the %d keys held.",
                url,
                e,
                held,
            )
            return
        if not keys:
            logger.error("The JWKS at %s has no key for %s.", url, self.algorithm)
        self._keyset = KeySet(current=keys[0], next=keys[1:]) if keys else None
        self._fetched_at = started


def _unknown(keyset: KeySet, kid: object) -> bool:
    """Whether ``kid`` could be a key the cached set does not hold yet."""
    return (
        isinstance(kid, str)
        and 0 < len(kid) <= MAX_KID_LENGTH
        and kid not in keyset.by_kid
    )


def _jwks_url(app_config: t.Mapping[str, t.Any]) -> str:
    url: str = read(app_config, "JWT_AUTH_JWKS_URL")
    parts = urllib.parse.urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme == "http" and host not in _LOOPBACK_HOSTS:
        logger.warning(
            "JWT_AUTH_JWKS_URL %s is plain HTTP: whoever can alter the traffic can"
            " make this application accept their tokens. Use https.",
            display_url(url),
        )
    return url


def load_state(extension: JWTAuthentication, app: Flask) -> VerifyOnlyState:
    """Validate the verify-only configuration of ``app`` and build its state.

    :raises ConfigurationError: the algorithm is an HMAC one, the issuer is not
        set, or a ``JWT_AUTH_JWKS_*`` setting is invalid.
    """
    app_config = app.config
    settings = config.load_settings(app_config, app.name)
    if ALGORITHMS[settings.algorithm][0] == "oct":
        raise ConfigurationError(
            f"JWT_AUTH_ALGORITHM {settings.algorithm} cannot be used with"
            " JWT_AUTH_JWKS_URL: a JWKS never publishes an HMAC secret. Use the"
            " auth server's asymmetric algorithm (RS256, ES256, ...)."
        )
    issuer = app_config.get("JWT_AUTH_ISSUER")
    if not isinstance(issuer, str) or not issuer:
        raise ConfigurationError(
            "JWT_AUTH_ISSUER is required with JWT_AUTH_JWKS_URL: set it to the"
            " issuer the auth server writes (its JWT_AUTH_ISSUER)."
        )
    keys = RemoteKeys(
        _jwks_url(app_config),
        settings.algorithm,
        cache_ttl=read(app_config, "JWT_AUTH_JWKS_CACHE_TTL"),
        min_refresh_interval=read(app_config, "JWT_AUTH_JWKS_MIN_REFRESH_INTERVAL"),
        timeout=read(app_config, "JWT_AUTH_JWKS_TIMEOUT"),
    )
    return VerifyOnlyState(
        extension=extension,
        settings=settings,
        keys=keys,
        dpop=load_dpop_state(app, None),
        feed=_revocation_feed(app_config),
    )


def _revocation_feed(app_config: t.Mapping[str, t.Any]) -> HttpFollower | None:
    """The follower of the issuer's revocation feed, in push mode."""
    push = load_push_settings(app_config)
    if not push.push:
        if push.feed_url:
            raise ConfigurationError(
                "JWT_AUTH_REVOCATION_FEED_URL is set but JWT_AUTH_REVOCATION_SYNC is"
                " not 'push': set it to 'push' to follow the feed, or remove the URL.",
                setting="JWT_AUTH_REVOCATION_SYNC",
            )
        return None
    for name, value, what in (
        (
            "JWT_AUTH_REVOCATION_FEED_URL",
            push.feed_url,
            "the issuer's revocation feed, its URL prefix followed by /revocations"
            " (https://auth.example.com/jwt-authentication/api/auth/revocations)",
        ),
        (
            "JWT_AUTH_REVOCATION_FEED_CLIENT_ID",
            push.feed_client_id,
            "a client id of the issuer's JWT_AUTH_INTROSPECTION_CLIENTS",
        ),
        (
            "JWT_AUTH_REVOCATION_FEED_CLIENT_SECRET",
            push.feed_client_secret,
            "the secret of that client in the issuer's JWT_AUTH_INTROSPECTION_CLIENTS",
        ),
    ):
        if not value:
            raise ConfigurationError(
                f"{name} is required on a resource server in push mode: set it to"
                f" {what}.",
                setting=name,
            )
    return HttpFollower(RevocationCache(push.max_delay), push)

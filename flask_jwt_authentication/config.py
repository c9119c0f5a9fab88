"""The defaults of every ``JWT_AUTH_*`` setting, the known names, and the frozen
:class:`Settings` the rest of the package reads, all derived from the registry of
:mod:`.settings_registry` (where a setting is added: see its docstring).

Nothing here imports Flask: :func:`load_settings` takes any mapping (``app.config``).
"""

from __future__ import annotations

import dataclasses
import difflib
import typing as t

from . import settings_registry
from .settings_registry import LIMIT_MAX_PER_HOUR as LIMIT_MAX_PER_HOUR
from .settings_registry import LIMIT_WINDOW as LIMIT_WINDOW
from .settings_registry import REGISTRY
from .settings_registry import Setting
from .settings_registry import parsed_default

#: Every setting and its default, alphabetical. ``None`` means "derived" for
#: some: the secret key falls back to ``SECRET_KEY``, the issuer and the realm
#: to the app's name.
DEFAULTS: t.Mapping[str, t.Any] = {
    s.name: s.default for s in sorted(REGISTRY, key=lambda s: s.name)
}

#: Every ``JWT_AUTH_*`` name the package reads: those of the registry, so a
#: setting added there is known here at once.
KNOWN_KEYS: frozenset[str] = frozenset(DEFAULTS)


def misspelt_keys(config: t.Mapping[str, t.Any]) -> dict[str, str | None]:
    """The ``JWT_AUTH_*`` keys of ``config`` that no setting has, each with the
    closest known name (``None`` if none is close).

    Such a key is ignored, and its setting keeps its default: the caller warns.
    """
    prefix = "JWT_AUTH_"
    # Compared without the prefix every name shares, which would make any two
    # names look alike.
    known = {name.removeprefix(prefix): name for name in KNOWN_KEYS}
    found: dict[str, str | None] = {}
    for key in sorted(k for k in config if isinstance(k, str)):
        if key.startswith(prefix) and key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key.removeprefix(prefix), known, n=1)
            found[key] = known[close[0]] if close else None
    return found


#: The settings an operator may change while the application runs (the admin's
#: Settings page, ``flask jwt settings``): those of the registry with
#: ``editable`` set, in the order a form shows them. Everything that lists them
#: (the stored overrides, their ranges, the admin form, the ``flask jwt
#: settings`` command) derives from this.
EDITABLE_SETTINGS: tuple[Setting, ...] = tuple(
    s for s in REGISTRY if s.editable is not None
)


def _default(name: str) -> t.Any:
    return parsed_default(name)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The validated settings of one application.

    Built once by :func:`load_settings`; immutable, so it is safe to share between
    threads and to pass to the pure functions of :mod:`.tokens`. Each attribute
    is the parsed value of the registry's setting of the same name
    (``access_token_ttl``: ``JWT_AUTH_ACCESS_TOKEN_TTL``), its default that of an
    empty configuration of an app named ``flask-jwt-authentication``.
    """

    algorithm: str = _default("JWT_AUTH_ALGORITHM")
    access_token_ttl: int = _default("JWT_AUTH_ACCESS_TOKEN_TTL")
    refresh_token_ttl: int = _default("JWT_AUTH_REFRESH_TOKEN_TTL")
    issuer: str = _default("JWT_AUTH_ISSUER")
    #: The accepted audiences; the first one is written into new tokens.
    audience: tuple[str, ...] = _default("JWT_AUTH_AUDIENCE")
    leeway: int = _default("JWT_AUTH_LEEWAY")
    url_prefix: str = _default("JWT_AUTH_URL_PREFIX")
    realm: str = _default("JWT_AUTH_REALM")
    max_body_size: int = _default("JWT_AUTH_MAX_BODY_SIZE")
    #: Whether ``{prefix}/openapi.json`` serves the OpenAPI document.
    openapi: bool = _default("JWT_AUTH_OPENAPI")
    password_hash_attribute: str = _default("JWT_AUTH_PASSWORD_HASH_ATTRIBUTE")
    #: Cookie mode: the refresh token travels in an HttpOnly cookie, not the body.
    refresh_cookie: bool = _default("JWT_AUTH_REFRESH_COOKIE")
    refresh_cookie_name: str = _default("JWT_AUTH_REFRESH_COOKIE_NAME")
    #: The header a cookie-carried refresh must send (a cross-site form cannot).
    refresh_cookie_csrf_header: str = _default("JWT_AUTH_REFRESH_COOKIE_CSRF_HEADER")
    #: The claim the roles loader fills and ``@jwt_required(roles=...)`` reads.
    roles_claim: str = _default("JWT_AUTH_ROLES_CLAIM")
    #: A login session's absolute lifetime in seconds (30 days unless set);
    #: ``None``: no limit, only when configured so explicitly.
    session_max_age: int | None = _default("JWT_AUTH_SESSION_MAX_AGE")
    #: Seconds between reloads of the stored keys (rotations reach every worker
    #: within this time).
    keys_refresh_interval: int = _default("JWT_AUTH_KEYS_REFRESH_INTERVAL")
    #: Seconds during which the immediately previous refresh token may be
    #: presented again without ending the session; 0: never.
    refresh_grace_period: int = _default("JWT_AUTH_REFRESH_GRACE_PERIOD")
    #: DPoP (RFC 9449): ``None`` (off), ``"allowed"`` or ``"required"``.
    dpop: str | None = _default("JWT_AUTH_DPOP")
    #: The algorithms DPoP proofs may be signed with, as challenges list them.
    dpop_algorithms: tuple[str, ...] = _default("JWT_AUTH_DPOP_ALGORITHMS")

    def refresh_expiry(self, now: int, session_started: int) -> int:
        """When a refresh token issued at ``now`` expires: after the idle lifetime,
        and never after the session's absolute lifetime."""
        expires = now + self.refresh_token_ttl
        if self.session_max_age is not None:
            expires = min(expires, session_started + self.session_max_age)
        return expires


def load_settings(config: t.Mapping[str, t.Any], app_name: str) -> Settings:
    """Validate the ``JWT_AUTH_*`` keys of ``config`` that :class:`Settings`
    carries (and the configured keys, which may not be empty), each with its
    registry parser, and return :class:`Settings`.

    :param config: the application's configuration (any mapping).
    :param app_name: the application's name, the default issuer and realm.
    :raises ConfigurationError: a key has a wrong type or an out-of-range value.
    """
    for setting in REGISTRY:
        if setting.parse is settings_registry.key_material:
            setting.read(config, app_name)
    return Settings(
        **{s.field: s.read(config, app_name) for s in REGISTRY if s.attribute}
    )

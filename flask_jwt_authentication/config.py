"""Every ``JWT_AUTH_*`` setting: its default, its validation, and the frozen
:class:`Settings` the rest of the package reads.

Nothing here imports Flask: :func:`load_settings` takes any mapping (``app.config``).
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import math
import re
import typing as t

from .errors import ConfigurationError

#: Every setting and its default, alphabetical. ``None`` means "derived": the
#: secret key falls back to ``SECRET_KEY``, the issuer and the realm to the app's name.
DEFAULTS: t.Mapping[str, t.Any] = {
    "JWT_AUTH_ACCESS_TOKEN_TTL": 900,
    "JWT_AUTH_ADMIN_COOKIE_SECURE": True,
    "JWT_AUTH_ADMIN_SESSION_TTL": 3600,
    "JWT_AUTH_ALGORITHM": "HS256",
    "JWT_AUTH_AUDIENCE": None,
    "JWT_AUTH_DPOP": False,
    "JWT_AUTH_FLOOD_ACCOUNT_LIMIT": "100 per hour",
    "JWT_AUTH_FLOOD_IP_LIMIT": "50 per hour",
    "JWT_AUTH_FLOOD_REFRESH_LIMIT": "100 per hour",
    "JWT_AUTH_FLOOD_USER_LIMIT": "5 per 5 minutes",
    "JWT_AUTH_INTROSPECTION_CLIENTS": None,
    "JWT_AUTH_IPV6_PREFIX_LENGTH": 64,
    "JWT_AUTH_ISSUER": None,
    "JWT_AUTH_JWKS_CACHE_TTL": 300,
    "JWT_AUTH_JWKS_MIN_REFRESH_INTERVAL": 10,
    "JWT_AUTH_JWKS_TIMEOUT": 5,
    "JWT_AUTH_JWKS_URL": None,
    "JWT_AUTH_KEY_ENCRYPTION_KEY": None,
    "JWT_AUTH_KEYS_REFRESH_INTERVAL": 5,
    "JWT_AUTH_LEEWAY": 0,
    "JWT_AUTH_MAX_BODY_SIZE": 16384,
    "JWT_AUTH_OPENAPI": False,
    "JWT_AUTH_PASSWORD_HASH_ATTRIBUTE": "password_hash",
    "JWT_AUTH_PRIVATE_KEY": None,
    "JWT_AUTH_PUBLIC_KEY": None,
    "JWT_AUTH_REALM": None,
    "JWT_AUTH_REFRESH_COOKIE": False,
    "JWT_AUTH_REFRESH_COOKIE_CSRF_HEADER": "X-Requested-With",
    "JWT_AUTH_REFRESH_COOKIE_NAME": "jwt_refresh_token",
    "JWT_AUTH_REFRESH_GRACE_PERIOD": 0,
    "JWT_AUTH_REFRESH_TOKEN_TTL": 1209600,
    "JWT_AUTH_REVOCATION_FEED_CLIENT_ID": None,
    "JWT_AUTH_REVOCATION_FEED_CLIENT_SECRET": None,
    "JWT_AUTH_REVOCATION_FEED_URL": None,
    "JWT_AUTH_REVOCATION_MAX_DELAY": 1.0,
    "JWT_AUTH_REVOCATION_REDIS_URL": None,
    "JWT_AUTH_REVOCATION_SYNC": "database",
    "JWT_AUTH_ROLES_CLAIM": "roles",
    "JWT_AUTH_SECRET_KEY": None,
    "JWT_AUTH_SESSION_MAX_AGE": 2592000,
    "JWT_AUTH_URL_PREFIX": "/jwt-authentication/api/auth",
}


#: Every ``JWT_AUTH_*`` name the package reads: those of :data:`DEFAULTS`, so a
#: setting added there (and documented, as tests/test_docs.py requires) is known
#: here at once.
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


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

#: Run-time flood limits stay within these: at least one attempt per window,
#: windows from a minute to a day, at most this many attempts per hour.
#: Switching a limit off, or anything outside, needs the configuration.
LIMIT_WINDOW: tuple[int, int] = (60, 24 * 3600)
LIMIT_MAX_PER_HOUR = 10_000
_LIMIT_BOUNDS = (
    f"At least 1 per window of {LIMIT_WINDOW[0] // 60} minute(s) to"
    f" {LIMIT_WINDOW[1] // 3600} hours, at most {LIMIT_MAX_PER_HOUR} per hour;"
    " switching it off needs the configuration."
)


@dataclasses.dataclass(frozen=True)
class Editable:
    """A setting an operator may change while the application runs (the admin's
    Settings page, ``flask jwt settings``): its kind, its label and help text,
    and for lifetimes the range a change must stay within (the configuration
    itself may go outside it: tests use lifetimes of a second)."""

    #: The ``JWT_AUTH_*`` name.
    name: str
    #: ``"algorithm"``, ``"seconds"``, ``"text"``, ``"audience"`` or ``"limit"``.
    kind: str
    label: str
    help: str
    #: Inclusive bounds of a ``"seconds"`` setting edited at run time.
    range: tuple[int, int] | None = None

    @property
    def field(self) -> str:
        """The name of its form field: ``access_token_ttl`` and the like."""
        return self.name.removeprefix("JWT_AUTH_").lower()

    @property
    def description(self) -> str:
        """The help text with its bounds, as the form shows it."""
        if self.range is not None:
            low, high = self.range
            return f"{self.help} Seconds, from {low} to {high}."
        if self.kind == "limit":
            return f"{self.help} {_LIMIT_BOUNDS}"
        return self.help


#: The settings editable at run time, in the order a form shows them. Everything
#: that lists them (the stored overrides, their ranges, the admin form, the
#: ``flask jwt settings`` command) derives from this registry.
EDITABLE_SETTINGS: tuple[Editable, ...] = (
    Editable(
        "JWT_AUTH_ALGORITHM",
        "algorithm",
        "Algorithm",
        "Signs new tokens; needs a key of that algorithm.",
    ),
    Editable(
        "JWT_AUTH_ACCESS_TOKEN_TTL",
        "seconds",
        "Access token lifetime",
        "How long an access token is valid.",
        (30, 24 * 3600),
    ),
    Editable(
        "JWT_AUTH_REFRESH_TOKEN_TTL",
        "seconds",
        "Refresh token lifetime",
        "How long a login session lasts unused; longer than the access token's.",
        (300, 366 * 24 * 3600),
    ),
    Editable("JWT_AUTH_ISSUER", "text", "Issuer", "The iss claim of new tokens."),
    Editable(
        "JWT_AUTH_AUDIENCE",
        "audience",
        "Audience",
        "Comma-separated; the first is written into new tokens.",
    ),
    Editable("JWT_AUTH_LEEWAY", "seconds", "Leeway", "Clock skew tolerated.", (0, 300)),
    Editable(
        "JWT_AUTH_FLOOD_IP_LIMIT",
        "limit",
        "Failed log-ins per address",
        "Such as 50 per hour.",
    ),
    Editable(
        "JWT_AUTH_FLOOD_USER_LIMIT",
        "limit",
        "Failed log-ins per username and address",
        "Such as 5 per 5 minutes.",
    ),
    Editable(
        "JWT_AUTH_FLOOD_REFRESH_LIMIT",
        "limit",
        "Failed refreshes per address",
        "Such as 100 per hour.",
    ),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The validated settings of one application.

    Built once by :func:`load_settings`; immutable, so it is safe to share between
    threads and to pass to the pure functions of :mod:`.tokens`.
    """

    algorithm: str = "HS256"
    access_token_ttl: int = 900
    refresh_token_ttl: int = 1209600
    issuer: str = "flask-jwt-authentication"
    #: The accepted audiences; the first one is written into new tokens.
    audience: tuple[str, ...] = ()
    leeway: int = 0
    url_prefix: str = "/jwt-authentication/api/auth"
    realm: str = "flask-jwt-authentication"
    max_body_size: int = 16384
    #: Whether ``{prefix}/openapi.json`` serves the OpenAPI document.
    openapi: bool = False
    password_hash_attribute: str = "password_hash"
    #: Cookie mode: the refresh token travels in an HttpOnly cookie, not the body.
    refresh_cookie: bool = False
    refresh_cookie_name: str = "jwt_refresh_token"
    #: The header a cookie-carried refresh must send (a cross-site form cannot).
    refresh_cookie_csrf_header: str = "X-Requested-With"
    #: The claim the roles loader fills and ``@jwt_required(roles=...)`` reads.
    roles_claim: str = "roles"
    #: A login session's absolute lifetime in seconds (30 days unless set);
    #: ``None``: no limit, only when configured so explicitly.
    session_max_age: int | None = 2592000
    #: Seconds between reloads of the stored keys (rotations reach every worker
    #: within this time).
    keys_refresh_interval: int = 5
    #: Seconds during which the immediately previous refresh token may be
    #: presented again without ending the session; 0: never.
    refresh_grace_period: int = 0
    #: DPoP (RFC 9449): ``None`` (off), ``"allowed"`` or ``"required"``.
    dpop: str | None = None

    def refresh_expiry(self, now: int, session_started: int) -> int:
        """When a refresh token issued at ``now`` expires: after the idle lifetime,
        and never after the session's absolute lifetime."""
        expires = now + self.refresh_token_ttl
        if self.session_max_age is not None:
            expires = min(expires, session_started + self.session_max_age)
        return expires


def _whole(
    config: t.Mapping[str, t.Any], key: str, *, minimum: int, unit: str = "seconds"
) -> int:
    value = config.get(key, DEFAULTS[key])
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    elif isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigurationError(
                f"{key} must be a number of {unit}, got {value!r}.", setting=key
            ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"{key} must be a number of {unit}, got {value!r}.", setting=key
        )
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite or value < minimum or value != int(value):
        raise ConfigurationError(
            f"{key} must be a whole number of {unit}, at least {minimum};"
            f" got {value!r}.",
            setting=key,
        )
    return int(value)


def _text(config: t.Mapping[str, t.Any], key: str, default: str) -> str:
    value = config.get(key, DEFAULTS[key])
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{key} must be a string, got {type(value).__name__}.", setting=key
        )
    return value


def _flag(config: t.Mapping[str, t.Any], key: str) -> bool:
    value = config.get(key, DEFAULTS[key])
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"", "0", "false", "no", "off"}:
            return False
    elif isinstance(value, (bool, int)) or value is None:
        return bool(value)
    raise ConfigurationError(
        f"{key} must be true or false, got {value!r}.", setting=key
    )


def _token(config: t.Mapping[str, t.Any], key: str) -> str:
    """A cookie or header name: an RFC 9110 token."""
    value = _text(config, key, DEFAULTS[key])
    if not _TOKEN.fullmatch(value):
        raise ConfigurationError(
            f"{key} must be a cookie or header name, got {value!r}.", setting=key
        )
    return value


def _roles_claim(config: t.Mapping[str, t.Any]) -> str:
    from .tokens import RESERVED_CLAIMS

    claim = _text(config, "JWT_AUTH_ROLES_CLAIM", DEFAULTS["JWT_AUTH_ROLES_CLAIM"])
    if claim in RESERVED_CLAIMS:
        raise ConfigurationError(
            f"JWT_AUTH_ROLES_CLAIM may not be the registered claim {claim!r}.",
            setting="JWT_AUTH_ROLES_CLAIM",
        )
    return claim


def _audience(config: t.Mapping[str, t.Any]) -> tuple[str, ...]:
    value = config.get("JWT_AUTH_AUDIENCE")
    if value is None or value == "":
        return ()
    values = [value] if isinstance(value, str) else value
    if (
        not isinstance(values, (list, tuple))
        or not values
        or not all(isinstance(v, str) and v for v in values)
    ):
        raise ConfigurationError(
            "JWT_AUTH_AUDIENCE must be a non-empty string or a list of them.",
            setting="JWT_AUTH_AUDIENCE",
        )
    return tuple(values)


def _dpop(config: t.Mapping[str, t.Any]) -> str | None:
    """``JWT_AUTH_DPOP``: off (``False``, the default), ``"allowed"`` or
    ``"required"``."""
    value = config.get("JWT_AUTH_DPOP", DEFAULTS["JWT_AUTH_DPOP"])
    if value is False or value is None or value == "" or value == "false":
        return None
    if value in ("allowed", "required"):
        return t.cast(str, value)
    raise ConfigurationError(
        f"JWT_AUTH_DPOP must be False, 'allowed' or 'required', got {value!r}.",
        setting="JWT_AUTH_DPOP",
    )


def _session_max_age(config: t.Mapping[str, t.Any]) -> int | None:
    """The absolute session lifetime: 30 days by default (Auth0's default
    absolute lifetime); no limit only when ``None`` is set explicitly."""
    key = "JWT_AUTH_SESSION_MAX_AGE"
    if key in config and config[key] is None:
        return None
    return _whole(config, key, minimum=1)


def load_settings(config: t.Mapping[str, t.Any], app_name: str) -> Settings:
    """Validate the ``JWT_AUTH_*`` keys of ``config`` and return :class:`Settings`.

    :param config: the application's configuration (any mapping).
    :param app_name: the application's name, the default issuer and realm.
    :raises ConfigurationError: a key has a wrong type or an out-of-range value.
    """
    from .keys import ALGORITHMS

    for name in ("JWT_AUTH_SECRET_KEY", "JWT_AUTH_PRIVATE_KEY", "JWT_AUTH_PUBLIC_KEY"):
        value = config.get(name)
        if isinstance(value, (str, bytes)) and not value.strip():
            # Empty is a mistake (an unset environment variable, say), never "no
            # key": it must not fall back to SECRET_KEY or to the stored keys.
            raise ConfigurationError(
                f"{name} is set but empty: give it the key, or remove the setting.",
                setting=name,
            )
    algorithm = config.get("JWT_AUTH_ALGORITHM", DEFAULTS["JWT_AUTH_ALGORITHM"])
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ConfigurationError(
            f"JWT_AUTH_ALGORITHM {algorithm!r} is not supported; use one of "
            + ", ".join(ALGORITHMS)
            + ".",
            setting="JWT_AUTH_ALGORITHM",
        )
    prefix = _text(config, "JWT_AUTH_URL_PREFIX", DEFAULTS["JWT_AUTH_URL_PREFIX"])
    if not prefix.startswith("/"):
        raise ConfigurationError(
            "JWT_AUTH_URL_PREFIX must start with '/'.", setting="JWT_AUTH_URL_PREFIX"
        )
    issuer = _text(config, "JWT_AUTH_ISSUER", app_name)
    attribute = _text(
        config,
        "JWT_AUTH_PASSWORD_HASH_ATTRIBUTE",
        DEFAULTS["JWT_AUTH_PASSWORD_HASH_ATTRIBUTE"],
    )
    if not attribute.isidentifier():
        raise ConfigurationError(
            "JWT_AUTH_PASSWORD_HASH_ATTRIBUTE must be an attribute name.",
            setting="JWT_AUTH_PASSWORD_HASH_ATTRIBUTE",
        )
    return Settings(
        algorithm=algorithm,
        access_token_ttl=_whole(config, "JWT_AUTH_ACCESS_TOKEN_TTL", minimum=1),
        refresh_token_ttl=_whole(config, "JWT_AUTH_REFRESH_TOKEN_TTL", minimum=1),
        issuer=issuer,
        audience=_audience(config),
        leeway=_whole(config, "JWT_AUTH_LEEWAY", minimum=0),
        url_prefix=prefix.rstrip("/"),
        realm=_text(config, "JWT_AUTH_REALM", issuer),
        max_body_size=_whole(
            config, "JWT_AUTH_MAX_BODY_SIZE", minimum=256, unit="bytes"
        ),
        password_hash_attribute=attribute,
        openapi=_flag(config, "JWT_AUTH_OPENAPI"),
        refresh_cookie=_flag(config, "JWT_AUTH_REFRESH_COOKIE"),
        refresh_cookie_name=_token(config, "JWT_AUTH_REFRESH_COOKIE_NAME"),
        refresh_cookie_csrf_header=_token(
            config, "JWT_AUTH_REFRESH_COOKIE_CSRF_HEADER"
        ),
        roles_claim=_roles_claim(config),
        session_max_age=_session_max_age(config),
        dpop=_dpop(config),
        refresh_grace_period=_whole(config, "JWT_AUTH_REFRESH_GRACE_PERIOD", minimum=0),
        keys_refresh_interval=_whole(
            config, "JWT_AUTH_KEYS_REFRESH_INTERVAL", minimum=1
        ),
    )

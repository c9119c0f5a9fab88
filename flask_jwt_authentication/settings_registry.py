"""The registry of every ``JWT_AUTH_*`` setting: its name, default, parser, the
range a run-time change must stay within, whether it is editable at run time, and
its label and help text.

Everything that lists settings derives from :data:`REGISTRY`: the defaults
(:data:`.config.DEFAULTS`) and those of :class:`.config.Settings`, the known names
the misspelt-key warning compares against, the editable settings and their ranges
(:mod:`.overrides`, ``flask jwt settings``), the admin's Settings form, and the
tables of ``docs/config.rst`` (the ``jwt-settings`` directive of
``docs/settings_table.py``). Every module that reads a setting reads it with
:func:`read`, so a value is checked the same way wherever it is used.

Adding a setting is one :class:`Setting` entry in :data:`REGISTRY`, placed in
the section of ``docs/config.rst`` it belongs to; for a delay in seconds, say::

    Setting(
        "JWT_AUTH_<NAME>",
        1,
        seconds(0),
        "Revocation",
        "The longest a worker waits before asking the database.",
    ),

Then read it with ``read(app.config, "JWT_AUTH_<NAME>")`` where it is used (at
start-up, so a bad value stops the app there), and describe it in a ``.. data::``
paragraph of ``docs/config.rst`` ending with its default (tests/test_docs.py
requires both; the tables of that page update themselves). Ready parsers
cover whole seconds (:func:`seconds`), fractions (:func:`number`), one of some
words (:func:`choice`), text, flags, URLs and more; a new kind of value gets a
parser here: a function ``(setting, config, app_name) -> value`` that raises
``setting.fail(message)``. Options of an entry:

- ``attribute=True`` puts it on :class:`.config.Settings` (add the field there,
  with ``_default(name)`` as its default): only for what the pure token code
  reads;
- ``editable=`` a kind of :data:`EDITABLE_KINDS`, a ``label`` and, for seconds, a
  ``range`` put it on the admin's Settings page and ``flask jwt settings``; the
  help text never states the range, which is added from ``range``.

Nothing here imports Flask.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
import typing as t

from .errors import ConfigurationError
from .keys import ALGORITHMS
from .tokens import RESERVED_CLAIMS

if t.TYPE_CHECKING:
    import limits
    from cryptography.fernet import MultiFernet

#: A parser: the setting, the configuration (any mapping) and the application's
#: name (what derived defaults fall back to) to the parsed value.
Parse = t.Callable[["Setting", t.Mapping[str, t.Any], str], t.Any]

#: Run-time flood limits stay within these: at least one attempt per window,
#: windows from a minute to a day, at most this many attempts per hour.
#: Switching a limit off, or anything outside, needs the configuration.
LIMIT_WINDOW: tuple[int, int] = (60, 24 * 3600)
LIMIT_MAX_PER_HOUR = 10_000
#: The longest text a run-time setting takes.
MAX_TEXT_LENGTH = 255
#: The kinds of run-time editable settings, each with its own form field.
EDITABLE_KINDS = ("algorithm", "seconds", "text", "audience", "limit")


def limit_bounds() -> str:
    """The bounds of a run-time flood limit, in words (from :data:`LIMIT_WINDOW`
    and :data:`LIMIT_MAX_PER_HOUR`)."""
    return (
        f"At least 1 per window of {LIMIT_WINDOW[0] // 60} minute(s) to"
        f" {LIMIT_WINDOW[1] // 3600} hours, at most {LIMIT_MAX_PER_HOUR} per hour;"
        " switching it off needs the configuration."
    )


@dataclasses.dataclass(frozen=True)
class Setting:
    """One ``JWT_AUTH_*`` setting.

    :param name: the configuration key.
    :param default: its default; ``None`` with ``derived`` set means the value
        is derived (from ``SECRET_KEY``, the app's name, ...).
    :param parse: checks the configured value and returns it parsed.
    :param section: the section of ``docs/config.rst`` that documents it.
    :param help: one sentence saying what it does (the admin shows it under
        the field; the bounds are appended from ``range``, never written here).
    :param accepts: the values it takes, in words, for the docs' table.
    :param derived: what a ``None`` default stands for, in words.
    :param attribute: whether :class:`.config.Settings` carries it (as the
        attribute :attr:`field`); the others are read where they are used.
    :param editable: the kind of run-time field (one of :data:`EDITABLE_KINDS`),
        or ``None``: only the configuration sets it.
    :param label: the admin field's label (editable settings).
    :param range: inclusive bounds of a ``"seconds"`` setting edited at run time
        (the configuration itself may go outside them: tests use lifetimes of a
        second).
    """

    name: str
    default: t.Any
    parse: Parse
    section: str
    help: str
    accepts: str = ""
    derived: str = ""
    attribute: bool = False
    editable: str | None = None
    label: str = ""
    range: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not self.name.startswith("JWT_AUTH_"):
            raise ValueError(f"{self.name} is not a JWT_AUTH_* name.")
        if self.editable is not None and (
            self.editable not in EDITABLE_KINDS or not self.label
        ):
            raise ValueError(
                f"{self.name}: an editable setting needs a kind and label."
            )
        if self.range is not None and self.editable != "seconds":
            raise ValueError(f"{self.name}: only run-time seconds have a range.")

    @property
    def field(self) -> str:
        """Its attribute on :class:`.config.Settings` and its form field:
        ``access_token_ttl`` and the like."""
        return self.name.removeprefix("JWT_AUTH_").lower()

    @property
    def description(self) -> str:
        """The help text with its run-time bounds, as the admin form shows it."""
        if self.range is not None:
            low, high = self.range
            return f"{self.help} Seconds, from {low} to {high}."
        if self.editable == "limit":
            return f"{self.help} {limit_bounds()}"
        return self.help

    @property
    def values(self) -> str:
        """The values it takes, in words: ``accepts``, or what its parser says."""
        return self.accepts or str(getattr(self.parse, "accepts", ""))

    @property
    def bounds(self) -> str:
        """What a run-time change must be, in words (the docs' table)."""
        if self.range is not None:
            return f"{self.range[0]} to {self.range[1]} seconds"
        if self.editable == "limit":
            return f"1 per {LIMIT_WINDOW[0]} s to {LIMIT_MAX_PER_HOUR} per hour"
        if self.editable == "algorithm":
            return "an algorithm with a key"
        return f"up to {MAX_TEXT_LENGTH} characters"

    def raw(self, config: t.Mapping[str, t.Any]) -> t.Any:
        """The configured value, or the default; unchecked."""
        return config.get(self.name, self.default)

    def read(self, config: t.Mapping[str, t.Any], app_name: str = "") -> t.Any:
        """The configured value, checked and parsed.

        :raises ConfigurationError: the value is invalid.
        """
        return self.parse(self, config, app_name)

    def fail(self, message: str) -> ConfigurationError:
        """A :class:`.ConfigurationError` naming this setting."""
        return ConfigurationError(message, setting=self.name)


# Parsers ---------------------------------------------------------------------------


def _accepting(parse: Parse, accepts: str) -> Parse:
    """``parse``, which tells the docs' table what it accepts."""
    parse.accepts = accepts  # type: ignore[attr-defined]
    return parse


def seconds(minimum: int, unit: str = "seconds") -> Parse:
    """A whole number of ``unit`` of at least ``minimum``: an integer, a numeric
    string or a ``timedelta``."""

    def parse(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> int:
        return whole(s, s.raw(config), minimum=minimum, unit=unit)

    return _accepting(parse, f"whole {unit}, at least {minimum}")


def whole(s: Setting, value: t.Any, *, minimum: int, unit: str = "seconds") -> int:
    """``value`` as a whole number of ``unit``, at least ``minimum``."""
    key = s.name
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    elif isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise s.fail(f"{key} must be a number of {unit}, got {value!r}.") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise s.fail(f"{key} must be a number of {unit}, got {value!r}.")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite or value < minimum or value != int(value):
        raise s.fail(
            f"{key} must be a whole number of {unit}, at least {minimum};"
            f" got {value!r}."
        )
    return int(value)


def number(minimum: float, unit: str = "seconds") -> Parse:
    """A finite number of ``unit`` (fractions allowed) of at least ``minimum``:
    an integer, a float, a numeric string or a ``timedelta``."""

    def parse(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> float:
        value = s.raw(config)
        if isinstance(value, datetime.timedelta):
            value = value.total_seconds()
        elif isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise s.fail(
                    f"{s.name} must be a number of {unit}, got {value!r}."
                ) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise s.fail(f"{s.name} must be a number of {unit}, got {value!r}.")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number) or number < minimum:
            raise s.fail(
                f"{s.name} must be a number of {unit}, at least {minimum};"
                f" got {value!r}."
            )
        return number

    return _accepting(parse, f"{unit}, at least {minimum}")


def choice(*values: str) -> Parse:
    """One of ``values`` (text)."""
    shown = ", ".join(repr(v) for v in values)

    def parse(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> str:
        value = s.raw(config)
        if not isinstance(value, str) or value not in values:
            raise s.fail(f"{s.name} must be one of {shown}, got {value!r}.")
        return value

    return _accepting(parse, " or ".join(f'``"{v}"``' for v in values))


def optional_seconds(minimum: int) -> Parse:
    """Like :func:`seconds`, but ``None`` set explicitly means "no limit"."""

    def parse(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> int | None:
        if s.name in config and config[s.name] is None:
            return None
        return whole(s, s.raw(config), minimum=minimum)

    return _accepting(
        parse, f"whole seconds, at least {minimum}, or ``None`` (no limit)"
    )


def text(fallback: Parse | None = None) -> Parse:
    """A string; ``None`` or empty gives the default, or ``fallback``'s value."""

    def parse(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> str:
        value = s.raw(config)
        if value is None or value == "":
            if fallback is not None:
                return t.cast(str, fallback(s, config, app_name))
            return t.cast(str, s.default)
        if not isinstance(value, str):
            raise s.fail(f"{s.name} must be a string, got {type(value).__name__}.")
        return value

    return parse


def _text(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> str:
    return t.cast(str, text()(s, config, app_name))


def _app_name(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> str:
    return app_name


def _issuer(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> str:
    return t.cast(str, read(config, "JWT_AUTH_ISSUER", app_name))


def flag(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> bool:
    """True or false: a bool, an integer, or text such as ``"yes"``/``"off"``."""
    value = s.raw(config)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"", "0", "false", "no", "off"}:
            return False
    elif isinstance(value, (bool, int)) or value is None:
        return bool(value)
    raise s.fail(f"{s.name} must be true or false, got {value!r}.")


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def http_token(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> str:
    """A cookie or header name: an RFC 9110 token."""
    value = _text(s, config, app_name)
    if not _TOKEN.fullmatch(value):
        raise s.fail(f"{s.name} must be a cookie or header name, got {value!r}.")
    return value


def identifier(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> str:
    """A Python attribute name."""
    value = _text(s, config, app_name)
    if not value.isidentifier():
        raise s.fail(f"{s.name} must be an attribute name.")
    return value


def url_path(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> str:
    """A path starting with ``/``, without a trailing one."""
    value = _text(s, config, app_name)
    if not value.startswith("/"):
        raise s.fail(f"{s.name} must start with '/'.")
    return value.rstrip("/")


def algorithm(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> str:
    """One of the supported algorithms."""
    value = s.raw(config)
    if not isinstance(value, str) or value not in ALGORITHMS:
        raise s.fail(
            f"{s.name} {value!r} is not supported; use one of "
            + ", ".join(ALGORITHMS)
            + "."
        )
    return value


def key_material(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> t.Any:
    """A key (text, bytes or a path), or ``None``; set but empty is refused.

    Empty is a mistake (an unset environment variable, say), never "no key": it
    must not fall back to ``SECRET_KEY`` or to the stored keys.
    """
    value = s.raw(config)
    if isinstance(value, (str, bytes)) and not value.strip():
        raise s.fail(
            f"{s.name} is set but empty: give it the key, or remove the setting."
        )
    return value


def audience(
    s: Setting, config: t.Mapping[str, t.Any], app_name: str
) -> tuple[str, ...]:
    """A non-empty string or a list of them; ``None``: no audience."""
    value = s.raw(config)
    if value is None or value == "":
        return ()
    values = [value] if isinstance(value, str) else value
    if (
        not isinstance(values, (list, tuple))
        or not values
        or not all(isinstance(v, str) and v for v in values)
    ):
        raise s.fail(f"{s.name} must be a non-empty string or a list of them.")
    return tuple(values)


def roles_claim(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> str:
    """A claim name that is not one of the registered claims."""
    claim = _text(s, config, app_name)
    if claim in RESERVED_CLAIMS:
        raise s.fail(f"{s.name} may not be the registered claim {claim!r}.")
    return claim


#: The asymmetric algorithms a DPoP proof may be signed with, in the order a
#: challenge lists them (RFC 9449 §5.1, §7.1).
DPOP_ALGORITHMS: tuple[str, ...] = ("ES256", "EdDSA", "ES384", "PS256", "RS256")


def dpop_algorithms(
    s: Setting, config: t.Mapping[str, t.Any], app_name: str
) -> tuple[str, ...]:
    """Some of :data:`DPOP_ALGORITHMS`: a list, or text separated by commas or
    spaces."""
    value = s.raw(config)
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(v, str) for v in value)
    ):
        raise s.fail(f"{s.name} must be a non-empty list of algorithm names.")
    unknown = [v for v in value if v not in DPOP_ALGORITHMS]
    if unknown:
        raise s.fail(
            f"{s.name}: {', '.join(map(repr, unknown))} cannot sign DPoP proofs;"
            f" choose from {', '.join(DPOP_ALGORITHMS)}."
        )
    return tuple(dict.fromkeys(value))


def dpop_mode(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> str | None:
    """Off (``False``), ``"allowed"`` or ``"required"``; off is ``None``."""
    value = s.raw(config)
    if value is False or value is None or value == "" or value == "false":
        return None
    if value in ("allowed", "required"):
        return t.cast(str, value)
    raise s.fail(f"{s.name} must be False, 'allowed' or 'required', got {value!r}.")


def rate_limit(
    s: Setting, config: t.Mapping[str, t.Any], app_name: str
) -> limits.RateLimitItem | None:
    """A limit in Flask-Limiter's notation; ``None`` (or empty) turns it off."""
    import limits

    value = s.raw(config)
    if value is None or value is False or value == "":
        return None
    try:
        return limits.parse(str(value))
    except ValueError:
        raise s.fail(
            f"{s.name} must be a rate limit such as '5 per 5 minutes', got {value!r}."
        ) from None


#: The IPv6 prefix lengths a client may be counted by.
IPV6_PREFIXES: tuple[int, int] = (32, 128)


def _ipv6_prefix(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> int:
    low, high = IPV6_PREFIXES
    value = s.raw(config)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= high
    ):
        raise s.fail(
            f"{s.name} must be an integer from {low} to {high} (64 counts each /64"
            " network as one client)."
        )
    return value


#: An IPv6 prefix length within :data:`IPV6_PREFIXES`.
ipv6_prefix = _accepting(
    _ipv6_prefix, f"an integer from {IPV6_PREFIXES[0]} to {IPV6_PREFIXES[1]}"
)


def fernet_keys(
    s: Setting, config: t.Mapping[str, t.Any], app_name: str
) -> MultiFernet | None:
    """One Fernet key, or a list of them: the first encrypts, all decrypt."""
    from cryptography.fernet import Fernet
    from cryptography.fernet import MultiFernet

    value = s.raw(config)
    if value is None or value == "" or value == []:
        return None
    try:
        values = [value] if isinstance(value, (str, bytes)) else list(value)
        return MultiFernet([Fernet(v) for v in values])
    except (ValueError, TypeError):
        raise s.fail(
            f"{s.name} must be a Fernet key (or a list of them):"
            ' make one with `python -c "from cryptography.fernet import Fernet;'
            ' print(Fernet.generate_key().decode())"`.'
        ) from None


def client_secrets(
    s: Setting, config: t.Mapping[str, t.Any], app_name: str
) -> dict[str, str]:
    """A mapping of client id (non-empty, without ``:``) to a non-empty secret."""
    value = s.raw(config) or {}
    if not isinstance(value, t.Mapping):
        raise s.fail(
            f"{s.name} must be a mapping of client id to secret (or a Werkzeug hash "
            "of it), for example {'gateway': generate_password_hash(secret)}."
        )
    for client_id, secret in value.items():
        if not isinstance(client_id, str) or not client_id or ":" in client_id:
            raise s.fail(
                f"{s.name}: client ids must be non-empty strings without ':' "
                "(HTTP Basic cannot carry one)."
            )
        if not isinstance(secret, str) or not secret:
            raise s.fail(
                f"{s.name}: the secret of client {client_id!r} must be a non-empty "
                "string (preferably werkzeug.security.generate_password_hash(...))."
            )
    return dict(value)


def http_url(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> str | None:
    """An ``http(s)`` URL with a host, or ``None``. An invalid value is never
    repeated in the message: it may carry credentials."""
    import urllib.parse

    url = s.raw(config)
    if url is None or url == "":
        return None
    if not isinstance(url, str):
        raise s.fail(f"{s.name} must be a string (a URL).")
    try:
        parts = urllib.parse.urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname
    except ValueError:
        scheme, host = "", None
    if scheme not in ("http", "https") or not host:
        raise s.fail(
            f"{s.name} must be an http(s) URL with a host (such as"
            " https://auth.example.com/.well-known/jwks.json); the value given is"
            " not one (not shown, it may hold credentials)."
        )
    return url


def bounded_number(minimum: float, maximum: float, unit: str = "seconds") -> Parse:
    """Like :func:`number`, and at most ``maximum``."""
    at_least = number(minimum, unit)

    def parse(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> float:
        message = (
            f"{s.name} must be a number of {unit} from {minimum:g} to"
            f" {maximum:g}; got {s.raw(config)!r}."
        )
        try:
            value = at_least(s, config, app_name)
        except ConfigurationError:
            raise s.fail(message) from None
        if value > maximum:
            raise s.fail(message)
        return t.cast(float, value)

    return _accepting(parse, f"{unit}, from {minimum:g} to {maximum:g}")


def optional_text(
    s: Setting, config: t.Mapping[str, t.Any], app_name: str
) -> str | None:
    """A non-empty string, or ``None`` (unset)."""
    value = s.raw(config)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise s.fail(f"{s.name} must be a non-empty string, or unset.")
    return value


def redis_url(s: Setting, config: t.Mapping[str, t.Any], app_name: str) -> str | None:
    """A Redis URL, or ``None``; an invalid value is never repeated (it may
    carry a password)."""
    value = s.raw(config)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise s.fail(
            f"{s.name} must be a redis://, rediss:// or unix:// URL (the value"
            " given is not shown, it may hold a password)."
        )
    return value


# The registry ------------------------------------------------------------------------

#: Every setting, in the order of ``docs/config.rst`` (the editable ones in the
#: order the admin form shows them).
REGISTRY: tuple[Setting, ...] = (
    # Tokens and keys
    Setting(
        "JWT_AUTH_ALGORITHM",
        "HS256",
        algorithm,
        "Tokens and keys",
        "Signs new tokens; needs a key of that algorithm.",
        accepts="a supported algorithm",
        attribute=True,
        editable="algorithm",
        label="Algorithm",
    ),
    Setting(
        "JWT_AUTH_SECRET_KEY",
        None,
        key_material,
        "Tokens and keys",
        "The HMAC secret.",
        accepts="text or bytes, not empty",
        derived="``SECRET_KEY``",
    ),
    Setting(
        "JWT_AUTH_PRIVATE_KEY",
        None,
        key_material,
        "Tokens and keys",
        "The private key of an asymmetric algorithm.",
        accepts="PEM text or a file path, not empty",
    ),
    Setting(
        "JWT_AUTH_PUBLIC_KEY",
        None,
        key_material,
        "Tokens and keys",
        "The matching public key.",
        accepts="PEM text or a file path, not empty",
    ),
    Setting(
        "JWT_AUTH_KEY_ENCRYPTION_KEY",
        None,
        fernet_keys,
        "Tokens and keys",
        "Encrypts the stored private keys.",
        accepts="a Fernet key or a list of them",
    ),
    Setting(
        "JWT_AUTH_KEYS_REFRESH_INTERVAL",
        5,
        seconds(1),
        "Tokens and keys",
        "Seconds between reloads of the stored keys and settings.",
        attribute=True,
    ),
    Setting(
        "JWT_AUTH_ACCESS_TOKEN_TTL",
        900,
        seconds(1),
        "Tokens and keys",
        "How long an access token is valid.",
        attribute=True,
        editable="seconds",
        label="Access token lifetime",
        range=(30, 24 * 3600),
    ),
    Setting(
        "JWT_AUTH_REFRESH_TOKEN_TTL",
        1209600,
        seconds(1),
        "Tokens and keys",
        "How long a login session lasts unused; longer than the access token's.",
        attribute=True,
        editable="seconds",
        label="Refresh token lifetime",
        range=(300, 366 * 24 * 3600),
    ),
    Setting(
        "JWT_AUTH_SESSION_MAX_AGE",
        2592000,
        optional_seconds(1),
        "Tokens and keys",
        "A login session's absolute lifetime.",
        attribute=True,
    ),
    Setting(
        "JWT_AUTH_DPOP",
        False,
        dpop_mode,
        "Tokens and keys",
        "DPoP-bound tokens (RFC 9449).",
        accepts='``False``, ``"allowed"`` or ``"required"``',
        attribute=True,
    ),
    Setting(
        "JWT_AUTH_DPOP_ALGORITHMS",
        DPOP_ALGORITHMS,
        dpop_algorithms,
        "Tokens and keys",
        "The algorithms DPoP proofs may be signed with.",
        accepts="a list of ES256, EdDSA, ES384, PS256, RS256",
        attribute=True,
    ),
    Setting(
        "JWT_AUTH_DPOP_NONCE",
        False,
        flag,
        "Tokens and keys",
        "DPoP proofs must carry a nonce the server gave (RFC 9449 §8);"
        " derived from SECRET_KEY, which every worker must share.",
        accepts="true or false",
    ),
    Setting(
        "JWT_AUTH_DPOP_REDIS_URL",
        None,
        redis_url,
        "Tokens and keys",
        "Keep the DPoP proofs seen in Redis instead of the database (a resource"
        " server: instead of each worker's memory).",
        accepts="a redis://, rediss:// or unix:// URL",
        derived="JWT_AUTH_REVOCATION_REDIS_URL when set",
    ),
    Setting(
        "JWT_AUTH_REFRESH_GRACE_PERIOD",
        0,
        seconds(0),
        "Tokens and keys",
        "Seconds a just-consumed refresh token may be presented again.",
        attribute=True,
    ),
    Setting(
        "JWT_AUTH_ISSUER",
        None,
        text(_app_name),
        "Tokens and keys",
        "The iss claim of new tokens.",
        accepts="text",
        derived="the application's name",
        attribute=True,
        editable="text",
        label="Issuer",
    ),
    Setting(
        "JWT_AUTH_AUDIENCE",
        None,
        audience,
        "Tokens and keys",
        "Comma-separated; the first is written into new tokens.",
        accepts="text or a list of texts",
        attribute=True,
        editable="audience",
        label="Audience",
    ),
    Setting(
        "JWT_AUTH_LEEWAY",
        0,
        seconds(0),
        "Tokens and keys",
        "Clock skew tolerated.",
        attribute=True,
        editable="seconds",
        label="Leeway",
        range=(0, 300),
    ),
    # Revocation
    Setting(
        "JWT_AUTH_REVOCATION_SYNC",
        "database",
        choice("database", "push"),
        "Revocation",
        "How revocations reach the protected routes: the database on every"
        " request, or pushed into each worker's memory.",
    ),
    Setting(
        "JWT_AUTH_REVOCATION_MAX_DELAY",
        1.0,
        bounded_number(0.05, 60.0),
        "Revocation",
        "Push mode: the longest a worker goes unconfirmed before it asks the database.",
    ),
    Setting(
        "JWT_AUTH_REVOCATION_REDIS_URL",
        None,
        redis_url,
        "Revocation",
        "Push mode: wake the workers with Redis pub/sub.",
        accepts="a redis://, rediss:// or unix:// URL",
    ),
    Setting(
        "JWT_AUTH_REVOCATION_FEED_URL",
        None,
        http_url,
        "Revocation",
        "A resource server in push mode: the issuer's revocation feed.",
        accepts="an http(s) URL",
    ),
    Setting(
        "JWT_AUTH_REVOCATION_FEED_CLIENT_ID",
        None,
        optional_text,
        "Revocation",
        "The introspection client the resource server follows the feed as.",
        accepts="text",
    ),
    Setting(
        "JWT_AUTH_REVOCATION_FEED_CLIENT_SECRET",
        None,
        optional_text,
        "Revocation",
        "That client's secret.",
        accepts="text",
    ),
    # Verify-only mode
    Setting(
        "JWT_AUTH_JWKS_URL",
        None,
        http_url,
        "Verify-only mode",
        "The auth server's JWK Set.",
        accepts="an http(s) URL",
    ),
    Setting(
        "JWT_AUTH_JWKS_CACHE_TTL",
        300,
        seconds(1),
        "Verify-only mode",
        "Seconds the fetched keys are used.",
    ),
    Setting(
        "JWT_AUTH_JWKS_MIN_REFRESH_INTERVAL",
        10,
        seconds(1),
        "Verify-only mode",
        "The fewest seconds between two fetches.",
    ),
    Setting(
        "JWT_AUTH_JWKS_TIMEOUT",
        5,
        seconds(1),
        "Verify-only mode",
        "Seconds one fetch may take.",
    ),
    # Endpoints and requests
    Setting(
        "JWT_AUTH_URL_PREFIX",
        "/jwt-authentication/api/auth",
        url_path,
        "Endpoints and requests",
        "Where the endpoints live.",
        accepts="a path starting with ``/``",
        attribute=True,
    ),
    Setting(
        "JWT_AUTH_REALM",
        None,
        text(_issuer),
        "Endpoints and requests",
        "The realm of challenges.",
        accepts="text",
        derived="the issuer",
        attribute=True,
    ),
    Setting(
        "JWT_AUTH_MAX_BODY_SIZE",
        16384,
        seconds(256, unit="bytes"),
        "Endpoints and requests",
        "The largest request body read.",
        attribute=True,
    ),
    Setting(
        "JWT_AUTH_OPENAPI",
        False,
        flag,
        "Endpoints and requests",
        "Serves the OpenAPI document.",
        accepts="true or false",
        attribute=True,
    ),
    Setting(
        "JWT_AUTH_PASSWORD_HASH_ATTRIBUTE",
        "password_hash",
        identifier,
        "Endpoints and requests",
        "The user attribute holding the password hash.",
        accepts="an attribute name",
        attribute=True,
    ),
    Setting(
        "JWT_AUTH_ROLES_CLAIM",
        "roles",
        roles_claim,
        "Endpoints and requests",
        "The claim of the roles.",
        accepts="a claim name, not a registered one",
        attribute=True,
    ),
    Setting(
        "JWT_AUTH_INTROSPECTION_CLIENTS",
        None,
        client_secrets,
        "Endpoints and requests",
        "The resource servers that may introspect.",
        accepts="a mapping of client id to secret",
    ),
    # Cookie mode
    Setting(
        "JWT_AUTH_REFRESH_COOKIE",
        False,
        flag,
        "Cookie mode",
        "The refresh token travels in an HttpOnly cookie.",
        accepts="true or false",
        attribute=True,
    ),
    Setting(
        "JWT_AUTH_REFRESH_COOKIE_NAME",
        "jwt_refresh_token",
        http_token,
        "Cookie mode",
        "The cookie's name.",
        accepts="a cookie name",
        attribute=True,
    ),
    Setting(
        "JWT_AUTH_REFRESH_COOKIE_CSRF_HEADER",
        "X-Requested-With",
        http_token,
        "Cookie mode",
        "The header a cookie-carried refresh must send.",
        accepts="a header name",
        attribute=True,
    ),
    # Flood protection
    Setting(
        "JWT_AUTH_FLOOD_IP_LIMIT",
        "50 per hour",
        rate_limit,
        "Flood protection",
        "Such as 50 per hour.",
        accepts="a rate limit, or ``None`` (off)",
        editable="limit",
        label="Failed log-ins per address",
    ),
    Setting(
        "JWT_AUTH_FLOOD_USER_LIMIT",
        "5 per 5 minutes",
        rate_limit,
        "Flood protection",
        "Such as 5 per 5 minutes.",
        accepts="a rate limit, or ``None`` (off)",
        editable="limit",
        label="Failed log-ins per username and address",
    ),
    Setting(
        "JWT_AUTH_FLOOD_ACCOUNT_LIMIT",
        "100 per hour",
        rate_limit,
        "Flood protection",
        "Failed log-ins per account.",
        accepts="a rate limit, or ``None`` (off)",
    ),
    Setting(
        "JWT_AUTH_FLOOD_REFRESH_LIMIT",
        "100 per hour",
        rate_limit,
        "Flood protection",
        "Such as 100 per hour.",
        accepts="a rate limit, or ``None`` (off)",
        editable="limit",
        label="Failed refreshes per address",
    ),
    Setting(
        "JWT_AUTH_IPV6_PREFIX_LENGTH",
        64,
        ipv6_prefix,
        "Flood protection",
        "Bits of an IPv6 client's network.",
    ),
    # Administration
    Setting(
        "JWT_AUTH_ADMIN_SESSION_TTL",
        3600,
        seconds(60),
        "Administration",
        "How long an admin sign-in lasts.",
    ),
    Setting(
        "JWT_AUTH_ADMIN_COOKIE_SECURE",
        True,
        flag,
        "Administration",
        "Whether the admin's cookie is Secure.",
        accepts="true or false",
    ),
)

#: Each setting by name.
SETTINGS: t.Mapping[str, Setting] = {s.name: s for s in REGISTRY}
if len(SETTINGS) != len(REGISTRY):  # pragma: no cover - a mistake in the table
    raise RuntimeError("A setting is registered twice.")


def read(config: t.Mapping[str, t.Any], name: str, app_name: str = "") -> t.Any:
    """The setting ``name`` of ``config``, checked and parsed by its parser.

    :param config: the application's configuration (any mapping).
    :param name: a ``JWT_AUTH_*`` name of :data:`REGISTRY`.
    :param app_name: the application's name, for the derived defaults.
    :raises ConfigurationError: the value is invalid.
    """
    return SETTINGS[name].read(config, app_name)


def parsed_default(name: str, app_name: str = "flask-jwt-authentication") -> t.Any:
    """The parsed value of ``name`` in an empty configuration."""
    return read({}, name, app_name)

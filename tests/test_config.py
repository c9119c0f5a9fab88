"""Settings: the documented defaults (docs/config.rst) and the validation of the
``JWT_AUTH_*`` keys.

Pure unit tests of :mod:`flask_jwt_authentication.config`: a plain dict stands in for
``app.config``.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing as t

import pytest
from conftest import ALGORITHMS
from conftest import EXTRA_ALGORITHMS

from flask_jwt_authentication import config
from flask_jwt_authentication.errors import ConfigurationError


def load(**settings: t.Any) -> config.Settings:
    return config.load_settings(settings, "myapp")


# --- Defaults -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "default"),
    [
        ("JWT_AUTH_URL_PREFIX", "/jwt-authentication/api/auth"),
        ("JWT_AUTH_ALGORITHM", "HS256"),
        ("JWT_AUTH_SECRET_KEY", None),
        ("JWT_AUTH_PRIVATE_KEY", None),
        ("JWT_AUTH_PUBLIC_KEY", None),
        ("JWT_AUTH_ACCESS_TOKEN_TTL", 900),
        ("JWT_AUTH_REFRESH_TOKEN_TTL", 1209600),
        ("JWT_AUTH_ISSUER", None),
        ("JWT_AUTH_AUDIENCE", None),
        ("JWT_AUTH_LEEWAY", 0),
        ("JWT_AUTH_FLOOD_IP_LIMIT", "50 per hour"),
        ("JWT_AUTH_FLOOD_USER_LIMIT", "5 per 5 minutes"),
        ("JWT_AUTH_REFRESH_COOKIE", False),
        ("JWT_AUTH_SESSION_MAX_AGE", 2592000),
    ],
)
def test_defaults_are_those_of_the_contract(key: str, default: object) -> None:
    assert key in config.DEFAULTS
    assert config.DEFAULTS[key] == default
    assert type(config.DEFAULTS[key]) is type(default)


def test_every_default_is_a_jwt_auth_setting() -> None:
    assert all(key.startswith("JWT_AUTH_") for key in config.DEFAULTS)


def test_empty_configuration_gives_the_contract_defaults() -> None:
    settings = config.load_settings({}, "myapp")
    assert settings.algorithm == "HS256"
    assert settings.access_token_ttl == 900
    assert settings.refresh_token_ttl == 1209600
    assert settings.issuer == "myapp"
    assert settings.audience == ()
    assert settings.leeway == 0
    assert settings.url_prefix == "/jwt-authentication/api/auth"
    assert settings.realm == "myapp"
    assert settings.password_hash_attribute == "password_hash"
    assert settings.refresh_cookie is False


def test_settings_are_immutable() -> None:
    settings = load()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.algorithm = "none"  # type: ignore[misc]


def test_unrelated_keys_are_ignored() -> None:
    assert load(SECRET_KEY="x", DEBUG=True, JWT_SECRET_KEY="y") == load()


# --- Algorithm ----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS + EXTRA_ALGORITHMS)
def test_supported_algorithms_are_accepted(algorithm: str) -> None:
    assert load(JWT_AUTH_ALGORITHM=algorithm).algorithm == algorithm


@pytest.mark.parametrize(
    "algorithm",
    [
        "none",
        "None",
        "NONE",
        "",
        "hs256",
        "HS256 ",
        "HS1",
        "ES224",
        "ES521",
        "RSA1_5",
        "A256GCM",
        "Ed25519",
        None,
        256,
        ["HS256"],
        {"HS256": True},
    ],
)
def test_unknown_algorithm_is_refused(algorithm: object) -> None:
    with pytest.raises(
        ConfigurationError, match=r"JWT_AUTH_ALGORITHM .* not supported"
    ):
        load(JWT_AUTH_ALGORITHM=algorithm)


def test_refusal_lists_the_supported_algorithms() -> None:
    with pytest.raises(ConfigurationError) as info:
        load(JWT_AUTH_ALGORITHM="none")
    message = str(info.value)
    assert all(alg in message for alg in ALGORITHMS + EXTRA_ALGORITHMS)


# --- Durations ----------------------------------------------------------------

DURATIONS = ["JWT_AUTH_ACCESS_TOKEN_TTL", "JWT_AUTH_REFRESH_TOKEN_TTL"]
FIELDS = {
    "JWT_AUTH_ACCESS_TOKEN_TTL": "access_token_ttl",
    "JWT_AUTH_REFRESH_TOKEN_TTL": "refresh_token_ttl",
    "JWT_AUTH_LEEWAY": "leeway",
}


@pytest.mark.parametrize("key", DURATIONS)
@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (60, 60),
        (1, 1),
        (60.0, 60),
        ("600", 600),
        (" 600 ", 600),
        ("600.0", 600),
        (datetime.timedelta(minutes=5), 300),
        (datetime.timedelta(days=14), 1209600),
    ],
)
def test_ttl_accepts_whole_seconds_numeric_strings_and_timedeltas(
    key: str, value: object, seconds: int
) -> None:
    assert getattr(load(**{key: value}), FIELDS[key]) == seconds


@pytest.mark.parametrize("key", DURATIONS)
@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        -900,
        0.0,
        1.5,
        "1.5",
        "0",
        "-5",
        "abc",
        "15 minutes",
        "",
        True,
        False,
        None,
        [900],
        float("inf"),
        float("nan"),
        "inf",
        "nan",
        10**400,
        datetime.timedelta(0),
        datetime.timedelta(seconds=-1),
        datetime.timedelta(milliseconds=1500),
    ],
)
def test_ttl_that_is_not_a_positive_whole_number_is_refused(
    key: str, value: object
) -> None:
    with pytest.raises(ConfigurationError, match=f"^{key} must be a"):
        load(**{key: value})


@pytest.mark.parametrize(("value", "seconds"), [(0, 0), ("30", 30), (30.0, 30)])
def test_leeway_accepts_zero_and_whole_seconds(value: object, seconds: int) -> None:
    assert load(JWT_AUTH_LEEWAY=value).leeway == seconds


@pytest.mark.parametrize("value", [-1, 0.5, "soon", True, float("inf")])
def test_bad_leeway_is_refused(value: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^JWT_AUTH_LEEWAY must be a"):
        load(JWT_AUTH_LEEWAY=value)


# --- Audience -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "audience"),
    [
        (None, ()),
        ("", ()),
        ("api", ("api",)),
        (["api"], ("api",)),
        (["api", "web"], ("api", "web")),
        (("api", "web"), ("api", "web")),
        ("https://api.example.com/", ("https://api.example.com/",)),
    ],
)
def test_audience_is_a_string_or_a_list_of_strings(
    value: object, audience: tuple[str, ...]
) -> None:
    assert load(JWT_AUTH_AUDIENCE=value).audience == audience


@pytest.mark.parametrize(
    "value",
    [[], (), ["api", ""], ["api", 1], [None], 5, True, {"api"}, {"api": 1}, b"api"],
)
def test_bad_audience_is_refused(value: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^JWT_AUTH_AUDIENCE must be"):
        load(JWT_AUTH_AUDIENCE=value)


# --- URL prefix ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "prefix"),
    [
        ("/auth", "/auth"),
        ("/api/auth/", "/api/auth"),
        ("", "/jwt-authentication/api/auth"),
        (None, "/jwt-authentication/api/auth"),
    ],
)
def test_url_prefix(value: object, prefix: str) -> None:
    assert load(JWT_AUTH_URL_PREFIX=value).url_prefix == prefix


@pytest.mark.parametrize("value", ["auth", "api/auth", "https://example.com/auth"])
def test_url_prefix_without_leading_slash_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="JWT_AUTH_URL_PREFIX must start"):
        load(JWT_AUTH_URL_PREFIX=value)


def test_url_prefix_that_is_not_text_is_refused() -> None:
    with pytest.raises(
        ConfigurationError, match="JWT_AUTH_URL_PREFIX must be a string"
    ):
        load(JWT_AUTH_URL_PREFIX=["/auth"])


# --- Issuer and realm ---------------------------------------------------------


def test_issuer_defaults_to_the_app_name() -> None:
    assert config.load_settings({}, "shop").issuer == "shop"
    assert config.load_settings({"JWT_AUTH_ISSUER": ""}, "shop").issuer == "shop"
    assert config.load_settings({"JWT_AUTH_ISSUER": None}, "shop").issuer == "shop"


def test_configured_issuer_wins_over_the_app_name() -> None:
    settings = config.load_settings({"JWT_AUTH_ISSUER": "https://id.example"}, "shop")
    assert settings.issuer == "https://id.example"


def test_realm_defaults_to_the_issuer() -> None:
    assert config.load_settings({}, "shop").realm == "shop"
    settings = config.load_settings({"JWT_AUTH_ISSUER": "https://id.example"}, "shop")
    assert settings.realm == "https://id.example"


def test_configured_realm_is_kept() -> None:
    settings = load(JWT_AUTH_ISSUER="issuer", JWT_AUTH_REALM="Members area")
    assert (settings.issuer, settings.realm) == ("issuer", "Members area")


@pytest.mark.parametrize("key", ["JWT_AUTH_ISSUER", "JWT_AUTH_REALM"])
@pytest.mark.parametrize("value", [5, ["issuer"], b"issuer", True])
def test_issuer_or_realm_that_is_not_text_is_refused(key: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"^{key} must be a string"):
        load(**{key: value})


# --- Password hash attribute --------------------------------------------------


def test_password_hash_attribute_is_configurable() -> None:
    assert load(JWT_AUTH_PASSWORD_HASH_ATTRIBUTE="pw").password_hash_attribute == "pw"


@pytest.mark.parametrize("value", ["password-hash", "1hash", "a.b", "hash "])
def test_password_hash_attribute_must_be_an_attribute_name(value: str) -> None:
    with pytest.raises(ConfigurationError, match="JWT_AUTH_PASSWORD_HASH_ATTRIBUTE"):
        load(JWT_AUTH_PASSWORD_HASH_ATTRIBUTE=value)


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"JWT_AUTH_ACCESS_TOKEN_TTL": "soon"}, "JWT_AUTH_ACCESS_TOKEN_TTL"),
        ({"JWT_AUTH_LEEWAY": -1}, "JWT_AUTH_LEEWAY"),
        ({"JWT_AUTH_ALGORITHM": "none"}, "JWT_AUTH_ALGORITHM"),
        ({"JWT_AUTH_URL_PREFIX": "api"}, "JWT_AUTH_URL_PREFIX"),
        ({"JWT_AUTH_REFRESH_COOKIE": "sometimes"}, "JWT_AUTH_REFRESH_COOKIE"),
        ({"JWT_AUTH_AUDIENCE": [""]}, "JWT_AUTH_AUDIENCE"),
        ({"JWT_AUTH_ROLES_CLAIM": "exp"}, "JWT_AUTH_ROLES_CLAIM"),
        ({"JWT_AUTH_SECRET_KEY": ""}, "JWT_AUTH_SECRET_KEY"),
    ],
)
def test_a_configuration_error_names_its_setting(
    changes: dict[str, t.Any], setting: str
) -> None:
    """The failing key is an attribute, for a form or a tool to point at."""
    with pytest.raises(ConfigurationError) as caught:
        config.load_settings(changes, "app")
    assert caught.value.setting == setting
    assert setting in str(caught.value)


# --- The registry -------------------------------------------------------------


def test_settings_carries_exactly_the_registry_attributes() -> None:
    """Each attribute of Settings is a registry setting's (``access_token_ttl``:
    ``JWT_AUTH_ACCESS_TOKEN_TTL``), and its default is what an empty
    configuration parses to."""
    from flask_jwt_authentication.settings_registry import REGISTRY

    fields = {f.name for f in dataclasses.fields(config.Settings)}
    assert fields == {s.field for s in REGISTRY if s.attribute}
    assert config.Settings() == config.load_settings({}, "flask-jwt-authentication")


def test_every_setting_is_parsed_by_its_registry_entry() -> None:
    """Every registered setting parses its default, and refuses a value of a
    type none of them takes, naming itself; the keys, checked here for being
    set but empty, are turned into keys by :mod:`.keys`."""
    from flask_jwt_authentication.settings_registry import REGISTRY
    from flask_jwt_authentication.settings_registry import key_material

    for setting in REGISTRY:
        setting.read({}, "myapp")
        if setting.parse is key_material:
            assert setting.read({setting.name: "pem"}) == "pem"
            with pytest.raises(ConfigurationError, match="set but empty"):
                setting.read({setting.name: " "})
            continue
        with pytest.raises(ConfigurationError) as caught:
            setting.read({setting.name: object()}, "myapp")
        assert caught.value.setting == setting.name


def test_defaults_and_editable_settings_derive_from_the_registry() -> None:
    from flask_jwt_authentication import overrides
    from flask_jwt_authentication.settings_registry import REGISTRY

    assert list(config.DEFAULTS) == sorted(config.DEFAULTS)
    assert dict(config.DEFAULTS) == {s.name: s.default for s in REGISTRY}
    assert {s.name for s in REGISTRY} == config.KNOWN_KEYS
    assert (
        tuple(s.name for s in REGISTRY if s.editable is not None) == overrides.EDITABLE
    )
    assert dict(overrides.RANGES) == {s.name: s.range for s in REGISTRY if s.range}


def test_a_registry_entry_is_checked() -> None:
    from flask_jwt_authentication.settings_registry import Setting
    from flask_jwt_authentication.settings_registry import flag

    with pytest.raises(ValueError, match="JWT_AUTH_"):
        Setting("OTHER", False, flag, "Section", "Help.")
    with pytest.raises(ValueError, match="kind and label"):
        Setting("JWT_AUTH_X", False, flag, "Section", "Help.", editable="seconds")
    with pytest.raises(ValueError, match="range"):
        Setting("JWT_AUTH_X", False, flag, "Section", "Help.", range=(1, 2))


def test_the_number_and_choice_parsers() -> None:
    """Fractional seconds and one-of-some-words settings (such as a delay and a
    mode) are a registry entry each, with these parsers."""
    from flask_jwt_authentication.settings_registry import Setting
    from flask_jwt_authentication.settings_registry import choice
    from flask_jwt_authentication.settings_registry import number

    delay = Setting("JWT_AUTH_X_DELAY", 1.0, number(0), "Section", "Help.")
    assert delay.read({}) == 1.0
    assert delay.read({"JWT_AUTH_X_DELAY": "0.25"}) == 0.25
    assert delay.read({"JWT_AUTH_X_DELAY": datetime.timedelta(seconds=2)}) == 2.0
    assert delay.values == "seconds, at least 0"
    for bad in (-0.1, "soon", True, float("nan"), float("inf"), 10**400, None):
        with pytest.raises(ConfigurationError) as caught:
            delay.read({"JWT_AUTH_X_DELAY": bad})
        assert caught.value.setting == "JWT_AUTH_X_DELAY"
    mode = Setting("JWT_AUTH_X_MODE", "a", choice("a", "b"), "Section", "Help.")
    assert mode.read({}) == "a"
    assert mode.read({"JWT_AUTH_X_MODE": "b"}) == "b"
    assert mode.values == '``"a"`` or ``"b"``'
    for bad in ("c", "A", None, 1):
        with pytest.raises(ConfigurationError, match="one of 'a', 'b'"):
            mode.read({"JWT_AUTH_X_MODE": bad})

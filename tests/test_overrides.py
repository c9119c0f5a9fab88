"""Settings edited at run time: stored in the database, validated before they are
saved, applied at once in the saving process, followed by every other worker
within the reload interval, and never queried by a protected request."""

from __future__ import annotations

import base64
import json
import logging
import time
import typing as t

import pytest
import sqlalchemy as sa
from conftest import AppEnv
from conftest import bearer
from conftest import key_config
from conftest import login
from conftest import tokens_for
from cryptography.fernet import Fernet
from test_performance import count

from flask_jwt_authentication.errors import TemporarilyUnavailable
from flask_jwt_authentication.overrides import EDITABLE
from flask_jwt_authentication.overrides import SettingsError
from flask_jwt_authentication.state import get_state

MakeApp = t.Callable[..., AppEnv]
TABLE = "jwt_auth_settings"


def save(env: AppEnv, **changes: t.Any) -> None:
    with env.app.app_context():
        get_state().overrides.save(changes)


def stored_rows(env: AppEnv) -> dict[str, t.Any]:
    with env.app.app_context():
        rows = env.db.session.execute(sa.text(f"SELECT name, value FROM {TABLE}"))
        return {name: json.loads(value) for name, value in rows}


def header(token: str) -> dict[str, t.Any]:
    part = token.split(".")[0]
    return t.cast(
        dict[str, t.Any],
        json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))),
    )


@pytest.fixture
def env(make_app: MakeApp) -> AppEnv:
    env = make_app(JWT_AUTH_KEYS_REFRESH_INTERVAL=1)
    env.create_user("alice")
    return env


def test_a_saved_lifetime_applies_to_the_next_login(env: AppEnv) -> None:
    client = env.app.test_client()
    assert tokens_for(client)["expires_in"] == 900
    save(env, JWT_AUTH_ACCESS_TOKEN_TTL="600", JWT_AUTH_REFRESH_TOKEN_TTL=7200)
    pair = tokens_for(client)
    assert pair["expires_in"] == 600
    assert pair["refresh_expires_in"] == 7200
    # Stored normalised: whole seconds as numbers.
    assert stored_rows(env) == {
        "JWT_AUTH_ACCESS_TOKEN_TTL": 600,
        "JWT_AUTH_REFRESH_TOKEN_TTL": 7200,
    }


def test_none_returns_a_setting_to_the_configuration(env: AppEnv) -> None:
    client = env.app.test_client()
    save(env, JWT_AUTH_ACCESS_TOKEN_TTL=600, JWT_AUTH_ISSUER="https://id.example")
    save(env, JWT_AUTH_ACCESS_TOKEN_TTL=None)
    assert stored_rows(env) == {"JWT_AUTH_ISSUER": "https://id.example"}
    pair = tokens_for(client)
    assert pair["expires_in"] == 900
    response = client.get("/api/me", headers=bearer(pair["access_token"]))
    assert response.status_code == 200


@pytest.mark.parametrize("empty", ["", []])
def test_an_empty_value_returns_a_setting_to_the_configuration(
    env: AppEnv, empty: t.Any
) -> None:
    save(env, JWT_AUTH_AUDIENCE="api", JWT_AUTH_ISSUER="https://id.example")
    save(env, JWT_AUTH_AUDIENCE=empty, JWT_AUTH_ISSUER=empty)
    assert stored_rows(env) == {}
    token = tokens_for(env.app.test_client())["access_token"]
    assert (
        env.app.test_client().get("/api/me", headers=bearer(token)).status_code == 200
    )


def test_issuer_and_audience_apply_to_new_tokens_and_verification(
    env: AppEnv,
) -> None:
    client = env.app.test_client()
    before = tokens_for(client)["access_token"]
    save(env, JWT_AUTH_ISSUER="https://id.example", JWT_AUTH_AUDIENCE="api")
    after = tokens_for(client)["access_token"]
    claims = json.loads(
        base64.urlsafe_b64decode(after.split(".")[1] + "=" * (-len(after) % 4))
    )
    assert claims["iss"] == "https://id.example"
    assert claims["aud"] == "api"
    assert client.get("/api/me", headers=bearer(after)).status_code == 200
    # A token of the old issuer, without the audience, is no longer accepted.
    refused = client.get("/api/me", headers=bearer(before))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


@pytest.mark.parametrize("sync", ["database", "push"])
def test_another_worker_follows_within_the_interval(
    make_app: MakeApp, sync: str
) -> None:
    """In push mode the revocation follower's thread does the reloads."""
    a = make_app(JWT_AUTH_KEYS_REFRESH_INTERVAL=1, JWT_AUTH_REVOCATION_SYNC=sync)
    a.create_user("alice")
    url = str(a.app.config["SQLALCHEMY_DATABASE_URI"])
    b = make_app(
        database_url=url,
        JWT_AUTH_KEYS_REFRESH_INTERVAL=1,
        JWT_AUTH_REVOCATION_SYNC=sync,
    )
    b.create_user("alice")
    client_b = b.app.test_client()
    assert tokens_for(client_b)["expires_in"] == 900  # B has loaded its settings
    save(a, JWT_AUTH_ACCESS_TOKEN_TTL=300)
    saved = time.monotonic()
    while tokens_for(client_b)["expires_in"] != 300:
        assert time.monotonic() - saved < 3, "B never followed the change"
        time.sleep(0.1)


def test_a_protected_request_queries_no_settings(make_app: MakeApp) -> None:
    env = make_app(JWT_AUTH_KEYS_REFRESH_INTERVAL=3600)
    env.create_user("alice")
    save(env, JWT_AUTH_ACCESS_TOKEN_TTL=600)
    client = env.app.test_client()
    token = tokens_for(client)["access_token"]
    client.get("/api/me", headers=bearer(token))
    response, statements = count(
        env, lambda: client.get("/api/me", headers=bearer(token))
    )
    assert response.status_code == 200
    assert not [s for s in statements if TABLE in s], statements


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"JWT_AUTH_ACCESS_TOKEN_TTL": 5}, "JWT_AUTH_ACCESS_TOKEN_TTL"),
        ({"JWT_AUTH_ACCESS_TOKEN_TTL": 90000}, "JWT_AUTH_ACCESS_TOKEN_TTL"),
        ({"JWT_AUTH_ACCESS_TOKEN_TTL": "soon"}, "JWT_AUTH_ACCESS_TOKEN_TTL"),
        ({"JWT_AUTH_ACCESS_TOKEN_TTL": 1.5}, "JWT_AUTH_ACCESS_TOKEN_TTL"),
        ({"JWT_AUTH_ACCESS_TOKEN_TTL": True}, "JWT_AUTH_ACCESS_TOKEN_TTL"),
        ({"JWT_AUTH_ACCESS_TOKEN_TTL": {"a": 1}}, "JWT_AUTH_ACCESS_TOKEN_TTL"),
        ({"JWT_AUTH_REFRESH_TOKEN_TTL": 60}, "JWT_AUTH_REFRESH_TOKEN_TTL"),
        ({"JWT_AUTH_REFRESH_TOKEN_TTL": 600}, "JWT_AUTH_REFRESH_TOKEN_TTL"),
        ({"JWT_AUTH_LEEWAY": -1}, "JWT_AUTH_LEEWAY"),
        ({"JWT_AUTH_LEEWAY": 3600}, "JWT_AUTH_LEEWAY"),
        ({"JWT_AUTH_ALGORITHM": "none"}, "JWT_AUTH_ALGORITHM"),
        ({"JWT_AUTH_ALGORITHM": "RS256"}, "JWT_AUTH_ALGORITHM"),
        ({"JWT_AUTH_ISSUER": "x" * 256}, "JWT_AUTH_ISSUER"),
        ({"JWT_AUTH_ISSUER": "a\x00b"}, "JWT_AUTH_ISSUER"),
        ({"JWT_AUTH_AUDIENCE": [""]}, "JWT_AUTH_AUDIENCE"),
        ({"JWT_AUTH_FLOOD_USER_LIMIT": "lots"}, "JWT_AUTH_FLOOD_USER_LIMIT"),
        ({"JWT_AUTH_FLOOD_IP_LIMIT": "   "}, "JWT_AUTH_FLOOD_IP_LIMIT"),
        # Bounds: never none at all, never so many that the limit is off.
        ({"JWT_AUTH_FLOOD_IP_LIMIT": "0 per minute"}, "JWT_AUTH_FLOOD_IP_LIMIT"),
        (
            {"JWT_AUTH_FLOOD_USER_LIMIT": "1000000000 per second"},
            "JWT_AUTH_FLOOD_USER_LIMIT",
        ),
        ({"JWT_AUTH_FLOOD_USER_LIMIT": "5 per second"}, "JWT_AUTH_FLOOD_USER_LIMIT"),
        (
            {"JWT_AUTH_FLOOD_REFRESH_LIMIT": "20000 per hour"},
            "JWT_AUTH_FLOOD_REFRESH_LIMIT",
        ),
        (
            {"JWT_AUTH_FLOOD_REFRESH_LIMIT": "1 per 2 days"},
            "JWT_AUTH_FLOOD_REFRESH_LIMIT",
        ),
        ({"JWT_AUTH_URL_PREFIX": "/elsewhere"}, "JWT_AUTH_URL_PREFIX"),
        ({"JWT_AUTH_SECRET_KEY": "k" * 64}, "JWT_AUTH_SECRET_KEY"),
    ],
    ids=lambda v: repr(next(iter(v.values())))[:24] if isinstance(v, dict) else "",
)
def test_invalid_changes_are_refused_and_nothing_is_written(
    env: AppEnv, changes: dict[str, t.Any], name: str
) -> None:
    save(env, JWT_AUTH_ACCESS_TOKEN_TTL=600)
    with pytest.raises(SettingsError) as caught:
        save(env, **{"JWT_AUTH_ISSUER": "https://id.example", **changes})
    assert caught.value.name == name
    assert stored_rows(env) == {"JWT_AUTH_ACCESS_TOKEN_TTL": 600}
    assert tokens_for(env.app.test_client())["expires_in"] == 600


def test_switching_to_an_algorithm_with_a_stored_key(make_app: MakeApp) -> None:
    """RS256 needs an RSA key: refused until one is stored and current, then
    new tokens are RS256 and the JWKS publishes the key."""
    env = make_app(
        JWT_AUTH_KEY_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        JWT_AUTH_SECRET_KEY="k" * 64,
        JWT_AUTH_KEYS_REFRESH_INTERVAL=1,
    )
    env.create_user("alice")
    client = env.app.test_client()
    with pytest.raises(SettingsError, match="no RS256 key"):
        save(env, JWT_AUTH_ALGORITHM="RS256")
    runner = env.app.test_cli_runner()
    result = runner.invoke(
        args=["jwt", "keys", "generate", "--algorithm", "RS256", "--current"]
    )
    assert result.exit_code == 0, result.output
    save(env, JWT_AUTH_ALGORITHM="RS256")
    token = tokens_for(client)["access_token"]
    assert header(token)["alg"] == "RS256"
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    jwks = client.get("/.well-known/jwks.json").get_json()
    assert [key["kty"] for key in jwks["keys"]] == ["RSA"]
    # Back to the configuration's HS256 and its configured secret.
    save(env, JWT_AUTH_ALGORITHM=None)
    token = tokens_for(client)["access_token"]
    assert header(token)["alg"] == "HS256"
    assert client.get("/api/me", headers=bearer(token)).status_code == 200


def test_switching_between_hmac_sizes_uses_the_configured_secret(
    make_app: MakeApp,
) -> None:
    env = make_app(**key_config("HS256"))
    env.create_user("alice")
    save(env, JWT_AUTH_ALGORITHM="HS512")
    token = tokens_for(env.app.test_client())["access_token"]
    assert header(token)["alg"] == "HS512"


@pytest.mark.parametrize(
    "value", ["1 per minute", "10000 per hour", "1 per day", "166 per minute"]
)
def test_flood_limits_at_the_bounds_are_accepted(env: AppEnv, value: str) -> None:
    save(env, JWT_AUTH_FLOOD_IP_LIMIT=value)
    assert stored_rows(env) == {"JWT_AUTH_FLOOD_IP_LIMIT": value}


def test_flood_limits_change_at_run_time(make_app: MakeApp) -> None:
    env = make_app(RATELIMIT_ENABLED=True)
    env.create_user("alice")
    client = env.app.test_client()
    save(env, JWT_AUTH_FLOOD_USER_LIMIT="2 per minute")
    statuses = [login(client, "alice", "wrong").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


def test_an_invalid_stored_value_is_ignored_and_logged(
    env: AppEnv, caplog: pytest.LogCaptureFixture
) -> None:
    save(env, JWT_AUTH_ACCESS_TOKEN_TTL=600)
    with env.app.app_context():
        env.db.session.execute(
            sa.text(f"UPDATE {TABLE} SET value = :v"), {"v": json.dumps("soon")}
        )
        env.db.session.commit()
    time.sleep(1.1)
    with caplog.at_level(logging.ERROR, logger="flask_jwt_authentication"):
        assert tokens_for(env.app.test_client())["expires_in"] == 600
    assert "stored settings are invalid" in caplog.text


def test_a_missing_table_keeps_the_configuration(
    env: AppEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """An application upgraded without its migration keeps working."""
    with env.app.app_context():
        env.db.session.execute(sa.text(f"DROP TABLE {TABLE}"))
        env.db.session.commit()
    with caplog.at_level(logging.WARNING, logger="flask_jwt_authentication"):
        assert tokens_for(env.app.test_client())["expires_in"] == 900
    assert "Could not load stored settings" in caplog.text


def test_storage_down_on_save_writes_nothing(
    make_app: MakeApp, tmp_path: t.Any
) -> None:
    env = make_app(
        database_url=f"sqlite:///{tmp_path}/missing/dir/db.sqlite", create_tables=False
    )
    with pytest.raises(TemporarilyUnavailable):
        save(env, JWT_AUTH_ACCESS_TOKEN_TTL=600)


def test_editable_settings_show_their_defaults(env: AppEnv) -> None:
    with env.app.app_context():
        overrides = get_state().overrides
        assert set(overrides.defaults()) == set(EDITABLE)
        assert overrides.defaults()["JWT_AUTH_ACCESS_TOKEN_TTL"] == 900
        assert overrides.defaults()["JWT_AUTH_ISSUER"] == "testapp"
        assert overrides.stored() == {}


# flask jwt settings ------------------------------------------------------------------


def test_the_settings_commands(env: AppEnv) -> None:
    runner = env.app.test_cli_runner()
    result = runner.invoke(args=["jwt", "settings", "set", "access_token_ttl", "600"])
    assert result.exit_code == 0, result.output
    assert "Every worker follows within 1 s." in result.output
    result = runner.invoke(
        args=["jwt", "settings", "set", "JWT_AUTH_FLOOD_USER_LIMIT", "3 per minute"]
    )
    assert result.exit_code == 0, result.output
    shown = runner.invoke(args=["jwt", "settings", "show"]).output
    assert "JWT_AUTH_ACCESS_TOKEN_TTL = 600  (saved)" in shown
    assert 'JWT_AUTH_FLOOD_USER_LIMIT = "3 per minute"  (saved)' in shown
    assert "JWT_AUTH_REFRESH_TOKEN_TTL = 1209600  (config)" in shown
    assert tokens_for(env.app.test_client())["expires_in"] == 600

    result = runner.invoke(args=["jwt", "settings", "unset", "ACCESS_TOKEN_TTL"])
    assert result.exit_code == 0, result.output
    assert tokens_for(env.app.test_client())["expires_in"] == 900


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "url_prefix", "/x"], "cannot be changed at run time"),
        (["set", "access_token_ttl", "5"], "between 30 and 86400"),
        (["set", "algorithm", "ES256"], "There is no ES256 key"),
        (["unset", "secret_key"], "cannot be changed at run time"),
    ],
)
def test_the_settings_commands_refuse_invalid_values(
    env: AppEnv, args: list[str], message: str
) -> None:
    result = env.app.test_cli_runner().invoke(args=["jwt", "settings", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert stored_rows(env) == {}


def test_settings_reload_before_a_request_never_during_one(env: AppEnv) -> None:
    """A reload takes a pooled connection of its own: in the middle of a request,
    which may hold another connection and a write lock, waiting for one could
    stall every request once the pool is exhausted. So a request reloads at its
    start only."""
    save(env, JWT_AUTH_ACCESS_TOKEN_TTL=600)
    with env.app.test_request_context():
        overrides = get_state().overrides
        overrides._reloads.invalidate()  # stale
        settings, statements = count(env, lambda: get_state().settings)
        assert settings.access_token_ttl == 600
        assert statements == []
    client = env.app.test_client()
    overrides._reloads.invalidate()
    response, statements = count(env, lambda: client.get("/api/optional"))
    assert response.status_code == 200
    assert [s for s in statements if TABLE in s], statements

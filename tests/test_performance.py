"""The properties that keep a protected request cheap, pinned by counting, not
timing: statements per request, keys parsed once, bounded caches."""

from __future__ import annotations

import shutil
import time
import types
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
from conftest import AppEnv
from conftest import bearer
from conftest import key_path
from conftest import tokens_for
from cryptography.fernet import Fernet


class StatementCounter:
    """Counts the SQL statements an engine runs (a real event hook, not a mock)."""

    def __init__(self, env: AppEnv) -> None:
        with env.app.app_context():
            self.engine = env.db.engine
        self.statements: list[str] = []
        sa.event.listen(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        self.statements.append(statement)

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)


@pytest.fixture
def quiet_env(make_app: t.Callable[..., AppEnv]) -> AppEnv:
    """An app whose user loader does not query, so only our statements count."""
    env = make_app(JWT_AUTH_KEYS_REFRESH_INTERVAL=3600)
    env.create_user("alice")

    @env.jwt.user_loader
    def load_user(uid: t.Any) -> t.Any:
        return types.SimpleNamespace(id=uid, username="alice", is_active=True)

    return env


def count(env: AppEnv, action: t.Callable[[], t.Any]) -> tuple[t.Any, list[str]]:
    counter = StatementCounter(env)
    try:
        return action(), counter.statements
    finally:
        counter.close()


def test_a_protected_request_runs_one_statement(quiet_env: AppEnv) -> None:
    client = quiet_env.app.test_client()
    token = tokens_for(client)["access_token"]
    client.get("/api/me", headers=bearer(token))  # the key ring is loaded now
    response, statements = count(
        quiet_env, lambda: client.get("/api/me", headers=bearer(token))
    )
    assert response.status_code == 200
    # One round trip checks the session and the jti together.
    assert len(statements) == 1, statements
    assert "jwt_auth_sessions" in statements[0]
    assert "jwt_auth_revoked_tokens" in statements[0]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        lambda token: token.split(".")[0] + ".e30." + token.split(".")[2],
        lambda token: "garbage",
    ],
    ids=["bad signature", "swapped payload", "not a token"],
)
def test_a_bad_token_costs_no_database_work(quiet_env: AppEnv, tamper) -> None:
    client = quiet_env.app.test_client()
    token = tokens_for(client)["access_token"]
    client.get("/api/me", headers=bearer(token))
    response, statements = count(
        quiet_env, lambda: client.get("/api/me", headers=bearer(tamper(token)))
    )
    assert response.status_code == 401
    assert statements == []


def test_an_expired_token_costs_no_database_work(quiet_env: AppEnv) -> None:
    client = quiet_env.app.test_client()
    pair = tokens_for(client)
    client.get("/api/me", headers=bearer(pair["access_token"]))
    with time_machine.travel(time.time() + pair["expires_in"] + 1, tick=False):
        response, statements = count(
            quiet_env,
            lambda: client.get("/api/me", headers=bearer(pair["access_token"])),
        )
    assert response.status_code == 401
    assert statements == []


def test_configured_keys_are_read_once(make_app, tmp_path: Path) -> None:
    """The PEM file is read at start-up only: removing it changes nothing."""
    pem = tmp_path / "signing.pem"
    shutil.copy(key_path("rsa2048"), pem)
    env = make_app(JWT_AUTH_ALGORITHM="RS256", JWT_AUTH_PRIVATE_KEY=str(pem))
    env.create_user("alice")
    pem.unlink()
    client = env.app.test_client()
    for _ in range(3):
        token = tokens_for(client)["access_token"]
        assert client.get("/api/me", headers=bearer(token)).status_code == 200


def test_stored_keys_are_parsed_once_and_the_cache_stays_bounded(make_app) -> None:
    env = make_app(
        JWT_AUTH_KEY_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        JWT_AUTH_KEYS_REFRESH_INTERVAL=1,
        JWT_AUTH_ACCESS_TOKEN_TTL=60,
    )
    env.create_user("alice")
    cli = env.app.test_cli_runner()
    ring = env.app.extensions["jwt_authentication"].keys
    client = env.app.test_client()
    assert cli.invoke(args=["jwt", "keys", "rotate"]).exit_code == 0
    tokens_for(client)
    first = ring.keyset().current
    ring.invalidate()
    tokens_for(client)
    # A reload reuses the parsed key object: nothing is decrypted or parsed again.
    assert ring.keyset().current is first
    with time_machine.travel(time.time(), tick=False) as clock:
        for _ in range(6):
            assert cli.invoke(args=["jwt", "keys", "rotate"]).exit_code == 0
            clock.shift(120)  # past every retiring key's window
            tokens_for(client)
    stored = env.table_rows("jwt_auth_keys")
    live = [row for row in stored if row["state"] in ("next", "current")]
    assert len(stored) == 7
    # Seven keys were made; the cache holds only those still in use.
    assert set(ring._parsed) == {row["kid"] for row in live}

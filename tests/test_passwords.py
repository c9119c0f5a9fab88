"""Password checks: one verification per attempt, outdated hashes padded to the
current cost on failure and re-hashed on success, on every database backend."""

from __future__ import annotations

import time
import typing as t

import pytest
import sqlalchemy as sa
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import login
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import signals
from flask_jwt_authentication.passwords import werkzeug_needs_rehash
from flask_jwt_authentication.passwords import werkzeug_verifier

#: The current parameters in these tests: dear enough to measure (tens of ms).
CURRENT = "pbkdf2:sha256:150000"
#: Older, cheaper parameters.
OLD = "pbkdf2:sha256:1000"


def hashed_app(
    make_app: t.Callable[..., AppEnv], database_url: str | None, current: str = CURRENT
) -> AppEnv:
    env = make_app(database_url)
    env.jwt.dummy_password_hash = generate_password_hash("dummy", method=current)
    env.create_user("current")
    env.set_user("current", password_hash=generate_password_hash(PASSWORD, current))
    env.create_user("old")
    env.set_user("old", password_hash=generate_password_hash(PASSWORD, OLD))
    return env


def stored_hash(env: AppEnv, username: str) -> str:
    with env.app.app_context():
        return t.cast(
            str,
            env.db.session.execute(
                sa.select(env.User.password_hash).filter_by(username=username)
            ).scalar_one(),
        )


def test_outdated_hash_is_detected_by_method_and_parameters() -> None:
    current = generate_password_hash("x", method=OLD.replace("1000", "2000"))
    assert werkzeug_needs_rehash(generate_password_hash("x", method=OLD), current)
    assert werkzeug_needs_rehash(generate_password_hash("x", "scrypt"), current)
    assert not werkzeug_needs_rehash(
        generate_password_hash("y", method=OLD.replace("1000", "2000")), current
    )


def test_failure_with_an_outdated_hash_costs_a_current_verification(
    make_app: t.Callable[..., AppEnv], database_url: str
) -> None:
    """A wrong password for a user whose hash has cheaper parameters takes at
    least as long as the recent verifications at the current parameters (before:
    about 1/150 of it). A lower bound only: load can slow a request, never speed
    it up; benchmarks/timing_guard.py measures how close the classes are."""
    env = hashed_app(make_app, database_url)
    client = env.app.test_client()
    for _ in range(3):
        assert login(client, "current", "wrong password").status_code == 401
    # Failures with the outdated hash are not recorded: the cost stays put.
    current_cost = env.jwt._dummy_hash.cost()
    assert current_cost > 0.01  # the current parameters are measurable at all
    for _ in range(3):
        start = time.perf_counter()
        assert login(client, "old", "wrong password").status_code == 401
        assert time.perf_counter() - start >= current_cost
    assert env.jwt._dummy_hash.cost() == current_cost


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("nobody", PASSWORD),
        ("current", "wrong"),
        ("old", "wrong"),
        ("disabled", PASSWORD),
        ("empty", PASSWORD),
        ("broken", PASSWORD),
    ],
)
def test_every_failure_costs_one_verification(
    make_app: t.Callable[..., AppEnv], username: str, password: str
) -> None:
    env = hashed_app(make_app, None, current=OLD.replace("1000", "2000"))
    env.create_user("disabled", is_active=False)
    env.create_user("empty")
    env.set_user("empty", password_hash="")
    env.create_user("broken")
    env.set_user("broken", password_hash="not-a-hash")
    calls: list[str] = []

    def counting(stored: str, presented: str) -> bool:
        calls.append(stored)
        return werkzeug_verifier(stored, presented)

    env.jwt.password_verifier(
        counting,
        dummy_hash=env.jwt.dummy_password_hash,
        hasher=lambda p: generate_password_hash(p, OLD.replace("1000", "2000")),
        needs_rehash=werkzeug_needs_rehash,
    )
    r = login(env.app.test_client(), username, password)
    assert r.status_code == 401
    # One verification; a fast-failing unreadable hash ("broken") adds the dummy.
    assert len(calls) == (2 if username == "broken" else 1), calls


def test_dummy_hash_is_made_at_init_app(make_app: t.Callable[..., AppEnv]) -> None:
    """A fresh extension's first failed log-in does not make the dummy hash."""
    env = make_app()
    jwt = JWTAuthentication()
    assert jwt._dummy_hash._value is None
    app = env.app.__class__("fresh")
    app.config.update(SECRET_KEY="s" * 64)
    jwt.init_app(app, db=env.db)
    assert jwt._dummy_hash._value is not None
    assert jwt.dummy_password_hash.startswith("scrypt:")
    assert jwt._dummy_hash.cost() > 0


def test_successful_log_in_rehashes_an_outdated_hash(
    make_app: t.Callable[..., AppEnv], database_url: str
) -> None:
    env = hashed_app(make_app, database_url)
    received: list[tuple[t.Any, str]] = []

    def store_new_hash(app: t.Any, user: t.Any, password_hash: str) -> None:
        received.append((user.username, password_hash))
        user.password_hash = password_hash
        env.db.session.add(user)
        env.db.session.commit()

    client = env.app.test_client()
    with signals.password_rehashed.connected_to(store_new_hash, env.app):
        for name in ("current", "old"):
            for password in ("wrong", PASSWORD):
                login(client, name, password)
        assert [name for name, _ in received] == ["old"]
        new = received[0][1]
        assert new.startswith(CURRENT + "$")
        assert check_password_hash(new, PASSWORD)
        assert stored_hash(env, "old") == new
        # Once stored, the next log-in has nothing to upgrade.
        r = login(client, "old", PASSWORD)
        assert r.status_code == 200
        assert len(received) == 1
    # The new hash logs in, and it is no longer outdated: a failure is not padded.
    assert not werkzeug_needs_rehash(new, env.jwt.dummy_password_hash)


def test_no_rehash_for_a_failed_or_disabled_log_in(
    make_app: t.Callable[..., AppEnv], database_url: str
) -> None:
    env = hashed_app(make_app, database_url)
    env.set_user("old", is_active=False)
    received: list[t.Any] = []
    client = env.app.test_client()
    with signals.password_rehashed.connected_to(
        lambda app, **kw: received.append(kw), env.app
    ):
        assert login(client, "old", PASSWORD).status_code == 401
        assert login(client, "old", "wrong").status_code == 401
    assert received == []
    assert stored_hash(env, "old").startswith(OLD + "$")


def test_custom_verifier_without_rehash_hooks_never_rehashes(
    make_app: t.Callable[..., AppEnv],
) -> None:
    env = hashed_app(make_app, None)
    env.jwt.password_verifier(werkzeug_verifier, dummy_hash=env.jwt.dummy_password_hash)
    received: list[t.Any] = []
    with signals.password_rehashed.connected_to(
        lambda app, **kw: received.append(kw), env.app
    ):
        r = env.app.test_client().post(
            f"{PREFIX}/tokens", json={"username": "old", "password": PASSWORD}
        )
    assert r.status_code == 200
    assert received == []

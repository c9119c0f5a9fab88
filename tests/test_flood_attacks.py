"""The attacks the flood limits answer, performed over the log-in, refresh and
revocation endpoints (docs/flood.rst, docs/security.rst).

- Lock-out: an attacker's wrong passwords from its own address do not keep the
  owner out from another (the per-username limit counts per address too).
- Guessing: an attacker gets at most 50 guesses per account per hour from one
  address (the address limit) and 100 from a thousand (the account limit).
- Spellings: names the user lookup matches to one account (accent variants under
  MariaDB's default collation) share that account's counters.
- IPv6: the addresses of one /64 are one client.
- Shared addresses: others' failed refreshes never refuse a valid refresh token.
"""

from __future__ import annotations

import json
import typing as t
import unicodedata
import uuid

import pytest
import sqlalchemy as sa
import time_machine
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import require_backend

from flask_jwt_authentication.errors import ConfigurationError
from flask_jwt_authentication.limits import address_key
from flask_jwt_authentication.passwords import werkzeug_verifier

MakeApp = t.Callable[..., AppEnv]
START = 1_900_000_000
ATTACKER = "203.0.113.66"
OWNER = "198.51.100.7"


def limited(make_app: MakeApp, *names: str, **config: t.Any) -> AppEnv:
    env = make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_KEY_PREFIX=f"flood-{uuid.uuid4().hex}:",
        **config,
    )
    for name in names or ("alice",):
        env.create_user(name)
    return env


def login(env: AppEnv, username: str, password: str, address: str) -> int:
    response = env.app.test_client().post(
        f"{PREFIX}/tokens",
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )
    if response.status_code == 429:
        assert response.get_json()["error"] == "too_many_requests"
        assert int(response.headers["Retry-After"]) >= 1
    return response.status_code


class Verifications:
    """Counts the password checks made against each stored hash."""

    def __init__(self, env: AppEnv) -> None:
        self.by_hash: dict[str, int] = {}
        env.jwt.password_verifier(dummy_hash=env.jwt.dummy_password_hash)(self)

    def __call__(self, stored_hash: str, password: str) -> bool:
        self.by_hash[stored_hash] = self.by_hash.get(stored_hash, 0) + 1
        return werkzeug_verifier(stored_hash, password)

    def of(self, env: AppEnv, username: str) -> int:
        [row] = [r for r in env.table_rows("users") if r["username"] == username]
        return self.by_hash.get(row["password_hash"], 0)


# Lock-out -----------------------------------------------------------------------------


def test_wrong_passwords_from_one_address_do_not_lock_the_owner_out(
    make_app: MakeApp,
) -> None:
    env = limited(make_app)
    with time_machine.travel(START, tick=False):
        for i in range(5):
            assert login(env, "alice", f"guess-{i}", ATTACKER) == 401
        assert login(env, "alice", "guess-5", ATTACKER) == 429
        assert login(env, "alice", PASSWORD, ATTACKER) == 429
        # The owner, from its own address, is not affected.
        assert login(env, "alice", PASSWORD, OWNER) == 200
        # Nor are its own mistakes counted with the attacker's.
        for i in range(4):
            assert login(env, "alice", f"typo-{i}", OWNER) == 401
        assert login(env, "alice", PASSWORD, OWNER) == 200
        assert login(env, "alice", PASSWORD, ATTACKER) == 429


def test_guesses_per_account_per_hour_from_one_address(make_app: MakeApp) -> None:
    """Five per five minutes per username and address, but 50 per hour per
    address: 50 guesses in the hour, every one a password check."""
    env = limited(make_app)
    checks = Verifications(env)
    answered = {401: 0, 429: 0}
    for window in range(12):
        with time_machine.travel(START + window * 300, tick=False):
            for i in range(10):
                answered[login(env, "alice", f"guess-{window}-{i}", ATTACKER)] += 1
    assert answered == {401: 50, 429: 70}
    assert checks.of(env, "alice") == 50
    with time_machine.travel(START + 3601, tick=False):
        assert login(env, "alice", "after the hour", ATTACKER) == 401


def test_guesses_per_account_per_hour_from_a_thousand_addresses(
    make_app: MakeApp,
) -> None:
    """Guessing spread over 1,000 addresses meets the account limit: 100 guesses
    per hour. The owner logs in while it holds; once it is exhausted, everyone
    waits for the window to end (the price of bounding distributed guessing)."""
    env = limited(make_app)
    checks = Verifications(env)
    addresses = [f"10.{n // 250}.{n % 250}.1" for n in range(1000)]
    answered = {200: 0, 401: 0, 429: 0}
    with time_machine.travel(START, tick=False):
        for n, address in enumerate(addresses):
            answered[login(env, "alice", f"guess-{n}", address)] += 1
            if n == 50:
                # Halfway to the account limit, the owner gets in.
                assert login(env, "alice", PASSWORD, OWNER) == 200
        assert answered == {200: 0, 401: 100, 429: 900}
        assert checks.of(env, "alice") == 101  # 100 guesses and the owner
        assert login(env, "alice", PASSWORD, OWNER) == 429
        # Other accounts are not affected.
        env.create_user("bob")
        assert login(env, "bob", PASSWORD, addresses[0]) == 200
    with time_machine.travel(START + 3601, tick=False):
        assert login(env, "alice", PASSWORD, OWNER) == 200


# Spellings of one account -------------------------------------------------------------


def _accent_folding_lookup(env: AppEnv) -> None:
    """A user lookup that, like a case- and accent-insensitive collation, finds
    ``alice`` for ``ÀLÏÇË``."""

    def fold(name: str) -> str:
        decomposed = unicodedata.normalize("NFKD", name.casefold())
        return "".join(c for c in decomposed if not unicodedata.combining(c))

    users = env.db.metadata.tables["users"]

    @env.jwt.user_lookup
    def find(username: str) -> t.Any:
        for row in env.db.session.execute(sa.select(users.c.id, users.c.username)):
            if fold(row.username) == fold(username):
                return env.db.session.get(env.User, row.id)
        return None


VARIANTS = ["alice", "alicé", "àlice", "ÀLÏÇË", "ålice"]


def _spelling_attack(env: AppEnv) -> None:
    checks = Verifications(env)
    with time_machine.travel(START, tick=False):
        results = [login(env, name, "wrong", ATTACKER) for name in VARIANTS * 2]
        # Five guesses in all, whatever the spelling; then every spelling waits,
        # the right password included.
        assert results == [401] * 5 + [429] * 5
        assert checks.of(env, "alice") == 5
        assert login(env, "ãlice", PASSWORD, ATTACKER) == 429
        assert login(env, "ãlice", PASSWORD, OWNER) == 200


def test_spellings_that_reach_one_account_share_its_counter(
    make_app: MakeApp,
) -> None:
    env = limited(make_app)
    _accent_folding_lookup(env)
    _spelling_attack(env)


def test_accent_variants_on_mariadb_share_the_accounts_counter(
    make_app: MakeApp,
) -> None:
    """MariaDB's default collation, utf8mb4_general_ci, matches ``alicé`` to
    ``alice`` with the plain ``filter_by(username=...)`` lookup."""
    url = require_backend("mariadb")
    env = limited(make_app, database_url=url)
    _spelling_attack(env)


# IPv6 ---------------------------------------------------------------------------------


def test_the_addresses_of_one_ipv6_network_are_one_client(make_app: MakeApp) -> None:
    env = limited(make_app, JWT_AUTH_FLOOD_IP_LIMIT="10 per hour")
    with time_machine.travel(START, tick=False):
        results = [
            login(env, f"nobody-{n}", "wrong", f"2001:db8:1:2::{n:x}")
            for n in range(60)
        ]
        assert results == [401] * 10 + [429] * 50
        # Another /64 is another client.
        assert login(env, "nobody", "wrong", "2001:db8:1:3::1") == 401
        # Over the address limit even the right password waits (it is counted
        # before the password is checked).
        assert login(env, "alice", PASSWORD, "2001:db8:1:2:ffff::1") == 429
        for n in range(10):
            assert login(env, f"other-{n}", "wrong", "192.0.2.1") == 401
        assert login(env, "other", "wrong", "::ffff:192.0.2.1") == 429


def test_the_ipv6_prefix_length_is_configurable(make_app: MakeApp) -> None:
    env = limited(
        make_app, JWT_AUTH_FLOOD_IP_LIMIT="2 per hour", JWT_AUTH_IPV6_PREFIX_LENGTH=128
    )
    with time_machine.travel(START, tick=False):
        for n in range(5):
            assert login(env, f"nobody-{n}", "wrong", f"2001:db8::{n + 1:x}") == 401
    assert address_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:2:3:4:5:6", 48) == "2001:db8:1::/48"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("unix-socket") == "unix-socket"


@pytest.mark.parametrize("value", [0, 16, 129, "64", True, 64.0])
def test_an_invalid_ipv6_prefix_length_is_refused(
    make_app: MakeApp, value: t.Any
) -> None:
    with pytest.raises(ConfigurationError, match="JWT_AUTH_IPV6_PREFIX_LENGTH"):
        make_app(JWT_AUTH_IPV6_PREFIX_LENGTH=value)


# Shared addresses and refresh tokens --------------------------------------------------


def test_failed_refreshes_of_others_never_refuse_a_valid_token(
    make_app: MakeApp,
) -> None:
    """An office behind one NAT address: one client's hundred bad refreshes in
    an hour leave every other client's valid refresh token working."""
    env = limited(make_app, "alice", "bob")
    client = env.app.test_client()
    office = {"REMOTE_ADDR": "192.0.2.10"}
    with time_machine.travel(START, tick=False):
        pair = client.post(
            f"{PREFIX}/tokens",
            json={"username": "bob", "password": PASSWORD},
            environ_base=office,
        ).get_json()
        statuses = [
            client.post(
                f"{PREFIX}/refresh",
                json={"refresh_token": f"guess-{n:040d}"},
                environ_base=office,
            ).status_code
            for n in range(101)
        ]
        assert statuses == [401] * 100 + [429]
        for _ in range(3):
            response = client.post(
                f"{PREFIX}/refresh",
                json={"refresh_token": pair["refresh_token"]},
                environ_base=office,
            )
            assert response.status_code == 200, response.get_data(as_text=True)
            pair = response.get_json()
        revoked = client.post(
            f"{PREFIX}/revoke",
            data={"token": pair["refresh_token"]},
            environ_base=office,
        )
        assert revoked.status_code == 200
        # A token that no longer works is a failure like any other.
        again = client.post(
            f"{PREFIX}/refresh",
            json={"refresh_token": pair["refresh_token"]},
            environ_base=office,
        )
        assert again.status_code == 429
    assert json.loads(again.get_data())["error"] == "too_many_requests"

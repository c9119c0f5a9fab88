"""DPoP server nonces (RFC 9449 §8, §9) and the proofs seen kept in Redis.

Nonces: a token request whose proof lacks the current nonce gets 400
``use_dpop_nonce`` with a ``DPoP-Nonce`` header, a protected route 401 with a
``DPoP error="use_dpop_nonce"`` challenge; with the nonce the request goes
through; every answer to a DPoP request carries the nonce to use next.

Redis (``JWT_AUTH_DPOP_REDIS_URL``, or the revocation feed's Redis in push
mode): a replay is refused by every worker, no proof row is written to the
database, and a Redis outage is a 503 that writes nothing.
"""

from __future__ import annotations

import time
import typing as t
import uuid

import pytest
import redis
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import require_backend
from test_dpop import Client
from test_dpop_flow import BASE
from test_dpop_flow import ME
from test_resource_server import closed_port

from flask_jwt_authentication.dpop import access_token_hash
from flask_jwt_authentication.dpop_state import NONCE_PERIOD
from flask_jwt_authentication.dpop_state import REDIS_PREFIX
from flask_jwt_authentication.dpop_state import Nonces
from flask_jwt_authentication.errors import ConfigurationError

SECRET = "s" * 64  # the SECRET_KEY of the test apps (conftest.build_app)
PROOFS = "jwt_auth_dpop_proofs"


def signed(key: Client, method: str, path: str, **claims: t.Any) -> str:
    return key.proof(
        method, BASE + path, iat=int(time.time()), jti=str(uuid.uuid4()), **claims
    )


def log_in(http: t.Any, key: Client, **claims: t.Any) -> t.Any:
    return http.post(
        f"{PREFIX}/tokens",
        json={"username": "alice", "password": PASSWORD},
        headers={"DPoP": signed(key, "POST", f"{PREFIX}/tokens", **claims)},
    )


def call(http: t.Any, token: str, key: Client, **claims: t.Any) -> t.Any:
    proof = signed(key, "GET", ME, ath=access_token_hash(token), **claims)
    return http.get(ME, headers={"Authorization": f"DPoP {token}", "DPoP": proof})


# Nonces -----------------------------------------------------------------------


def test_a_nonce_is_good_for_its_period_and_the_next() -> None:
    nonces = Nonces(SECRET.encode())
    start = 1_900_000_020 - 1_900_000_020 % NONCE_PERIOD
    nonce = nonces.current(start)
    assert nonces.current(start + NONCE_PERIOD - 1) == nonce
    assert nonces.current(start + NONCE_PERIOD) != nonce
    assert nonces.accepts(nonce, start + 2 * NONCE_PERIOD - 1)
    assert not nonces.accepts(nonce, start + 2 * NONCE_PERIOD)
    assert not nonces.accepts(nonce, start - 1)  # not yet handed out
    assert not Nonces(b"another secret").accepts(nonce, start)
    for wrong in (None, 1, "", nonce[:-1], "é" + nonce):
        assert not nonces.accepts(wrong, start)
    assert len(nonce) == 24


@pytest.fixture
def nonce_env(make_app: t.Callable[..., AppEnv], database_url: str) -> AppEnv:
    env = make_app(database_url, JWT_AUTH_DPOP="allowed", JWT_AUTH_DPOP_NONCE=True)
    env.create_user("alice")
    return env


def test_a_log_in_without_the_nonce_is_told_the_nonce(nonce_env: AppEnv) -> None:
    http = nonce_env.app.test_client()
    key = Client()
    before = nonce_env.row_counts()
    response = log_in(http, key)
    assert response.status_code == 400
    assert response.get_json()["error"] == "use_dpop_nonce"
    nonce = response.headers["DPoP-Nonce"]
    assert nonce == Nonces(SECRET.encode()).current(time.time())
    assert response.headers["Cache-Control"] == "no-store"
    assert nonce_env.row_counts() == before  # no session, no proof used up
    again = log_in(http, key, nonce=nonce)
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["token_type"] == "DPoP"
    assert again.headers["DPoP-Nonce"] == nonce


def test_the_nonce_is_asked_for_before_the_password(nonce_env: AppEnv) -> None:
    """A first log-in without a nonce is told it at once, whatever its password
    (so the password is checked once, with the nonce); every answer of the
    token endpoints carries the nonce, a wrong password's too."""
    http = nonce_env.app.test_client()
    key = Client()
    body = {"username": "alice", "password": "wrong"}
    proof = signed(key, "POST", f"{PREFIX}/tokens")
    first = http.post(f"{PREFIX}/tokens", json=body, headers={"DPoP": proof})
    assert (first.status_code, first.get_json()["error"]) == (400, "use_dpop_nonce")
    nonce = first.headers["DPoP-Nonce"]
    proof = signed(key, "POST", f"{PREFIX}/tokens", nonce=nonce)
    wrong = http.post(f"{PREFIX}/tokens", json=body, headers={"DPoP": proof})
    assert (wrong.status_code, wrong.get_json()["error"]) == (401, "invalid_grant")
    assert wrong.headers["DPoP-Nonce"] == nonce
    # A Bearer log-in is left alone, and learns the nonce too.
    plain = http.post(
        f"{PREFIX}/tokens", json={"username": "alice", "password": PASSWORD}
    )
    assert plain.status_code == 200
    assert plain.get_json()["token_type"] == "Bearer"
    assert plain.headers["DPoP-Nonce"] == nonce


def test_an_old_or_made_up_nonce_is_refused(nonce_env: AppEnv) -> None:
    http = nonce_env.app.test_client()
    key = Client()
    old = Nonces(SECRET.encode()).current(time.time() - 2 * NONCE_PERIOD)
    forged = Nonces(b"guessed").current(time.time())
    for nonce in (old, forged):
        response = log_in(http, key, nonce=nonce)
        assert response.status_code == 400
        assert response.get_json()["error"] == "use_dpop_nonce"
        assert "not current" in response.get_json()["error_description"]
        assert response.headers["DPoP-Nonce"] not in (old, forged)


def test_calls_and_refreshes_need_the_nonce(nonce_env: AppEnv) -> None:
    http = nonce_env.app.test_client()
    key = Client()
    nonce = log_in(http, key).headers["DPoP-Nonce"]
    pair = log_in(http, key, nonce=nonce).get_json()
    token = pair["access_token"]
    response = call(http, token, key)
    assert response.status_code == 401
    assert response.get_json()["error"] == "use_dpop_nonce"
    challenge = response.headers["WWW-Authenticate"]
    assert 'DPoP realm="testapp", error="use_dpop_nonce"' in challenge
    assert response.headers["DPoP-Nonce"] == nonce
    ok = call(http, token, key, nonce=nonce)
    assert ok.status_code == 200
    assert ok.headers["DPoP-Nonce"] == nonce
    # The nonce does not make a proof reusable.
    proof = signed(key, "GET", ME, ath=access_token_hash(token), nonce=nonce)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    assert http.get(ME, headers=headers).status_code == 200
    replayed = http.get(ME, headers=headers)
    assert replayed.status_code == 401
    assert replayed.get_json()["error"] == "invalid_dpop_proof"
    refresh_url = f"{PREFIX}/refresh"
    body = {"refresh_token": pair["refresh_token"]}
    bare = http.post(
        refresh_url, json=body, headers={"DPoP": signed(key, "POST", refresh_url)}
    )
    assert (bare.status_code, bare.get_json()["error"]) == (400, "use_dpop_nonce")
    with_nonce = signed(key, "POST", refresh_url, nonce=nonce)
    refreshed = http.post(refresh_url, json=body, headers={"DPoP": with_nonce})
    assert refreshed.status_code == 200, refreshed.get_json()


def test_bearer_clients_are_left_alone(nonce_env: AppEnv) -> None:
    http = nonce_env.app.test_client()
    pair = http.post(
        f"{PREFIX}/tokens", json={"username": "alice", "password": PASSWORD}
    ).get_json()
    assert pair["token_type"] == "Bearer"
    response = http.get(ME, headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert response.status_code == 200
    assert "DPoP-Nonce" not in response.headers


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"JWT_AUTH_DPOP_NONCE": True}, "JWT_AUTH_DPOP is off"),
        (
            {
                "JWT_AUTH_DPOP": "allowed",
                "JWT_AUTH_DPOP_NONCE": True,
                "JWT_AUTH_SECRET_KEY": "k" * 64,
                "SECRET_KEY": None,
            },
            "needs SECRET_KEY",
        ),
        (
            {
                "JWT_AUTH_DPOP": "allowed",
                "JWT_AUTH_DPOP_NONCE": True,
                "JWT_AUTH_SECRET_KEY": "k" * 64,
                "SECRET_KEY": "short",
            },
            "at least 32 bytes",
        ),
        ({"JWT_AUTH_DPOP_NONCE": "sometimes"}, "must be true or false"),
        ({"JWT_AUTH_DPOP_REDIS_URL": "http://redis"}, "redis://"),
        ({"JWT_AUTH_DPOP_REDIS_URL": "redis://localhost"}, "JWT_AUTH_DPOP is off"),
    ],
)
def test_a_half_configured_nonce_or_redis_is_refused_at_start_up(
    make_app: t.Callable[..., AppEnv], config: dict[str, t.Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        make_app(**config)
    assert caught.value.setting is not None
    assert caught.value.setting.startswith("JWT_AUTH_DPOP_")


# Algorithms -------------------------------------------------------------------


def test_the_accepted_algorithms_are_a_setting(
    make_app: t.Callable[..., AppEnv],
) -> None:
    env = make_app(JWT_AUTH_DPOP="allowed", JWT_AUTH_DPOP_ALGORITHMS="EdDSA, ES256")
    env.create_user("alice")
    http = env.app.test_client()
    for kind in ("ES256", "EdDSA"):
        assert log_in(http, Client(kind)).status_code == 200
    metadata = http.get("/.well-known/oauth-authorization-server").get_json()
    assert metadata["dpop_signing_alg_values_supported"] == ["EdDSA", "ES256"]
    anonymous = http.get(ME)
    assert 'algs="EdDSA ES256"' in anonymous.headers["WWW-Authenticate"]
    only = make_app(JWT_AUTH_DPOP="allowed", JWT_AUTH_DPOP_ALGORITHMS=["ES256"])
    only.create_user("alice")
    response = log_in(only.app.test_client(), Client("EdDSA"))
    assert response.status_code == 400
    assert "algorithm is not accepted" in response.get_json()["error_description"]


@pytest.mark.parametrize("value", ["HS256", [], "ES256 none", 7])
def test_an_algorithm_that_cannot_sign_proofs_is_refused(
    make_app: t.Callable[..., AppEnv], value: object
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        make_app(JWT_AUTH_DPOP="allowed", JWT_AUTH_DPOP_ALGORITHMS=value)
    assert caught.value.setting == "JWT_AUTH_DPOP_ALGORITHMS"


# Proofs seen, in Redis --------------------------------------------------------


@pytest.fixture
def redis_url() -> str:
    return require_backend("redis")


def proof_keys(url: str) -> list[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return list(client.scan_iter(match=REDIS_PREFIX + "*", count=1000))
    finally:
        client.close()


@pytest.mark.parametrize("setting", ["dpop", "push"])
def test_redis_keeps_the_proofs_for_every_worker(
    make_app: t.Callable[..., AppEnv], database_url: str, redis_url: str, setting: str
) -> None:
    config: dict[str, t.Any] = (
        {"JWT_AUTH_DPOP_REDIS_URL": redis_url}
        if setting == "dpop"
        else {
            "JWT_AUTH_REVOCATION_SYNC": "push",
            "JWT_AUTH_REVOCATION_REDIS_URL": redis_url,
        }
    )
    # Two workers of one application: one database, one Redis.
    second = make_app(database_url, JWT_AUTH_DPOP="allowed", **config)
    first = make_app(database_url, JWT_AUTH_DPOP="allowed", **config)
    first.create_user("alice")
    key = Client()
    response = log_in(first.app.test_client(), key)
    assert response.status_code == 200, response.get_json()
    token = response.get_json()["access_token"]
    proof = signed(key, "GET", ME, ath=access_token_hash(token))
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    assert first.app.test_client().get(ME, headers=headers).status_code == 200
    replayed = second.app.test_client().get(ME, headers=headers)
    assert replayed.status_code == 401
    assert "used before" in replayed.get_json()["error_description"]
    assert first.row_counts()[PROOFS] == 0
    client = redis.Redis.from_url(redis_url)
    try:
        mine = [k for k in proof_keys(redis_url) if client.ttl(k) > 0]
        assert mine, "the proofs are in Redis"
        # Each is forgotten when its window has passed: 60 s after its iat.
        assert all(0 < client.ttl(k) <= 61 for k in mine)
        for k in mine:
            assert key.jkt.encode() not in k
    finally:
        client.close()


def test_redis_down_is_a_503_that_writes_nothing(
    make_app: t.Callable[..., AppEnv],
) -> None:
    env = make_app(
        JWT_AUTH_DPOP="allowed",
        JWT_AUTH_DPOP_REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0",
    )
    env.create_user("alice")
    before = env.row_counts()
    response = log_in(env.app.test_client(), Client())
    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert "Retry-After" in response.headers
    assert env.row_counts() == before


def test_a_forged_proof_leaves_nothing_in_redis(
    make_app: t.Callable[..., AppEnv], redis_url: str
) -> None:
    """The SET is sent before the signature is verified; a proof whose
    signature fails is deleted again, and every connection goes back to the
    pool, whatever the outcome."""
    env = make_app(JWT_AUTH_DPOP="allowed", JWT_AUTH_DPOP_REDIS_URL=redis_url)
    env.create_user("alice")
    http = env.app.test_client()
    key = Client()
    token = log_in(http, key).get_json()["access_token"]
    jti = str(uuid.uuid4())
    claims = {"ath": access_token_hash(token)}
    genuine = key.proof("GET", BASE + ME, iat=int(time.time()), jti=jti, **claims)
    forged = genuine[:-8] + (
        "AAAAAAAA" if not genuine.endswith("AAAAAAAA") else "BBBBBBBB"
    )
    for _ in range(3):
        refused = http.get(
            ME, headers={"Authorization": f"DPoP {token}", "DPoP": forged}
        )
        assert refused.status_code == 401
        assert "signature" in refused.get_json()["error_description"]
    # Nothing of the forged proofs remained: the genuine one is still fresh.
    headers = {"Authorization": f"DPoP {token}", "DPoP": genuine}
    assert http.get(ME, headers=headers).status_code == 200
    assert http.get(ME, headers=headers).status_code == 401
    proofs = env.app.extensions["jwt_authentication"].dpop.proofs
    assert proofs._pool._in_use_connections == set()

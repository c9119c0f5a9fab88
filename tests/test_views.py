"""The HTTP endpoints (docs/api.rst), through Flask's test client on a real database.

Every test asserts what a client sees (status, JSON body, headers) and what the
database holds afterwards; refused requests must write nothing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
import typing as t
from pathlib import Path

import jwt as pyjwt
import pytest
import sqlalchemy as sa
from conftest import ALGORITHMS
from conftest import HASH_METHOD
from conftest import KEYS
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import bearer
from conftest import build_app
from conftest import key_config
from conftest import login
from conftest import malformed_chunked
from conftest import raw_http
from conftest import tokens_for
from flask import Flask

from flask_jwt_authentication.passwords import werkzeug_verifier

TOKENS = f"{PREFIX}/tokens"
REFRESH = f"{PREFIX}/refresh"
LOGOUT = f"{PREFIX}/logout"
JWKS = "/.well-known/jwks.json"
REALM = "testapp"  # the app's name: the default issuer and realm

ACCESS = "access jwt authentication"
USE = "use jwt authentication"

PAIR_MEMBERS = {
    "token",
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "refresh_expires_in",
}
CLAIMS = {"iss", "sub", "uid", "iat", "nbf", "exp", "jti", "sid", "auth_time"}
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

PUBLIC_KEY_FILES = {
    "RS": "rsa2048",
    "ES256": "ec256",
    "ES384": "ec384",
    "ES512": "ec521",
}


# Helpers --------------------------------------------------------------------------


def verification_key(algorithm: str) -> bytes | str:
    """What PyJWT verifies a token of ``algorithm`` with, as ``key_config`` set it."""
    config = key_config(algorithm)
    if algorithm.startswith("HS"):
        return t.cast(str, config["JWT_AUTH_SECRET_KEY"])
    name = PUBLIC_KEY_FILES.get(algorithm) or PUBLIC_KEY_FILES[algorithm[:2]]
    return (KEYS / f"{name}.pub.pem").read_bytes()


def assert_error(response: t.Any, status: int | tuple[int, ...], code: str) -> None:
    """The contract's error response: JSON {"error", "error_description"}, no HTML."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    text = response.get_data(as_text=True)
    assert "<html" not in text.lower()
    assert "Traceback" not in text
    body = json.loads(text)
    assert set(body) == {"error", "error_description"}
    assert body["error"] == code
    assert isinstance(body["error_description"], str)
    assert body["error_description"]


def assert_pair(response: t.Any, env: AppEnv | None = None) -> dict[str, t.Any]:
    """The contract's token pair body, with ``Cache-Control: no-store``."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = t.cast(dict[str, t.Any], response.get_json())
    assert set(body) == PAIR_MEMBERS
    assert isinstance(body["access_token"], str)
    assert body["access_token"].count(".") == 2
    assert body["token"] == body["access_token"]
    assert body["token_type"] == "Bearer"
    config = env.app.config if env is not None else {}
    assert body["expires_in"] == config.get("JWT_AUTH_ACCESS_TOKEN_TTL", 900)
    assert body["refresh_expires_in"] == config.get(
        "JWT_AUTH_REFRESH_TOKEN_TTL", 1209600
    )
    # At least 128 bits: 22 base64url characters.
    assert isinstance(body["refresh_token"], str)
    assert len(body["refresh_token"]) >= 22
    assert body["refresh_token"] != body["access_token"]
    return body


def assert_invalid_token(response: t.Any) -> None:
    """401 invalid_token with an RFC 6750 challenge carrying the error."""
    assert_error(response, 401, "invalid_token")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'realm="{REALM}"' in challenge
    assert 'error="invalid_token"' in challenge


def refresh(client: t.Any, refresh_token: t.Any) -> t.Any:
    return client.post(REFRESH, json={"refresh_token": refresh_token})


def me(client: t.Any, access_token: str) -> t.Any:
    return client.get("/api/me", headers=bearer(access_token))


def post_raw(client: t.Any, path: str, data: bytes, **kwargs: t.Any) -> t.Any:
    kwargs.setdefault("content_type", "application/json")
    return client.post(path, data=data, **kwargs)


@contextlib.contextmanager
def nothing_written(env: AppEnv, revocations: int = 0) -> t.Iterator[None]:
    """Assert that the block adds or removes no row in any table (but for
    ``revocations`` rows of the revocation log)."""
    before = env.row_counts()
    yield
    after = env.row_counts()
    after["jwt_auth_revocations"] -= revocations
    assert after == before


def all_values(env: AppEnv) -> list[str]:
    """Every value of every row of every table, as text."""
    return [
        str(value)
        for name in env.db.metadata.tables
        for row in env.table_rows(name)
        for value in row.values()
    ]


def decode(token: str, algorithm: str = "HS256", **kwargs: t.Any) -> dict[str, t.Any]:
    return t.cast(
        dict[str, t.Any],
        pyjwt.decode(
            token,
            verification_key(algorithm),
            algorithms=[algorithm],
            issuer=REALM,
            options={"require": sorted(CLAIMS)},
            **kwargs,
        ),
    )


def forge(env: AppEnv, access_token: str, **changes: t.Any) -> str:
    """A token signed with the app's HS256 key, from a real one with ``changes``."""
    claims = decode(access_token)
    claims.update(changes)
    header = pyjwt.get_unverified_header(access_token)
    return pyjwt.encode(
        claims,
        t.cast(str, key_config("HS256")["JWT_AUTH_SECRET_KEY"]),
        algorithm="HS256",
        headers={"kid": header["kid"], "typ": "at+jwt"},
    )


def forge_header(access_token: str, **changes: t.Any) -> str:
    """The real token's claims under another header, signed with the app's HS256
    key by hand (PyJWT refuses to write a kid that is not a string)."""
    header = {**pyjwt.get_unverified_header(access_token), **changes}

    def segment(value: t.Any) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{segment(header)}.{segment(decode(access_token))}"
    secret = t.cast(str, key_config("HS256")["JWT_AUTH_SECRET_KEY"]).encode()
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def permissions(env: AppEnv, denied: set[str]) -> list[tuple[t.Any, str]]:
    """Register a checker that denies the names in ``denied`` (mutable) and grants
    the contract's defaults otherwise; returns the list of calls it sees."""
    calls: list[tuple[t.Any, str]] = []

    @env.jwt.permission_checker
    def check(user: t.Any, permission: str) -> bool:
        calls.append((getattr(user, "username", None), permission))
        if permission in denied:
            return False
        if permission == ACCESS:
            return True
        return permission == USE and user is not None

    return calls


def expire_refresh_tokens(env: AppEnv) -> None:
    """Move every refresh token's expiry into the past."""
    with env.app.app_context():
        table = env.db.metadata.tables["jwt_auth_refresh_tokens"]
        env.db.session.execute(sa.update(table).values(expires_at=int(time.time()) - 1))
        env.db.session.commit()


@pytest.fixture
def hs256(make_app: t.Callable[..., AppEnv]) -> AppEnv:
    """An HS256 app with a known secret and the user ``alice``."""
    env = make_app(**key_config("HS256"))
    env.create_user("alice")
    return env


# Malformed bodies, shared by the three endpoints -----------------------------------

#: Bodies that are not a JSON object at all (400, or 415 for "not JSON").
NOT_AN_OBJECT: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("whitespace", b"  \n "),
    ("not json", b"username=alice&password=x"),
    ("truncated", b'{"username": "alice"'),
    ("array", b'["alice", "x"]'),
    ("string", b'"alice"'),
    ("number", b"42"),
    ("null", b"null"),
    ("true", b"true"),
    ("invalid utf-8", b'{"username": "\xff\xfe", "password": "x"}'),
    ("utf-16", '{"username": "alice", "password": "x"}'.encode("utf-16")),
    ("bom", b'\xef\xbb\xbf{"username": "alice", "password": "x"}'),
    ("NaN", b'{"username": "alice", "password": NaN}'),
    ("Infinity", b'{"username": "alice", "password": Infinity}'),
    ("-Infinity", b'{"username": -Infinity, "password": "x"}'),
    ("deep nesting", b"[" * 5000 + b"]" * 5000),
    ("huge integer", b'{"username": ' + b"9" * 5000 + b', "password": "x"}'),
]


def field_cases(max_length: int) -> list[tuple[str, t.Any]]:
    """Values of a string field that must be refused with 400."""
    return [
        ("missing", ...),
        ("int", 1),
        ("float", 1.5),
        ("bool", True),
        ("null", None),
        ("list", ["x"]),
        ("object", {"x": "y"}),
        ("empty", ""),
        ("oversize", "a" * (max_length + 1)),
        ("NUL", "ali\x00ce"),
        ("lone high surrogate", "\ud800"),
        ("lone low surrogate", "x\udfff"),
    ]


def json_body(**fields: t.Any) -> bytes:
    """A JSON object of ``fields``, dropping those set to ``...``; lone surrogates
    travel as JSON escapes (``ensure_ascii``), as a client would send them."""
    return json.dumps({k: v for k, v in fields.items() if v is not ...}).encode()


# POST {prefix}/tokens --------------------------------------------------------------


def test_login_answers_the_token_pair(env: AppEnv, client: t.Any) -> None:
    before = env.row_counts()
    body = assert_pair(login(client), env)
    after = env.row_counts()
    assert after["jwt_auth_sessions"] == before["jwt_auth_sessions"] + 1
    assert after["jwt_auth_refresh_tokens"] == before["jwt_auth_refresh_tokens"] + 1
    assert me(client, body["access_token"]).get_json()["username"] == "alice"


def test_login_ttls_come_from_configuration(make_app: t.Callable[..., AppEnv]) -> None:
    env = make_app(
        JWT_AUTH_ACCESS_TOKEN_TTL=60,
        JWT_AUTH_REFRESH_TOKEN_TTL=3600,
        **key_config("HS256"),
    )
    env.create_user("alice")
    client = env.app.test_client()
    body = assert_pair(login(client), env)
    assert body["expires_in"] == 60
    assert body["refresh_expires_in"] == 3600
    claims = decode(body["access_token"])
    assert claims["exp"] - claims["iat"] == 60
    (row,) = env.table_rows("jwt_auth_refresh_tokens")
    assert row["expires_at"] - row["issued_at"] == 3600
    body = assert_pair(refresh(client, body["refresh_token"]), env)
    assert body["expires_in"] == 60
    assert body["refresh_expires_in"] == 3600


def test_access_token_claims_and_header(hs256: AppEnv) -> None:
    client = hs256.app.test_client()
    first = tokens_for(client)
    second = tokens_for(client)
    claims = decode(first["access_token"])
    assert set(claims) == CLAIMS
    with hs256.app.app_context():
        user = hs256.db.session.execute(
            sa.select(hs256.User).filter_by(username="alice")
        ).scalar_one()
        uid = user.id
    assert claims["uid"] == uid
    assert claims["sub"] == str(uid)
    assert claims["iss"] == REALM
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] == claims["iat"] + 900
    header = pyjwt.get_unverified_header(first["access_token"])
    assert header["alg"] == "HS256"
    assert header["typ"] == "at+jwt"
    assert isinstance(header["kid"], str)
    assert header["kid"]
    # Every log-in is a session of its own, and every token has its own jti.
    other = decode(second["access_token"])
    assert other["jti"] != claims["jti"]
    assert other["sid"] != claims["sid"]
    session_ids = {str(row["id"]) for row in hs256.table_rows("jwt_auth_sessions")}
    assert session_ids == {claims["sid"], other["sid"]}


def test_access_token_carries_the_configured_audience(
    make_app: t.Callable[..., AppEnv],
) -> None:
    env = make_app(JWT_AUTH_AUDIENCE="https://api.example", **key_config("HS256"))
    env.create_user("alice")
    client = env.app.test_client()
    pair = tokens_for(client)
    claims = decode(pair["access_token"], audience="https://api.example")
    assert set(claims) == CLAIMS | {"aud"}
    assert claims["aud"] == "https://api.example"
    assert me(client, pair["access_token"]).status_code == 200


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_full_flow(make_app: t.Callable[..., AppEnv], algorithm: str) -> None:
    """Log in, call, check the JWKS, refresh, call, log out, call again."""
    env = make_app(**key_config(algorithm))
    env.create_user("alice")
    client = env.app.test_client()

    first = assert_pair(login(client), env)
    access = first["access_token"]
    claims = decode(access, algorithm)
    assert set(claims) == CLAIMS
    header = pyjwt.get_unverified_header(access)
    assert header["alg"] == algorithm
    assert header["typ"] == "at+jwt"
    assert header["kid"]
    r = me(client, access)
    assert r.status_code == 200
    assert r.get_json() == {"uid": claims["uid"], "username": "alice"}

    r = client.get(JWKS)
    assert r.status_code == 200
    keys = r.get_json()["keys"]
    if algorithm.startswith("HS"):
        assert keys == []
    else:
        (jwk,) = [k for k in keys if k.get("kid") == header["kid"]]
        assert not PRIVATE_JWK_MEMBERS & set(jwk)
        verified = pyjwt.decode(
            access, pyjwt.PyJWK(jwk), algorithms=[algorithm], issuer=REALM
        )
        assert verified == claims

    second = assert_pair(refresh(client, first["refresh_token"]), env)
    renewed = decode(second["access_token"], algorithm)
    assert renewed["sid"] == claims["sid"]
    assert renewed["jti"] != claims["jti"]
    assert second["refresh_token"] != first["refresh_token"]
    assert me(client, second["access_token"]).status_code == 200

    r = client.post(LOGOUT, headers=bearer(second["access_token"]))
    assert r.status_code == 204
    assert r.get_data() == b""
    assert_invalid_token(me(client, second["access_token"]))
    assert_invalid_token(me(client, access))
    assert_error(refresh(client, second["refresh_token"]), 401, "invalid_grant")


def test_refresh_tokens_are_stored_only_as_hashes(env: AppEnv, client: t.Any) -> None:
    first = tokens_for(client)
    second = assert_pair(refresh(client, first["refresh_token"]), env)
    values = all_values(env)
    assert len(env.table_rows("jwt_auth_refresh_tokens")) == 2
    for plain in (first["refresh_token"], second["refresh_token"]):
        assert not any(plain in value for value in values)
    assert not any(PASSWORD in value for value in values)


@pytest.mark.parametrize(
    ("case", "data"), NOT_AN_OBJECT, ids=[c for c, _ in NOT_AN_OBJECT]
)
def test_login_refuses_a_body_that_is_not_a_json_object(
    env: AppEnv, client: t.Any, case: str, data: bytes
) -> None:
    with nothing_written(env):
        r = post_raw(client, TOKENS, data)
    assert_error(r, (400, 415), "invalid_request")


def test_login_refuses_form_encoded_credentials(env: AppEnv, client: t.Any) -> None:
    with nothing_written(env):
        r = client.post(TOKENS, data={"username": "alice", "password": PASSWORD})
    assert_error(r, (400, 415), "invalid_request")


@pytest.mark.parametrize("field", ["username", "password"])
@pytest.mark.parametrize(
    ("case", "value"),
    field_cases(1024),
    ids=[c for c, _ in field_cases(1024)],
)
def test_login_refuses_bad_fields(
    env: AppEnv, client: t.Any, field: str, case: str, value: t.Any
) -> None:
    fields: dict[str, t.Any] = {"username": "alice", "password": PASSWORD}
    if case == "oversize":
        value = "a" * (256 if field == "username" else 1025)
    fields[field] = value
    with nothing_written(env):
        r = post_raw(client, TOKENS, json_body(**fields))
    assert_error(r, 400, "invalid_request")


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("u" * 255, PASSWORD, id="255-character username"),
        pytest.param("alice", "p" * 1024, id="1024-character password"),
        pytest.param("\U0001f600", PASSWORD, id="surrogate pair"),
        pytest.param("alice\u202e", PASSWORD, id="bidi override"),
    ],
)
def test_login_limits_are_inclusive(
    env: AppEnv, client: t.Any, username: str, password: str
) -> None:
    """At the length limits, and with valid unicode, the request is read: 401."""
    with nothing_written(env):
        r = login(client, username, password)
    assert_error(r, 401, "invalid_grant")


def test_login_accepts_an_escaped_surrogate_pair(
    make_app: t.Callable[..., AppEnv],
) -> None:
    env = make_app()
    env.create_user("\U0001f600")
    body = b'{"username": "\\ud83d\\ude00", "password": "' + PASSWORD.encode() + b'"}'
    assert_pair(post_raw(env.app.test_client(), TOKENS, body), env)


def test_login_refuses_a_body_over_the_default_cap(env: AppEnv, client: t.Any) -> None:
    padding = " " * 16384
    data = json.dumps({"username": "alice", "password": PASSWORD}) + padding
    with nothing_written(env):
        r = post_raw(client, TOKENS, data.encode())
    assert_error(r, 413, "invalid_request")


def test_body_size_cap_is_configurable_and_exact(
    make_app: t.Callable[..., AppEnv],
) -> None:
    env = make_app(JWT_AUTH_MAX_BODY_SIZE=1024)
    env.create_user("alice")
    client = env.app.test_client()
    data = json.dumps({"username": "alice", "password": PASSWORD}).encode()
    at_cap = data + b" " * (1024 - len(data))
    with nothing_written(env):
        r = post_raw(client, TOKENS, at_cap + b" ")
    assert_error(r, 413, "invalid_request")
    assert_pair(post_raw(client, TOKENS, at_cap), env)


def _failure_users(env: AppEnv) -> dict[str, tuple[str, str]]:
    """(username, password) for each way a log-in fails."""
    env.create_user("carol", is_active=False)
    env.create_user("dave")
    env.set_user("dave", password_hash=None)
    env.create_user("erin")
    env.set_user("erin", password_hash="garbage")
    env.create_user("frank")
    env.set_user("frank", password_hash="")
    env.create_user("gina")
    env.set_user("gina", password_hash="nosuchmethod$salt$hash")
    return {
        "unknown user": ("nobody", PASSWORD),
        "wrong password": ("alice", PASSWORD + "!"),
        "disabled user": ("carol", PASSWORD),
        "no hash": ("dave", PASSWORD),
        "garbage hash": ("erin", PASSWORD),
        "empty hash": ("frank", PASSWORD),
        "unknown hash method": ("gina", PASSWORD),
    }


def _headers(response: t.Any) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers if k.lower() != "date")


def test_login_failures_are_indistinguishable(env: AppEnv, client: t.Any) -> None:
    cases = _failure_users(env)
    responses = {}
    for case, (username, password) in cases.items():
        with nothing_written(env):
            responses[case] = login(client, username, password)
        assert_error(responses[case], 401, "invalid_grant")
    reference = responses["unknown user"]
    for case, r in responses.items():
        assert r.status_code == reference.status_code, case
        assert r.get_data() == reference.get_data(), case
        assert _headers(r) == _headers(reference), case


def test_every_login_costs_one_hash_verification(env: AppEnv, client: t.Any) -> None:
    """Each failure, whatever its cause, verifies exactly one real hash: the
    user's, or the dummy one in its place; a hash the verifier cannot read costs
    the same as any other (docs/security.rst, the timing guard)."""
    cases = _failure_users(env)
    calls: list[tuple[str, str]] = []

    @env.jwt.password_verifier
    def counting(stored_hash: str, password: str) -> bool:
        # The default verifier (Werkzeug's check_password_hash), counted.
        try:
            result = werkzeug_verifier(stored_hash, password)
        except ValueError:
            calls.append(("unreadable", stored_hash))
            raise
        calls.append(("verified", stored_hash))
        return result

    for case, (username, password) in [
        *cases.items(),
        ("success", ("alice", PASSWORD)),
    ]:
        calls.clear()
        r = login(client, username, password)
        assert r.status_code == (200 if case == "success" else 401), case
        verified = [h for kind, h in calls if kind == "verified"]
        assert len(verified) == 1, (case, calls)
        # A verification that computed a hash, not one that gave up at once.
        assert verified[0].startswith(HASH_METHOD + "$"), (case, calls)


@pytest.mark.parametrize(
    "username",
    [
        "' OR 1=1 --",
        "alice' --",
        "alice'; DROP TABLE users; --",
        '" OR ""="',
        "%",
        "_",
        "alice%",
    ],
)
def test_sql_looking_usernames_are_unknown_users(
    env: AppEnv, client: t.Any, username: str
) -> None:
    with nothing_written(env):
        r = login(client, username, PASSWORD)
    assert_error(r, 401, "invalid_grant")
    # The users table is still there and alice can still log in.
    assert_pair(login(client), env)


def test_login_without_the_access_permission(env: AppEnv, client: t.Any) -> None:
    denied = {ACCESS}
    calls = permissions(env, denied)
    with nothing_written(env):
        r = login(client)
    assert_error(r, 403, "access_denied")
    assert ("alice", ACCESS) in calls
    denied.clear()
    assert_pair(login(client), env)


# POST {prefix}/refresh -------------------------------------------------------------


def test_refresh_answers_a_new_pair(env: AppEnv, client: t.Any) -> None:
    first = tokens_for(client)
    before = env.row_counts()
    second = assert_pair(refresh(client, first["refresh_token"]), env)
    after = env.row_counts()
    assert after["jwt_auth_sessions"] == before["jwt_auth_sessions"]
    assert after["jwt_auth_refresh_tokens"] == before["jwt_auth_refresh_tokens"] + 1
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    r = me(client, second["access_token"])
    assert r.status_code == 200
    assert r.get_json()["username"] == "alice"
    # The new refresh token works in turn.
    assert_pair(refresh(client, second["refresh_token"]), env)


def test_refresh_reuse_revokes_the_whole_family(env: AppEnv, client: t.Any) -> None:
    env.create_user("bob")
    first = tokens_for(client)
    other = tokens_for(client)  # another session of alice
    bobs = tokens_for(client, "bob")
    second = assert_pair(refresh(client, first["refresh_token"]), env)
    assert me(client, second["access_token"]).status_code == 200

    # The session ends: its row is updated, the revocation logged, nothing added.
    with nothing_written(env, revocations=1):
        r = refresh(client, first["refresh_token"])
    assert_error(r, 401, "invalid_grant")

    # The whole family stops working at once.
    assert_error(refresh(client, second["refresh_token"]), 401, "invalid_grant")
    assert_invalid_token(me(client, first["access_token"]))
    assert_invalid_token(me(client, second["access_token"]))
    # Other sessions, of the same user or another, are untouched.
    assert me(client, other["access_token"]).status_code == 200
    assert me(client, bobs["access_token"]).status_code == 200
    assert_pair(refresh(client, other["refresh_token"]), env)
    assert_pair(refresh(client, bobs["refresh_token"]), env)


def test_refresh_token_is_consumed_by_one_use(env: AppEnv, client: t.Any) -> None:
    first = tokens_for(client)
    assert_pair(refresh(client, first["refresh_token"]), env)
    rows = env.table_rows("jwt_auth_refresh_tokens")
    assert sorted(row["consumed_at"] is None for row in rows) == [False, True]
    assert_error(refresh(client, first["refresh_token"]), 401, "invalid_grant")
    assert_error(refresh(client, first["refresh_token"]), 401, "invalid_grant")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(secrets.token_urlsafe(32), id="random"),
        pytest.param("x", id="short"),
        pytest.param("' OR 1=1 --", id="sql"),
        pytest.param("a" * 512, id="512 characters"),
    ],
)
def test_refresh_with_an_unknown_token(env: AppEnv, client: t.Any, token: str) -> None:
    tokens_for(client)
    with nothing_written(env):
        r = refresh(client, token)
    assert_error(r, 401, "invalid_grant")


def test_access_token_is_no_refresh_token(env: AppEnv, client: t.Any) -> None:
    pair = tokens_for(client)
    with nothing_written(env):
        r = refresh(client, pair["access_token"])
    assert_error(r, 401, "invalid_grant")
    assert_pair(refresh(client, pair["refresh_token"]), env)


def test_refresh_with_an_expired_token(env: AppEnv, client: t.Any) -> None:
    pair = tokens_for(client)
    expire_refresh_tokens(env)
    with nothing_written(env):
        r = refresh(client, pair["refresh_token"])
    assert_error(r, 401, "invalid_grant")
    rows = env.table_rows("jwt_auth_refresh_tokens")
    assert [row["consumed_at"] for row in rows] == [None]


def test_refresh_after_logout(env: AppEnv, client: t.Any) -> None:
    pair = tokens_for(client)
    assert client.post(LOGOUT, headers=bearer(pair["access_token"])).status_code == 204
    with nothing_written(env):
        r = refresh(client, pair["refresh_token"])
    assert_error(r, 401, "invalid_grant")


@pytest.mark.parametrize(
    ("case", "data"), NOT_AN_OBJECT, ids=[c for c, _ in NOT_AN_OBJECT]
)
def test_refresh_refuses_a_body_that_is_not_a_json_object(
    env: AppEnv, client: t.Any, case: str, data: bytes
) -> None:
    tokens_for(client)
    with nothing_written(env):
        r = post_raw(client, REFRESH, data)
    assert_error(r, (400, 415), "invalid_request")


@pytest.mark.parametrize(
    ("case", "value"),
    field_cases(512),
    ids=[c for c, _ in field_cases(512)],
)
def test_refresh_refuses_bad_fields(
    env: AppEnv, client: t.Any, case: str, value: t.Any
) -> None:
    pair = tokens_for(client)
    with nothing_written(env):
        r = post_raw(client, REFRESH, json_body(refresh_token=value))
    assert_error(r, 400, "invalid_request")
    # The real token was not touched.
    assert_pair(refresh(client, pair["refresh_token"]), env)


def test_refresh_refuses_a_body_over_the_cap(env: AppEnv, client: t.Any) -> None:
    pair = tokens_for(client)
    data = json.dumps({"refresh_token": pair["refresh_token"]}) + " " * 16384
    with nothing_written(env):
        r = post_raw(client, REFRESH, data.encode())
    assert_error(r, 413, "invalid_request")
    assert_pair(refresh(client, pair["refresh_token"]), env)


def test_refresh_without_the_access_permission_consumes_nothing(
    env: AppEnv, client: t.Any
) -> None:
    denied: set[str] = set()
    calls = permissions(env, denied)
    pair = tokens_for(client)
    denied.add(ACCESS)
    calls.clear()
    with nothing_written(env):
        r = refresh(client, pair["refresh_token"])
    assert_error(r, 403, "access_denied")
    assert ("alice", ACCESS) in calls
    assert [
        row["consumed_at"] for row in env.table_rows("jwt_auth_refresh_tokens")
    ] == [None]
    denied.clear()
    new = assert_pair(refresh(client, pair["refresh_token"]), env)
    assert me(client, new["access_token"]).status_code == 200


def test_refresh_for_a_disabled_user(env: AppEnv, client: t.Any) -> None:
    pair = tokens_for(client)
    env.set_user("alice", is_active=False)
    # Its sessions end (one revocation logged), nothing is added.
    with nothing_written(env, revocations=1):
        r = refresh(client, pair["refresh_token"])
    assert_error(r, 401, "invalid_grant")
    assert_invalid_token(me(client, pair["access_token"]))


def test_refresh_for_a_deleted_user(env: AppEnv, client: t.Any) -> None:
    pair = tokens_for(client)
    with env.app.app_context():
        env.db.session.execute(sa.delete(env.User))
        env.db.session.commit()
    with nothing_written(env, revocations=1):
        r = refresh(client, pair["refresh_token"])
    assert_error(r, 401, "invalid_grant")


def test_refresh_with_the_refresh_cookie(make_app: t.Callable[..., AppEnv]) -> None:
    """Cookie mode (docs/spa.rst): the refresh token travels in an HttpOnly, Secure,
    SameSite=Strict cookie scoped to the refresh path, and refreshes from it."""
    env = make_app(JWT_AUTH_REFRESH_COOKIE=True)
    env.create_user("alice")
    client = env.app.test_client()
    https = {"base_url": "https://localhost"}
    r = client.post(
        TOKENS,
        json={"username": "alice", "password": PASSWORD},
        headers={"X-Requested-With": "XMLHttpRequest"},
        **https,
    )
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    body = r.get_json()
    assert "refresh_token" not in body
    assert body["token"] == body["access_token"]
    (cookie,) = r.headers.getlist("Set-Cookie")
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
    assert {"httponly", "secure"} <= attributes
    assert "SameSite=Strict" in cookie
    assert f"Path={REFRESH}" in cookie
    plain = cookie.split(";")[0].split("=", 1)[1]
    assert not any(plain in value for value in all_values(env))

    r = client.post(REFRESH, headers={"X-Requested-With": "XMLHttpRequest"}, **https)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert me(client, r.get_json()["access_token"]).status_code == 200
    # The cookie was rotated: the first one is consumed.
    r = client.post(
        REFRESH,
        json={"refresh_token": plain},
        headers={"X-Requested-With": "XMLHttpRequest"},
        **https,
    )
    assert_error(r, 401, "invalid_grant")


def test_cookie_mode_login_needs_the_custom_header(
    make_app: t.Callable[..., AppEnv],
) -> None:
    """Login CSRF: a cross-site form (text/plain, no custom header) cannot log the
    browser in to an account of the attacker's choosing: its answer would set the
    refresh cookie."""
    env = make_app(JWT_AUTH_REFRESH_COOKIE=True)
    env.create_user("alice")
    client = env.app.test_client()
    body = json.dumps({"username": "alice", "password": PASSWORD})
    with nothing_written(env):
        r = client.post(TOKENS, data=body, content_type="text/plain")
    assert_error(r, 403, "access_denied")
    assert "X-Requested-With" in r.get_json()["error_description"]
    assert "Set-Cookie" not in r.headers


def test_cookie_mode_refresh_form_cannot_swap_the_cookie(
    make_app: t.Callable[..., AppEnv],
) -> None:
    """Login CSRF through the refresh endpoint: a cross-site form
    (``enctype=text/plain``) whose body spells the attacker's refresh token as
    JSON must not answer with the attacker's session in a new cookie."""
    env = make_app(JWT_AUTH_REFRESH_COOKIE=True)
    env.create_user("mallory")
    client = env.app.test_client()
    https = {"base_url": "https://localhost"}
    xhr = {"X-Requested-With": "XMLHttpRequest"}
    r = client.post(
        TOKENS, json={"username": "mallory", "password": PASSWORD}, headers=xhr, **https
    )
    assert r.status_code == 200
    mallory = r.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    client.delete_cookie("jwt_refresh_token", path=REFRESH)
    form = '{"refresh_token":"' + mallory + '","pad":"="}'
    # The form as a browser sends it: no custom header.
    with nothing_written(env):
        r = client.post(REFRESH, data=form, content_type="text/plain", **https)
    assert_error(r, 403, "access_denied")
    assert "Set-Cookie" not in r.headers
    # Even with the header, a body that is not JSON is refused.
    with nothing_written(env):
        r = client.post(
            REFRESH, data=form, content_type="text/plain", headers=xhr, **https
        )
    assert r.status_code == 415, r.get_data(as_text=True)
    assert r.get_json()["error"] == "invalid_request"
    assert "Set-Cookie" not in r.headers
    # The front-end's own request (JSON and the header) still works.
    r = client.post(REFRESH, json={"refresh_token": mallory}, headers=xhr, **https)
    assert r.status_code == 200, r.get_data(as_text=True)


# POST {prefix}/logout --------------------------------------------------------------


def test_logout_revokes_the_token_and_its_session(env: AppEnv, client: t.Any) -> None:
    pair = tokens_for(client)
    other = tokens_for(client)
    r = client.post(LOGOUT, headers=bearer(pair["access_token"]))
    assert r.status_code == 204
    assert r.get_data() == b""

    headers = bearer(pair["access_token"])
    for path in ("/api/me", "/api/async", "/api/optional", "/api/admin"):
        assert_invalid_token(client.get(path, headers=headers))
    with nothing_written(env):
        assert_invalid_token(client.post(LOGOUT, headers=headers))
        assert_error(refresh(client, pair["refresh_token"]), 401, "invalid_grant")

    # The other session of the same user goes on.
    assert me(client, other["access_token"]).status_code == 200
    assert_pair(refresh(client, other["refresh_token"]), env)


def test_logout_after_refresh_ends_the_family(env: AppEnv, client: t.Any) -> None:
    first = tokens_for(client)
    second = assert_pair(refresh(client, first["refresh_token"]), env)
    assert client.post(LOGOUT, headers=bearer(first["access_token"])).status_code == 204
    assert_invalid_token(me(client, second["access_token"]))
    assert_error(refresh(client, second["refresh_token"]), 401, "invalid_grant")


@pytest.mark.parametrize("body", [None, b"", b"{}", b'{"other": 1}'])
def test_logout_body_is_optional(
    env: AppEnv, client: t.Any, body: bytes | None
) -> None:
    pair = tokens_for(client)
    kwargs: dict[str, t.Any] = {"headers": bearer(pair["access_token"])}
    if body is not None:
        kwargs.update(data=body, content_type="application/json")
    r = client.post(LOGOUT, **kwargs)
    assert r.status_code == 204
    assert r.get_data() == b""
    assert_invalid_token(me(client, pair["access_token"]))


def test_logout_ends_another_session_of_the_same_user(
    env: AppEnv, client: t.Any
) -> None:
    current = tokens_for(client)
    ended = tokens_for(client)
    kept = tokens_for(client)
    r = client.post(
        LOGOUT,
        headers=bearer(current["access_token"]),
        json={"refresh_token": ended["refresh_token"]},
    )
    assert r.status_code == 204
    assert_invalid_token(me(client, current["access_token"]))
    assert_invalid_token(me(client, ended["access_token"]))
    assert_error(refresh(client, ended["refresh_token"]), 401, "invalid_grant")
    assert me(client, kept["access_token"]).status_code == 200
    assert_pair(refresh(client, kept["refresh_token"]), env)


@pytest.mark.parametrize(
    "token", ["bob's", pytest.param("unknown", id="unknown token")]
)
def test_logout_ignores_a_refresh_token_it_may_not_end(
    env: AppEnv, client: t.Any, token: str
) -> None:
    env.create_user("bob")
    alices = tokens_for(client)
    bobs = tokens_for(client, "bob")
    presented = bobs["refresh_token"] if token == "bob's" else secrets.token_urlsafe(32)
    r = client.post(
        LOGOUT,
        headers=bearer(alices["access_token"]),
        json={"refresh_token": presented},
    )
    assert r.status_code == 204
    assert_invalid_token(me(client, alices["access_token"]))
    assert me(client, bobs["access_token"]).status_code == 200
    assert_pair(refresh(client, bobs["refresh_token"]), env)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param({"Authorization": ""}, id="empty"),
        pytest.param({"Authorization": "Basic YWxpY2U6eA=="}, id="basic"),
        pytest.param({"Authorization": "Token abc"}, id="other scheme"),
    ],
)
def test_logout_without_a_bearer_token(
    env: AppEnv, client: t.Any, headers: dict[str, str]
) -> None:
    with nothing_written(env):
        r = client.post(LOGOUT, headers=headers)
    assert_error(r, 401, "invalid_token")
    challenge = r.headers["WWW-Authenticate"]
    assert challenge == f'Bearer realm="{REALM}"'
    assert "error=" not in challenge


def _bad_tokens(env: AppEnv, pair: dict[str, t.Any]) -> dict[str, str]:
    access = pair["access_token"]
    now = int(time.time())
    head, payload, signature = access.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    return {
        "garbage": "garbage",
        "three dots": "a.b.c",
        "empty segments": "..",
        "refresh token": pair["refresh_token"],
        "bad signature": f"{head}.{payload}.{flipped}",
        "no signature": f"{head}.{payload}.",
        "alg none": pyjwt.encode(decode(access), key=None, algorithm="none"),
        "other key": pyjwt.encode(
            decode(access), "o" * 64, algorithm="HS256", headers={"typ": "at+jwt"}
        ),
        "expired": forge(env, access, iat=now - 100, nbf=now - 100, exp=now - 10),
        "not yet valid": forge(env, access, nbf=now + 600),
        "other issuer": forge(env, access, iss="someone-else"),
        "unknown session": forge(
            env, access, sid="00000000-0000-4000-8000-000000000000"
        ),
        "kid null": forge_header(access, kid=None),
        "kid number": forge_header(access, kid=1),
        "kid object": forge_header(access, kid={"kid": "x"}),
        "kid empty": forge_header(access, kid=""),
        "too long": "a" * 20000,
        "non-ascii": "t\u00e9st",
        "sql": "' OR 1=1 --",
    }


BAD_TOKEN_CASES = [
    "garbage",
    "three dots",
    "empty segments",
    "refresh token",
    "bad signature",
    "no signature",
    "alg none",
    "other key",
    "expired",
    "not yet valid",
    "other issuer",
    "unknown session",
    "kid null",
    "kid number",
    "kid object",
    "kid empty",
    "too long",
    "non-ascii",
    "sql",
]


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
def test_logout_with_a_bad_token(hs256: AppEnv, case: str) -> None:
    client = hs256.app.test_client()
    pair = tokens_for(client)
    token = _bad_tokens(hs256, pair)[case]
    with nothing_written(hs256):
        r = client.post(LOGOUT, headers={"Authorization": f"Bearer {token}"})
    assert_invalid_token(r)
    # Nothing was revoked.
    assert me(client, pair["access_token"]).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "Bearer a b", "bearer  x  y"],
)
def test_logout_with_a_malformed_authorization(
    env: AppEnv, client: t.Any, authorization: str
) -> None:
    with nothing_written(env):
        r = client.post(LOGOUT, headers={"Authorization": authorization})
    assert_error(r, 401, "invalid_token")
    assert r.headers["WWW-Authenticate"].startswith(f'Bearer realm="{REALM}"')


def test_logout_without_the_use_permission(env: AppEnv, client: t.Any) -> None:
    calls = permissions(env, {USE})
    pair = tokens_for(client)
    with nothing_written(env):
        r = client.post(LOGOUT, headers=bearer(pair["access_token"]))
    assert_error(r, 403, "insufficient_scope")
    assert ("alice", USE) in calls
    assert me(client, pair["access_token"]).status_code == 200
    assert_pair(refresh(client, pair["refresh_token"]), env)


MALFORMED_LOGOUT_BODIES = [
    (case, data) for case, data in NOT_AN_OBJECT if case not in ("empty", "whitespace")
] + [
    (case, json_body(refresh_token=value))
    for case, value in field_cases(512)
    if case not in ("missing", "null")
]


@pytest.mark.parametrize(
    ("case", "data"),
    MALFORMED_LOGOUT_BODIES,
    ids=[c for c, _ in MALFORMED_LOGOUT_BODIES],
)
def test_logout_refuses_a_malformed_body(
    env: AppEnv, client: t.Any, case: str, data: bytes
) -> None:
    pair = tokens_for(client)
    with nothing_written(env):
        r = post_raw(client, LOGOUT, data, headers=bearer(pair["access_token"]))
    assert_error(r, (400, 415), "invalid_request")
    # Nothing was revoked.
    assert me(client, pair["access_token"]).status_code == 200


def test_logout_refuses_a_body_over_the_cap(env: AppEnv, client: t.Any) -> None:
    pair = tokens_for(client)
    with nothing_written(env):
        r = post_raw(
            client, LOGOUT, b"{}" + b" " * 16384, headers=bearer(pair["access_token"])
        )
    assert_error(r, 413, "invalid_request")
    assert me(client, pair["access_token"]).status_code == 200


# Methods and the JWKS --------------------------------------------------------------


@pytest.mark.parametrize("path", [TOKENS, REFRESH, LOGOUT])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method(env: AppEnv, client: t.Any, path: str, method: str) -> None:
    pair = tokens_for(client)
    with nothing_written(env):
        r = client.open(
            path,
            method=method,
            headers=bearer(pair["access_token"]),
            json={"username": "alice", "password": PASSWORD},
        )
    assert_error(r, 405, "invalid_request")
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert "POST" in allowed
    assert method not in allowed
    assert me(client, pair["access_token"]).status_code == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_wrong_method_on_the_jwks(client: t.Any, method: str) -> None:
    r = client.open(JWKS, method=method)
    assert_error(r, 405, "invalid_request")
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert "GET" in allowed
    assert method not in allowed


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND"])
def test_unusual_method_gets_the_json_405(client: t.Any, method: str) -> None:
    r = client.open(TOKENS, method=method)
    assert_error(r, 405, "invalid_request")
    assert {m.strip() for m in r.headers["Allow"].split(",")} <= {"POST", "OPTIONS"}


def test_jwks_is_empty_for_hmac(client: t.Any) -> None:
    r = client.get(JWKS)
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    assert r.get_json() == {"keys": []}


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_jwks_holds_the_public_signing_key(
    make_app: t.Callable[..., AppEnv], algorithm: str
) -> None:
    env = make_app(**key_config(algorithm))
    env.create_user("alice")
    client = env.app.test_client()
    access = tokens_for(client)["access_token"]
    kid = pyjwt.get_unverified_header(access)["kid"]
    r = client.get(JWKS)
    assert r.status_code == 200
    (jwk,) = r.get_json()["keys"]
    assert jwk["kid"] == kid
    assert jwk["alg"] == algorithm
    assert not PRIVATE_JWK_MEMBERS & set(jwk)
    claims = pyjwt.decode(
        access, pyjwt.PyJWK(jwk), algorithms=[algorithm], issuer=REALM
    )
    assert claims == decode(access, algorithm)


# Storage down ----------------------------------------------------------------------


@pytest.fixture(params=["postgresql closed port", "sqlite missing directory"])
def down(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[Flask]:
    if request.param == "postgresql closed port":
        url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=5"
    else:
        url = f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}"
    # The key and name match the hs256 fixture's, so its tokens verify here.
    env = build_app(url, create_tables=False, **key_config("HS256"))
    yield env.app
    with env.app.app_context():
        env.db.session.remove()
        env.db.engine.dispose()


def assert_unavailable(response: t.Any) -> None:
    assert_error(response, 503, "temporarily_unavailable")
    assert response.headers["Retry-After"].isdigit()
    assert int(response.headers["Retry-After"]) > 0
    assert "access_token" not in response.get_data(as_text=True)


def test_storage_down_on_login(down: Flask) -> None:
    assert_unavailable(login(down.test_client()))


def test_storage_down_fails_closed(down: Flask, hs256: AppEnv) -> None:
    pair = tokens_for(hs256.app.test_client())
    client = down.test_client()
    assert_unavailable(me(client, pair["access_token"]))
    assert_unavailable(client.post(LOGOUT, headers=bearer(pair["access_token"])))
    assert_unavailable(refresh(client, pair["refresh_token"]))
    # Bad input is still refused before storage is needed.
    assert_error(post_raw(client, TOKENS, b"[]"), 400, "invalid_request")
    assert_invalid_token(me(client, "garbage"))


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        (TOKENS, {"OPTIONS", "POST"}),
        ("/.well-known/jwks.json", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_options_lists_only_the_methods_that_work(
    client: t.Any, path: str, allow: set[str]
) -> None:
    r = client.options(path)
    assert r.status_code == 200
    assert {m.strip() for m in r.headers["Allow"].split(",")} == allow


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        (f"{PREFIX}/tokens", "application/json"),
        (f"{PREFIX}/refresh", "application/json"),
        (f"{PREFIX}/revoke", "application/x-www-form-urlencoded"),
        (f"{PREFIX}/introspect", "application/x-www-form-urlencoded"),
    ],
)
def test_a_malformed_chunked_body_is_a_400_over_http(
    make_app: t.Callable[..., AppEnv],
    serve: t.Callable[[AppEnv], int],
    path: str,
    content_type: str,
) -> None:
    """A chunk size that is not hexadecimal, on a real Werkzeug server: a JSON
    400, not a 500, and nothing written."""
    env = make_app(JWT_AUTH_INTROSPECTION_CLIENTS={"rs": "s" * 32})
    env.create_user("alice")
    port = serve(env)
    before = env.row_counts()
    request = malformed_chunked(path, content_type)
    if path.endswith("/introspect"):
        request = request.replace(
            b"Connection: close",
            b"Connection: close\r\nAuthorization: Basic "
            + base64.b64encode(b"rs:" + b"s" * 32),
        )
    status, body = raw_http(port, request)
    assert status == 400, body
    assert body["error"] == "invalid_request"
    assert "transfer encoding" in body["error_description"]
    assert env.row_counts() == before


def test_a_high_s_twin_of_an_es256_token_is_refused(
    make_app: t.Callable[..., AppEnv],
) -> None:
    """ECDSA accepts (r, s) and (r, n - s) alike; the extension signs the low-S
    one and refuses the other, so a token has one spelling (and one string to
    revoke or log)."""
    env = make_app(**key_config("ES256"))
    env.create_user("alice")
    client = env.app.test_client()
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    for _ in range(8):
        token = tokens_for(client, "alice")["access_token"]
        head, _, signature = token.rpartition(".")
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        s = int.from_bytes(raw[32:], "big")
        assert s <= order // 2
        twin_raw = raw[:32] + (order - s).to_bytes(32, "big")
        twin = head + "." + base64.urlsafe_b64encode(twin_raw).rstrip(b"=").decode()
        response = client.get("/api/me", headers=bearer(twin))
        assert response.status_code == 401
        assert "canonical form" in response.get_json()["error_description"]
        assert client.get("/api/me", headers=bearer(token)).status_code == 200

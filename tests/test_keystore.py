"""Stored signing keys: rotation under traffic and across workers, no I/O for
refused tokens, encryption at rest, and the ``flask jwt keys`` commands
(docs/keys.rst, docs/cli.rst).

Commands run with ``app.test_cli_runner()`` on the very app object a real threaded
server (``serve``) is serving, so they share its database and its key ring; a
second app object on the same database plays another worker, which learns of a
rotation only by reloading its keys (``JWT_AUTH_KEYS_REFRESH_INTERVAL``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import threading
import time
import typing as t

import pytest
import sqlalchemy as sa
import time_machine
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import bearer
from conftest import http_call
from conftest import key_config
from conftest import login
from conftest import tokens_for
from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken as FernetInvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from flask_jwt_authentication import tokens
from flask_jwt_authentication.errors import ConfigurationError
from flask_jwt_authentication.keys import asymmetric_key

KEYS_TABLE = "jwt_auth_keys"
KEK = Fernet.generate_key().decode()
OTHER_KEK = Fernet.generate_key().decode()
SECRET = "k" * 64
GENERATED = re.compile(r"Generated (\S+) key (\S+) \((next|current)\)\.")
#: Seconds one HTTP request may take.
REQUEST_TIMEOUT = 15.0

MakeApp = t.Callable[..., AppEnv]


# Helpers ------------------------------------------------------------------------------


def segment(token: str, index: int) -> dict[str, t.Any]:
    part = token.split(".")[index]
    return t.cast(
        dict[str, t.Any],
        json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))),
    )


def kid_of(token: str) -> str:
    return t.cast(str, segment(token, 0)["kid"])


def keys_cli(env: AppEnv, *args: str) -> t.Any:
    """``flask jwt keys ARGS`` on ``env.app``; the click ``Result``."""
    return env.app.test_cli_runner().invoke(args=["jwt", "keys", *args])


def generate(env: AppEnv, *args: str) -> str:
    """``flask jwt keys generate ARGS``; the new kid."""
    result = keys_cli(env, "generate", *args)
    assert result.exit_code == 0, result.output
    match = GENERATED.search(result.output)
    assert match is not None, result.output
    return match.group(2)


def rotate(env: AppEnv) -> str:
    """``flask jwt keys rotate``; the kid that now signs."""
    result = keys_cli(env, "rotate")
    assert result.exit_code == 0, result.output
    match = re.search(r"Key (\S+) now signs\.", result.output)
    assert match is not None, result.output
    return match.group(1)


def retire(env: AppEnv, kid: str) -> None:
    result = keys_cli(env, "retire", kid)
    assert result.exit_code == 0, result.output
    assert f"Retired key {kid}." in result.output


def stored(env: AppEnv) -> dict[str, dict[str, t.Any]]:
    """The stored key rows by kid."""
    return {row["kid"]: row for row in env.table_rows(KEYS_TABLE)}


def states(env: AppEnv) -> dict[str, str]:
    return {kid: row["state"] for kid, row in stored(env).items()}


def set_key(env: AppEnv, kid: str, /, **values: t.Any) -> None:
    table = env.db.metadata.tables[KEYS_TABLE]
    with env.app.app_context():
        env.db.session.execute(
            sa.update(table).where(table.c.kid == kid).values(**values)
        )
        env.db.session.commit()


def wait_for(
    condition: t.Callable[[], bool], *, timeout: float, what: str, step: float = 0.05
) -> float:
    """Poll ``condition`` until it holds; the seconds it took. Fails after
    ``timeout``."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(step)


def keyed_app(make_app: MakeApp, algorithm: str = "ES256", **config: t.Any) -> AppEnv:
    """An app with a configured key and a key-encryption key, user ``alice``."""
    settings: dict[str, t.Any] = {
        **key_config(algorithm),
        "JWT_AUTH_KEY_ENCRYPTION_KEY": KEK,
        "JWT_AUTH_KEYS_REFRESH_INTERVAL": 1,
    }
    settings.update(config)
    env = make_app(**settings)
    if "create_tables" not in config:
        env.create_user("alice")
    return env


@dataclasses.dataclass
class Http:
    """Requests to a real server, each on a fresh connection."""

    port: int

    def call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, t.Any] | None = None,
        token: str | None = None,
    ) -> tuple[int, t.Any]:
        """One request on a fresh connection; the status and the JSON body."""
        return http_call(
            self.port, method, path, body=body, token=token, timeout=REQUEST_TIMEOUT
        )

    def login(self, username: str = "alice") -> str:
        status, body = self.call(
            "POST",
            f"{PREFIX}/tokens",
            body={"username": username, "password": PASSWORD},
        )
        assert status == 200, (status, body)
        return t.cast(str, body["access_token"])

    def me(self, token: str) -> tuple[int, t.Any]:
        return self.call("GET", "/api/me", token=token)

    def jwks_kids(self) -> set[str]:
        status, body = self.call("GET", "/.well-known/jwks.json")
        assert status == 200, body
        return {k["kid"] for k in body["keys"]}


# 1. Rotation under traffic ----------------------------------------------------------


@dataclasses.dataclass
class Held:
    token: str
    kid: str
    exp: int


@dataclasses.dataclass
class Traffic:
    """What the traffic threads saw. Failures are collected, not raised, in threads.

    ``retiring_started[kid]`` is the wall time just before ``retire kid`` ran (from
    then on a 401 for its tokens is allowed), ``retired_at[kid]`` just after it
    returned (from then on a 200 is a failure: this worker's ring was invalidated by
    the command).
    """

    http: Http
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    failures: list[str] = dataclasses.field(default_factory=list)
    #: (monotonic time the login request started, kid of the token it got)
    logins: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    statuses: dict[int, int] = dataclasses.field(default_factory=dict)
    retire_started: dict[str, float] = dataclasses.field(default_factory=dict)
    retired_at: dict[str, float] = dataclasses.field(default_factory=dict)

    def fail(self, text: str) -> None:
        with self.lock:
            self.failures.append(text)

    def check(self, held: Held, started: float, status: int, body: t.Any) -> None:
        ended = time.time()
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            retire_started = self.retire_started.get(held.kid)
            retired_at = self.retired_at.get(held.kid)
        if status == 200:
            if ended >= held.exp + 1:
                self.fail(f"expired token of {held.kid} accepted")
            if retired_at is not None and started > retired_at:
                self.fail(f"token of retired key {held.kid} accepted")
        elif status == 401:
            if not isinstance(body, dict) or body.get("error") != "invalid_token":
                self.fail(f"401 without invalid_token: {body!r}")
            near_expiry = ended >= held.exp - 1
            retiring = retire_started is not None and ended >= retire_started
            if not (near_expiry or retiring):
                self.fail(f"valid token of {held.kid} refused: {body!r}")
        else:
            self.fail(f"status {status} for a token of {held.kid}: {body!r}")

    def worker(self, username: str) -> None:
        held: list[Held] = []
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                token = self.http.login(username)
                kid = kid_of(token)
                with self.lock:
                    self.logins.append((started, kid))
                held.append(Held(token, kid, segment(token, 1)["exp"]))
                # Keep the newest token of each key, and only unexpired ones.
                newest = {h.kid: h for h in held if h.exp > time.time() - 2}
                held = list(newest.values())
                for h in held:
                    wall = time.time()
                    status, body = self.http.me(h.token)
                    self.check(h, wall, status, body)
                time.sleep(0.01)
        except Exception as e:  # reported by the main thread
            self.fail(f"worker {username} crashed: {e!r}")


@pytest.mark.slow
def test_rotation_under_traffic(make_app: MakeApp, serve: t.Any) -> None:
    """Traffic keeps flowing through generate, rotate, rotate and retire: no 5xx,
    tokens of a rotated-away key keep working until they expire, new logins carry
    the new kid as soon as the command returns, and the retired key's tokens get
    401 invalid_token."""
    env = keyed_app(make_app, JWT_AUTH_ACCESS_TOKEN_TTL=4)
    users = ["bob", "carol", "dave"]
    for name in users:
        env.create_user(name)
    http_ = Http(serve(env))
    traffic = Traffic(http_)
    threads = [threading.Thread(target=traffic.worker, args=(u,)) for u in users]
    configured = kid_of(http_.login())
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        first = generate(env)
        assert states(env) == {first: "next"}
        after_generate = time.monotonic()
        time.sleep(1.5)  # longer than the refresh interval: next keys still do not sign
        assert kid_of(http_.login()) == configured
        assert first in http_.jwks_kids()

        before = http_.login()  # signed by the configured key just before rotation
        assert kid_of(before) == configured
        assert rotate(env) == first
        rotated = time.monotonic()
        assert kid_of(http_.login()) == first
        assert http_.me(before)[0] == 200
        time.sleep(1.0)

        second_token = http_.login()
        assert kid_of(second_token) == first
        second = generate(env)
        assert rotate(env) == second
        rotated_again = time.monotonic()
        assert states(env) == {first: "retiring", second: "current"}
        assert http_.me(second_token)[0] == 200  # retiring keys still verify
        with traffic.lock:
            traffic.retire_started[first] = time.time()
        retire(env, first)
        with traffic.lock:
            traffic.retired_at[first] = time.time()
        status, body = http_.me(second_token)
        assert status == 401, body
        assert body["error"] == "invalid_token"
        assert "unknown key" in body["error_description"]
        assert first not in http_.jwks_kids()
        time.sleep(1.0)

        # The configured key's token of before the first rotation expires on time.
        wait_for(
            lambda: time.time() >= segment(before, 1)["exp"] + 0.2,
            timeout=6,
            what="the pre-rotation token expires",
        )
        status, body = http_.me(before)
        assert status == 401
        assert "expired" in body["error_description"]
    finally:
        traffic.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert traffic.failures == []
    assert not [s for s in traffic.statuses if s >= 500]
    assert traffic.statuses.get(200, 0) > 20, traffic.statuses
    # Logins that started after a command returned carry the key it made current.
    for started, kid in traffic.logins:
        if started > rotated_again:
            assert kid == second
        elif started > rotated:
            assert kid in (first, second)
        elif started > after_generate:
            assert kid in (configured, first)
    seen = {kid for _, kid in traffic.logins}
    assert {configured, first, second} <= seen


@pytest.mark.slow
def test_second_worker_follows_rotation(make_app: MakeApp, serve: t.Any) -> None:
    """Worker B (another app object on the same database) learns A's keys by
    reloading: A's next key verifies on B before it signs, B signs with it within
    the refresh interval of the rotation, and a key A retires stops verifying on B
    within the interval."""
    a = keyed_app(make_app)
    url = str(a.app.config["SQLALCHEMY_DATABASE_URI"])
    b = keyed_app(make_app, database_url=url, create_tables=False)
    http_a, http_b = Http(serve(a)), Http(serve(b))
    configured = kid_of(http_b.login())
    assert kid_of(http_a.login()) == configured

    upcoming = generate(a)
    wait_for(lambda: upcoming in http_b.jwks_kids(), timeout=4, what="B publishes next")
    assert kid_of(http_b.login()) == configured
    old_b = http_b.login()

    assert rotate(a) == upcoming
    rotated = time.monotonic()
    from_a = http_a.login()
    assert kid_of(from_a) == upcoming
    # B knows the key already (as next): A's new tokens verify there at once.
    assert http_b.me(from_a)[0] == 200
    took = wait_for(
        lambda: kid_of(http_b.login()) == upcoming,
        timeout=5,
        what="B signs with the new key",
    )
    assert time.monotonic() - rotated <= 1 + 2.0, took
    from_b = http_b.login()
    assert kid_of(from_b) == upcoming
    assert http_a.me(from_b)[0] == 200
    # The configured key's tokens keep verifying everywhere.
    assert http_a.me(old_b)[0] == 200
    assert http_b.me(old_b)[0] == 200

    # A key that goes straight to current: B has not seen it, and accepts it
    # within the interval.
    sudden = generate(a, "--current")
    from_a = http_a.login()
    assert kid_of(from_a) == sudden
    wait_for(
        lambda: http_b.me(from_a)[0] == 200, timeout=4, what="B verifies the new key"
    )
    wait_for(
        lambda: kid_of(http_b.login()) == sudden, timeout=4, what="B signs with it"
    )
    # Retiring on A reaches B within the interval.
    assert http_b.me(from_b)[0] == 200
    retire(a, upcoming)
    assert http_a.me(from_b)[0] == 401
    wait_for(lambda: http_b.me(from_b)[0] == 401, timeout=4, what="B drops the key")
    assert http_b.me(from_b)[1]["error"] == "invalid_token"


def test_retiring_key_drops_out_after_retire_after(make_app: MakeApp) -> None:
    """A retiring key verifies until its ``retire_after``, which is the access TTL
    plus the leeway after the rotation; then it leaves the JWKS and its tokens
    get 401, without anyone running ``retire``."""
    env = keyed_app(make_app, JWT_AUTH_ACCESS_TOKEN_TTL=60, JWT_AUTH_LEEWAY=5)
    client = env.app.test_client()
    first = rotate(env)
    token = tokens_for(client)["access_token"]
    assert kid_of(token) == first
    with time_machine.travel(time.time(), tick=True) as traveller:
        rotated_at = int(time.time())
        second = rotate(env)
        row = stored(env)[first]
        assert row["state"] == "retiring"
        assert rotated_at + 65 <= row["retire_after"] <= rotated_at + 66
        assert client.get("/api/me", headers=bearer(token)).status_code == 200

        traveller.shift(66)  # past the retiring key's retire_after
        env.app.extensions["jwt_authentication"].keys.invalidate()
        jwks = client.get("/.well-known/jwks.json").get_json()
        assert first not in {k["kid"] for k in jwks["keys"]}
        assert second in {k["kid"] for k in jwks["keys"]}
        response = client.get("/api/me", headers=bearer(token))
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_token"


def test_retiring_key_drops_out_of_every_worker(make_app: MakeApp) -> None:
    """The drop-out at ``retire_after`` needs no command: once it has passed, each
    worker's next reload leaves the key out, even for a token not expired yet
    (here the row's ``retire_after`` is moved into the past)."""
    env = keyed_app(make_app, JWT_AUTH_ACCESS_TOKEN_TTL=600)
    client = env.app.test_client()
    first = rotate(env)
    token = tokens_for(client)["access_token"]
    rotate(env)
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    set_key(env, first, retire_after=int(time.time()) - 1)

    def refused() -> bool:
        return client.get("/api/me", headers=bearer(token)).status_code == 401

    wait_for(refused, timeout=3, what="the retiring key drops out")
    body = client.get("/api/me", headers=bearer(token)).get_json()
    assert "unknown key" in body["error_description"]
    assert stored(env)[first]["state"] == "retiring"  # nothing was written


# 2. Refused tokens cost no I/O -------------------------------------------------------


def test_refused_tokens_query_nothing(make_app: MakeApp) -> None:
    """With the key set loaded, a token naming an unknown or oversized kid, or with
    a bad signature, is refused (401) before any SQL statement; a valid token costs
    exactly two: the revocation check and the user loader."""
    env = keyed_app(make_app, JWT_AUTH_KEYS_REFRESH_INTERVAL=3600)
    client = env.app.test_client()
    stored_kid = rotate(env)  # a stored current key, the configured one retiring
    token = tokens_for(client)["access_token"]
    assert kid_of(token) == stored_kid
    assert client.get("/api/me", headers=bearer(token)).status_code == 200

    claims = segment(token, 1)
    stranger = asymmetric_key(
        "ES256",
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    head, _, signature = token.split(".")
    other_signature = tokens.encode(
        claims, dataclasses.replace(stranger, kid=stored_kid)
    )
    forged = {
        "unknown kid": tokens.encode(claims, stranger),
        "unknown kid of 128 characters": tokens.encode(
            claims, dataclasses.replace(stranger, kid="x" * 128)
        ),
        "oversized kid": tokens.encode(
            claims, dataclasses.replace(stranger, kid="x" * 129)
        ),
        "huge kid": tokens.encode(
            claims, dataclasses.replace(stranger, kid="x" * 5000)
        ),
        "bad signature (another key)": other_signature,
        "bad signature (tampered payload)": ".".join(
            [head, tokens.encode({**claims, "x": 1}, stranger).split(".")[1], signature]
        ),
    }
    statements: list[str] = []

    def count(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        statements.append(statement)

    with env.app.app_context():
        engine = env.db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for name, bad in forged.items():
            statements.clear()
            response = client.get("/api/me", headers=bearer(bad))
            assert response.status_code == 401, name
            assert response.get_json()["error"] == "invalid_token", name
            assert statements == [], name

        statements.clear()
        response = client.get("/api/me", headers=bearer(token))
        assert response.status_code == 200
        # Exactly two: one SELECT for revocation (the session row and the jti, in
        # one round trip) and the test app's user loader, db.session.get(User, uid).
        # Nothing for the keys: the ring was loaded by the first request and the
        # interval is an hour.
        assert len(statements) == 2, statements
        assert "jwt_auth_sessions" in statements[0]
        assert "jwt_auth_revoked_tokens" in statements[0]
        assert "users" in statements[1]
        assert not any(KEYS_TABLE in s for s in statements)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


# 3. Encryption at rest ----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA", "HS256"])
def test_stored_private_keys_are_encrypted(make_app: MakeApp, algorithm: str) -> None:
    """The ``encrypted_key`` column is a Fernet token of the configured KEK: no PEM,
    no HMAC secret; it decrypts with that key only, to the key the row names."""
    env = keyed_app(make_app, algorithm)
    kid = generate(env)
    rotate(env)
    row = stored(env)[kid]
    encrypted = row["encrypted_key"]
    assert "PRIVATE KEY" not in encrypted
    assert "BEGIN" not in encrypted
    material = Fernet(KEK).decrypt(encrypted.encode("ascii"))
    with pytest.raises(FernetInvalidToken):
        Fernet(OTHER_KEK).decrypt(encrypted.encode("ascii"))
    if algorithm.startswith("HS"):
        assert len(material) >= 32
        assert row["public_jwk"] is None
        for form in (
            material.hex(),
            base64.b64encode(material).decode(),
            base64.urlsafe_b64encode(material).rstrip(b"=").decode(),
        ):
            assert form not in encrypted
        assert material.decode("latin-1") not in encrypted
    else:
        assert b"PRIVATE KEY" in material
        assert asymmetric_key(algorithm, material).kid == kid
        assert json.loads(row["public_jwk"])["kid"] == kid
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(
            json.loads(row["public_jwk"])
        )
    # The stored key signs.
    token = tokens_for(env.app.test_client())["access_token"]
    assert kid_of(token) == kid


def test_wrong_kek_makes_stored_keys_unusable(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker with another KEK cannot read the stored keys: it logs an error and
    keeps signing and verifying with its configured key; it does not crash."""
    a = keyed_app(make_app)
    configured = kid_of(tokens_for(a.app.test_client())["access_token"])
    stored_kid = rotate(a)
    from_a = tokens_for(a.app.test_client())["access_token"]
    assert kid_of(from_a) == stored_kid

    url = str(a.app.config["SQLALCHEMY_DATABASE_URI"])
    with caplog.at_level(logging.ERROR, logger="flask_jwt_authentication"):
        b = keyed_app(
            make_app,
            database_url=url,
            create_tables=False,
            JWT_AUTH_KEY_ENCRYPTION_KEY=OTHER_KEK,
        )
        client = b.app.test_client()
        token = tokens_for(client)["access_token"]
    assert kid_of(token) == configured
    assert any(
        "cannot be decrypted" in r.getMessage() and stored_kid in r.getMessage()
        for r in caplog.records
    )
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    response = client.get("/api/me", headers=bearer(from_a))
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert [
        k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]
    ] == [configured]
    # The private material never reaches the log.
    assert "PRIVATE KEY" not in caplog.text


def test_kek_list_reads_keys_of_the_old_kek(make_app: MakeApp) -> None:
    """``[new, old]``: keys stored under the old KEK stay readable; new keys are
    encrypted with the new one."""
    a = keyed_app(make_app)
    old_kid = rotate(a)
    from_a = tokens_for(a.app.test_client())["access_token"]

    url = str(a.app.config["SQLALCHEMY_DATABASE_URI"])
    b = keyed_app(
        make_app,
        database_url=url,
        create_tables=False,
        JWT_AUTH_KEY_ENCRYPTION_KEY=[OTHER_KEK, KEK],
    )
    client = b.app.test_client()
    assert kid_of(tokens_for(client)["access_token"]) == old_kid
    assert client.get("/api/me", headers=bearer(from_a)).status_code == 200

    new_kid = generate(b)
    encrypted = stored(b)[new_kid]["encrypted_key"].encode("ascii")
    assert Fernet(OTHER_KEK).decrypt(encrypted)
    with pytest.raises(FernetInvalidToken):
        Fernet(KEK).decrypt(encrypted)


@pytest.mark.parametrize(
    "command", [["generate"], ["rotate"], ["generate", "--current"]]
)
def test_storing_keys_needs_a_kek(make_app: MakeApp, command: list[str]) -> None:
    env = make_app(**key_config("ES256"))
    result = keys_cli(env, *command)
    assert result.exit_code == 1
    assert "JWT_AUTH_KEY_ENCRYPTION_KEY" in result.output
    assert "Traceback" not in result.output
    assert env.table_rows(KEYS_TABLE) == []


@pytest.mark.parametrize(
    "value",
    [
        "not a fernet key",
        "a" * 44,
        b"short",
        [KEK, "not a fernet key"],
        12345,
        {"key": KEK},
    ],
)
def test_invalid_kek_is_a_configuration_error(make_app: MakeApp, value: t.Any) -> None:
    with pytest.raises(ConfigurationError, match="JWT_AUTH_KEY_ENCRYPTION_KEY"):
        make_app(**key_config("ES256"), JWT_AUTH_KEY_ENCRYPTION_KEY=value)


def test_no_configured_key_until_rotate(make_app: MakeApp) -> None:
    """With a KEK and no configured key the app starts; it answers 503 until
    ``flask jwt keys rotate`` makes a key, then works."""
    env = make_app(JWT_AUTH_ALGORITHM="RS256", JWT_AUTH_KEY_ENCRYPTION_KEY=KEK)
    env.create_user("alice")
    client = env.app.test_client()
    response = login(client)
    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert env.row_counts()["jwt_auth_sessions"] == 0
    assert keys_cli(env, "list").output.strip() == "No keys."

    kid = rotate(env)
    assert states(env) == {kid: "current"}
    token = tokens_for(client)["access_token"]
    assert segment(token, 0)["alg"] == "RS256"
    assert kid_of(token) == kid
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    assert [
        k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]
    ] == [kid]


def test_key_setting_without_key_is_still_an_error(make_app: MakeApp) -> None:
    """A KEK does not excuse a broken configured key."""
    with pytest.raises(ConfigurationError):
        make_app(
            JWT_AUTH_ALGORITHM="RS256",
            JWT_AUTH_PRIVATE_KEY="/no/such/key.pem",
            JWT_AUTH_KEY_ENCRYPTION_KEY=KEK,
        )


# 5. The keys commands ---------------------------------------------------------------


def test_generate(make_app: MakeApp) -> None:
    env = keyed_app(make_app)
    client = env.app.test_client()
    configured = kid_of(tokens_for(client)["access_token"])

    result = keys_cli(env, "generate")
    assert result.exit_code == 0, result.output
    match = GENERATED.search(result.output)
    assert match is not None
    assert match.groups()[::2] == ("ES256", "next")
    kid = match.group(2)
    row = stored(env)[kid]
    assert (row["algorithm"], row["state"], row["activated_at"]) == (
        "ES256",
        "next",
        None,
    )
    assert "PRIVATE" not in result.output
    # A next key does not sign.
    assert kid_of(tokens_for(client)["access_token"]) == configured

    other = generate(env, "--algorithm", "EdDSA")
    assert stored(env)[other]["algorithm"] == "EdDSA"
    result = keys_cli(env, "generate", "--algorithm", "HS512")
    assert result.exit_code == 0
    assert "used only while JWT_AUTH_ALGORITHM is HS512" in result.output
    # Keys of another algorithm are ignored.
    kids = {k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]}
    assert kids == {configured, kid}

    result = keys_cli(env, "generate", "--algorithm", "HS1")
    assert result.exit_code == 2
    assert len(stored(env)) == 3


def test_generate_current(make_app: MakeApp) -> None:
    env = keyed_app(make_app, JWT_AUTH_ACCESS_TOKEN_TTL=300, JWT_AUTH_LEEWAY=10)
    client = env.app.test_client()
    first = generate(env, "--current")
    with time_machine.travel(time.time() + 100, tick=False):
        now = int(time.time())
        result = keys_cli(env, "generate", "--current")
        assert result.exit_code == 0
        second = GENERATED.search(result.output).group(2)  # type: ignore[union-attr]
        assert "(current)" in result.output
    rows = stored(env)
    assert rows[second]["state"] == "current"
    assert rows[second]["activated_at"] == now
    assert rows[first]["state"] == "retiring"
    assert rows[first]["retire_after"] == now + 300 + 10
    assert kid_of(tokens_for(client)["access_token"]) == second


def test_list(make_app: MakeApp) -> None:
    env = keyed_app(make_app, "HS256")
    result = keys_cli(env, "list")
    assert result.exit_code == 0
    configured = env.app.extensions["jwt_authentication"].keys.configured.current.kid
    assert result.output.splitlines() == [f"{configured}  HS256  configured"]

    with time_machine.travel(1_800_000_000, tick=False):  # 2027-01-15 08:00 UTC
        retiring = rotate(env)
        current = rotate(env)
        upcoming = generate(env)
        retired = generate(env)
    retire(env, retired)
    result = keys_cli(env, "list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == f"{configured}  HS256  configured"
    by_kid = {line.split()[0]: line for line in lines[1:]}
    assert set(by_kid) == {retiring, current, upcoming, retired}
    assert "  current  created 2027-01-15 08:00 UTC" in by_kid[current]
    assert "  next  " in by_kid[upcoming]
    assert "  retired  " in by_kid[retired]
    assert by_kid[retiring].endswith(
        "retiring  created 2027-01-15 08:00 UTC  verifies until 2027-01-15 08:15 UTC"
    )
    # Never private material: no PEM, no secret, no encrypted blob.
    assert SECRET not in result.output
    for row in stored(env).values():
        assert row["encrypted_key"] not in result.output
        material = Fernet(KEK).decrypt(row["encrypted_key"].encode())
        assert (
            base64.urlsafe_b64encode(material).rstrip(b"=").decode()
            not in result.output
        )
        assert material.hex() not in result.output


def test_list_order_of_keys_made_in_the_same_second(make_app: MakeApp) -> None:
    """Keys made within one second list by state (current, next, retiring,
    retired), the most recently changed first, whatever their random kids: the
    same order on every call and in the admin's listing."""
    env = keyed_app(make_app, "HS256")
    with time_machine.travel(1_800_000_000, tick=False):
        retiring = [rotate(env) for _ in range(4)]
        current = rotate(env)
        upcoming = sorted(generate(env) for _ in range(3))
        retired = [generate(env) for _ in range(3)]
        for kid in retired:
            retire(env, kid)
    with time_machine.travel(1_800_000_005, tick=False):
        late = rotate(env)
        upcoming.remove(late)
    # The rotation at :05 retires the former current key until a later time
    # than the four before it: it comes first among the retiring keys.
    expected_states = ["current"] + ["next"] * 2 + ["retiring"] * 5 + ["retired"] * 3
    outputs = {keys_cli(env, "list").output for _ in range(3)}
    assert len(outputs) == 1
    lines = outputs.pop().splitlines()[1:]
    assert [line.split()[2] for line in lines] == expected_states
    kids = [line.split()[0] for line in lines]
    assert kids[0] == late
    assert kids[1:3] == sorted(upcoming)
    assert kids[3] == current
    assert sorted(kids[4:8]) == sorted(retiring)
    assert sorted(kids[8:]) == sorted(retired)
    with env.app.app_context():
        store = env.app.extensions["jwt_authentication"].keys.store
        assert [key.kid for key in store.all_keys()] == kids


def test_list_shows_no_private_material_of_asymmetric_keys(make_app: MakeApp) -> None:
    env = keyed_app(make_app, "ES256")
    rotate(env)
    result = keys_cli(env, "list")
    assert result.exit_code == 0
    assert "PRIVATE" not in result.output
    assert '"d"' not in result.output
    assert len(result.output.splitlines()) == 2


def test_rotate(make_app: MakeApp) -> None:
    env = keyed_app(make_app, JWT_AUTH_ACCESS_TOKEN_TTL=900)
    client = env.app.test_client()
    configured = kid_of(tokens_for(client)["access_token"])
    with time_machine.travel(1_799_999_000, tick=False):
        older = generate(env)
    with time_machine.travel(1_799_999_001, tick=False):
        newer = generate(env)
    with time_machine.travel(1_800_000_000, tick=False):
        result = keys_cli(env, "rotate")
    assert result.exit_code == 0, result.output
    # The oldest next key goes first; there was no stored current key to retire.
    assert f"Key {older} now signs." in result.output
    assert "verifies until" not in result.output
    assert "Every worker follows within 1 s." in result.output
    assert states(env) == {older: "current", newer: "next"}
    assert stored(env)[older]["activated_at"] == 1_800_000_000
    token = tokens_for(client)["access_token"]
    assert kid_of(token) == older

    with time_machine.travel(1_800_000_600, tick=False):
        result = keys_cli(env, "rotate")
    assert result.exit_code == 0, result.output
    assert f"Key {newer} now signs." in result.output
    assert f"Key {older} verifies until 2027-01-15 08:25 UTC." in result.output
    rows = stored(env)
    assert rows[older]["state"] == "retiring"
    assert rows[older]["retire_after"] == 1_800_000_600 + 900
    assert rows[newer]["state"] == "current"
    assert client.get("/api/me", headers=bearer(token)).status_code == 200

    # No next key: rotate makes one.
    before = set(rows)
    made = rotate(env)
    assert made not in before
    assert states(env) == {older: "retiring", newer: "retiring", made: "current"}
    assert kid_of(tokens_for(client)["access_token"]) == made
    jwks = {k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]}
    assert jwks == {configured, older, newer, made}


def test_retire(make_app: MakeApp) -> None:
    env = keyed_app(make_app)
    client = env.app.test_client()
    tokens_for(client)
    retiring = rotate(env)
    token = tokens_for(client)["access_token"]
    current = rotate(env)
    upcoming = generate(env)

    with time_machine.travel(1_800_000_000, tick=False):
        retire(env, upcoming)
    assert stored(env)[upcoming]["state"] == "retired"
    assert stored(env)[upcoming]["retire_after"] == 1_800_000_000
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    retire(env, retiring)
    response = client.get("/api/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert states(env) == {retiring: "retired", current: "current", upcoming: "retired"}

    for kid, why in [
        (retiring, "an already retired key"),
        ("no-such-kid", "an unknown kid"),
        ("x" * 500, "an oversized kid"),
    ]:
        before = stored(env)
        result = keys_cli(env, "retire", kid)
        assert result.exit_code != 0, why
        assert "or it is retired already" in result.output, why
        assert "Traceback" not in result.output
        assert stored(env) == before, why
    result = keys_cli(env, "retire")
    assert result.exit_code == 2
    assert kid_of(tokens_for(client)["access_token"]) == current


def test_retiring_the_current_key_rotates_first(make_app: MakeApp) -> None:
    """The current key can be retired at once (after a leak): the oldest next
    key signs instead, and the tokens the retired key signed stop working now,
    not when they expire."""
    env = keyed_app(make_app)
    client = env.app.test_client()
    current = rotate(env)
    token = tokens_for(client)["access_token"]
    upcoming = generate(env)
    result = keys_cli(env, "retire", current)
    assert result.exit_code == 0, result.output
    assert f"Key {upcoming} now signs." in result.output
    assert f"Retired key {current}." in result.output
    assert states(env) == {current: "retired", upcoming: "current"}
    assert client.get("/api/me", headers=bearer(token)).status_code == 401
    assert kid_of(tokens_for(client)["access_token"]) == upcoming
    # With no next key, one is made.
    result = keys_cli(env, "retire", upcoming)
    assert result.exit_code == 0, result.output
    [made] = set(states(env)) - {current, upcoming}
    assert states(env)[made] == "current"
    assert kid_of(tokens_for(client)["access_token"]) == made


def test_retiring_the_configured_key_reaches_every_worker(
    make_app: MakeApp, serve: t.Any
) -> None:
    """After a leak of ``JWT_AUTH_PRIVATE_KEY``: ``retire`` records the
    retirement in the database; worker B, which runs the same configuration,
    stops accepting the key within the refresh interval, it never signs again
    on either worker, and only ``unretire`` brings it back."""
    a = keyed_app(make_app)
    url = str(a.app.config["SQLALCHEMY_DATABASE_URI"])
    b = keyed_app(make_app, database_url=url, create_tables=False)
    http_a, http_b = Http(serve(a)), Http(serve(b))
    leaked = http_b.login()
    configured = kid_of(leaked)
    assert http_a.me(leaked)[0] == 200

    result = keys_cli(a, "retire", configured)
    assert result.exit_code == 0, result.output
    assert f"Retired configured key {configured}." in result.output
    [successor] = [kid for kid, state in states(a).items() if state == "current"]
    assert f"Key {successor} now signs." in result.output
    assert stored(a)[configured]["state"] == "retired"
    # The row holds no key material: the configured key stays in the
    # configuration only.
    assert stored(a)[configured]["encrypted_key"] == "configured"
    assert http_a.me(leaked)[0] == 401
    took = wait_for(
        lambda: http_b.me(leaked)[0] == 401, timeout=4, what="B refuses the key"
    )
    assert took <= 1 + 2.0
    assert http_b.me(leaked)[1]["error"] == "invalid_token"
    assert configured not in http_a.jwks_kids() | http_b.jwks_kids()
    assert kid_of(http_a.login()) == successor
    assert kid_of(http_b.login()) == successor

    listing = keys_cli(a, "list").output
    assert f"{configured}  ES256  configured, retired" in listing
    assert listing.count(configured) == 1
    # Retiring it twice says so and changes nothing.
    before = stored(a)
    result = keys_cli(a, "retire", configured)
    assert result.exit_code == 1
    assert "retired already" in result.output
    assert stored(a) == before

    # Even with no stored key left to sign, the configured key does not come
    # back: log-ins fail until an operator decides.
    set_key(a, successor, state="retired")
    a.app.extensions["jwt_authentication"].keys.invalidate()
    status, body = http_a.call(
        "POST", f"{PREFIX}/tokens", body={"username": "alice", "password": PASSWORD}
    )
    assert status == 503, body

    result = keys_cli(a, "unretire", configured)
    assert result.exit_code == 0, result.output
    assert f"Configured key {configured} verifies again." in result.output
    assert configured not in stored(a)
    assert kid_of(http_a.login()) == configured
    wait_for(lambda: http_b.me(leaked)[0] == 200, timeout=4, what="B accepts it")
    result = keys_cli(a, "unretire", configured)
    assert result.exit_code == 1
    assert "not a retired configured key" in result.output


def test_retiring_the_signing_configured_key_needs_a_kek(make_app: MakeApp) -> None:
    """With no key-encryption key no other key can take over: the configured
    key that signs is not retired, and the error names the fix."""
    env = make_app(**key_config("ES256"))
    env.create_user("alice")
    client = env.app.test_client()
    configured = kid_of(tokens_for(client)["access_token"])
    before = stored(env)
    result = keys_cli(env, "retire", configured)
    assert result.exit_code == 1
    assert "JWT_AUTH_KEY_ENCRYPTION_KEY" in result.output
    assert "Traceback" not in result.output
    assert stored(env) == before
    assert kid_of(tokens_for(client)["access_token"]) == configured


def test_retire_a_kid_that_starts_with_a_dash(make_app: MakeApp) -> None:
    """A kid is base64url (RFC 7638), so about one in 64 starts with "-"; retire
    takes it as the kid, not as an unknown option."""
    env = keyed_app(make_app)
    kid = generate(env)
    dashed = "-" + kid[1:]
    set_key(env, kid, kid=dashed)
    retire(env, dashed)
    assert states(env) == {dashed: "retired"}
    doubly = generate(env)
    set_key(env, doubly, kid="--" + doubly[2:])
    retire(env, "--" + doubly[2:])
    result = keys_cli(env, "retire", "--", "-nothing")
    assert result.exit_code == 1
    assert "'-nothing'" in result.output


def test_keys_help(make_app: MakeApp) -> None:
    """The group lists its subcommands in its help."""
    env = keyed_app(make_app)
    result = keys_cli(env, "--help")
    assert result.exit_code == 0
    for name in ("generate", "list", "rotate", "retire", "export-public"):
        assert name in result.output

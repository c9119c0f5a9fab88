"""Verify-only mode (docs/resource-server.rst): ``examples/resource_server.py``
verifies the auth app's tokens with its JWKS alone.

The auth app (RS256 or ES256, keys stored encrypted so ``flask jwt keys`` can rotate
and retire them) and the resource server each run on a real threaded HTTP server on
127.0.0.1; the auth app counts the JWKS requests it answers. Then the JWK parsing
rules and the cache of :class:`~flask_jwt_authentication.remote.RemoteKeys`, against
a JWKS server whose answer each test sets.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import re
import secrets
import socket
import threading
import time
import typing as t
from pathlib import Path
from types import ModuleType

import pytest
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import example_module
from conftest import key_config
from conftest import key_path
from conftest import require_backend
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask import Response
from flask import request
from jwt.algorithms import ECAlgorithm
from jwt.algorithms import RSAAlgorithm
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server

from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import TokenRejected
from flask_jwt_authentication import current_user
from flask_jwt_authentication import get_jwt
from flask_jwt_authentication import jwt_required
from flask_jwt_authentication import signals
from flask_jwt_authentication import tokens
from flask_jwt_authentication.errors import ConfigurationError
from flask_jwt_authentication.errors import TemporarilyUnavailable
from flask_jwt_authentication.jwks_fetch import MAX_JWKS_SIZE
from flask_jwt_authentication.jwks_fetch import JWKSError
from flask_jwt_authentication.jwks_fetch import display_url
from flask_jwt_authentication.jwks_fetch import fetch_jwks
from flask_jwt_authentication.keys import KeySet
from flask_jwt_authentication.keys import asymmetric_key
from flask_jwt_authentication.keys import b64url
from flask_jwt_authentication.keys import has_roca_fingerprint
from flask_jwt_authentication.remote import RemoteKeys
from flask_jwt_authentication.remote import UnusableKey
from flask_jwt_authentication.remote import parse_jwks
from flask_jwt_authentication.remote import public_key_from_jwk
from flask_jwt_authentication.state import get_state

KEK = Fernet.generate_key().decode()
JWKS = "/.well-known/jwks.json"
ISSUER = "https://auth.example.com"
AUDIENCE = "orders-api"

MakeApp = t.Callable[..., AppEnv]


# Servers and requests ---------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclasses.dataclass
class Server:
    """An app on a real threaded HTTP server on 127.0.0.1, stoppable mid-test."""

    server: BaseWSGIServer
    thread: threading.Thread
    stopped: bool = False

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{JWKS}"

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=15)


@pytest.fixture
def start() -> t.Iterator[t.Callable[[Flask], Server]]:
    """``start(app) -> Server``; every server is stopped after the test."""
    running: list[Server] = []

    def run(app: Flask) -> Server:
        server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append(Server(server, thread))
        return running[-1]

    yield run
    for server in running:
        server.stop()


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: t.Any


def call(port: int, path: str, token: str | None = None) -> Answer:
    """``GET path`` on a fresh connection, with the token as bearer."""
    headers = {"Connection": "close"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    return Answer(response.status, dict(response.getheaders()), json.loads(raw))


def login(auth: Server, username: str = "alice") -> str:
    """Log in on the auth app over HTTP; the access token."""
    conn = http.client.HTTPConnection("127.0.0.1", auth.port, timeout=30)
    try:
        conn.request(
            "POST",
            f"{PREFIX}/tokens",
            body=json.dumps({"username": username, "password": PASSWORD}),
            headers={"Content-Type": "application/json", "Connection": "close"},
        )
        response = conn.getresponse()
        body = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 200, body
    return t.cast(str, body["access_token"])


def wait_for(condition: t.Callable[[], bool], *, timeout: float, what: str) -> float:
    """Poll ``condition`` until it holds; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kid_of(token: str) -> str:
    return t.cast(str, tokens.unverified_header(token)["kid"])


def forged(algorithm: str, kid: str) -> str:
    """A well-formed token naming ``kid``, with a signature nobody made."""
    header = {"alg": algorithm, "kid": kid, "typ": "at+jwt"}
    return ".".join(
        [
            b64url(json.dumps(header).encode()),
            b64url(json.dumps({"sub": "1", "iss": ISSUER}).encode()),
            b64url(secrets.token_bytes(64)),
        ]
    )


# The auth app and the resource server ----------------------------------------------


@dataclasses.dataclass
class Auth:
    """The auth app on a real server, and the number of JWKS requests it answered."""

    env: AppEnv
    server: Server
    hits: list[str]

    @property
    def jwks_fetches(self) -> int:
        return len(self.hits)

    def keys(self, *args: str) -> str:
        result = self.env.app.test_cli_runner().invoke(args=["jwt", "keys", *args])
        assert result.exit_code == 0, result.output
        return t.cast(str, result.output)

    def rotate(self) -> str:
        match = re.search(r"Key (\S+) now signs\.", self.keys("rotate"))
        assert match is not None
        return match.group(1)

    def published(self) -> set[str]:
        return {k["kid"] for k in call(self.server.port, JWKS).body["keys"]}


def auth_app(
    make_app: MakeApp,
    start: t.Callable[[Flask], Server],
    algorithm: str,
    **config: t.Any,
) -> Auth:
    """An auth app with alice (role ``reporter``) and bob, on a real server."""
    settings: dict[str, t.Any] = {
        **key_config(algorithm),
        "JWT_AUTH_KEY_ENCRYPTION_KEY": KEK,
        "JWT_AUTH_KEYS_REFRESH_INTERVAL": 1,
        "JWT_AUTH_ISSUER": ISSUER,
        "JWT_AUTH_AUDIENCE": AUDIENCE,
    }
    settings.update(config)
    env = make_app(**settings)
    env.create_user("alice", roles="reporter")
    env.create_user("bob")

    @env.jwt.roles_loader
    def roles(user: t.Any) -> list[str]:
        return [role for role in user.roles.split(",") if role]

    hits: list[str] = []

    @env.app.before_request
    def count() -> None:
        if request.path == JWKS:
            hits.append(request.path)

    return Auth(env, start(env.app), hits)


@pytest.fixture
def example() -> t.Iterator[ModuleType]:
    with example_module("resource_server.py") as module:
        yield module


def resource_config(auth: Auth | str, algorithm: str, **config: t.Any) -> dict:
    url = auth if isinstance(auth, str) else auth.server.jwks_url
    return {
        "TESTING": True,
        "JWT_AUTH_JWKS_URL": url,
        "JWT_AUTH_ALGORITHM": algorithm,
        "JWT_AUTH_ISSUER": ISSUER,
        "JWT_AUTH_AUDIENCE": AUDIENCE,
        **config,
    }


@pytest.fixture(params=["RS256", "ES256"])
def algorithm(request: pytest.FixtureRequest) -> str:
    return t.cast(str, request.param)


# The resource server over HTTP ------------------------------------------------------


@pytest.mark.slow
def test_token_from_the_auth_app_is_accepted(
    make_app: MakeApp, start: t.Any, example: ModuleType, algorithm: str
) -> None:
    """The resource server, with no key of its own, answers the caller's uid and
    claims; roles come from the token; the JWKS is fetched once, not per request."""
    auth = auth_app(make_app, start, algorithm)
    resource = start(example.create_app(resource_config(auth, algorithm)))
    assert auth.jwks_fetches == 0  # nothing is fetched at start-up

    token = login(auth.server)
    answer = call(resource.port, "/api/me", token)
    assert answer.status == 200, answer.body
    assert answer.body["uid"] == 1
    claims = answer.body["claims"]
    assert (claims["iss"], claims["aud"], claims["sub"]) == (ISSUER, AUDIENCE, "1")
    assert claims["roles"] == ["reporter"]
    assert auth.jwks_fetches == 1

    assert call(resource.port, "/api/reports", token).status == 200
    denied = call(resource.port, "/api/reports", login(auth.server, "bob"))
    assert denied.status == 403
    assert denied.body["error"] == "insufficient_scope"
    assert auth.jwks_fetches == 1

    anonymous = call(resource.port, "/api/me")
    assert anonymous.status == 401
    assert anonymous.body["error"] == "invalid_token"
    assert anonymous.headers["WWW-Authenticate"] == f'Bearer realm="{ISSUER}"'


@pytest.mark.slow
def test_a_rotated_key_is_fetched_on_its_first_token(
    make_app: MakeApp, start: t.Any, example: ModuleType, algorithm: str
) -> None:
    """After a rotation on the auth app, a token with the new kid makes the resource
    server fetch the JWKS again at once, though its cache is far from stale."""
    auth = auth_app(make_app, start, algorithm)
    config = resource_config(
        auth,
        algorithm,
        JWT_AUTH_JWKS_CACHE_TTL=300,
        JWT_AUTH_JWKS_MIN_REFRESH_INTERVAL=1,
    )
    resource = start(example.create_app(config))
    before = login(auth.server)
    assert call(resource.port, "/api/me", before).status == 200
    assert auth.jwks_fetches == 1

    time.sleep(1.1)  # past the minimum interval between fetches
    new_kid = auth.rotate()
    after = login(auth.server)
    assert kid_of(after) == new_kid != kid_of(before)
    answer = call(resource.port, "/api/me", after)
    assert answer.status == 200, answer.body
    assert auth.jwks_fetches == 2
    # The previous key is still published (retiring): its tokens still verify.
    assert call(resource.port, "/api/me", before).status == 200
    assert auth.jwks_fetches == 2


@pytest.mark.slow
def test_a_retired_key_is_refused_once_the_cache_refreshes(
    make_app: MakeApp, start: t.Any, example: ModuleType, algorithm: str
) -> None:
    """A key retired on the auth app leaves its JWKS; the resource server refuses
    its tokens once its cache is older than JWT_AUTH_JWKS_CACHE_TTL."""
    ttl = 3
    auth = auth_app(make_app, start, algorithm)
    first = auth.rotate()
    old = login(auth.server)
    second = auth.rotate()
    new = login(auth.server)
    assert (kid_of(old), kid_of(new)) == (first, second)
    config = resource_config(
        auth,
        algorithm,
        JWT_AUTH_JWKS_CACHE_TTL=ttl,
        JWT_AUTH_JWKS_MIN_REFRESH_INTERVAL=1,
    )
    resource = start(example.create_app(config))
    fetched = time.monotonic()  # the fetch happens just after this
    assert call(resource.port, "/api/me", old).status == 200
    assert call(resource.port, "/api/me", new).status == 200

    auth.keys("retire", first)
    assert first not in auth.published()
    # Still cached here: the resource server cannot know before it refetches.
    assert call(resource.port, "/api/me", old).status == 200
    assert time.monotonic() - fetched < ttl, "the machine is too slow for this test"

    wait_for(
        lambda: call(resource.port, "/api/me", old).status == 401,
        timeout=ttl + 10,
        what="the retired key's token is refused",
    )
    assert time.monotonic() - fetched >= ttl
    refused = call(resource.port, "/api/me", old)
    assert refused.body["error"] == "invalid_token"
    assert "unknown key" in refused.body["error_description"]
    assert call(resource.port, "/api/me", new).status == 200


def other_key_config(algorithm: str) -> dict[str, t.Any]:
    """A key of ``algorithm`` the auth app does not have."""
    if algorithm.startswith("RS"):
        return {
            "JWT_AUTH_ALGORITHM": algorithm,
            "JWT_AUTH_PRIVATE_KEY": str(key_path("rsa2048-other")),
        }
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return {"JWT_AUTH_ALGORITHM": algorithm, "JWT_AUTH_PRIVATE_KEY": pem.decode()}


@pytest.mark.slow
def test_tokens_of_another_issuer_are_refused(
    make_app: MakeApp, start: t.Any, example: ModuleType, algorithm: str
) -> None:
    """Another auth app with the very same key but its own issuer, and one claiming
    our issuer with a key of its own: both get 401 invalid_token."""
    auth = auth_app(make_app, start, algorithm)
    resource = start(example.create_app(resource_config(auth, algorithm)))
    same_key = auth_app(
        make_app, start, algorithm, JWT_AUTH_ISSUER="https://elsewhere.example"
    )
    other_key = auth_app(make_app, start, algorithm, **other_key_config(algorithm))
    assert call(resource.port, "/api/me", login(auth.server)).status == 200

    foreign = login(same_key.server)
    assert kid_of(foreign) in auth.published()
    answer = call(resource.port, "/api/me", foreign)
    assert answer.status == 401
    assert answer.body == {
        "error": "invalid_token",
        "error_description": "The token has another issuer.",
    }
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]

    forged_issuer = login(other_key.server)
    assert kid_of(forged_issuer) not in auth.published()
    answer = call(resource.port, "/api/me", forged_issuer)
    assert answer.status == 401
    assert answer.body["error"] == "invalid_token"
    assert "unknown key" in answer.body["error_description"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("audience", "status"),
    [("billing-api", 401), (None, 401), (["billing-api", AUDIENCE], 200)],
)
def test_the_audience_must_be_ours(
    make_app: MakeApp,
    start: t.Any,
    example: ModuleType,
    audience: t.Any,
    status: int,
) -> None:
    auth = auth_app(make_app, start, "ES256")
    config = resource_config(auth, "ES256", JWT_AUTH_AUDIENCE=audience)
    resource = start(example.create_app(config))
    answer = call(resource.port, "/api/me", login(auth.server))
    assert answer.status == status, answer.body
    if status == 401:
        assert answer.body == {
            "error": "invalid_token",
            "error_description": "The token is meant for another audience.",
        }


@pytest.mark.slow
def test_cached_keys_outlive_the_auth_server(
    make_app: MakeApp,
    start: t.Any,
    example: ModuleType,
    algorithm: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the auth server down, a failed refetch keeps the keys held; a resource
    server that never got keys answers 503 temporarily_unavailable."""
    auth = auth_app(make_app, start, algorithm)
    config = resource_config(
        auth,
        algorithm,
        JWT_AUTH_JWKS_CACHE_TTL=1,
        JWT_AUTH_JWKS_MIN_REFRESH_INTERVAL=1,
    )
    resource = start(example.create_app(config))
    token = login(auth.server)
    assert call(resource.port, "/api/me", token).status == 200
    auth.server.stop()

    time.sleep(1.2)  # the cache is stale: the next request tries to refetch
    with caplog.at_level(logging.WARNING, logger="flask_jwt_authentication"):
        answer = call(resource.port, "/api/me", token)
    assert answer.status == 200, answer.body
    assert "Could not fetch the JWKS" in caplog.text
    assert "keeping the 1 keys held" in caplog.text

    newcomer = start(example.create_app(config))
    started = time.monotonic()
    answer = call(newcomer.port, "/api/me", token)
    assert time.monotonic() - started < 5
    assert answer.status == 503
    assert answer.body["error"] == "temporarily_unavailable"
    assert int(answer.headers["Retry-After"]) >= 1


@pytest.mark.slow
def test_a_hanging_auth_server_costs_one_timeout(
    start: t.Any, example: ModuleType
) -> None:
    """An auth server that accepts connections and never answers: the request
    waits JWT_AUTH_JWKS_TIMEOUT, then gets 503; the next one, within the minimum
    interval, is answered at once."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}{JWKS}"
        config = resource_config(
            url, "ES256", JWT_AUTH_JWKS_TIMEOUT=1, JWT_AUTH_JWKS_MIN_REFRESH_INTERVAL=30
        )
        resource = start(example.create_app(config))
        token = forged("ES256", "some-kid")
        started = time.monotonic()
        first = call(resource.port, "/api/me", token)
        took = time.monotonic() - started
        assert first.status == 503
        assert 0.9 <= took < 4
        started = time.monotonic()
        second = call(resource.port, "/api/me", token)
        assert second.status == 503
        assert time.monotonic() - started < 0.9
        assert 25 <= int(second.headers["Retry-After"]) <= 30


class _Trickler:
    """A JWKS server that answers one byte every quarter second: headers, then a
    body of 216 bytes (54 s in all)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        body = json.dumps({"keys": [{"kty": "EC", "pad": "x" * 170}]}).encode()
        answer = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        with conn:
            conn.recv(65536)
            for byte in answer:
                if self.stop.wait(0.25):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.mark.slow
def test_a_trickling_auth_server_costs_one_deadline(
    start: t.Any, example: ModuleType
) -> None:
    """A JWKS server that sends a byte every 0.25 s: the fetch ends at the
    deadline (JWT_AUTH_JWKS_TIMEOUT=2), not when the last byte arrives, and four
    concurrent first requests share that one fetch."""
    trickler = _Trickler()
    try:
        config = resource_config(
            f"http://127.0.0.1:{trickler.port}{JWKS}",
            "ES256",
            JWT_AUTH_JWKS_TIMEOUT=2,
            JWT_AUTH_JWKS_MIN_REFRESH_INTERVAL=30,
        )
        resource = start(example.create_app(config))
        token = forged("ES256", "some-kid")
        answers: list[tuple[int, float]] = []

        def first_request() -> None:
            started = time.monotonic()
            status = call(resource.port, "/api/me", token).status
            answers.append((status, time.monotonic() - started))

        threads = [threading.Thread(target=first_request) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert [status for status, _ in answers] == [503] * 4
        slowest = max(took for _, took in answers)
        print(f"\n[jwks deadline] 4 first requests answered within {slowest:.2f} s")
        assert slowest < 2 + 2.0, answers
        assert trickler.connections == 1
    finally:
        trickler.close()


def test_fetch_jwks_has_one_total_deadline() -> None:
    trickler = _Trickler()
    try:
        started = time.monotonic()
        with pytest.raises(JWKSError, match="within 1 s"):
            fetch_jwks(f"http://127.0.0.1:{trickler.port}/jwks.json", 1)
        assert time.monotonic() - started < 2.0
    finally:
        trickler.close()


@pytest.mark.slow
def test_made_up_kids_cannot_hammer_the_auth_server(
    make_app: MakeApp, start: t.Any, example: ModuleType, algorithm: str
) -> None:
    """Concurrent first requests share one fetch; a flood of tokens naming unknown
    kids fetches at most once per JWT_AUTH_JWKS_MIN_REFRESH_INTERVAL; tokens of
    another algorithm never make it fetch."""
    interval = 2
    auth = auth_app(make_app, start, algorithm)
    config = resource_config(
        auth,
        algorithm,
        JWT_AUTH_JWKS_CACHE_TTL=300,
        JWT_AUTH_JWKS_MIN_REFRESH_INTERVAL=interval,
    )
    resource = start(example.create_app(config))
    token = login(auth.server)

    def burst(tokens_: list[str]) -> list[Answer]:
        answers: list[Answer] = []
        lock = threading.Lock()

        def worker(chunk: list[str]) -> None:
            for item in chunk:
                answer = call(resource.port, "/api/me", item)
                with lock:
                    answers.append(answer)

        threads = [
            threading.Thread(target=worker, args=(tokens_[i::8],)) for i in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(answers) == len(tokens_)
        return answers

    first = burst([token] * 8)
    assert [a.status for a in first] == [200] * 8
    assert auth.jwks_fetches == 1

    time.sleep(interval + 0.1)
    started = time.monotonic()
    flood = burst([forged(algorithm, secrets.token_urlsafe(16)) for _ in range(80)])
    took = time.monotonic() - started
    assert {a.status for a in flood} == {401}
    assert all("unknown key" in a.body["error_description"] for a in flood)
    extra = auth.jwks_fetches - 1
    assert 1 <= extra <= 1 + int(took / interval), (extra, took)

    fetches = auth.jwks_fetches
    time.sleep(interval + 0.1)
    other = "RS256" if algorithm == "ES256" else "ES256"
    mismatched = burst([forged(other, secrets.token_urlsafe(16)) for _ in range(8)])
    assert {a.status for a in mismatched} == {401}
    assert auth.jwks_fetches == fetches
    assert call(resource.port, "/api/me", token).status == 200
    assert auth.jwks_fetches == fetches


# Start-up ---------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_hmac_is_refused_at_start_up(example: ModuleType, algorithm: str) -> None:
    config = resource_config(f"http://127.0.0.1:1{JWKS}", algorithm)
    with pytest.raises(ConfigurationError, match="never publishes an HMAC secret"):
        example.create_app(config)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"JWT_AUTH_ISSUER": None}, "JWT_AUTH_ISSUER is required"),
        ({"JWT_AUTH_ISSUER": ""}, "JWT_AUTH_ISSUER is required"),
        ({"JWT_AUTH_JWKS_URL": "file:///etc/passwd"}, "http"),
        ({"JWT_AUTH_JWKS_URL": "ftp://auth.example.com/jwks"}, "http"),
        ({"JWT_AUTH_JWKS_URL": "https:///jwks.json"}, "with a host"),
        ({"JWT_AUTH_JWKS_URL": "http://[::1/jwks"}, "http"),
        ({"JWT_AUTH_JWKS_URL": ["https://a.example"]}, "must be a string"),
        ({"JWT_AUTH_JWKS_CACHE_TTL": 0}, "JWT_AUTH_JWKS_CACHE_TTL"),
        ({"JWT_AUTH_JWKS_MIN_REFRESH_INTERVAL": "soon"}, "MIN_REFRESH_INTERVAL"),
        ({"JWT_AUTH_JWKS_TIMEOUT": 0.5}, "JWT_AUTH_JWKS_TIMEOUT"),
        ({"JWT_AUTH_ALGORITHM": "none"}, "not supported"),
    ],
)
def test_invalid_verify_only_settings_stop_the_start(
    example: ModuleType, override: dict[str, t.Any], message: str
) -> None:
    config = resource_config(f"https://auth.example.com{JWKS}", "ES256", **override)
    with pytest.raises(ConfigurationError, match=message):
        example.create_app(config)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://svc:hunter2-s3cret@auth.example.com/jwks",
        "https://svc:hunter2-s3cret@/jwks.json",
        "svc:hunter2-s3cret@auth.example.com/jwks.json",
    ],
)
def test_a_bad_jwks_url_is_never_echoed(
    example: ModuleType, caplog: pytest.LogCaptureFixture, url: str
) -> None:
    """Its credentials stay out of the error and the log."""
    config = resource_config(url, "ES256")
    with (
        caplog.at_level(logging.DEBUG, logger="flask_jwt_authentication"),
        pytest.raises(ConfigurationError, match="JWT_AUTH_JWKS_URL") as caught,
    ):
        example.create_app(config)
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in caplog.text


def test_plain_http_to_another_host_is_logged(
    example: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_jwt_authentication"):
        example.create_app(resource_config("http://127.0.0.1/jwks.json", "ES256"))
        assert caplog.text == ""
        example.create_app(
            resource_config("http://user:pw@auth.internal/jwks.json?x=1", "ES256")
        )
    assert "http://auth.internal/jwks.json is plain HTTP" in caplog.text
    assert "pw" not in caplog.text


def test_verify_only_app_has_no_database_endpoints_or_commands(
    make_app: MakeApp,
) -> None:
    """One extension object serves a full app and a verify-only one; the latter
    gets no route, no table, no ``flask jwt`` group, and no access to sessions."""
    full = make_app(**key_config("ES256"))
    jwt = JWTAuthentication()
    verifying = Flask("verifier")
    verifying.config.update(resource_config(f"https://auth.example.com{JWKS}", "ES256"))
    jwt.init_app(verifying)
    assert [rule.rule for rule in verifying.url_map.iter_rules()] == [
        "/static/<path:filename>"
    ]
    assert "jwt" not in verifying.cli.commands
    assert "sqlalchemy" not in verifying.extensions
    with pytest.raises(RuntimeError, match="already initialised"):
        jwt.init_app(verifying)
    with verifying.app_context():
        with pytest.raises(RuntimeError, match="only verifies tokens"):
            get_state()
        with pytest.raises(RuntimeError, match="only verifies tokens"):
            jwt.sessions(object())
    # The full app of the same test suite is untouched by the verify-only one.
    assert get_state(full.app).settings.algorithm == "ES256"
    assert full.app.test_client().get(JWKS).status_code == 200
    assert verifying.test_client().get(JWKS).status_code == 404


# Users, permissions and signals from the token alone -------------------------------


def verifying_app(auth: Auth) -> tuple[Flask, JWTAuthentication]:
    """A resource server of its own, to register callbacks on."""
    jwt = JWTAuthentication()
    app = Flask("verifier")
    app.config.update(resource_config(auth, "ES256"))
    jwt.init_app(app)

    @app.get("/whoami")
    @jwt_required(optional=True)
    def whoami() -> dict[str, t.Any]:
        user = current_user._get_current_object()
        return {"user": user, "uid": get_jwt().get("uid")}

    @app.get("/reports")
    @jwt_required(permission="read reports")
    def reports() -> dict[str, t.Any]:
        return {"ok": True}

    return app, jwt


def test_current_user_is_none_without_a_user_loader(
    make_app: MakeApp, start: t.Any
) -> None:
    auth = auth_app(make_app, start, "ES256")
    app, _ = verifying_app(auth)
    client = app.test_client()
    assert client.get("/whoami").get_json() == {"user": None, "uid": None}
    assert auth.jwks_fetches == 0  # an anonymous request needs no key
    token = login(auth.server)
    response = client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.get_json() == {"user": None, "uid": 1}


def test_current_user_comes_from_the_user_loader(
    make_app: MakeApp, start: t.Any
) -> None:
    auth = auth_app(make_app, start, "ES256")
    app, jwt = verifying_app(auth)
    known = {1: "alice (from the resource server's own records)"}

    @jwt.user_loader
    def load(uid: t.Any) -> t.Any:
        return known.get(uid)

    headers = {"Authorization": f"Bearer {login(auth.server)}"}
    client = app.test_client()
    assert client.get("/whoami", headers=headers).get_json()["user"] == known[1]
    known.clear()
    response = client.get("/whoami", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error_description"] == (
        "The token's user is unknown or disabled."
    )


def test_permissions_and_decoded_receivers_work_from_claims(
    make_app: MakeApp, start: t.Any
) -> None:
    auth = auth_app(make_app, start, "ES256")
    app, jwt = verifying_app(auth)

    @jwt.permission_checker
    def check(user: t.Any, permission: str) -> bool:
        return permission == "read reports" and "reporter" in get_jwt().get("roles", [])

    seen: list[str] = []

    def audit(sender: Flask, payload: dict[str, t.Any], token: str) -> None:
        seen.append(payload["jti"])
        if payload["sub"] == "2":
            raise TokenRejected("Bob is on holiday.")

    client = app.test_client()
    alice = {"Authorization": f"Bearer {login(auth.server)}"}
    bob = {"Authorization": f"Bearer {login(auth.server, 'bob')}"}
    with signals.jwt_decoded.connected_to(audit, app):
        assert client.get("/reports", headers=alice).status_code == 200
        response = client.get("/reports", headers=bob)
    assert response.status_code == 401
    assert response.get_json()["error_description"] == "Bob is on holiday."
    assert len(seen) == 2
    assert client.get("/reports", headers=bob).status_code == 403


# Reading JWKs -----------------------------------------------------------------------


def rsa_jwk(kid: str = "rsa-1", *, private: bool = False, bits: int = 2048) -> dict:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    jwk = RSAAlgorithm.to_jwk(key if private else key.public_key(), as_dict=True)
    return {**jwk, "kid": kid}


def ec_jwk(
    kid: str = "ec-1", curve: ec.EllipticCurve | None = None, *, private: bool = False
) -> dict:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(key if private else key.public_key(), as_dict=True)
    return {**jwk, "kid": kid}


def test_private_members_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    """A JWK that carries its private key yields the public key only, and the
    mistake is logged; tokens of the auth key still verify with it."""
    signer = asymmetric_key("ES256", str(key_path("ec256")))
    private_jwk = ECAlgorithm.to_jwk(signer.signing_key, as_dict=True)
    assert "d" in private_jwk
    with caplog.at_level(logging.WARNING, logger="flask_jwt_authentication"):
        key = public_key_from_jwk({**private_jwk, "kid": signer.kid}, "ES256")
    assert "publishes private key material" in caplog.text
    assert key.signing_key is None
    assert isinstance(key.verifying_key, ec.EllipticCurvePublicKey)
    assert key.public_jwk is not None
    assert "d" not in key.public_jwk
    rsa_key = public_key_from_jwk(rsa_jwk(private=True), "RS256")
    assert isinstance(rsa_key.verifying_key, rsa.RSAPublicKey)
    assert rsa_key.public_jwk is not None
    assert not {"d", "p", "q", "dp", "dq", "qi"} & rsa_key.public_jwk.keys()

    token = tokens.encode({"sub": "1"}, signer)
    _, payload = tokens.verify_signature(token, KeySet(current=key), "ES256")
    assert json.loads(payload) == {"sub": "1"}


@pytest.mark.parametrize(
    ("algorithm", "change", "reason"),
    [
        ("RS256", lambda k: ec_jwk(), "kty 'EC'"),
        ("ES256", lambda k: rsa_jwk(), "kty 'RSA'"),
        ("ES256", lambda k: ec_jwk(curve=ec.SECP384R1()), "curve 'P-384'"),
        ("ES384", lambda k: ec_jwk(), "curve 'P-256'"),
        ("ES256", lambda k: {**k, "use": "enc"}, "use 'enc'"),
        ("ES256", lambda k: {**k, "key_ops": ["encrypt"]}, "'verify'"),
        ("ES256", lambda k: {**k, "key_ops": "verify"}, "'verify'"),
        ("ES256", lambda k: {**k, "key_ops": [{}, ["verify"]]}, "'verify'"),
        ("ES256", lambda k: {**k, "alg": "ES384"}, "for 'ES384'"),
        ("ES256", lambda k: {"kty": "oct", "k": "c2VjcmV0", "kid": "s"}, "kty 'oct'"),
        ("HS256", lambda k: {"kty": "oct", "k": "c2VjcmV0", "kid": "s"}, "secret"),
        ("ES256", lambda k: {kk: v for kk, v in k.items() if kk != "kid"}, "kid"),
        ("ES256", lambda k: {**k, "kid": ""}, "kid"),
        ("ES256", lambda k: {**k, "kid": "k" * 129}, "kid"),
        ("ES256", lambda k: {kk: v for kk, v in k.items() if kk != "y"}, "'y'"),
        ("ES256", lambda k: {**k, "x": 12}, "'x'"),
        ("ES256", lambda k: {**k, "x": b64url(b"\1" * 32)}, "does not parse"),
        ("ES256", lambda k: ["not", "an", "object"], "not a JSON object"),
        ("RS256", lambda k: rsa_jwk(bits=1024), "2048"),
    ],
)
def test_keys_that_cannot_verify_are_unusable(
    algorithm: str, change: t.Callable[[dict], t.Any], reason: str
) -> None:
    with pytest.raises(UnusableKey, match=re.escape(reason)):
        public_key_from_jwk(change(ec_jwk()), algorithm)


def test_a_jwks_keeps_usable_keys_in_order() -> None:
    good, other, twin = ec_jwk("a"), ec_jwk("b"), ec_jwk("a")
    document = {
        "keys": [
            {**ec_jwk("enc"), "use": "enc"},
            good,
            rsa_jwk("rsa"),
            "junk",
            other,
            twin,
            {**ec_jwk("sig"), "use": "sig", "alg": "ES256", "key_ops": ["verify"]},
        ]
    }
    keys = parse_jwks(document, "ES256")
    assert [k.kid for k in keys] == ["a", "b", "sig"]
    assert keys[0].public_jwk is not None
    assert keys[0].public_jwk["x"] == good["x"]  # the first of two "a" keys


@pytest.mark.parametrize(
    "document", [None, [], "keys", {}, {"keys": {}}, {"keys": "a"}, {"key": []}]
)
def test_a_document_that_is_no_jwks_is_an_error(document: t.Any) -> None:
    with pytest.raises(JWKSError, match="not a JWK Set"):
        parse_jwks(document, "ES256")


WYCHEPROOF = Path(__file__).parent / "vectors" / "wycheproof"

#: ``valid`` vectors refused on purpose: HMAC secrets never come from a JWKS.
WYCHEPROOF_HMAC_VALID = {2, 13, 14, 15}


def _wycheproof_key_sets() -> list[t.Any]:
    """The key-set vectors, and the signature vectors whose key is meant for
    encryption (``use``/``key_ops``), each as ``(JWK Set, case)``."""
    cases = []
    keys_data = json.loads((WYCHEPROOF / "json_web_key_test.json").read_text())
    for group in keys_data["testGroups"]:
        for case in group["tests"]:
            name = f"keys-tc{case['tcId']}-{group['comment']}-{case['comment']}"
            document = group.get("public") or group["private"]
            cases.append(pytest.param(document, case, id=name))
    jws_data = json.loads((WYCHEPROOF / "json_web_signature_test.json").read_text())
    for group in jws_data["testGroups"]:
        jwk = group.get("public") or group["private"]
        if jwk.get("use", "sig") != "sig" or "verify" not in jwk.get(
            "key_ops", ["verify"]
        ):
            for case in group["tests"]:
                name = f"jws-tc{case['tcId']}-{group['comment']}-{case['comment']}"
                cases.append(pytest.param({"keys": [jwk]}, case, id=name))
    return cases


@pytest.mark.parametrize(("document", "case"), _wycheproof_key_sets())
def test_wycheproof_key_sets(
    document: dict[str, t.Any], case: dict[str, t.Any]
) -> None:
    """Project Wycheproof's JWK vectors, read as a resource server configured for
    the token's algorithm reads its JWKS: the keys of every ``invalid`` case are
    refused (mixed and duplicate sets, wrong use or key_ops, ROCA, 1024 bits,
    e = 1, HMAC and AES keys, wrong alg, curve or kty, a point off the curve)."""
    algorithm = tokens.unverified_header(case["jws"])["alg"]
    keys = parse_jwks(document, algorithm)
    if case["result"] == "valid" and case["tcId"] not in WYCHEPROOF_HMAC_VALID:
        keyset = KeySet(current=keys[0], next=keys[1:])
        header, _ = tokens.verify_signature(case["jws"], keyset, algorithm)
        assert header["kid"] in keyset.by_kid
    else:
        assert keys == ()


def test_the_roca_fingerprint_spares_ordinary_keys() -> None:
    moduli = [
        serialization.load_pem_public_key(key_path(f"{name}.pub").read_bytes())
        .public_numbers()
        .n  # type: ignore[union-attr]
        for name in ("rsa2048", "rsa2048-other", "rsa1024")
    ]
    moduli += [
        rsa.generate_private_key(65537, 2048).public_key().public_numbers().n
        for _ in range(3)
    ]
    assert not any(has_roca_fingerprint(n) for n in moduli)


def test_display_url_hides_credentials_and_query() -> None:
    assert (
        display_url("https://u:secret@auth.example.com:8443/jwks.json?t=1#f")
        == "https://auth.example.com:8443/jwks.json"
    )
    assert display_url("http://[::1]:8000/jwks") == "http://[::1]:8000/jwks"


# The cache against a JWKS server whose answer each test sets -----------------------


@dataclasses.dataclass
class JWKSServer:
    """A real HTTP server answering ``/jwks`` with :attr:`body` and :attr:`status`."""

    server: Server
    body: bytes = b'{"keys": []}'
    status: int = 200
    hits: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/jwks"

    def publish(self, *jwks: dict[str, t.Any]) -> None:
        self.body, self.status = json.dumps({"keys": list(jwks)}).encode(), 200


@pytest.fixture
def jwks_server(start: t.Callable[[Flask], Server]) -> JWKSServer:
    app = Flask("jwks")
    holder: list[JWKSServer] = []

    @app.get("/jwks")
    def jwks() -> Response:
        served = holder[0]
        served.hits += 1
        return Response(served.body, served.status, mimetype="application/json")

    @app.get("/moved")
    def moved() -> Response:
        return Response(status=302, headers={"Location": "/jwks"})

    @app.get("/to-file")
    def to_file() -> Response:
        return Response(status=302, headers={"Location": "file:///etc/passwd"})

    @app.get("/to-ftp")
    def to_ftp() -> Response:
        return Response(status=302, headers={"Location": "ftp://127.0.0.1/jwks"})

    holder.append(JWKSServer(start(app)))
    return holder[0]


def remote(
    server: JWKSServer, *, cache_ttl: float = 0.3, min_refresh_interval: float = 0.3
) -> RemoteKeys:
    """Remote keys for ES256 from ``server``, with sub-second intervals."""
    return RemoteKeys(
        server.url,
        "ES256",
        cache_ttl=cache_ttl,
        min_refresh_interval=min_refresh_interval,
        timeout=5,
    )


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 200),
        (b'{"keys": "nope"}', 200),
        (b"\xff\xfe\x00garbage", 200),
        (b"", 204),
        (b'{"error": "boom"}', 500),
        (b'{"keys": [' + b" " * MAX_JWKS_SIZE + b"]}", 200),
    ],
    ids=["not-json", "no-key-list", "not-utf8", "empty", "http-500", "oversized"],
)
def test_a_bad_answer_keeps_the_keys_held(
    jwks_server: JWKSServer,
    body: bytes,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    jwk = ec_jwk("held")
    jwks_server.publish(jwk)
    keys = remote(jwks_server)
    assert list(keys.keyset().by_kid) == ["held"]
    jwks_server.body, jwks_server.status = body, status
    time.sleep(0.4)
    with caplog.at_level(logging.WARNING, logger="flask_jwt_authentication"):
        assert list(keys.keyset().by_kid) == ["held"]
    assert jwks_server.hits == 2
    assert "Could not fetch the JWKS" in caplog.text

    jwks_server.publish(ec_jwk("fresh"))
    time.sleep(0.4)
    assert list(keys.keyset().by_kid) == ["fresh"]


def test_a_jwks_without_usable_keys_leaves_none(jwks_server: JWKSServer) -> None:
    """A well-formed answer is the auth server's word: if none of its keys fits
    the algorithm, no key verifies any more (503 until one does)."""
    jwks_server.publish(ec_jwk("held"))
    keys = remote(jwks_server)
    assert list(keys.keyset().by_kid) == ["held"]
    jwks_server.publish(rsa_jwk("rsa"))
    time.sleep(0.4)
    with pytest.raises(TemporarilyUnavailable):
        keys.keyset()


def test_unknown_kids_refetch_at_most_once_per_interval(
    jwks_server: JWKSServer,
) -> None:
    jwks_server.publish(ec_jwk("a"))
    keys = remote(jwks_server, cache_ttl=300, min_refresh_interval=0.5)
    assert list(keys.keyset("a").by_kid) == ["a"]
    jwks_server.publish(ec_jwk("a"), ec_jwk("b"))
    for _ in range(20):  # within the interval: no fetch, "b" stays unknown
        assert "b" not in keys.keyset("nobody").by_kid
    assert jwks_server.hits == 1
    time.sleep(0.6)
    assert "b" in keys.keyset("b").by_kid
    assert keys.keyset("b").by_kid.keys() == {"a", "b"}
    assert keys.keyset(None).by_kid.keys() == {"a", "b"}
    assert jwks_server.hits == 2
    # A kid that could not be a key name (too long, not a string) fetches nothing.
    time.sleep(0.6)
    keys.keyset("k" * 129)
    keys.keyset(42)
    assert jwks_server.hits == 2


def test_concurrent_first_requests_share_one_fetch(jwks_server: JWKSServer) -> None:
    jwks_server.publish(ec_jwk("a"))
    keys = remote(jwks_server, min_refresh_interval=5)
    results: list[set[str]] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(set(keys.keyset("a").by_kid))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [{"a"}] * 8
    assert jwks_server.hits == 1


def test_redirects_are_followed_to_http_only(jwks_server: JWKSServer) -> None:
    jwks_server.publish(ec_jwk("a"))
    base = f"http://127.0.0.1:{jwks_server.server.port}"
    assert parse_jwks(fetch_jwks(f"{base}/moved", 5), "ES256")[0].kid == "a"
    with pytest.raises(JWKSError, match=r"HTTP 302 .*not allowed"):
        fetch_jwks(f"{base}/to-file", 5)
    with pytest.raises(JWKSError, match="HTTP 302 redirect to 'ftp' refused"):
        fetch_jwks(f"{base}/to-ftp", 5)
    with pytest.raises(JWKSError, match="HTTP 404"):
        fetch_jwks(f"{base}/nothing-here", 5)
    with pytest.raises(JWKSError, match="refused"):
        fetch_jwks(f"http://127.0.0.1:{closed_port()}/jwks", 5)


def test_the_no_keys_answer_names_when_to_retry(jwks_server: JWKSServer) -> None:
    jwks_server.status, jwks_server.body = 503, b"{}"
    keys = remote(jwks_server, min_refresh_interval=30)
    with pytest.raises(TemporarilyUnavailable) as caught:
        keys.keyset("a")
    with pytest.raises(TemporarilyUnavailable):
        keys.keyset("a")
    assert jwks_server.hits == 1
    retry_after = int(dict(caught.value.get_headers())["Retry-After"])
    assert 25 <= retry_after <= 30
    assert caught.value.to_dict()["error"] == "temporarily_unavailable"


def dpop_log_in(auth: Auth, key: t.Any) -> str:
    """Log alice in at the auth app with a DPoP proof by ``key``: the access token."""
    import uuid

    login_url = f"http://127.0.0.1:{auth.server.port}{PREFIX}/tokens"
    proof = key.proof("POST", login_url, iat=int(time.time()), jti=str(uuid.uuid4()))
    conn = http.client.HTTPConnection("127.0.0.1", auth.server.port, timeout=15)
    conn.request(
        "POST",
        f"{PREFIX}/tokens",
        body=json.dumps({"username": "alice", "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json", "DPoP": proof},
    )
    pair = json.loads(conn.getresponse().read())
    conn.close()
    assert pair["token_type"] == "DPoP"
    return t.cast(str, pair["access_token"])


def dpop_call(
    port: int, token: str, signer: t.Any, jti: str, **claims: t.Any
) -> tuple[int, t.Any, t.Any]:
    """GET /api/me at ``port`` with the token and a proof by ``signer``."""
    from flask_jwt_authentication.dpop import access_token_hash

    proof = signer.proof(
        "GET",
        f"http://127.0.0.1:{port}/api/me",
        iat=int(time.time()),
        jti=jti,
        ath=access_token_hash(token),
        **claims,
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    conn.request(
        "GET", "/api/me", headers={"Authorization": f"DPoP {token}", "DPoP": proof}
    )
    response = conn.getresponse()
    answer = (response.status, json.loads(response.read()), response.headers)
    conn.close()
    return answer


@pytest.mark.slow
def test_a_verify_only_server_checks_dpop(
    make_app: MakeApp, start: t.Any, example: ModuleType
) -> None:
    """A DPoP-bound token from the auth app, at a resource server with
    JWT_AUTH_DPOP on, over real HTTP: accepted with a proof by its key for that
    URL, refused as Bearer, with another key's proof, or with a replayed one."""
    import uuid

    from test_dpop import Client

    auth = auth_app(make_app, start, "ES256", JWT_AUTH_DPOP="allowed")
    resource = start(
        example.create_app(resource_config(auth, "ES256", JWT_AUTH_DPOP="allowed"))
    )
    key = Client()
    token = dpop_log_in(auth, key)
    jti = str(uuid.uuid4())
    status, answer, _ = dpop_call(resource.port, token, key, jti)
    assert status == 200, answer
    assert answer["uid"] == 1
    status, answer, _ = dpop_call(resource.port, token, key, jti)
    assert (status, answer["error"]) == (401, "invalid_dpop_proof")
    status, answer, headers = dpop_call(resource.port, token, Client(), "other")
    assert (status, answer["error"]) == (401, "invalid_dpop_proof")
    assert "DPoP" in headers["WWW-Authenticate"]
    assert call(resource.port, "/api/me", token).status == 401


@pytest.mark.slow
def test_verify_only_servers_share_proofs_in_redis_and_ask_for_nonces(
    make_app: MakeApp, start: t.Any, example: ModuleType
) -> None:
    """Two workers of a resource server with JWT_AUTH_DPOP_REDIS_URL: a proof
    one accepted is a replay at the other. With JWT_AUTH_DPOP_NONCE, a proof
    without the nonce gets 401 use_dpop_nonce and the nonce (RFC 9449 §9), which
    both workers accept since they share SECRET_KEY."""
    import uuid

    from test_dpop import Client

    redis_url = require_backend("redis")
    auth = auth_app(make_app, start, "ES256", JWT_AUTH_DPOP="allowed")
    settings = resource_config(
        auth,
        "ES256",
        JWT_AUTH_DPOP="allowed",
        JWT_AUTH_DPOP_REDIS_URL=redis_url,
        JWT_AUTH_DPOP_NONCE=True,
        SECRET_KEY="r" * 64,
    )
    one = start(example.create_app(settings))
    two = start(example.create_app(settings))
    key = Client()
    token = dpop_log_in(auth, key)
    status, answer, headers = dpop_call(one.port, token, key, str(uuid.uuid4()))
    assert (status, answer["error"]) == (401, "use_dpop_nonce")
    assert 'DPoP realm="' in headers["WWW-Authenticate"]
    assert 'error="use_dpop_nonce"' in headers["WWW-Authenticate"]
    nonce = headers["DPoP-Nonce"]
    jti = str(uuid.uuid4())
    status, answer, headers = dpop_call(one.port, token, key, jti, nonce=nonce)
    assert status == 200, answer
    assert headers["DPoP-Nonce"] == nonce
    status, answer, _ = dpop_call(two.port, token, key, jti, nonce=nonce)
    assert (status, answer["error"]) == (401, "invalid_dpop_proof")
    assert "used before" in answer["error_description"]
    status, answer, _ = dpop_call(two.port, token, key, str(uuid.uuid4()), nonce=nonce)
    assert status == 200, answer

"""Resource servers in push mode (docs/resource-server.rst): the issuer's
revocation feed, ``GET {prefix}/revocations``, followed over real HTTP by
``examples/resource_server.py``.

A log-out on the issuer is refused by the resource server within
``JWT_AUTH_REVOCATION_MAX_DELAY`` plus one feed round trip; with the feed cut,
the resource server refuses (503) once the bound has passed, and once the feed is
back it catches up on what was revoked meanwhile.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
import typing as t
from types import ModuleType

import pytest
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import http_call
from conftest import stop_followers
from flask import Flask
from test_resource_server import ISSUER
from test_resource_server import Server
from test_resource_server import _QuietHandler
from test_resource_server import auth_app
from test_resource_server import call
from test_resource_server import example  # noqa: F401 - a fixture
from test_resource_server import login
from test_resource_server import resource_config
from test_resource_server import start  # noqa: F401 - a fixture
from werkzeug.serving import make_server

from flask_jwt_authentication import ConfigurationError

MakeApp = t.Callable[..., AppEnv]
CLIENT, SECRET = "orders-api", "s3cret-feed-credential"
MAX_DELAY = 1.0
ALGORITHM = "ES256"


def basic(client: str = CLIENT, secret: str = SECRET) -> dict[str, str]:
    raw = base64.b64encode(f"{client}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


# The endpoint ------------------------------------------------------------------------


def issuer(make_app: MakeApp, **config: t.Any) -> AppEnv:
    env = make_app(JWT_AUTH_INTROSPECTION_CLIENTS={CLIENT: SECRET}, **config)
    env.create_user("alice")
    return env


def test_the_feed_is_for_introspection_clients_only(make_app: MakeApp) -> None:
    client = issuer(make_app).app.test_client()
    feed = f"{PREFIX}/revocations"
    assert client.get(feed).status_code == 401
    assert client.get(feed, headers=basic(secret="wrong")).status_code == 401
    r = client.get(feed, headers=basic())
    assert r.status_code == 200
    assert r.get_json() == {"entries": [], "highest": 0}
    assert r.headers["Cache-Control"] == "no-store"


def test_the_feed_answers_live_revocations_then_what_is_new(make_app: MakeApp) -> None:
    env = issuer(make_app)
    client = env.app.test_client()
    feed = f"{PREFIX}/revocations"
    first = client.post(
        f"{PREFIX}/tokens", json={"username": "alice", "password": PASSWORD}
    ).get_json()
    second = client.post(
        f"{PREFIX}/tokens", json={"username": "alice", "password": PASSWORD}
    ).get_json()
    auth = {"Authorization": f"Bearer {first['access_token']}"}
    assert client.post(f"{PREFIX}/logout", headers=auth).status_code == 204
    body = client.get(feed, headers=basic()).get_json()
    kinds = sorted(entry[1] for entry in body["entries"])
    assert kinds == ["session", "token"]
    assert body["highest"] == max(entry[0] for entry in body["entries"])
    # Nothing new after the highest: an empty answer, at once without wait.
    after = client.get(feed, headers=basic(), query_string={"after": body["highest"]})
    assert after.get_json() == {"entries": [], "highest": body["highest"]}
    # A long poll returns as soon as a revocation commits.
    answers: list[t.Any] = []

    def poll() -> None:
        answers.append(
            env.app.test_client()
            .get(
                feed,
                headers=basic(),
                query_string={"after": body["highest"], "wait": 5},
            )
            .get_json()
        )

    waiting = threading.Thread(target=poll)
    started = time.monotonic()
    waiting.start()
    time.sleep(0.2)
    auth = {"Authorization": f"Bearer {second['access_token']}"}
    assert client.post(f"{PREFIX}/logout", headers=auth).status_code == 204
    waiting.join(10)
    assert time.monotonic() - started < 4
    assert [entry[1] for entry in answers[0]["entries"]] == ["token", "session"]


@pytest.mark.parametrize(
    "query",
    [{"after": "x"}, {"after": "-1"}, {"wait": "26"}, {"gaps": "1,a"}, {"wait": "nan"}],
)
def test_bad_feed_parameters_get_400(make_app: MakeApp, query: dict[str, str]) -> None:
    client = issuer(make_app).app.test_client()
    r = client.get(f"{PREFIX}/revocations", headers=basic(), query_string=query)
    assert r.status_code == 400
    assert r.get_json()["error"] == "invalid_request"


# The resource server -----------------------------------------------------------------


class Restartable:
    """The issuer on a fixed port, stopped and started again mid-test."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.server: t.Any = None
        self.port = 0
        self.start()

    def start(self) -> None:
        self.server = make_server(
            "127.0.0.1",
            self.port,
            self.app,
            threaded=True,
            request_handler=_QuietHandler,
        )
        self.port = int(self.server.server_port)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def feed_config(port: int, **config: t.Any) -> dict[str, t.Any]:
    return {
        "JWT_AUTH_REVOCATION_SYNC": "push",
        "JWT_AUTH_REVOCATION_MAX_DELAY": MAX_DELAY,
        "JWT_AUTH_REVOCATION_FEED_URL": f"http://127.0.0.1:{port}{PREFIX}/revocations",
        "JWT_AUTH_REVOCATION_FEED_CLIENT_ID": CLIENT,
        "JWT_AUTH_REVOCATION_FEED_CLIENT_SECRET": SECRET,
        **config,
    }


def refused_within(port: int, token: str, bound: float) -> float:
    started = time.monotonic()
    while True:
        answer = call(port, "/api/me", token)
        elapsed = time.monotonic() - started
        if answer.status == 401:
            return elapsed
        assert answer.status == 200, answer.body
        if elapsed > bound:
            pytest.fail(f"still accepted after {elapsed:.3f} s")
        time.sleep(0.01)


@contextlib.contextmanager
def resource_server(
    start: t.Callable[[Flask], Server], example: ModuleType, config: dict[str, t.Any]
) -> t.Iterator[Server]:
    app = example.create_app(config)
    try:
        yield start(app)
    finally:
        stop_followers(app)


@pytest.mark.slow
@pytest.mark.parametrize("issuer_sync", ["database", "push"])
def test_a_log_out_reaches_the_resource_server(
    make_app: MakeApp, start: t.Any, example: ModuleType, issuer_sync: str
) -> None:
    auth = auth_app(
        make_app,
        start,
        ALGORITHM,
        JWT_AUTH_INTROSPECTION_CLIENTS={CLIENT: SECRET},
        JWT_AUTH_REVOCATION_SYNC=issuer_sync,
    )
    config = resource_config(auth, ALGORITHM, **feed_config(auth.server.port))
    with resource_server(start, example, config) as resource:
        token = login(auth.server)
        assert call(resource.port, "/api/me", token).status == 200
        status, _ = http_call(auth.server.port, "POST", f"{PREFIX}/logout", token=token)
        assert status == 204
        # MAX_DELAY plus one round trip of the feed.
        refused_within(resource.port, token, MAX_DELAY + 1.0)


@pytest.mark.slow
def test_a_cut_feed_fails_closed_and_catches_up(
    make_app: MakeApp, start: t.Any, example: ModuleType
) -> None:
    auth = auth_app(
        make_app, start, ALGORITHM, JWT_AUTH_INTROSPECTION_CLIENTS={CLIENT: SECRET}
    )
    feed = Restartable(auth.env.app)
    config = resource_config(auth, ALGORITHM, **feed_config(feed.port))
    try:
        with resource_server(start, example, config) as resource:
            revoked, kept = login(auth.server), login(auth.server)
            assert call(resource.port, "/api/me", revoked).status == 200
            feed.stop()
            # Revoked while the feed is cut.
            status, _ = http_call(
                auth.server.port, "POST", f"{PREFIX}/logout", token=revoked
            )
            assert status == 204
            time.sleep(MAX_DELAY + 0.5)
            answer = call(resource.port, "/api/me", kept)
            assert answer.status == 503, answer.body
            assert answer.body["error"] == "temporarily_unavailable"
            feed.start()
            deadline = time.monotonic() + 10
            while call(resource.port, "/api/me", kept).status != 200:
                assert time.monotonic() < deadline, "the feed did not come back"
                time.sleep(0.05)
            assert call(resource.port, "/api/me", revoked).status == 401
    finally:
        feed.stop()


@pytest.mark.parametrize(
    ("config", "setting"),
    [
        (
            {"JWT_AUTH_REVOCATION_FEED_URL": "https://auth.example.com/x"},
            "JWT_AUTH_REVOCATION_SYNC",
        ),
        ({"JWT_AUTH_REVOCATION_SYNC": "push"}, "JWT_AUTH_REVOCATION_FEED_URL"),
        (
            {
                "JWT_AUTH_REVOCATION_SYNC": "push",
                "JWT_AUTH_REVOCATION_FEED_URL": "https://auth.example.com/x",
            },
            "JWT_AUTH_REVOCATION_FEED_CLIENT_ID",
        ),
    ],
)
def test_a_half_configured_feed_is_named_at_start_up(
    example: ModuleType, config: dict[str, t.Any], setting: str
) -> None:
    base = {
        "JWT_AUTH_JWKS_URL": "https://auth.example.com/.well-known/jwks.json",
        "JWT_AUTH_ISSUER": ISSUER,
    }
    with pytest.raises(ConfigurationError) as raised:
        example.create_app({**base, **config})
    assert raised.value.setting == setting


@pytest.mark.slow
def test_wrong_feed_credentials_are_named_in_the_log(
    make_app: MakeApp,
    start: t.Any,
    example: ModuleType,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The feed answers 401: the resource server refuses with 503 and its log
    says which settings to check (never the secret)."""
    auth = auth_app(
        make_app, start, ALGORITHM, JWT_AUTH_INTROSPECTION_CLIENTS={CLIENT: SECRET}
    )
    config = resource_config(
        auth,
        ALGORITHM,
        **feed_config(
            auth.server.port, JWT_AUTH_REVOCATION_FEED_CLIENT_SECRET="not-the-secret"
        ),
    )
    with resource_server(start, example, config) as resource:
        answer = call(resource.port, "/api/me", login(auth.server))
        assert answer.status == 503, answer.body
    text = caplog.text
    assert "HTTP 401 invalid_client" in text
    assert "JWT_AUTH_REVOCATION_FEED_CLIENT_ID and _SECRET" in text
    assert "not-the-secret" not in text


def test_a_redis_url_without_push_mode_is_named(make_app: MakeApp) -> None:
    with pytest.raises(ConfigurationError) as raised:
        make_app(JWT_AUTH_REVOCATION_REDIS_URL="redis://127.0.0.1:6379/0")
    assert raised.value.setting == "JWT_AUTH_REVOCATION_SYNC"

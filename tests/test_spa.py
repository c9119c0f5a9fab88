"""``examples/spa_app.py`` and its page (``examples/spa/``) in a real Chromium,
against a real server on 127.0.0.1: log in through the form, silent refreshes
from the HttpOnly refresh cookie, a 401 retried once, log-out, a same-site page
of another origin that cannot use the cookie, and the tokens bound (DPoP,
RFC 9449) to the page's non-extractable WebCrypto key."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import sys
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
from conftest import http_call
from flask import Flask
from flask import request
from flask import request_finished
from werkzeug.serving import make_server

from flask_jwt_authentication import dpop
from flask_jwt_authentication import signals
from flask_jwt_authentication.models import REFRESH_TOKENS
from flask_jwt_authentication.models import SESSIONS

pytestmark = pytest.mark.slow

TOKENS = f"{PREFIX}/tokens"
REFRESH = f"{PREFIX}/refresh"
LOGOUT = f"{PREFIX}/logout"
COOKIE = "jwt_refresh_token"
#: Seconds: short enough to wait for; the page refreshes half-way.
ACCESS_TTL = 2
#: What the page shows of ``GET /api/me`` (``JSON.stringify(body, null, 2)``).
ALICE = json.dumps({"uid": 1, "username": "alice"}, indent=2)
ENDED = "Your session has ended; please log in again."


@dataclasses.dataclass
class Site:
    """The example app on a real server, and what the server saw."""

    env: AppEnv
    url: str
    port: int
    #: ``(method, path, status)`` of every API request the app answered.
    requests: list[tuple[str, str, int]]
    #: Every access token the app signed, in order.
    tokens: list[str]

    def count(self, method: str, path: str, status: int | None = None) -> int:
        return sum(
            1
            for m, p, s in self.requests
            if (m, p) == (method, path) and status in (None, s)
        )

    def unconsumed_refresh_hashes(self) -> set[str]:
        rows = self.env.table_rows(REFRESH_TOKENS)
        return {row["token_hash"] for row in rows if row["consumed_at"] is None}


@pytest.fixture(scope="module")
def spa() -> t.Iterator[ModuleType]:
    """The example module, imported once under a name of its own."""
    with example_module("spa_app.py") as module:
        yield module


@pytest.fixture
def site(
    spa: ModuleType, tmp_path: Path, serve: t.Callable[[AppEnv], int]
) -> t.Iterator[Site]:
    yield from served(spa, tmp_path, serve)


@pytest.fixture
def nonce_site(
    spa: ModuleType, tmp_path: Path, serve: t.Callable[[AppEnv], int]
) -> t.Iterator[Site]:
    """The example with server nonces (RFC 9449 §8) asked for."""
    yield from served(
        spa, tmp_path, serve, JWT_AUTH_DPOP_NONCE=True, SECRET_KEY="n" * 64
    )


def served(
    spa: ModuleType,
    tmp_path: Path,
    serve: t.Callable[[AppEnv], int],
    **config: t.Any,
) -> t.Iterator[Site]:
    app = spa.create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'spa.db'}",
            "JWT_AUTH_SECRET_KEY": "s" * 64,
            "JWT_AUTH_ACCESS_TOKEN_TTL": ACCESS_TTL,
            **config,
        }
    )
    result = app.test_cli_runner().invoke(
        args=["create-user", "alice", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    users = sys.modules["users"]  # examples/users.py, which the example imports
    env = AppEnv(app=app, db=spa.db, jwt=spa.jwt, User=users.User)
    requests: list[tuple[str, str, int]] = []
    tokens: list[str] = []

    def answered(sender: Flask, response: t.Any, **extra: t.Any) -> None:
        # The page's files (and the favicon) come and go at the browser's pace.
        if request.path.startswith(("/api/", PREFIX)):
            requests.append((request.method, request.path, response.status_code))

    def signed(sender: Flask, token: str, **extra: t.Any) -> None:
        tokens.append(token)

    with (
        request_finished.connected_to(answered, app),
        signals.jwt_encoded.connected_to(signed, app),
    ):
        port = serve(env)
        yield Site(env, f"http://127.0.0.1:{port}", port, requests, tokens)
    with app.app_context():
        spa.db.session.remove()
        spa.db.engine.dispose()


@pytest.fixture
def context(browser: t.Any) -> t.Iterator[t.Any]:
    """A fresh browser profile: its own cookie jar."""
    context = browser.new_context()
    yield context
    context.close()


class PageErrors:
    """Uncaught script errors and Content-Security-Policy violations of a page."""

    def __init__(self, page: t.Any) -> None:
        self.messages: list[str] = []
        page.on("pageerror", lambda error: self.messages.append(str(error)))
        page.on("console", self._console)

    def _console(self, message: t.Any) -> None:
        if "Content Security Policy" in message.text:
            self.messages.append(message.text)


def expect(target: t.Any) -> t.Any:
    """Playwright's ``expect``, imported only once a browser runs: without
    Playwright the ``browser`` fixture skips these tests."""
    from playwright.sync_api import expect

    return expect(target)


def log_in(page: t.Any, password: str = PASSWORD) -> None:
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def expires_at(token: str) -> int:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return int(claims["exp"])


def wait_until(condition: t.Callable[[], bool], timeout: float) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


#: A request signed with the page's own proof function (``dpopProof`` in
#: app.js) and sent without cookies: what the same browser could do from
#: another page, its answer leaving the page's cookie alone.
CALL_WITH_PROOF = """async ([method, url, token]) => {
    const response = await fetch(url, {
        method,
        credentials: "omit",
        headers: {
            Authorization: `DPoP ${token}`,
            DPoP: await dpopProof(method, url, token),
        },
    });
    return [response.status, await response.text()];
}"""


def call_from_page(
    page: t.Any, method: str, path: str, token: str
) -> tuple[int, t.Any]:
    """``method path`` with ``token`` and a proof by the page's key."""
    status, text = page.evaluate(CALL_WITH_PROOF, [method, path, token])
    return status, json.loads(text) if text else None


def wait_past_expiry(site: Site, token: str) -> None:
    """Wait until ``token`` has expired, and see the API refuse it."""
    time.sleep(max(0.0, expires_at(token) - time.time()) + 0.05)
    status, body = http_call(site.port, "GET", "/api/me", token=token)
    assert status == 401
    assert body == {
        "error": "invalid_token",
        "error_description": "The token has expired.",
    }


def test_log_in_refresh_silently_and_log_out(
    site: Site, context: t.Any, screenshot: t.Any
) -> None:
    page = context.new_page()
    errors = PageErrors(page)
    page.clock.install()
    page.goto(site.url)
    expect(page.get_by_role("status")).to_have_text("Please log in.")
    screenshot(page, "1-log-in")

    log_in(page, password="not the password")
    expect(page.get_by_role("status")).to_have_text("Invalid username or password.")
    assert context.cookies() == []

    # The page's timers wait while we look at the first cookie.
    page.clock.pause_at(time.time() + 0.1)
    log_in(page)
    expect(page.locator("#result")).to_have_text(ALICE)
    expect(page.get_by_text("Logged in as alice.")).to_be_visible()
    screenshot(page, "2-logged-in")
    assert site.count("POST", TOKENS, 200) == 1
    first = site.tokens[-1]

    # The refresh token is in an HttpOnly, Secure, SameSite=Strict cookie, kept
    # on http://127.0.0.1, scoped to the refresh endpoint.
    (cookie,) = context.cookies()
    assert cookie["name"] == COOKIE
    assert cookie["domain"] == "127.0.0.1"
    assert cookie["path"] == REFRESH
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["expires"] > time.time() + 13 * 24 * 3600
    digest = hashlib.sha256(cookie["value"].encode()).hexdigest()
    assert site.unconsumed_refresh_hashes() == {digest}
    # Nothing of it, nor the access token, is within reach of the page's scripts.
    stored = "[document.cookie, localStorage.length, sessionStorage.length]"
    assert page.evaluate(stored) == ["", 0, 0]
    at_refresh_path = context.new_page()
    at_refresh_path.goto(site.url + REFRESH)  # a 405 document, on the cookie's path
    assert at_refresh_path.evaluate("document.cookie") == ""
    at_refresh_path.close()

    # The page's timer refreshes on its own, with no call to prompt it.
    page.clock.resume()
    wait_until(lambda: site.count("POST", REFRESH, 200) >= 1, timeout=ACCESS_TTL + 5)
    assert site.count("GET", "/api/me") == 1
    assert digest not in site.unconsumed_refresh_hashes()
    wait_until(lambda: context.cookies()[0]["value"] != cookie["value"], timeout=5)

    # Once the first access token is dead, the page still calls the API.
    wait_past_expiry(site, first)
    page.get_by_role("button", name="Call /api/me").click()
    expect(page.locator("#result")).to_have_text(ALICE)
    assert site.count("GET", "/api/me", 200) == 2
    screenshot(page, "3-after-silent-refresh")

    # A reload loses the access token; the cookie logs the user back in.
    refreshes = site.count("POST", REFRESH, 200)
    page.reload()
    expect(page.locator("#result")).to_have_text(ALICE)
    assert site.count("POST", REFRESH, 200) > refreshes
    assert site.count("POST", TOKENS, 200) == 1

    last = site.tokens[-1]
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_have_text("Logged out.")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert site.count("POST", LOGOUT, 204) == 1
    screenshot(page, "4-logged-out")
    assert context.cookies() == []
    # The session is over: even with a proof by the page's own key.
    status, body = call_from_page(page, "GET", "/api/me", last)
    assert status == 401
    assert body["error"] == "invalid_token"
    (session,) = site.env.table_rows(SESSIONS)
    assert session["revoke_reason"] == "logout"

    # Nothing left to log back in with.
    page.reload()
    expect(page.get_by_role("status")).to_have_text("Please log in.")
    assert site.requests[-1] == ("POST", REFRESH, 400)
    assert site.count("POST", TOKENS, 200) == 1
    assert errors.messages == []


def test_a_401_refreshes_and_retries_once(
    site: Site, context: t.Any, screenshot: t.Any
) -> None:
    page = context.new_page()
    errors = PageErrors(page)
    page.clock.install()
    page.goto(site.url)
    expect(page.get_by_role("status")).to_have_text("Please log in.")
    # The laptop sleeps: the page's timers stop, so no refresh comes ahead of
    # the expiry.
    page.clock.pause_at(time.time() + 0.1)
    log_in(page)
    expect(page.locator("#result")).to_have_text(ALICE)
    wait_past_expiry(site, site.tokens[-1])
    assert site.count("POST", REFRESH, 200) == 0

    start = len(site.requests)
    page.get_by_role("button", name="Call /api/me").click()
    expect(page.locator("#result")).to_have_text(ALICE)
    assert site.requests[start:] == [
        ("GET", "/api/me", 401),
        ("POST", REFRESH, 200),
        ("GET", "/api/me", 200),
    ]
    screenshot(page, "1-retried")

    # The session ends elsewhere: the refresh fails too, and the page asks to
    # log in again instead of trying once more.
    status, _ = call_from_page(page, "POST", LOGOUT, site.tokens[-1])
    assert status == 204
    start = len(site.requests)
    page.get_by_role("button", name="Call /api/me").click()
    expect(page.get_by_role("status")).to_have_text(ENDED)
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert site.requests[start:] == [
        ("GET", "/api/me", 401),
        ("POST", REFRESH, 401),
    ]
    screenshot(page, "2-session-ended")
    assert errors.messages == []


ATTACKER_PAGE = """<!doctype html>
<title>Another origin</title>
<form method="post" action="{target}" enctype="text/plain">
  <button type="submit">Win a prize</button>
</form>
"""


@pytest.fixture
def other_origin(site: Site) -> t.Iterator[str]:
    """A page on another origin of the same site (127.0.0.1, another port), as a
    sibling application on the same host would be: SameSite lets the cookie go
    along, so only the required header keeps its requests out."""
    app = Flask("other")
    html = ATTACKER_PAGE.format(target=site.url + REFRESH)
    app.add_url_rule("/", "index", lambda: html)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=15)


def test_another_origin_cannot_refresh_with_the_cookie(
    site: Site, context: t.Any, other_origin: str, screenshot: t.Any
) -> None:
    page = context.new_page()
    page.goto(site.url)
    log_in(page)
    expect(page.locator("#result")).to_have_text(ALICE)
    page.close()  # no scheduled refresh while the other origin tries
    live = site.unconsumed_refresh_hashes()

    other = context.new_page()
    other.goto(other_origin)
    # A form posted from there carries the cookie but cannot add the header.
    with other.expect_response(site.url + REFRESH) as answer:
        other.get_by_role("button", name="Win a prize").click()
    response = answer.value
    assert response.status == 403
    assert response.json() == {
        "error": "access_denied",
        "error_description": (
            "A refresh with the cookie needs the X-Requested-With header."
        ),
    }
    screenshot(other, "1-form-refused")

    # A script there may send the header only after a CORS preflight, which the
    # server does not grant: the POST is never sent.
    other.goto(other_origin)
    before = len(site.requests)
    outcome = other.evaluate(
        """url => fetch(url, {
            method: "POST",
            credentials: "include",
            headers: {"X-Requested-With": "fetch"},
        }).then(response => response.status, error => error.name)""",
        site.url + REFRESH,
    )
    assert outcome == "TypeError"
    assert [m for m, _, _ in site.requests[before:]] == ["OPTIONS"]

    # A simple request without the header gets in, carrying the cookie, and is
    # refused the same way.
    other.evaluate(
        """url => fetch(url, {method: "POST", mode: "no-cors", credentials: "include"})
            .then(() => "sent")""",
        site.url + REFRESH,
    )
    assert site.requests[-1] == ("POST", REFRESH, 403)

    # None of it consumed the refresh token: the page still refreshes with it.
    assert site.unconsumed_refresh_hashes() == live
    assert site.count("POST", REFRESH, 200) == 0
    page = context.new_page()
    page.goto(site.url)
    expect(page.locator("#result")).to_have_text(ALICE)
    assert site.count("POST", REFRESH, 200) == 1


#: The page's key: whether WebCrypto lets its private half out, and its public
#: half as a JWK.
INSPECT_KEY = """async () => {
    const key = await dpopKeyPair();
    const exported = await crypto.subtle.exportKey("pkcs8", key.privateKey).then(
        () => "exported", error => error.name);
    const asJwk = await crypto.subtle.exportKey("jwk", key.privateKey).then(
        () => "exported", error => error.name);
    return {
        exported, asJwk,
        extractable: key.privateKey.extractable,
        algorithm: key.privateKey.algorithm,
        jwk: await crypto.subtle.exportKey("jwk", key.publicKey),
    };
}"""


def jwt_part(token: str, index: int) -> t.Any:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_tokens_are_bound_to_a_non_extractable_key(
    site: Site, context: t.Any, screenshot: t.Any
) -> None:
    page = context.new_page()
    errors = PageErrors(page)
    page.goto(site.url)
    expect(page.get_by_role("status")).to_have_text("Please log in.")
    with (
        page.expect_response(site.url + TOKENS) as logged_in,
        page.expect_request(site.url + "/api/me") as called,
    ):
        log_in(page)
    expect(page.locator("#result")).to_have_text(ALICE)
    pair = logged_in.value.json()
    assert pair["token_type"] == "DPoP"
    token = pair["access_token"]

    # The private key stays inside WebCrypto; the token names its public half.
    key = page.evaluate(INSPECT_KEY)
    assert key["exported"] == key["asJwk"] == "InvalidAccessError"
    assert key["extractable"] is False
    assert key["algorithm"] == {"name": "ECDSA", "namedCurve": "P-256"}
    jkt = dpop.thumbprint(key["jwk"])
    assert jwt_part(token, 1)["cnf"] == {"jkt": jkt}

    # The call carried the token with the DPoP scheme and a proof of RFC 9449
    # §4.2 bound to it.
    headers = called.value.headers
    assert headers["authorization"] == f"DPoP {token}"
    proof_header, claims = jwt_part(headers["dpop"], 0), jwt_part(headers["dpop"], 1)
    assert proof_header == {
        "typ": "dpop+jwt",
        "alg": "ES256",
        "jwk": {name: key["jwk"][name] for name in ("kty", "crv", "x", "y")},
    }
    assert set(claims) == {"htm", "htu", "iat", "jti", "ath"}
    assert (claims["htm"], claims["htu"]) == ("GET", site.url + "/api/me")
    assert claims["ath"] == dpop.access_token_hash(token)
    assert abs(claims["iat"] - time.time()) < 30
    # As a bearer token it is refused.
    status, body = http_call(site.port, "GET", "/api/me", token=token)
    assert status == 401
    assert "bound to a DPoP key" in body["error_description"]
    screenshot(page, "1-logged-in")

    # A refresh is proved by the same key, and gives a bound pair again.
    with page.expect_response(site.url + REFRESH) as refreshed:
        assert page.evaluate("refresh()") is True
    assert refreshed.value.json()["token_type"] == "DPoP"
    assert jwt_part(site.tokens[-1], 1)["cnf"] == {"jkt": jkt}
    page.get_by_role("button", name="Call /api/me").click()
    expect(page.locator("#result")).to_have_text(ALICE)
    assert site.requests[-1] == ("GET", "/api/me", 200)

    # The key lives in IndexedDB: after a reload the page refreshes with it.
    page.reload()
    expect(page.locator("#result")).to_have_text(ALICE)
    assert page.evaluate(INSPECT_KEY)["jwk"] == key["jwk"]

    assert errors.messages == []


def test_proofs_carry_the_nonce_the_server_hands_out(
    nonce_site: Site, context: t.Any
) -> None:
    """With JWT_AUTH_DPOP_NONCE the page's first request is told the nonce (400
    use_dpop_nonce); the page signs a new proof with it and asks again, and its
    log-in, calls and refreshes carry the latest nonce without being refused."""
    site = nonce_site
    page = context.new_page()
    errors = PageErrors(page)
    page.goto(site.url)
    expect(page.get_by_role("status")).to_have_text("Please log in.")
    with page.expect_request(site.url + "/api/me") as called:
        log_in(page)
    expect(page.locator("#result")).to_have_text(ALICE)
    # The page's opening refresh is told the nonce (400), then finds no cookie
    # (400); the log-in carries the nonce from the start.
    assert site.requests[:4] == [
        ("POST", REFRESH, 400),
        ("POST", REFRESH, 400),
        ("POST", TOKENS, 200),
        ("GET", "/api/me", 200),
    ]
    nonce = jwt_part(called.value.headers["dpop"], 1)["nonce"]
    with page.expect_request(site.url + REFRESH) as refreshed:
        assert page.evaluate("refresh()") is True
    assert jwt_part(refreshed.value.headers["dpop"], 1)["nonce"] == nonce
    page.get_by_role("button", name="Call /api/me").click()
    expect(page.locator("#result")).to_have_text(ALICE)
    assert site.requests[4:] == [("POST", REFRESH, 200), ("GET", "/api/me", 200)]
    assert errors.messages == []

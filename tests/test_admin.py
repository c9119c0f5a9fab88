"""The admin pages (``flask_jwt_authentication.admin``), through Flask's test
client on a real SQLite database: who gets in, CSRF, escaping, the sign-in's
flood limits, and what each action changes."""

from __future__ import annotations

import html
import json
import re
import time
import typing as t
from html.parser import HTMLParser

import jwt
import pytest
import time_machine
from conftest import HASH_METHOD
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import bearer
from conftest import key_config
from conftest import login
from conftest import tokens_for
from cryptography.fernet import Fernet
from flask import Flask
from flask_admin import Admin
from werkzeug.security import generate_password_hash

from flask_jwt_authentication import ADMINISTER_PERMISSION
from flask_jwt_authentication import JWTAuthentication
from flask_jwt_authentication import default_permission_checker
from flask_jwt_authentication import signals
from flask_jwt_authentication.admin import init_admin
from flask_jwt_authentication.admin.auth import COOKIE_NAME
from flask_jwt_authentication.errors import ConfigurationError
from flask_jwt_authentication.state import get_state

KEK = Fernet.generate_key().decode()
SCRIPT = "<script>alert(1)</script>"
ESCAPED = html.escape(SCRIPT, quote=False)
BASE = "/jwt-admin"
SIGN_IN = f"{BASE}/account/sign-in"
SIGN_OUT = f"{BASE}/account/sign-out"
#: Every page, as an administrator opens it.
PAGES = [
    f"{BASE}/",
    f"{BASE}/settings/",
    f"{BASE}/keys/",
    f"{BASE}/sessions/",
    f"{BASE}/sessions/?q=alice",
    f"{BASE}/revoked-tokens/",
    f"{BASE}/revoked-tokens/?page=2",
]
INVALID = "Invalid username or password."
JTIS = [f"jti-{i:03d}" for i in range(60)]


def make_admin_app(make_app: t.Callable[..., AppEnv], **config: t.Any) -> AppEnv:
    """An app with the admin mounted: ``root`` administers, ``alice`` does not
    (administrators have the role ``admin``)."""
    settings = {
        "JWT_AUTH_KEY_ENCRYPTION_KEY": KEK,
        "RATELIMIT_ENABLED": True,
        # The test client speaks plain HTTP to http://localhost and, unlike a
        # browser, keeps no Secure cookie there.
        "JWT_AUTH_ADMIN_COOKIE_SECURE": False,
    }
    env = make_app(**(settings | config))

    @env.jwt.permission_checker
    def may(user: t.Any, permission: str) -> bool:
        if permission == ADMINISTER_PERMISSION:
            return user is not None and "admin" in user.roles.split(",")
        return default_permission_checker(user, permission)

    init_admin(env.app)
    env.create_user("root", roles="admin")
    env.create_user("alice")
    return env


@pytest.fixture
def admin_env(make_app: t.Callable[..., AppEnv]) -> AppEnv:
    return make_admin_app(make_app)


def csrf_token(page: str) -> str:
    """The first CSRF token in a page."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


def sign_in(client: t.Any, username: str = "root", password: str = PASSWORD) -> t.Any:
    """Open the sign-in page and submit it, as a browser does."""
    page = client.get(SIGN_IN)
    assert page.status_code == 200
    return client.post(
        SIGN_IN,
        data={
            "csrf_token": csrf_token(page.text),
            "username": username,
            "password": password,
        },
    )


def admin_client(env: AppEnv, username: str = "root") -> t.Any:
    client = env.app.test_client()
    response = sign_in(client, username)
    assert response.status_code == 303, response.text
    return client


def fresh_token(client: t.Any) -> str:
    """A valid CSRF token for ``client``'s browser session."""
    return csrf_token(client.get(SIGN_IN).text)


def snapshot(env: AppEnv) -> dict[str, list[str]]:
    """Every row of every table, to assert that nothing changed."""
    return {
        name: sorted(repr(sorted(row.items())) for row in env.table_rows(name))
        for name in env.db.metadata.tables
    }


def stored_keys(env: AppEnv) -> dict[str, str]:
    return {row["kid"]: row["state"] for row in env.table_rows("jwt_auth_keys")}


def jwks_kids(client: t.Any) -> set[str]:
    return {key["kid"] for key in client.get("/.well-known/jwks.json").json["keys"]}


def admin_sessions(env: AppEnv) -> list[dict[str, t.Any]]:
    """The sessions without refresh tokens: the admin's sign-ins."""
    with_tokens = {
        row["session_id"] for row in env.table_rows("jwt_auth_refresh_tokens")
    }
    return [
        r for r in env.table_rows("jwt_auth_sessions") if r["id"] not in with_tokens
    ]


def actions(env: AppEnv) -> list[tuple[str, dict[str, str]]]:
    """Every state-changing action with valid arguments: a next key to retire,
    alice's session to revoke."""
    with env.app.app_context():
        kid = get_state().keys.store.generate("HS256").kid
    client = env.app.test_client()
    tokens_for(client, "alice")
    session_id = str(env.table_rows("jwt_auth_refresh_tokens")[0]["session_id"])
    return [
        (f"{BASE}/settings/", {"access_token_ttl": "120"}),
        (f"{BASE}/keys/generate", {"algorithm": "HS256"}),
        (f"{BASE}/keys/rotate", {"algorithm": "HS256"}),
        (f"{BASE}/keys/retire", {"kid": kid}),
        (f"{BASE}/keys/unretire", {"kid": kid}),
        (f"{BASE}/sessions/revoke", {"session_id": session_id}),
        (f"{BASE}/sessions/revoke-user", {"user_key": "2"}),
        (f"{BASE}/sessions/password-changed", {"user_key": "2"}),
        (SIGN_OUT, {}),
    ]


# Who gets in --------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(admin_env):
    client = admin_env.app.test_client()
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302, url
        location = response.headers["Location"]
        assert location.startswith(f"{SIGN_IN}?next="), url
        assert response.headers["Cache-Control"] == "no-store"


def test_anonymous_actions_change_nothing(admin_env):
    todo = actions(admin_env)
    before = snapshot(admin_env)
    client = admin_env.app.test_client()
    for url, data in todo[:-1]:
        # Even with a valid CSRF token of its own browser session.
        response = client.post(url, data={**data, "csrf_token": fresh_token(client)})
        assert response.status_code == 302, url
        assert response.headers["Location"] == SIGN_IN, url
    assert snapshot(admin_env) == before


def test_a_user_without_the_permission_cannot_sign_in(admin_env):
    before = snapshot(admin_env)
    client = admin_env.app.test_client()
    response = sign_in(client, "alice")
    assert response.status_code == 403
    assert "may not administer" in response.text
    assert COOKIE_NAME not in response.headers.get("Set-Cookie", "")
    assert snapshot(admin_env) == before
    assert client.get(f"{BASE}/settings/").status_code == 302


def test_a_signed_in_user_who_loses_the_permission_gets_403_everywhere(admin_env):
    todo = actions(admin_env)
    client = admin_client(admin_env)
    admin_env.set_user("root", roles="")
    before = snapshot(admin_env)
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 403, url
        assert "may not administer" in response.text
        assert response.headers["Cache-Control"] == "no-store"
    for url, data in todo[:-1]:
        response = client.post(url, data={**data, "csrf_token": fresh_token(client)})
        assert response.status_code == 403, url
    assert snapshot(admin_env) == before


def test_an_administrator_sees_every_page(admin_env):
    client = admin_client(admin_env)
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "Sign out" in response.text


def test_a_disabled_administrator_is_signed_out(admin_env):
    client = admin_client(admin_env)
    admin_env.set_user("root", is_active=False)
    assert client.get(f"{BASE}/keys/").status_code == 302
    # And cannot sign in again: the same failure as a wrong password.
    response = sign_in(client)
    assert response.status_code == 200
    assert INVALID in response.text


# The sign-in ---------------------------------------------------------------------


def test_sign_in_sets_a_protected_cookie_and_follows_next(admin_env):
    client = admin_env.app.test_client()
    page = client.get(f"{SIGN_IN}?next={BASE}/keys/")
    response = client.post(
        SIGN_IN,
        data={
            "csrf_token": csrf_token(page.text),
            "username": "root",
            "password": PASSWORD,
            "next": f"{BASE}/keys/",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"{BASE}/keys/"
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith(COOKIE_NAME)
    )
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert f"Path={BASE}" in cookie
    assert "Secure" not in cookie
    assert client.get(f"{BASE}/keys/").status_code == 200
    [session] = admin_sessions(admin_env)
    assert session["revoked_at"] is None
    assert session["user_id"] == "1"


def test_the_cookie_is_secure_by_default_even_behind_a_tls_proxy(make_app):
    """Behind a proxy that ends TLS (and no ProxyFix) the request looks like
    plain HTTP: the cookie is Secure all the same."""
    env = make_admin_app(make_app, JWT_AUTH_ADMIN_COOKIE_SECURE=True)
    del env.app.config["JWT_AUTH_ADMIN_COOKIE_SECURE"]  # the default
    response = sign_in(env.app.test_client())
    assert response.status_code == 303
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith(COOKIE_NAME)
    )
    assert "Secure" in cookie
    assert "HttpOnly" in cookie


@pytest.mark.parametrize("value", ["maybe", 2.5, [True]])
def test_an_invalid_cookie_secure_setting_stops_the_start(make_app, value):
    with pytest.raises(ConfigurationError, match="JWT_AUTH_ADMIN_COOKIE_SECURE"):
        make_admin_app(make_app, JWT_AUTH_ADMIN_COOKIE_SECURE=value)


def test_the_cookie_is_secure_over_https(make_app):
    admin_env = make_admin_app(make_app, JWT_AUTH_ADMIN_COOKIE_SECURE=True)
    client = admin_env.app.test_client()
    page = client.get(SIGN_IN, base_url="https://localhost")
    response = client.post(
        SIGN_IN,
        base_url="https://localhost",
        data={
            "csrf_token": csrf_token(page.text),
            "username": "root",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith(COOKIE_NAME)
    )
    assert "Secure" in cookie


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/jwt-admin/", "/elsewhere", "/jwt-adminx"],
)
def test_sign_in_never_redirects_elsewhere(admin_env, target):
    client = admin_env.app.test_client()
    page = client.get(SIGN_IN)
    response = client.post(
        SIGN_IN,
        data={
            "csrf_token": csrf_token(page.text),
            "username": "root",
            "password": PASSWORD,
            "next": target,
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"{BASE}/"


def test_signing_in_again_ends_the_previous_session(admin_env):
    client = admin_client(admin_env)
    old = client.get_cookie(COOKIE_NAME, path=BASE).value
    assert sign_in(client).status_code == 303
    new = client.get_cookie(COOKIE_NAME, path=BASE).value
    assert new != old
    replay = admin_env.app.test_client()
    replay.set_cookie(COOKIE_NAME, old, path=BASE)
    assert replay.get(f"{BASE}/settings/").status_code == 302
    reasons = [s["revoke_reason"] for s in admin_sessions(admin_env)]
    assert sorted(reasons, key=str) == [None, "admin signed in again"]


def test_sign_in_clears_the_browser_session(admin_env):
    """Session fixation: whatever the session held before (a CSRF secret someone
    planted) is gone after the sign-in."""
    client = admin_env.app.test_client()
    page = client.get(SIGN_IN)
    planted = client.get_cookie("session").value
    response = client.post(
        SIGN_IN,
        data={
            "csrf_token": csrf_token(page.text),
            "username": "root",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303
    assert client.get_cookie("session") is None
    # A token made for the session from before is no longer accepted.
    response = client.post(
        f"{BASE}/keys/rotate",
        data={"csrf_token": csrf_token(page.text), "algorithm": "HS256"},
    )
    assert response.status_code == 400
    assert stored_keys(admin_env) == {}
    assert client.get_cookie("session").value != planted


def test_a_forged_or_foreign_cookie_is_anonymous(admin_env, make_app):
    client = admin_client(admin_env)
    value = client.get_cookie(COOKIE_NAME, path=BASE).value
    for forged in (value[:-2] + "xx", "garbage", "x" * 300, value + "." + value):
        other = admin_env.app.test_client()
        other.set_cookie(COOKIE_NAME, forged, path=BASE)
        assert other.get(f"{BASE}/settings/").status_code == 302
    # Another app (another SECRET_KEY) does not take this app's cookie.
    second = make_admin_app(make_app, SECRET_KEY="t" * 64)
    other = second.app.test_client()
    other.set_cookie(COOKIE_NAME, value, path=BASE)
    assert other.get(f"{BASE}/settings/").status_code == 302


def test_sign_out_ends_the_session(admin_env):
    client = admin_client(admin_env)
    value = client.get_cookie(COOKIE_NAME, path=BASE).value
    page = client.get(f"{BASE}/settings/")
    response = client.post(SIGN_OUT, data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 303
    assert response.headers["Location"] == SIGN_IN
    assert client.get_cookie(COOKIE_NAME, path=BASE) is None
    assert client.get(f"{BASE}/settings/").status_code == 302
    [session] = admin_sessions(admin_env)
    assert session["revoke_reason"] == "admin sign-out"
    # The cookie, replayed, is worth nothing: the session ended on the server.
    replay = admin_env.app.test_client()
    replay.set_cookie(COOKIE_NAME, value, path=BASE)
    assert replay.get(f"{BASE}/settings/").status_code == 302


def test_revoke_sessions_ends_the_admin_session(admin_env):
    client = admin_client(admin_env)
    with admin_env.app.app_context():
        root = admin_env.db.session.get(admin_env.User, 1)
        assert admin_env.jwt.revoke_sessions(root) == 1
    assert client.get(f"{BASE}/settings/").status_code == 302


def test_the_admin_session_expires(make_app):
    env = make_admin_app(make_app, JWT_AUTH_ADMIN_SESSION_TTL=60)
    # The whole second before the sign-in: on a slow machine the sign-in itself
    # may take a second, which must not count against the 60.
    before_sign_in = int(time.time())
    client = admin_client(env)
    assert client.get(f"{BASE}/keys/").status_code == 200
    with time_machine.travel(before_sign_in + 59, tick=False):
        assert client.get(f"{BASE}/keys/").status_code == 200
    with time_machine.travel(time.time() + 61, tick=False):
        assert client.get(f"{BASE}/keys/").status_code == 302


def test_the_admin_session_lifetime_is_checked(make_app):
    with pytest.raises(ConfigurationError, match="JWT_AUTH_ADMIN_SESSION_TTL"):
        make_admin_app(make_app, JWT_AUTH_ADMIN_SESSION_TTL=10)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"username": "", "password": PASSWORD}, "This field is required."),
        ({"username": "root", "password": ""}, "This field is required."),
        ({"username": "r" * 256, "password": PASSWORD}, "255 characters"),
        ({"username": "ro\x00ot", "password": PASSWORD}, "not allowed"),
    ],
)
def test_malformed_sign_ins_are_refused_and_not_counted(make_app, fields, message):
    env = make_admin_app(make_app, JWT_AUTH_FLOOD_USER_LIMIT="1 per hour")
    client = env.app.test_client()
    for _ in range(3):
        page = client.get(SIGN_IN)
        response = client.post(
            SIGN_IN, data={"csrf_token": csrf_token(page.text), **fields}
        )
        assert response.status_code == 400
        assert message in response.text
    assert sign_in(client).status_code == 303


def test_sign_in_without_a_csrf_token_is_refused_and_not_counted(make_app):
    env = make_admin_app(make_app, JWT_AUTH_FLOOD_USER_LIMIT="1 per hour")
    client = env.app.test_client()
    client.get(SIGN_IN)
    for token in (None, "20990101000000##" + "0" * 40):
        data = {"username": "root", "password": "wrong"}
        if token is not None:
            data["csrf_token"] = token
        response = client.post(SIGN_IN, data=data)
        assert response.status_code == 400
        assert "expired" in response.text
    assert sign_in(client).status_code == 303


# Flood limits: the same counters as POST {prefix}/tokens --------------------------


def test_the_sixth_wrong_password_is_refused_with_429(admin_env):
    failures: list[str] = []

    def record(sender: Flask, **kwargs: t.Any) -> None:
        failures.append(kwargs["reason"])

    client = admin_env.app.test_client()
    with signals.login_failed.connected_to(record, admin_env.app):
        for _ in range(5):
            response = sign_in(client, "root", "wrong")
            assert response.status_code == 200
            assert INVALID in response.text
        response = sign_in(client, "root", "wrong")
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) > 0
        assert response.headers["Cache-Control"] == "no-store"
        assert "Too many failed attempts" in response.text
        # The right password too: the limit is checked before the password.
        assert sign_in(client).status_code == 429
    assert failures == ["wrong_password"] * 5 + ["too_many_attempts"] * 2
    # The API shares the counter.
    assert login(client, "root").status_code == 429
    assert login(client, "alice").status_code == 200


def test_api_and_admin_failures_count_together(admin_env):
    client = admin_env.app.test_client()
    for _ in range(3):
        assert login(client, "ROOT", "wrong").status_code == 401
    for _ in range(2):
        assert sign_in(client, "root", "wrong").status_code == 200
    assert sign_in(client, "root", "wrong").status_code == 429
    assert login(client, "root").status_code == 429


def test_unknown_users_and_wrong_passwords_look_the_same(admin_env):
    client = admin_env.app.test_client()
    unknown = sign_in(client, "nobody", "wrong")
    wrong = sign_in(client, "root", "wrong")
    assert unknown.status_code == wrong.status_code == 200
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", unknown.text).replace("nobody", "root") == strip.sub(
        "", wrong.text
    )


def test_a_successful_sign_in_clears_the_username_counter(admin_env):
    client = admin_env.app.test_client()
    for _ in range(4):
        assert sign_in(client, "root", "wrong").status_code == 200
    assert sign_in(client).status_code == 303
    for _ in range(5):
        assert login(client, "root", "wrong").status_code == 401
    assert sign_in(client, "root", "wrong").status_code == 429


# CSRF ----------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "20990101000000##" + "0" * 40, "forged"])
def test_actions_without_a_valid_csrf_token_change_nothing(admin_env, token):
    todo = actions(admin_env)
    client = admin_client(admin_env)
    before = snapshot(admin_env)
    for url, data in todo:
        body = dict(data)
        if token is not None:
            body["csrf_token"] = token
        response = client.post(url, data=body)
        assert response.status_code == 400, url
        assert "reload" in response.text or "expired" in response.text
    assert snapshot(admin_env) == before
    assert client.get(f"{BASE}/settings/").status_code == 200


def test_a_token_of_another_browser_session_is_refused(admin_env):
    todo = actions(admin_env)
    mine = admin_client(admin_env)
    theirs = admin_client(admin_env)
    before = snapshot(admin_env)
    token = fresh_token(theirs)
    for url, data in todo:
        response = mine.post(url, data={**data, "csrf_token": token})
        assert response.status_code == 400, url
    assert snapshot(admin_env) == before


def test_get_never_changes_anything(admin_env):
    todo = actions(admin_env)
    client = admin_client(admin_env)
    before = snapshot(admin_env)
    for url, data in todo:
        response = client.get(url, query_string=data)
        assert response.status_code in (200, 405), url
    for url in PAGES:
        client.get(url)
    assert snapshot(admin_env) == before


# Escaping ------------------------------------------------------------------------


def assert_escaped(page: str) -> None:
    assert SCRIPT not in page
    assert ESCAPED in page or html.escape(SCRIPT) in page


def test_a_username_is_escaped(admin_env):
    admin_env.create_user(SCRIPT, roles="admin")
    client = admin_client(admin_env, SCRIPT)
    assert_escaped(client.get(f"{BASE}/settings/").text)
    assert_escaped(client.get(f"{BASE}/sessions/").text)
    assert_escaped(client.get(f"{BASE}/sessions/", query_string={"q": SCRIPT}).text)
    # And on the sign-in page, given back after a wrong password.
    assert_escaped(sign_in(admin_env.app.test_client(), SCRIPT, "wrong").text)


def test_a_user_agent_is_escaped(admin_env):
    client = admin_env.app.test_client()
    response = client.post(
        f"{PREFIX}/tokens",
        json={"username": "alice", "password": PASSWORD},
        headers={"User-Agent": SCRIPT},
    )
    assert response.status_code == 200
    page = admin_client(admin_env).get(f"{BASE}/sessions/").text
    assert_escaped(page)


def test_an_issuer_is_escaped(make_app):
    env = make_admin_app(make_app, JWT_AUTH_ISSUER=SCRIPT)
    client = admin_client(env)
    assert_escaped(client.get(f"{BASE}/settings/").text)
    assert_escaped(client.get(f"{BASE}/").text)
    page = client.get(f"{BASE}/settings/").text
    client.post(
        f"{BASE}/settings/",
        data={"csrf_token": csrf_token(page), "issuer": SCRIPT + "2"},
    )
    assert_escaped(client.get(f"{BASE}/settings/").text)


# Sessions ------------------------------------------------------------------------


def test_sessions_are_found_by_username_or_identity(admin_env):
    api = admin_env.app.test_client()
    tokens_for(api, "alice")
    tokens_for(api, "root")
    client = admin_client(admin_env)
    for query in ("alice", " Alice ".strip().lower(), "2"):
        page = client.get(f"{BASE}/sessions/", query_string={"q": query}).text
        assert page.count('action="/jwt-admin/sessions/revoke"') == 1, query
        assert "alice" in page
    page = client.get(f"{BASE}/sessions/").text
    # Every unexpired session: alice's, root's API log-in and root's sign-in.
    assert page.count('action="/jwt-admin/sessions/revoke"') == 3
    page = client.get(f"{BASE}/sessions/", query_string={"q": "nobody"}).text
    assert "No sessions." in page
    response = client.get(f"{BASE}/sessions/", query_string={"q": "x\x00"})
    assert response.status_code == 400


def revoke_form(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the first form posting to ``action``."""
    form = re.search(rf'<form[^>]*action="{re.escape(action)}".*?</form>', page, re.S)
    assert form, f"no form for {action}"
    return dict(re.findall(r'name="([^"]+)" type="hidden" value="([^"]*)"', form[0]))


def test_revoking_a_session_stops_its_tokens(admin_env):
    api = admin_env.app.test_client()
    first = tokens_for(api, "alice")
    second = tokens_for(api, "alice")
    client = admin_client(admin_env)
    page = client.get(f"{BASE}/sessions/", query_string={"q": "alice"}).text
    fields = revoke_form(page, f"{BASE}/sessions/revoke")
    response = client.post(f"{BASE}/sessions/revoke", data=fields)
    assert response.status_code == 303
    assert response.headers["Location"] == f"{BASE}/sessions/?q=alice"
    assert "ended." in client.get(response.headers["Location"]).text
    statuses = [
        api.get("/api/me", headers=bearer(pair["access_token"])).status_code
        for pair in (first, second)
    ]
    assert sorted(statuses) == [200, 401]
    # Revoked sessions are listed as such, with no second button.
    page = client.get(f"{BASE}/sessions/", query_string={"q": "alice"}).text
    assert "revoked by administrator" in page
    assert page.count(f'action="{BASE}/sessions/revoke"') == 1


def test_revoking_all_of_a_user_stops_every_token(admin_env):
    api = admin_env.app.test_client()
    pairs = [tokens_for(api, "alice") for _ in range(3)]
    client = admin_client(admin_env)
    page = client.get(f"{BASE}/sessions/", query_string={"q": "alice"}).text
    fields = revoke_form(page, f"{BASE}/sessions/revoke-user")
    assert fields["user_key"] == "2"
    response = client.post(f"{BASE}/sessions/revoke-user", data=fields)
    assert response.status_code == 303
    assert "Ended 3 session(s)" in client.get(response.headers["Location"]).text
    for pair in pairs:
        assert (
            api.get("/api/me", headers=bearer(pair["access_token"])).status_code == 401
        )
        refresh = api.post(
            f"{PREFIX}/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert refresh.status_code == 401
    # Root's own sessions are untouched: still signed in.
    assert client.get(f"{BASE}/sessions/").status_code == 200


def test_the_password_reset_action_refuses_every_earlier_token(admin_env):
    api = admin_env.app.test_client()
    pairs = [tokens_for(api, "alice") for _ in range(2)]
    client = admin_client(admin_env)
    received = []

    def record(sender: t.Any, user: t.Any, sessions_revoked: int, **_: t.Any) -> None:
        received.append((user.username, sessions_revoked))

    page = client.get(f"{BASE}/sessions/", query_string={"q": "alice"}).text
    fields = revoke_form(page, f"{BASE}/sessions/password-changed")
    assert fields["user_key"] == "2"
    with signals.password_changed.connected_to(record, admin_env.app):
        response = client.post(f"{BASE}/sessions/password-changed", data=fields)
    assert response.status_code == 303
    assert response.headers["Location"] == f"{BASE}/sessions/?q=alice"
    message = client.get(response.headers["Location"]).text
    assert "issued before now is refused; 2 session(s) ended." in message
    assert received == [("alice", 2)]
    for pair in pairs:
        me = api.get("/api/me", headers=bearer(pair["access_token"]))
        assert me.status_code == 401
        refresh = api.post(
            f"{PREFIX}/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert refresh.status_code == 401
    # A new log-in after the reset works; the administrator stays signed in.
    fresh = tokens_for(api, "alice")
    assert api.get("/api/me", headers=bearer(fresh["access_token"])).status_code == 200
    assert client.get(f"{BASE}/sessions/").status_code == 200


def test_the_password_reset_action_is_offered_only_for_a_found_user(admin_env):
    client = admin_client(admin_env)
    action = f'action="{BASE}/sessions/password-changed"'
    assert action in client.get(f"{BASE}/sessions/?q=alice").text
    assert action not in client.get(f"{BASE}/sessions/").text
    assert action not in client.get(f"{BASE}/sessions/?q=nobody").text
    fields = {"user_key": '"nobody"', "csrf_token": fresh_token(client)}
    before = snapshot(admin_env)
    response = client.post(f"{BASE}/sessions/password-changed", data=fields)
    assert response.status_code == 303
    assert "No user nobody" in client.get(response.headers["Location"]).text
    assert snapshot(admin_env) == before


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        (f"{BASE}/sessions/revoke", {"session_id": "not-a-uuid"}),
        (f"{BASE}/sessions/revoke-user", {"user_key": "not json"}),
        (f"{BASE}/sessions/revoke-user", {"user_key": "true"}),
        (f"{BASE}/sessions/revoke-user", {"user_key": "[1]"}),
        (f"{BASE}/sessions/revoke-user", {"user_key": '"\\ud800"'}),
        (f"{BASE}/sessions/password-changed", {"user_key": "not json"}),
        (f"{BASE}/sessions/password-changed", {"user_key": "[2]"}),
        (f"{BASE}/keys/retire", {"kid": ""}),
        (f"{BASE}/keys/generate", {"algorithm": "none"}),
    ],
)
def test_malformed_actions_are_refused(admin_env, url, fields):
    client = admin_client(admin_env)
    before = snapshot(admin_env)
    response = client.post(url, data={**fields, "csrf_token": fresh_token(client)})
    assert response.status_code == 400
    assert snapshot(admin_env) == before


# Keys ----------------------------------------------------------------------------


def test_generate_rotate_and_retire_change_the_jwks(make_app):
    env = make_admin_app(make_app, **key_config("ES256"))
    client = admin_client(env)
    api = env.app.test_client()
    [configured] = jwks_kids(api)

    page = client.get(f"{BASE}/keys/").text
    response = client.post(
        f"{BASE}/keys/generate",
        data={"csrf_token": csrf_token(page), "algorithm": "ES256"},
    )
    assert response.status_code == 303
    [first] = stored_keys(env)
    assert f"Generated ES256 key {first} (next)." in client.get(f"{BASE}/keys/").text
    assert jwks_kids(api) == {configured, first}

    response = client.post(
        f"{BASE}/keys/rotate",
        data={"csrf_token": csrf_token(page), "algorithm": "ES256"},
    )
    assert response.status_code == 303
    assert stored_keys(env) == {first: "current"}
    assert f"Key {first} now signs." in client.get(f"{BASE}/keys/").text
    token = tokens_for(api, "alice")["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == first

    # Rotate again: the first key retires with the CLI's deadline.
    response = client.post(
        f"{BASE}/keys/rotate",
        data={"csrf_token": csrf_token(page), "algorithm": "ES256"},
    )
    [second] = set(stored_keys(env)) - {first}
    assert stored_keys(env) == {first: "retiring", second: "current"}
    [row] = [r for r in env.table_rows("jwt_auth_keys") if r["kid"] == first]
    # As `flask jwt keys rotate`: the access TTL (900 s) plus the leeway (0).
    assert abs(row["retire_after"] - (time.time() + 900)) < 60
    assert jwks_kids(api) == {configured, first, second}

    page = client.get(f"{BASE}/keys/").text
    # Every key has its Retire button, the configured one first.
    assert page.count(f'action="{BASE}/keys/retire"') == 3
    assert f'name="kid" type="hidden" value="{first}"' in page
    fields = {"kid": first, "csrf_token": csrf_token(page)}
    response = client.post(f"{BASE}/keys/retire", data=fields)
    assert response.status_code == 303
    assert stored_keys(env)[first] == "retired"
    assert first not in jwks_kids(api)
    assert api.get("/api/me", headers=bearer(token)).status_code == 401


def test_switching_the_algorithm_from_the_admin(admin_env):
    """Rotate an ES256 key in while HS256 signs, then select ES256 in Settings."""
    client = admin_client(admin_env)
    api = admin_env.app.test_client()
    token = fresh_token(client)
    refused = save_settings(client, algorithm="ES256")
    assert refused.status_code == 400
    assert "There is no ES256 key" in refused.text
    response = client.post(
        f"{BASE}/keys/rotate", data={"csrf_token": token, "algorithm": "ES256"}
    )
    assert response.status_code == 303
    [kid] = stored_keys(admin_env)
    page = client.get(response.headers["Location"]).text
    assert f"Key {kid} is the current ES256 key; it signs once" in page
    before = tokens_for(api, "alice")["access_token"]
    assert jwt.get_unverified_header(before)["alg"] == "HS256"
    assert save_settings(client, algorithm="ES256").status_code == 303
    after = tokens_for(api, "alice")["access_token"]
    assert jwt.get_unverified_header(after) == {
        "alg": "ES256",
        "kid": kid,
        "typ": "at+jwt",
    }
    assert jwks_kids(api) == {kid}
    assert api.get("/api/me", headers=bearer(after)).status_code == 200


def test_retiring_the_current_key_rotates_first(admin_env):
    client = admin_client(admin_env)
    api = admin_env.app.test_client()
    token = fresh_token(client)
    client.post(f"{BASE}/keys/rotate", data={"csrf_token": token, "algorithm": "HS256"})
    [current] = stored_keys(admin_env)
    access = tokens_for(api, "alice")["access_token"]
    response = client.post(
        f"{BASE}/keys/retire", data={"csrf_token": token, "kid": current}
    )
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).text
    [successor] = set(stored_keys(admin_env)) - {current}
    assert f"Retired key {current}: it no longer signs or verifies." in page
    assert f"Key {successor} now signs." in page
    assert stored_keys(admin_env) == {current: "retired", successor: "current"}
    assert api.get("/api/me", headers=bearer(access)).status_code == 401


def test_the_configured_key_can_be_retired_and_restored(admin_env):
    client = admin_client(admin_env)
    api = admin_env.app.test_client()
    access = tokens_for(api, "alice")["access_token"]
    configured = jwt.get_unverified_header(access)["kid"]
    page = client.get(f"{BASE}/keys/").text
    fields = revoke_form(page, f"{BASE}/keys/retire")
    assert fields["kid"] == configured
    response = client.post(f"{BASE}/keys/retire", data=fields)
    page = client.get(response.headers["Location"]).text
    assert f"Retired key {configured}" in page
    assert "configured, retired" in html.unescape(page)
    assert api.get("/api/me", headers=bearer(access)).status_code == 401
    rows = {row["kid"]: row for row in admin_env.table_rows("jwt_auth_keys")}
    assert rows[configured]["state"] == "retired"
    assert rows[configured]["encrypted_key"] == "configured"  # no key material
    fields = revoke_form(page, f"{BASE}/keys/unretire")
    assert fields["kid"] == configured
    response = client.post(f"{BASE}/keys/unretire", data=fields)
    page = client.get(response.headers["Location"]).text
    assert f"Configured key {configured} verifies again." in page
    assert api.get("/api/me", headers=bearer(access)).status_code == 200


def test_generating_without_an_encryption_key_says_why(make_app):
    env = make_admin_app(make_app, JWT_AUTH_KEY_ENCRYPTION_KEY=None)
    client = admin_client(env)
    token = fresh_token(client)
    for url in (f"{BASE}/keys/generate", f"{BASE}/keys/rotate"):
        response = client.post(url, data={"csrf_token": token, "algorithm": "HS256"})
        assert response.status_code == 303
        page = client.get(response.headers["Location"]).text
        assert "JWT_AUTH_KEY_ENCRYPTION_KEY" in page
    assert stored_keys(env) == {}


# Settings ------------------------------------------------------------------------


class FormReader(HTMLParser):
    """The fields of one form of a page, with the values a browser would send."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.select: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        elif self.inside and tag == "input" and "name" in a:
            self.fields[a["name"]] = a.get("value", "")
        elif self.inside and tag == "select":
            self.select = a["name"]
            self.fields.setdefault(self.select, "")
        elif self.inside and tag == "option" and self.select and "selected" in a:
            self.fields[self.select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None


def form_fields(page: str, form_id: str) -> dict[str, str]:
    reader = FormReader(form_id)
    reader.feed(page)
    assert reader.fields, f"no form {form_id!r}"
    return reader.fields


def save_settings(client: t.Any, **fields: str) -> t.Any:
    """Change some fields of the settings form and submit it whole, as a browser
    does."""
    page = client.get(f"{BASE}/settings/").text
    data = form_fields(page, "settings") | fields
    return client.post(f"{BASE}/settings/", data=data)


def test_settings_save_and_reach_the_api(admin_env):
    client = admin_client(admin_env)
    api = admin_env.app.test_client()
    response = save_settings(client, access_token_ttl="120", leeway="5")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).text
    assert "Settings saved" in page
    assert page.count("overridden") == 2
    assert tokens_for(api, "alice")["expires_in"] == 120
    stored = {
        r["name"]: json.loads(r["value"])
        for r in admin_env.table_rows("jwt_auth_settings")
    }
    assert stored == {"JWT_AUTH_ACCESS_TOKEN_TTL": 120, "JWT_AUTH_LEEWAY": 5}
    # An emptied field goes back to the configured default.
    response = save_settings(client, access_token_ttl="")
    assert response.status_code == 303
    assert tokens_for(api, "alice")["expires_in"] == 900
    assert [r["name"] for r in admin_env.table_rows("jwt_auth_settings")] == [
        "JWT_AUTH_LEEWAY"
    ]
    response = save_settings(client)
    assert "Nothing changed" in client.get(response.headers["Location"]).text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"access_token_ttl": "abc"}, "Not a valid integer value"),
        ({"access_token_ttl": "5"}, "JWT_AUTH_ACCESS_TOKEN_TTL must be between"),
        ({"refresh_token_ttl": "600", "access_token_ttl": "900"}, "outlive"),
        ({"algorithm": "RS256"}, "There is no RS256 key"),
        ({"algorithm": "none"}, "Not a valid choice"),
        (
            {"flood_user_limit": "lots"},
            "JWT_AUTH_FLOOD_USER_LIMIT must be a rate limit",
        ),
        ({"flood_ip_limit": "0 per minute"}, "at least 1 attempt per window"),
        ({"flood_user_limit": "1000000000 per second"}, "at most 10000 per hour"),
        ({"issuer": "x" * 256}, "255 characters"),
        ({"audience": "a\x00b"}, "not allowed"),
    ],
)
def test_invalid_settings_show_an_error_and_write_nothing(admin_env, fields, message):
    client = admin_client(admin_env)
    before = snapshot(admin_env)
    response = save_settings(client, **fields)
    assert response.status_code == 400
    assert message in html.unescape(response.text)
    assert 'class="invalid-feedback"' in response.text
    assert snapshot(admin_env) == before
    assert tokens_for(admin_env.app.test_client(), "alice")["expires_in"] == 900


def test_settings_show_defaults_and_the_current_key(admin_env):
    client = admin_client(admin_env)
    page = client.get(f"{BASE}/settings/").text
    with admin_env.app.app_context():
        kid = get_state().keyset.current.kid
    assert kid in page
    assert f'href="{BASE}/keys/"' in page
    assert "(default: HS256)" in page
    assert "5 per 5 minutes" in page
    for name in (
        "JWT_AUTH_ALGORITHM",
        "JWT_AUTH_ACCESS_TOKEN_TTL",
        "JWT_AUTH_REFRESH_TOKEN_TTL",
        "JWT_AUTH_ISSUER",
        "JWT_AUTH_AUDIENCE",
        "JWT_AUTH_LEEWAY",
        "JWT_AUTH_FLOOD_IP_LIMIT",
        "JWT_AUTH_FLOOD_USER_LIMIT",
        "JWT_AUTH_FLOOD_REFRESH_LIMIT",
    ):
        assert name in page


def test_the_form_covers_every_editable_setting():
    from flask_jwt_authentication import overrides
    from flask_jwt_authentication.admin.forms import SettingsForm

    assert sorted(SettingsForm.FIELDS.values()) == sorted(overrides.EDITABLE)


# Nothing secret on any page ------------------------------------------------------


def test_no_page_shows_a_secret(make_app):
    env = make_admin_app(make_app, **key_config("RS256"))
    api = env.app.test_client()
    pairs = [tokens_for(api, name) for name in ("alice", "root")]
    logout = api.post(f"{PREFIX}/logout", headers=bearer(pairs[0]["access_token"]))
    assert logout.status_code == 204
    client = admin_client(env)
    token = fresh_token(client)
    client.post(
        f"{BASE}/keys/generate", data={"csrf_token": token, "algorithm": "RS256"}
    )
    client.post(f"{BASE}/keys/rotate", data={"csrf_token": token, "algorithm": "RS256"})
    secrets = [pair["refresh_token"] for pair in pairs]
    secrets += [pair["access_token"] for pair in pairs]
    secrets += [r["token_hash"] for r in env.table_rows("jwt_auth_refresh_tokens")]
    secrets += [r["password_hash"] for r in env.table_rows("users")]
    secrets += [r["encrypted_key"] for r in env.table_rows("jwt_auth_keys")]
    pages = [client.get(url) for url in PAGES]
    assert all(page.status_code == 200 for page in pages)
    keys_page = client.get(f"{BASE}/keys/").text
    assert '"kty": "RSA"' in html.unescape(keys_page)
    for page in pages:
        text = html.unescape(page.text)
        for secret in secrets:
            assert secret not in text
        assert "PRIVATE KEY" not in text
        assert '"d":' not in text
        assert "pbkdf2:" not in text


def test_revoked_tokens_are_listed_a_page_at_a_time(admin_env):
    with admin_env.app.app_context():
        store = get_state().store
        for i, jti in enumerate(JTIS):
            store.revoke_access_token(jti, expires_at=4_000_000_000, now=1000 + i)
        store.commit()
    client = admin_client(admin_env)
    first = client.get(f"{BASE}/revoked-tokens/").text
    second = client.get(f"{BASE}/revoked-tokens/?page=2").text
    assert [jti for jti in JTIS if jti in first] == JTIS[10:]
    assert [jti for jti in JTIS if jti in second] == JTIS[:10]
    assert "Page 2 of 2" in second
    for page in ("x", "0", "-1", "9" * 30, "²"):
        response = client.get(f"{BASE}/revoked-tokens/", query_string={"page": page})
        assert response.status_code == 200
        assert "jti-059" in response.text
    far = client.get(f"{BASE}/revoked-tokens/?page=999999").text
    assert "No revoked tokens." in far
    # Read-only: there is nothing to post.
    response = client.post(
        f"{BASE}/revoked-tokens/", data={"csrf_token": fresh_token(client)}
    )
    assert response.status_code == 405


def test_a_database_outage_answers_503(make_app, tmp_path):
    # SQLite, whatever TEST_DATABASE_URL says: a database file that can no
    # longer be opened is an outage (a missing table is a deployment fault,
    # answered 500 with the fix in the log, see test_diagnostics.py).
    database = tmp_path / "outage.db"
    admin_env = make_admin_app(make_app, database_url=f"sqlite:///{database}")
    client = admin_client(admin_env)
    with admin_env.app.app_context():
        admin_env.db.session.remove()
        admin_env.db.engine.dispose()
    database.unlink()
    database.mkdir()
    response = client.get(f"{BASE}/settings/")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.headers["Content-Type"].startswith("text/html")


# Mounting ------------------------------------------------------------------------


def test_mounting_in_the_apps_own_admin(make_app):
    env = make_app()

    @env.jwt.permission_checker
    def may(user: t.Any, permission: str) -> bool:
        return user is not None or permission != ADMINISTER_PERMISSION

    env.create_user("alice")
    own = Admin(env.app, name="Shop")
    assert init_admin(env.app, admin=own) is own
    client = env.app.test_client()
    base = "/admin/jwt-authentication"
    response = client.get(f"{base}/keys/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"{base}/account/sign-in?next=")
    page = client.get(f"{base}/account/sign-in")
    response = client.post(
        f"{base}/account/sign-in",
        data={
            "csrf_token": csrf_token(page.text),
            "username": "alice",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"{base}/settings/"
    assert "Path=/admin;" in response.headers["Set-Cookie"]
    page = client.get(f"{base}/keys/")
    assert page.status_code == 200
    assert "JWT authentication" in page.text  # the menu category


def test_init_admin_needs_the_extension_and_a_secret_key(make_app):
    with pytest.raises(RuntimeError, match="not initialised"):
        init_admin(Flask("bare"))
    verifier = Flask("verifier")
    verifier.config.update(
        SECRET_KEY="s" * 64,
        JWT_AUTH_JWKS_URL="https://auth.example/.well-known/jwks.json",
        JWT_AUTH_ISSUER="auth",
        JWT_AUTH_ALGORITHM="ES256",
    )
    JWTAuthentication(verifier)
    with pytest.raises(RuntimeError, match="only verifies tokens"):
        init_admin(verifier)
    env = make_app(SECRET_KEY=None, JWT_AUTH_SECRET_KEY="k" * 64)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        init_admin(env.app)
    other = make_app()
    with pytest.raises(RuntimeError, match="another application"):
        init_admin(other.app, admin=Admin(env.app, url="/x", endpoint="x"))


def test_the_keys_page_lists_introspection_clients_without_secrets(
    make_app: t.Callable[..., AppEnv],
) -> None:
    hashed = generate_password_hash("hashed secret 1234", method=HASH_METHOD)
    env = make_admin_app(
        make_app,
        JWT_AUTH_INTROSPECTION_CLIENTS={
            "gateway": hashed,
            "billing": "plain-secret-5678",
        },
    )
    page = admin_client(env).get(f"{BASE}/keys/").text
    rows = re.findall(
        r'<tr class="introspection-client">\s*<td><code>([^<]+)</code>', page
    )
    assert rows == ["billing", "gateway"]
    assert "plain text (store a Werkzeug hash instead)" in page
    for secret in ("plain-secret-5678", hashed, hashed.split("$")[-1]):
        assert secret not in page


def test_the_keys_page_says_when_no_introspection_client_is_configured(
    admin_env: AppEnv,
) -> None:
    page = admin_client(admin_env).get(f"{BASE}/keys/").text
    assert "Introspection clients" in page
    assert "None configured." in page

"""The admin pages in a real browser (headless Chromium) against
``examples/admin_app.py`` served on 127.0.0.1: an administrator signs in, changes
a setting and the API follows; everyone else is kept out."""

from __future__ import annotations

import typing as t
from pathlib import Path
from types import ModuleType

import pytest
from conftest import PASSWORD
from conftest import PREFIX
from conftest import AppEnv
from conftest import example_module
from conftest import http_call
from cryptography.fernet import Fernet

pytestmark = pytest.mark.slow

BASE = "/jwt-admin"
PAGES = {
    "overview": f"{BASE}/",
    "settings": f"{BASE}/settings/",
    "keys": f"{BASE}/keys/",
    "sessions": f"{BASE}/sessions/",
    "revoked-tokens": f"{BASE}/revoked-tokens/",
}


@pytest.fixture
def example(tmp_path: Path) -> t.Iterator[tuple[ModuleType, AppEnv]]:
    """The admin example, with ``root`` (an administrator) and ``alice``."""
    with example_module("admin_app.py") as module:
        app = module.create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'admin.db'}",
                "SECRET_KEY": "s" * 64,
                "JWT_AUTH_SECRET_KEY": "e" * 64,
                "JWT_AUTH_KEY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                # Stored settings and keys reach every worker within a second.
                "JWT_AUTH_KEYS_REFRESH_INTERVAL": 1,
            }
        )
        runner = app.test_cli_runner()
        for args in (["root", "--admin"], ["alice"]):
            result = runner.invoke(args=["create-user", *args, "--password", PASSWORD])
            assert result.exit_code == 0, result.output
        env = AppEnv(app=app, db=module.db, jwt=module.jwt, User=module.User)
        yield module, env
        with app.app_context():
            module.db.session.remove()
            module.db.engine.dispose()


def sign_in(page: t.Any, base: str, username: str) -> t.Any:
    """Sign in through the form; returns the response of the page it leads to."""
    page.goto(f"{base}{BASE}/account/sign-in")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation() as navigation:
        page.click("#sign-in button[type=submit]")
    return navigation.value


def assert_sent_to_sign_in(page: t.Any, base: str) -> None:
    for url in PAGES.values():
        response = page.goto(f"{base}{url}")
        assert response.status == 200, url
        assert page.url.startswith(f"{base}{BASE}/account/sign-in?next="), url
        assert page.locator("#sign-in").is_visible()


def test_an_administrator_changes_the_access_token_lifetime(
    example, serve, browser, screenshot
):
    _, env = example
    port = serve(env)
    base = f"http://127.0.0.1:{port}"
    page = browser.new_page()

    page.goto(f"{base}{BASE}/")
    assert page.url == f"{base}{BASE}/account/sign-in?next=/jwt-admin/"
    screenshot(page, "sign-in")
    response = sign_in(page, base, "root")
    assert response.status == 200
    assert page.url == f"{base}{BASE}/"
    assert page.locator("#signed-in-as").inner_text() == "root"

    page.click("text=Settings")
    assert page.url == f"{base}{BASE}/settings/"
    page.fill("#access_token_ttl", "120")
    page.click("#settings button[type=submit]")
    assert "Settings saved: JWT_AUTH_ACCESS_TOKEN_TTL" in page.inner_text(".alert")
    assert page.input_value("#access_token_ttl") == "120"
    screenshot(page, "settings")

    status, body = http_call(
        port,
        "POST",
        f"{PREFIX}/tokens",
        body={"username": "alice", "password": PASSWORD},
    )
    assert status == 200
    assert body["expires_in"] == 120
    status, _ = http_call(port, "POST", f"{PREFIX}/logout", token=body["access_token"])
    assert status == 204

    page.click("text=Keys")
    page.select_option("#algorithm", "HS256")
    page.click("#generate")
    assert "Generated HS256 key" in page.inner_text(".alert")
    page.click("#rotate")
    assert "now signs" in page.inner_text(".alert")
    assert page.locator("#keys tr.key-current").count() == 1
    screenshot(page, "keys")

    page.click("text=Sessions")
    page.fill("#q", "alice")
    page.click("#search button[type=submit]")
    assert "Sessions of user alice" in page.inner_text("#search-result")
    assert "(logout)" in page.inner_text("#sessions")
    screenshot(page, "sessions")

    page.click("text=Revoked tokens")
    assert page.locator("#revoked tbody tr code").count() == 1
    screenshot(page, "revoked-tokens")

    page.click("text=Sign out")
    assert page.url == f"{base}{BASE}/account/sign-in"
    assert "You are signed out." in page.inner_text(".alert")
    assert_sent_to_sign_in(page, base)


def test_anonymous_visitors_and_other_users_are_kept_out(
    example, serve, browser, screenshot
):
    module, env = example
    port = serve(env)
    base = f"http://127.0.0.1:{port}"

    anonymous = browser.new_context().new_page()
    assert_sent_to_sign_in(anonymous, base)

    alice = browser.new_context().new_page()
    response = sign_in(alice, base, "alice")
    assert response.status == 403
    assert "may not administer" in alice.inner_text("#error-message")
    screenshot(alice, "refused")
    assert_sent_to_sign_in(alice, base)

    # An administrator who loses the permission is refused on the next request.
    root = browser.new_context().new_page()
    assert sign_in(root, base, "root").status == 200
    with env.app.app_context():
        user = module.find_user("root")
        user.is_admin = False
        module.db.session.commit()
    for url in PAGES.values():
        response = root.goto(f"{base}{url}")
        assert response.status == 403, url
        assert "may not administer" in root.inner_text("#error-message")

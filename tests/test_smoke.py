from __future__ import annotations

from conftest import PREFIX
from conftest import bearer
from conftest import tokens_for


def test_login_and_call(client):
    pair = tokens_for(client)
    r = client.get("/api/me", headers=bearer(pair["access_token"]))
    assert r.status_code == 200
    assert r.get_json()["username"] == "alice"
    r = client.get("/api/async", headers=bearer(pair["access_token"]))
    assert r.status_code == 200, r.data
    r = client.post(f"{PREFIX}/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 200

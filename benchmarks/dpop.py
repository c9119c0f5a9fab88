"""What a DPoP-protected request (RFC 9449) costs on the server, against the same
request with a Bearer token, side by side in one run.

    pip install -e '.[benchmark]'
    python benchmarks/dpop.py [--quick]

One app (HS256 access tokens, ``JWT_AUTH_DPOP = "allowed"``, push-mode
revocation, the user kept in memory) on an SQLite file, and on PostgreSQL at
``TEST_POSTGRESQL_URL`` when reachable. ``bearer`` calls ``/me`` with a Bearer
token; ``dpop`` with a DPoP-bound token and a fresh ES256 proof per request
(``ath`` bound), signed beforehand so the client's signing is not timed. The
server checks the proof's signature and claims and records its ``jti`` in the
replay cache: a row of ``jwt_auth_dpop_proofs`` (one insert per request), and,
when Redis answers at ``TEST_REDIS_URL``, again with ``JWT_AUTH_DPOP_REDIS_URL``
(one ``SET NX`` per request, no database statement). Single WSGI calls,
interleaved rounds.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile
import time
import typing as t
import uuid
from pathlib import Path

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent))

import protected_request as pr
import revocation as rv

GOAL = 1.3


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    """The client's P-256 key and its public JWK."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        numbers = self.private.public_key().public_numbers()
        self.jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64(numbers.x.to_bytes(32, "big")),
            "y": b64(numbers.y.to_bytes(32, "big")),
        }

    def proof(self, method: str, url: str, **claims: t.Any) -> str:
        body = {
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
            "jti": str(uuid.uuid4()),
            **claims,
        }
        headers = {"typ": "dpop+jwt", "jwk": self.jwk}
        return pyjwt.encode(body, self.private, algorithm="ES256", headers=headers)


def run(
    url: str,
    options: dict[str, t.Any],
    plan: pr.Plan,
    label: str,
    **extra: t.Any,
) -> None:
    db, User, _ = rv.make_db()
    app = rv.make_app(
        db,
        User,
        url,
        options,
        "push",
        "s" * 64,
        "dpop",
        JWT_AUTH_DPOP="allowed",
        **extra,
    )
    rv.create_alice(app, db, User)
    key = Key()
    login = pr.prepare(
        app,
        "POST",
        f"{rv.PREFIX}/tokens",
        headers={"DPoP": key.proof("POST", f"http://localhost{rv.PREFIX}/tokens")},
        json_body={"username": "alice", "password": rv.PASSWORD},
    )
    bound = json.loads(pr.expect(login))
    assert bound["token_type"] == "DPoP", bound
    plain = json.loads(
        pr.expect(
            pr.prepare(
                app,
                "POST",
                f"{rv.PREFIX}/tokens",
                json_body={"username": "alice", "password": rv.PASSWORD},
            )
        )
    )
    ath = b64(hashlib.sha256(bound["access_token"].encode()).digest())
    total = plan.rounds * plan.per_round

    def dpop_requests(n: int) -> list[pr.Request]:
        return [
            pr.prepare(
                app,
                "GET",
                "/me",
                headers={
                    "Authorization": f"DPoP {bound['access_token']}",
                    "DPoP": key.proof("GET", "http://localhost/me", ath=ath),
                },
            )
            for _ in range(n)
        ]

    bearer = pr.prepare(
        app, "GET", "/me", headers={"Authorization": f"Bearer {plain['access_token']}"}
    )
    for req in dpop_requests(plan.warmup):
        pr.expect(req)
    for _ in range(plan.warmup):
        pr.expect(bearer)
    samples: dict[str, list[list[float]]] = {"bearer": [], "dpop": []}
    for r in range(plan.rounds):
        prepared = dpop_requests(plan.per_round)
        for name in ("bearer", "dpop") if r % 2 == 0 else ("dpop", "bearer"):
            out = []
            for i in range(plan.per_round):
                req = bearer if name == "bearer" else prepared[i]
                elapsed, line, body = pr.call(req)
                if line[:3] != "200":
                    raise SystemExit(f"{name}: {line} {body[:300]!r}")
                out.append(elapsed)
            samples[name].append(out)
    medians = {n: pr.summary(pr.flat(v))[0] for n, v in samples.items()}
    print(f"\n== {label}: {total} requests per route")
    for name in ("bearer", "dpop"):
        median, p10, p90 = pr.summary(pr.flat(samples[name]))
        print(f"   {name:<7} median {median:7.1f} us  p10 {p10:7.1f}  p90 {p90:7.1f}")
    ratio = medians["dpop"] / medians["bearer"]
    low, high = pr.round_ratio_spread(samples, "dpop", "bearer")
    print(
        f"   dpop/bearer {ratio:.2f}  (goal <= {GOAL}: {pr.verdict(ratio, GOAL)};"
        f" rounds {low:.2f}-{high:.2f})"
    )
    # The floor of any DPoP check: one P-256 verification (OpenSSL through
    # cryptography, the key parsed), and the extension's whole proof check.
    from cryptography.hazmat.primitives import hashes

    from flask_jwt_authentication.dpop import verify_proof

    public = key.private.public_key()
    message = b"x" * 200
    signature = key.private.sign(message, ec.ECDSA(hashes.SHA256()))
    started = time.perf_counter()
    for _ in range(total):
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    raw = (time.perf_counter() - started) / total * 1e6
    samples_proofs = [
        key.proof("GET", "http://localhost/me", ath=ath) for _ in range(total)
    ]
    started = time.perf_counter()
    for sample in samples_proofs:
        verify_proof(
            sample,
            method="GET",
            uri="http://localhost/me",
            now=time.time(),
            window=60,
            access_token=bound["access_token"],
        )
    check = (time.perf_counter() - started) / total * 1e6
    print(
        f"   one P-256 verification alone: {raw:.1f} us;"
        f" the whole proof check: {check:.1f} us"
    )
    rv.dispose(app, db)


def reachable_redis() -> str | None:
    """``TEST_REDIS_URL`` (default: the local Redis) if it answers."""
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        return None
    finally:
        client.close()
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    pr.CALL = pr.call
    plan = pr.QUICK if args.quick else pr.FULL
    print("flask_jwt_authentication: a DPoP-protected request against Bearer")
    print(pr.versions())
    print(f"flask_jwt_authentication at {pr.source_state()}")
    with tempfile.TemporaryDirectory(prefix="jwt-dpop-") as directory:
        redis_url = reachable_redis()
        for database in pr.databases(Path(directory)):
            try:
                run(database.url, database.engine_options, plan, database.label)
                if redis_url is not None:
                    run(
                        database.url,
                        database.engine_options,
                        plan,
                        f"{database.label}, proofs in Redis",
                        JWT_AUTH_DPOP_REDIS_URL=redis_url,
                    )
            finally:
                database.cleanup()
        if redis_url is None:
            print("\n(Redis not reachable at TEST_REDIS_URL: no Redis runs.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Over the wire: requests per second of a protected route under gunicorn, ours
with revocation on against Flask-JWT-Extended without any revocation check, and
a memory soak of ours under load.

Needs wrk (Debian's package) and the benchmark extra::

    python benchmarks/wire.py [--duration 15] [--soak 300]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import wire_apps  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(
    factory: str, port: int, workers: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--chdir",
            str(HERE),
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            f"wire_apps:{factory}()",
        ],
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"{factory} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=15)


def wrk(port: int, token: str, seconds: int) -> float:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c16",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            f"http://127.0.0.1:{port}/api/me",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit(f"{bad.group(1)} failed responses:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True
    ).stdout
    return [int(p) for p in out.split()]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs each")
    parser.add_argument("--soak", type=int, default=300, help="soak seconds (0: none)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp())
    env = dict(
        os.environ,
        WIRE_DATABASE_URL=f"sqlite:///{folder / 'wire.db'}",
        WIRE_SECRET=secrets.token_urlsafe(64),
    )
    os.environ.update(env)
    ours_app = wire_apps.create_ours()
    fje_app = wire_apps.create_fje()
    with ours_app.app_context():
        wire_apps.db.create_all()
        wire_apps.db.session.add(
            wire_apps.User(
                username="alice",
                password_hash=generate_password_hash("pw", method="pbkdf2:sha256:1000"),
            )
        )
        wire_apps.db.session.commit()
    ours_token = (
        ours_app.test_client()
        .post(
            "/jwt-authentication/api/auth/tokens",
            json={"username": "alice", "password": "pw"},
        )
        .get_json()["access_token"]
    )
    with fje_app.app_context():
        from flask_jwt_extended import create_access_token

        fje_token = create_access_token(identity="1")

    print("Over the wire: gunicorn, 2 sync workers, wrk -t2 -c16, SQLite, HS256")
    print(f"{args.rounds} alternating runs of {args.duration} s each; requests/s:")
    results: dict[str, list[float]] = {"ours": [], "fje": []}
    for _ in range(args.rounds):
        for name, factory, token in (
            ("ours", "create_ours", ours_token),
            ("fje", "create_fje", fje_token),
        ):
            port = free_port()
            process = serve(factory, port, 2, env)
            try:
                wrk(port, token, 2)  # warm-up
                results[name].append(wrk(port, token, args.duration))
            finally:
                stop(process)
    for name, values in results.items():
        print(f"  {name:5} " + "  ".join(f"{v:8.1f}" for v in values))
    ours = sorted(results["ours"])[len(results["ours"]) // 2]
    fje = sorted(results["fje"])[len(results["fje"]) // 2]
    verdict = "met" if ours >= fje else "MISSED"
    print(
        f"median: ours (revocation on) {ours:.1f}, Flask-JWT-Extended (no revocation)"
        f" {fje:.1f}: ratio {ours / fje:.2f} (goal >= 1: {verdict})"
    )

    if args.soak:
        port = free_port()
        process = serve("create_ours", port, 1, env)
        try:
            (pid,) = worker_pids(process.pid)
            load = subprocess.Popen(
                [
                    "wrk",
                    "-t2",
                    "-c16",
                    f"-d{args.soak}s",
                    "-H",
                    f"Authorization: Bearer {ours_token}",
                    f"http://127.0.0.1:{port}/api/me",
                ],
                stdout=subprocess.DEVNULL,
            )
            samples: list[tuple[float, int]] = []
            start = time.monotonic()
            while load.poll() is None:
                samples.append((time.monotonic() - start, rss_kib(pid)))
                time.sleep(10)
            load.wait()
        finally:
            stop(process)
        print(f"Memory soak: one worker under load for {args.soak} s, RSS every 10 s:")
        print("  " + " ".join(f"{kib // 1024}" for _, kib in samples) + " MiB")
        warm = [kib for at, kib in samples if at >= 60] or [s[1] for s in samples]
        growth = (warm[-1] - warm[0]) / warm[0] * 100 if warm[0] else 0.0
        print(
            f"after the first minute: {warm[0] / 1024:.1f} -> {warm[-1] / 1024:.1f} MiB"
            f" ({growth:+.1f} %; flat: {'yes' if abs(growth) < 5 else 'NO'})"
        )


if __name__ == "__main__":
    main()

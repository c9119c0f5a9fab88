"""The files under docs/examples/ that the pages include, run as a reader would.

Console transcripts (``*.console``) are run command by command in ``bash``, from
a fresh environment with this virtual environment's ``bin`` first on ``PATH``
(what ``. .venv/bin/activate`` does), and every output shown is compared with
the real one. In the expected output, as in a doctest, ``...`` stands for any
text; a key id (43 base64url characters) stands for the one printed there, and
the same id later on the page, in a command or an output, means that same key;
a time ``YYYY-MM-DD HH:MM UTC`` stands for any time. Lines starting with ``#``
are comments; ``# [name]`` and ``# [/name]`` delimit what a page includes.

The quickstart runs against ``flask --app examples/app.py run``, started with
the README's own command; the deployment's gunicorn command line is started as
written and logged in through; the settings file and the proxy set-up start the
example application and are checked on requests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import types
import typing as t
import uuid
from pathlib import Path

import flask
import pytest
import redis
import sqlalchemy as sa
from conftest import PREFIX
from conftest import SHARED_EXAMPLE_MODULES
from conftest import AppEnv
from conftest import example_module
from conftest import http_call
from conftest import import_file
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
EXAMPLE_APP = ROOT / "examples" / "app.py"
#: Where ``flask``, ``gunicorn`` and ``python`` of this environment live.
BIN = Path(sys.executable).parent
PASSWORD = "correct horse battery staple"
#: Seconds a command of a transcript, or a server's start, may take.
TIMEOUT = 120.0

KID = r"[A-Za-z0-9_-]{43}"
TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
#: The placeholders of expected output: an ellipsis, a key id, a time.
PLACEHOLDER = re.compile(rf"(\.\.\.)|(?<![\w-])({KID})(?![\w-])|({TIME})")
#: Printed between a command's output and the environment it leaves.
END_OF_OUTPUT = "\n=== end of output ===\n"

pytestmark = pytest.mark.slow


@dataclasses.dataclass
class Step:
    """One command of a transcript and the output shown for it."""

    line: int
    command: str
    expected: list[str] = dataclasses.field(default_factory=list)


def read_steps(path: Path, section: str | None = None) -> list[Step]:
    """The commands of a transcript, or of one ``# [section]`` of it."""
    numbered = list(enumerate(path.read_text(encoding="utf-8").splitlines(), 1))
    if section is not None:
        lines = [line for _, line in numbered]
        start = lines.index(f"# [{section}]")
        numbered = numbered[start + 1 : lines.index(f"# [/{section}]")]
    steps: list[Step] = []
    continued = False
    for number, line in numbered:
        if continued:
            steps[-1].command += "\n" + line
        elif line.startswith("$ "):
            steps.append(Step(number, line[2:]))
        elif not line.startswith("#"):
            assert steps, f"{path.name}:{number}: output before any command"
            steps[-1].expected.append(line)
        continued = (continued or line.startswith("$ ")) and line.endswith("\\")
    assert steps, f"{path.name}: no command in {section or 'the file'}"
    return steps


def shell_env(**variables: str) -> dict[str, str]:
    """This process's environment without any Flask or extension settings, with
    this environment's ``bin`` first on ``PATH``, plus ``variables``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FLASK_", "JWT_AUTH_", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(variables)
    return env


class Transcript:
    """Runs the steps of a transcript one after the other, as one shell session:
    variables set by a command are there for the next ones.

    :param env: the environment of the first command.
    :param cwd: the working directory of the first command.
    :param replace: text to replace in commands and outputs (the address of the
        server the test started for the one a page shows).
    """

    def __init__(
        self, env: dict[str, str], cwd: Path, replace: dict[str, str] | None = None
    ) -> None:
        self.env = env
        self.cwd = cwd
        self.replace = replace or {}
        #: Key ids as shown on the page -> as printed by this run.
        self.kids: dict[str, str] = {}

    def run_all(self, steps: list[Step]) -> None:
        for step in steps:
            self.check(step, self.run(step))

    def run(self, step: Step) -> str:
        """Run a step's command; its output (standard output and error)."""
        command = step.command
        for shown, real in [*self.replace.items(), *self.kids.items()]:
            command = command.replace(shown, real)
        script = (
            f"set -a\n{command}\nstatus=$?\n"
            f"printf '%s' {shlex.quote(END_OF_OUTPUT)}\nenv -0\nexit $status\n"
        )
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=TIMEOUT,
            check=False,
        )
        raw, _, environment = result.stdout.partition(END_OF_OUTPUT.encode())
        output = raw.decode("utf-8", "replace").removesuffix("\n")
        assert result.returncode == 0, (
            f"line {step.line}: `{command}` exited with {result.returncode}:\n{output}"
        )
        self.env = dict(
            item.split("=", 1)
            for item in environment.decode("utf-8", "replace").split("\0")
            if "=" in item
        )
        self.cwd = Path(self.env.get("PWD", self.cwd))
        return output

    def check(self, step: Step, output: str) -> None:
        """Compare ``output`` with the step's expected output; learn the key ids
        it shows for the first time."""
        expected = "\n".join(step.expected)
        for shown, real in self.replace.items():
            expected = expected.replace(shown, real)
        pattern, new_kids = self.pattern(expected)
        match = pattern.fullmatch(output)
        assert match is not None, (
            f"line {step.line}: `{step.command}`\n"
            f"--- shown ---\n{expected}\n--- printed ---\n{output}"
        )
        for group, shown in enumerate(new_kids):
            real = match.group(f"kid{group}")
            assert real not in self.kids.values(), (
                f"line {step.line}: {shown} is a key already shown as another id"
            )
            self.kids[shown] = real

    def pattern(self, expected: str) -> tuple[re.Pattern[str], list[str]]:
        """The regular expression of an expected output, and the key ids it
        shows for the first time (named groups ``kid0``, ``kid1``, ...)."""
        parts: list[str] = []
        new_kids: list[str] = []
        position = 0
        for match in PLACEHOLDER.finditer(expected):
            parts.append(re.escape(expected[position : match.start()]))
            position = match.end()
            ellipsis, kid, _ = match.groups()
            if ellipsis:
                parts.append("(?s:.*?)")
            elif kid is None:
                parts.append(TIME)
            elif kid in self.kids:
                parts.append(re.escape(self.kids[kid]))
            elif kid in new_kids:
                parts.append(f"(?P=kid{new_kids.index(kid)})")
            else:
                parts.append(f"(?P<kid{len(new_kids)}>{KID})")
                new_kids.append(kid)
        parts.append(re.escape(expected[position:]))
        return re.compile("".join(parts)), new_kids


def doc_example(filename: str) -> contextlib.AbstractContextManager[types.ModuleType]:
    """Import ``docs/examples/<filename>`` under a name of its own."""
    return import_file(
        EXAMPLES / filename,
        "flask_jwt_authentication_doc_example_" + filename.removesuffix(".py"),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sh(command: str, env: dict[str, str], cwd: Path = ROOT) -> str:
    """Run a shell command that must succeed; its output."""
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"`{command}`:\n{result.stdout}{result.stderr}"
    return result.stdout


@contextlib.contextmanager
def server(
    command: str, port: int, env: dict[str, str], log: Path, cwd: Path = ROOT
) -> t.Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (a server listening on ``port``) in ``cwd`` until the
    block ends."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert process.poll() is None, f"`{command}` exited:\n{log.read_text()}"
            try:
                if http_call(port, "GET", "/.well-known/jwks.json")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"`{command}` did not answer"
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def readme_commands() -> list[str]:
    readme = (ROOT / "README.rst").read_text(encoding="utf-8")
    return re.findall(r"\.\. code-block:: sh\n\n    (.+)\n", readme)


# The transcript checker itself ------------------------------------------------------


def test_a_transcript_with_other_output_fails(tmp_path: Path) -> None:
    transcript = Transcript(shell_env(), tmp_path)
    good = Step(1, "echo hello; echo world", ["hello", "w..."])
    transcript.check(good, transcript.run(good))
    with pytest.raises(AssertionError, match=r"--- printed ---\s+hello\s+world"):
        transcript.check(Step(2, "echo", ["hello", "there"]), "hello\nworld")
    with pytest.raises(AssertionError, match="exited with 3"):
        transcript.run(Step(3, "exit 3"))


def test_a_transcript_is_one_shell_session(tmp_path: Path) -> None:
    transcript = Transcript(shell_env(), tmp_path)
    transcript.run_all(
        [
            Step(1, "GREETING=hello"),
            Step(2, "mkdir sub && cd sub"),
            Step(3, 'echo "$GREETING from $(basename "$PWD")"', ["hello from sub"]),
        ]
    )


def test_key_ids_and_times_in_a_transcript(tmp_path: Path) -> None:
    shown_a, shown_b = "A" * 43, "B" * 43
    real_a, real_b = "x" * 42 + "-", "y" * 43
    transcript = Transcript(shell_env(), tmp_path)
    transcript.check(
        Step(1, "", [f"Key {shown_a} verifies until 2026-01-01 00:00 UTC."]),
        f"Key {real_a} verifies until 2031-07-15 13:45 UTC.",
    )
    assert transcript.kids == {shown_a: real_a}
    step = Step(2, f"echo {shown_a} {shown_b}", [f"{shown_a} {shown_b}"])
    output = transcript.run(step)
    assert output == f"{real_a} {shown_b}"
    # A key shown for the first time may not be one already seen as another id.
    with pytest.raises(AssertionError, match="already shown"):
        transcript.check(Step(3, "", [f"{shown_b}"]), real_a)
    transcript.check(Step(4, "", [f"{shown_b} {shown_b}"]), f"{real_b} {real_b}")
    with pytest.raises(AssertionError):
        transcript.check(Step(5, "", [f"{shown_a}"]), real_b)


# docs/quickstart.rst -----------------------------------------------------------------


def test_quickstart_session_against_the_example_server(tmp_path: Path) -> None:
    """The README's first command (the quickstart shows it), from the point where
    the package is installed, then the quickstart's curl session against it."""
    parts = readme_commands()[0].split(" && ")
    installed = parts.index("pip install -e .") + 1
    assert parts[:installed] == [
        "python3 -m venv .venv",
        ". .venv/bin/activate",
        "pip install -e .",
    ]
    create_user, run = parts[installed:]
    assert create_user.startswith("flask --app examples/app.py create-user alice")
    assert run == "flask --app examples/app.py run"
    env = shell_env(FLASK_SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.db'}")
    assert sh(create_user, env) == "Created user 'alice'.\n"
    port = free_port()
    env_run = env | {"FLASK_RUN_PORT": str(port)}
    with server(run, port, env_run, tmp_path / "server.log"):
        Transcript(env, tmp_path, {"127.0.0.1:5000": f"127.0.0.1:{port}"}).run_all(
            read_steps(EXAMPLES / "quickstart.console")
        )


# docs/keys.rst and docs/deployment.rst: flask jwt keys -------------------------------


def keys_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The example with ES256 keys stored in the database and none configured
    (its random HMAC secret turned off), and one current key already."""
    env = shell_env(
        FLASK_SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.db'}",
        FLASK_JWT_AUTH_ALGORITHM="ES256",
        FLASK_JWT_AUTH_SECRET_KEY="null",
        FLASK_JWT_AUTH_KEY_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        **variables,
    )
    output = sh(
        f"flask --app {shlex.quote(str(EXAMPLE_APP))} jwt keys generate --current", env
    )
    assert output.startswith("Generated ES256 key ")
    return env


def test_key_rotation_runbook(tmp_path: Path) -> None:
    env = keys_env(tmp_path, FLASK_APP=str(EXAMPLE_APP))
    Transcript(env, tmp_path).run_all(read_steps(EXAMPLES / "keys.console"))


def test_deployment_key_rotation_command(tmp_path: Path) -> None:
    env = keys_env(tmp_path)
    steps = read_steps(EXAMPLES / "deployment.console", "rotate")
    Transcript(env, ROOT).run_all(steps)


# docs/cli.rst: flask jwt cleanup, and its cron line ----------------------------------


#: Seconds the tokens of test_cleanup_examples live.
LIFETIME = 3


def test_cleanup_examples(tmp_path: Path) -> None:
    """Three logins, two refreshes in the first session, two log-outs, all expired
    by the time the cleanup runs (the lifetimes leave time for slow hashing)."""
    database = f"sqlite:///{tmp_path / 'app.db'}"
    with example_module("app.py") as example:
        app = example.create_app(
            {
                "SQLALCHEMY_DATABASE_URI": database,
                "JWT_AUTH_ACCESS_TOKEN_TTL": LIFETIME,
                "JWT_AUTH_REFRESH_TOKEN_TTL": LIFETIME,
            }
        )
        try:
            runner = app.test_cli_runner()
            result = runner.invoke(args=["create-user", "alice", "--password", "pw"])
            assert result.exit_code == 0, result.output
            client = app.test_client()
            credentials = {"username": "alice", "password": "pw"}
            pairs = [
                client.post(f"{PREFIX}/tokens", json=credentials).get_json()
                for _ in range(3)
            ]
            refresh = pairs[0]["refresh_token"]
            for _ in range(2):
                r = client.post(f"{PREFIX}/refresh", json={"refresh_token": refresh})
                refresh = r.get_json()["refresh_token"]
            for pair in pairs[1:]:
                r = client.post(
                    f"{PREFIX}/logout",
                    headers={"Authorization": f"Bearer {pair['access_token']}"},
                )
                assert r.status_code == 204
        finally:
            with app.app_context():
                example.db.engine.dispose()
    time.sleep(LIFETIME + 1.1)
    env = shell_env(FLASK_APP=str(EXAMPLE_APP), FLASK_SQLALCHEMY_DATABASE_URI=database)
    Transcript(env, tmp_path).run_all(read_steps(EXAMPLES / "cli.console"))


def cron_field(field: str, low: int, high: int) -> set[int]:
    """The values a crontab time field stands for (``*``, ``a-b``, ``a,b``,
    ``/step``); an invalid field fails."""
    values: set[int] = set()
    for item in field.split(","):
        match = re.fullmatch(r"(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?", item)
        assert match, f"not a crontab field: {field!r}"
        star, first, last, step = match.groups()
        start = low if star == "*" else int(first)
        end = high if star == "*" else int(last or first)
        assert low <= start <= end <= high, f"out of range: {field!r}"
        values.update(range(start, end + 1, int(step or 1)))
    return values


def test_cron_line(tmp_path: Path) -> None:
    """The crontab line runs every ten minutes and works with cron's bare
    environment, in a folder holding the application and its virtual
    environment (here a copy of the example, and this environment)."""
    lines = [
        line
        for line in (EXAMPLES / "crontab").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(lines) == 1
    minute, hour, day, month, weekday, command_line = lines[0].split(None, 5)
    assert cron_field(minute, 0, 59) == set(range(0, 60, 10))
    assert cron_field(hour, 0, 23) == set(range(24))
    assert cron_field(day, 1, 31) == set(range(1, 32))
    assert cron_field(month, 1, 12) == set(range(1, 13))
    assert cron_field(weekday, 0, 7) == set(range(8))
    folder = tmp_path / "srv-app"
    folder.mkdir()
    shutil.copy(EXAMPLE_APP, folder / "app.py")
    for shared in SHARED_EXAMPLE_MODULES:
        shutil.copy(EXAMPLE_APP.parent / shared, folder / shared)
    (folder / ".venv").symlink_to(BIN.parent)
    assert "/srv/app" in command_line
    result = subprocess.run(
        ["/bin/sh", "-c", command_line.replace("/srv/app", str(folder))],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHELL": "/bin/sh"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    # Quiet: cron mails whatever a job prints.
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert (folder / "instance" / "example.db").exists()


def test_cleanup_until_done_script(tmp_path: Path) -> None:
    """The wrapper of docs/cli.rst runs the cleanup again while it answers 3
    (stopped at the time limit), and ends with 0 once nothing is left, printing
    nothing."""
    from test_cli import backlog
    from test_cli import rows_left

    folder = tmp_path / "srv-app"
    (folder / "instance").mkdir(parents=True)
    shutil.copy(EXAMPLE_APP, folder / "app.py")
    for shared in SHARED_EXAMPLE_MODULES:
        shutil.copy(EXAMPLE_APP.parent / shared, folder / shared)
    (folder / ".venv").symlink_to(BIN.parent)
    script = folder / "cleanup-until-done.sh"
    text = (EXAMPLES / "cleanup-until-done.sh").read_text(encoding="utf-8")
    assert "cd /srv/app " in text
    script.write_text(text.replace("/srv/app", str(folder)), encoding="utf-8")
    url = backlog(folder / "instance" / "example.db", 15000)
    # 60000 rows take about 0.5 s here, so a time limit of 0.1 s stops the
    # first run; each run deletes at least one batch of 5000, so six runs at
    # most (three of sessions, three of revoked ids), fewer than the script's 10.
    args = ["--time-limit", "0.1", "--batch-size", "5000"]
    result = subprocess.run(
        ["/bin/sh", "-x", str(script), *args],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHELL": "/bin/sh"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
        check=False,
    )
    runs = result.stderr.count("jwt cleanup --quiet --time-limit 60 " + " ".join(args))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert 2 <= runs <= 6, result.stderr
    assert rows_left(url) == 0


# docs/deployment.rst -----------------------------------------------------------------


def test_gunicorn_command_line(tmp_path: Path) -> None:
    """The command line as shown, from the root of a checkout, on another port:
    four workers, which all accept a token signed by any of them."""
    (step,) = read_steps(EXAMPLES / "deployment.console", "gunicorn")
    assert "--bind 127.0.0.1:8000 " in step.command
    port = free_port()
    run = step.command.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    env = shell_env(
        FLASK_SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.db'}",
        JWT_AUTH_SECRET_KEY="w" * 64,
    )
    sh(f"flask --app examples/app.py create-user alice --password '{PASSWORD}'", env)
    log = tmp_path / "gunicorn.log"
    with server(run, port, env, log):
        status, pair = http_call(
            port,
            "POST",
            f"{PREFIX}/tokens",
            body={"username": "alice", "password": PASSWORD},
        )
        assert status == 200, pair
        for _ in range(16):
            status, me = http_call(port, "GET", "/api/me", token=pair["access_token"])
            assert (status, me) == (200, {"uid": 1, "username": "alice"})
        deadline = time.monotonic() + TIMEOUT
        while log.read_text().count("Booting worker with pid") < 4:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert log.read_text().count("Booting worker with pid") == 4


def test_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings start the example application: its database URLs name
    installed drivers, the secrets are taken from the environment, and the flood
    counters go to the Redis named (here the test one, or a closed port, where
    log-ins fail closed)."""
    monkeypatch.setenv("JWT_AUTH_SECRET_KEY", "p" * 64)
    monkeypatch.setenv("JWT_AUTH_KEY_ENCRYPTION_KEY", Fernet.generate_key().decode())
    config = flask.Config(str(EXAMPLES))
    assert config.from_pyfile("settings.py")
    source = (EXAMPLES / "settings.py").read_text(encoding="utf-8")
    urls = re.findall(r'"(\w+\+\w+://[^"]+)"', source)
    assert urls[0] == config["SQLALCHEMY_DATABASE_URI"]
    assert [sa.engine.make_url(url).get_backend_name() for url in urls] == [
        "postgresql",
        "mysql",
    ]
    for url in urls:
        sa.engine.make_url(url).get_dialect().import_dbapi()
    assert config["JWT_AUTH_SECRET_KEY"] == "p" * 64
    settings = {name: value for name, value in config.items() if name.isupper()}
    # No database server or Redis of these names here: SQLite, and Redis at the
    # test's address.
    settings["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'app.db'}"
    shown_redis = sa.engine.make_url(settings["RATELIMIT_STORAGE_URI"])
    assert shown_redis.drivername == "redis"
    redis_url = os.environ.get("TEST_REDIS_URL")
    settings["RATELIMIT_STORAGE_URI"] = redis_url or (
        f"redis://127.0.0.1:{free_port()}/{shown_redis.database}"
    )
    with example_module("app.py") as example:
        app = example.create_app(settings)
        try:
            runner = app.test_cli_runner()
            result = runner.invoke(args=["jwt", "keys", "generate"])
            assert result.exit_code == 0, result.output
            assert result.output.startswith("Generated HS256 key ")
            listed = runner.invoke(args=["jwt", "keys", "list"]).output
            assert re.search(r"^\S+  HS256  configured$", listed, re.MULTILINE)
            assert re.search(r"^\S+  HS256  next  ", listed, re.MULTILINE)
            r = app.test_client().post(
                f"{PREFIX}/tokens", json={"username": "nobody", "password": "x"}
            )
            if redis_url:
                assert r.status_code == 401
                client = redis.Redis.from_url(redis_url)
                keys = list(client.scan_iter("*myapp:jwt-auth*"))
                assert keys
                client.delete(*keys)
                client.close()
            else:
                assert r.status_code == 503
                assert r.get_json()["error"] == "temporarily_unavailable"
        finally:
            with app.app_context():
                example.db.engine.dispose()


def test_proxy_set_up_counts_each_client(make_app: t.Callable[..., AppEnv]) -> None:
    """Behind one proxy, the address limit counts each client, not the proxy;
    without the set-up, all clients share the proxy's count."""

    def attempts(env: AppEnv, client_address: str, count: int) -> list[int]:
        client = env.app.test_client()
        return [
            client.post(
                f"{PREFIX}/tokens",
                json={"username": "alice", "password": "wrong"},
                headers={"X-Forwarded-For": client_address},
                environ_base={"REMOTE_ADDR": "10.0.0.2"},
            ).status_code
            for _ in range(count)
        ]

    limits = {
        "RATELIMIT_ENABLED": True,
        "JWT_AUTH_FLOOD_IP_LIMIT": "2 per hour",
        "JWT_AUTH_FLOOD_USER_LIMIT": None,
    }
    with doc_example("proxy.py") as proxy:
        behind = make_app(**limits)
        assert proxy.trust_one_proxy(behind.app) is behind.app
    plain = make_app(**limits)
    for env in (behind, plain):
        env.create_user("alice")

        @env.app.get("/api/scheme")
        def scheme() -> dict[str, str]:
            return {
                "scheme": flask.request.scheme,
                "address": flask.request.remote_addr,
            }

    assert attempts(behind, "203.0.113.5", 3) == [401, 401, 429]
    assert attempts(behind, "203.0.113.6", 1) == [401]
    assert attempts(plain, "203.0.113.5", 2) == [401, 401]
    assert attempts(plain, "203.0.113.6", 1) == [429]
    r = behind.app.test_client().get(
        "/api/scheme",
        headers={"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert r.get_json() == {"scheme": "https", "address": "203.0.113.5"}


# docs/spa.rst ------------------------------------------------------------------------


def test_single_page_app_commands(tmp_path: Path) -> None:
    """The two commands of the single-page app example: the user is created and
    the server serves the page and logs the user in (cookie mode)."""
    env = shell_env(FLASK_SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'spa.db'}")
    Transcript(env, ROOT).run_all(read_steps(EXAMPLES / "spa.console", "create-user"))
    (run,) = read_steps(EXAMPLES / "spa.console", "run")
    port = free_port()
    with server(
        run.command, port, env | {"FLASK_RUN_PORT": str(port)}, tmp_path / "log"
    ):
        status, page = http_call(port, "GET", "/")
        assert status == 200
        assert "<script" in page
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        try:
            connection.request(
                "POST",
                f"{PREFIX}/tokens",
                body=json.dumps({"username": "alice", "password": PASSWORD}),
                headers={
                    "Content-Type": "application/json",
                    "X-Requested-With": "fetch",
                },
            )
            response = connection.getresponse()
            body = json.loads(response.read())
        finally:
            connection.close()
        assert response.status == 200, body
        assert "refresh_token" not in body
        assert "HttpOnly" in (response.getheader("Set-Cookie") or "")


# docs/dpop.rst ------------------------------------------------------------------------


def test_dpop_commands(tmp_path: Path) -> None:
    """The example app with DPoP and nonces turned on from the environment, as
    docs/dpop.rst shows: a log-in with a proof is told the nonce, then gets a
    DPoP-bound pair."""
    from test_dpop import Client

    env = shell_env(FLASK_SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.db'}")
    setup = Transcript(env, ROOT)
    setup.run_all(read_steps(EXAMPLES / "dpop.console", "env"))
    app = "flask --app examples/app.py"
    sh(f"{app} create-user alice --password '{PASSWORD}'", setup.env)
    (run,) = read_steps(EXAMPLES / "dpop.console", "run")
    port = free_port()
    key = Client()
    url = f"http://127.0.0.1:{port}{PREFIX}/tokens"

    def log_in(**claims: t.Any) -> tuple[int, t.Any, t.Any]:
        jti = str(uuid.uuid4())
        proof = key.proof("POST", url, iat=int(time.time()), jti=jti, **claims)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        try:
            connection.request(
                "POST",
                f"{PREFIX}/tokens",
                body=json.dumps({"username": "alice", "password": PASSWORD}),
                headers={"Content-Type": "application/json", "DPoP": proof},
            )
            response = connection.getresponse()
            return response.status, json.loads(response.read()), response.headers
        finally:
            connection.close()

    with server(
        run.command, port, setup.env | {"FLASK_RUN_PORT": str(port)}, tmp_path / "log"
    ):
        status, body, headers = log_in()
        assert (status, body["error"]) == (400, "use_dpop_nonce")
        status, body, _ = log_in(nonce=headers["DPoP-Nonce"])
        assert status == 200, body
        assert body["token_type"] == "DPoP"


def test_settings_examples(tmp_path: Path) -> None:
    """``flask jwt settings`` as docs/cli.rst shows it, on a new database."""
    env = shell_env(
        FLASK_APP=str(EXAMPLE_APP),
        FLASK_SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.db'}",
    )
    Transcript(env, tmp_path).run_all(read_steps(EXAMPLES / "settings.console"))

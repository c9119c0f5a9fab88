"""The documentation keeps up with the code."""

from __future__ import annotations

import re
from pathlib import Path

from flask_jwt_authentication.config import DEFAULTS

ROOT = Path(__file__).parent.parent
KEY = re.compile(r"\bJWT_AUTH_[A-Z0-9_]*[A-Z0-9]\b")


def documented_keys() -> set[str]:
    text = (ROOT / "docs" / "config.rst").read_text(encoding="utf-8")
    return set(re.findall(r"^\.\. data:: (JWT_AUTH_[A-Z0-9_]+)$", text, re.MULTILINE))


def keys_in_code() -> set[str]:
    keys: set[str] = set()
    for path in (ROOT / "flask_jwt_authentication").rglob("*.py"):
        keys.update(KEY.findall(path.read_text(encoding="utf-8")))
    return keys


def test_every_key_in_the_code_is_documented():
    assert keys_in_code() - documented_keys() == set()


def test_every_documented_key_exists_in_the_code():
    assert documented_keys() - keys_in_code() == set()


def test_every_key_has_a_default():
    assert set(DEFAULTS) == documented_keys()


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.rst").read_text(encoding="utf-8")
    blocks = re.findall(r"\.\. code-block:: sh\n\n    (.+)\n", readme)
    assert "flask --app examples/app.py run" in blocks[0]
    assert blocks[1] == (
        "python3 -m venv .venv && . .venv/bin/activate && "
        "pip install -e '.[test]' && pytest"
    )
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1] in ci

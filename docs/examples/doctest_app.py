"""The application the doctests of the documentation run against.

A page with doctests starts with a ``testsetup`` block, which the built pages
do not show::

    .. testsetup::

       from doctest_app import example_app
       globals().update(example_app())

It gives the page's doctests ``app`` (``examples/app.py`` on an in-memory SQLite
database, with the user ``alice`` and the password :data:`PASSWORD`), ``client``
(its test client), and the example's ``jwt``, ``db``, ``User`` and
``find_user`` (the last three from ``examples/users.py``). ``docs/conf.py`` puts
this folder on ``sys.path`` for ``sphinx-build -b doctest``, which
tests/test_docs.py runs.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import types
import typing as t
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "app.py"
PASSWORD = "correct horse battery staple"


@functools.cache
def example_module() -> types.ModuleType:
    """``examples/app.py``, imported once under a name of its own."""
    name = "flask_jwt_authentication_doctest_example"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # The example imports examples/users.py, found beside it as when it runs.
    sys.path.insert(0, str(EXAMPLE.parent))
    spec.loader.exec_module(module)
    return module


def example_app(config: t.Mapping[str, t.Any] | None = None) -> dict[str, t.Any]:
    """A fresh example application with the user ``alice``, and the names the
    doctests use; ``config`` adds settings."""
    example = example_module()
    # The example reads FLASK_* variables (from_prefixed_env): the pages show
    # what their settings give, not what the reader's shell exports.
    flask_variables = [k for k in os.environ if k.startswith("FLASK_")]
    exported = {k: os.environ.pop(k) for k in flask_variables}
    try:
        app = example.create_app(
            {"SQLALCHEMY_DATABASE_URI": "sqlite://", **(config or {})}
        )
    finally:
        os.environ.update(exported)
    result = app.test_cli_runner().invoke(
        args=["create-user", "alice", "--password", PASSWORD]
    )
    if result.exit_code != 0:
        raise RuntimeError(f"create-user failed: {result.output}")
    return {
        "app": app,
        "client": app.test_client(),
        "jwt": example.jwt,
        "db": example.db,
        "User": sys.modules["users"].User,
        "find_user": example.find_user,
    }

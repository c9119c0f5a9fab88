"""The documentation keeps up with the code."""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from docutils import nodes

from flask_jwt_authentication.config import DEFAULTS
from flask_jwt_authentication.config import EDITABLE_SETTINGS

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


def readme_commands() -> list[str]:
    """The commands of the README's ``sh`` blocks."""
    readme = (ROOT / "README.rst").read_text(encoding="utf-8")
    return re.findall(r"\.\. code-block:: sh\n\n    (.+)\n", readme)


def test_readme_starts_with_the_two_commands():
    blocks = readme_commands()
    assert "flask --app examples/app.py run" in blocks[0]
    assert blocks[1] == (
        "python3 -m venv .venv && . .venv/bin/activate && "
        "pip install -e '.[test]' && pytest"
    )
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1] in ci


# Every code block of the pages is a doctest or included from a file the tests run.


@dataclasses.dataclass(frozen=True)
class DocsBuild:
    """What ``sphinx-build -b doctest`` left: its exit status and log, the
    summary of the doctests it ran, and the parsed pages (doctrees)."""

    returncode: int
    log: str
    summary: str
    doctrees: Path


def build_doctests(source: Path, out: Path) -> DocsBuild:
    """Run ``sphinx-build -b doctest`` on ``source``: it runs every doctest of the
    pages and exits with 1 when one fails."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FLASK_", "JWT_AUTH_"))
    }
    command = [sys.executable, "-m", "sphinx", "-b", "doctest", "-q", "-E"]
    command += ["-d", str(out / "doctrees"), str(source), str(out / "doctest")]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    summary = out / "doctest" / "output.txt"
    return DocsBuild(
        returncode=result.returncode,
        log=result.stdout + result.stderr,
        summary=summary.read_text(encoding="utf-8") if summary.exists() else "",
        doctrees=out / "doctrees",
    )


def doctest_counts(summary: str) -> dict[str, int]:
    """The totals of a doctest summary: tests, and failures in tests, setup and
    cleanup code."""
    counts = {
        "tests": re.search(r"^ *(\d+) tests?$", summary, re.MULTILINE),
        "failures": re.search(r"^ *(\d+) failures? in tests$", summary, re.MULTILINE),
        "setup": re.search(r"^ *(\d+) failures? in setup", summary, re.MULTILINE),
        "cleanup": re.search(r"^ *(\d+) failures? in cleanup", summary, re.MULTILINE),
    }
    assert all(counts.values()), f"no doctest summary:\n{summary}"
    return {name: int(match.group(1)) for name, match in counts.items() if match}


@dataclasses.dataclass(frozen=True)
class CodeBlock:
    """A code block of a page, as Sphinx parsed it."""

    where: str
    #: ``doctest`` (run by the doctest build), ``included`` (from a file) or
    #: ``plain`` (neither).
    kind: str
    text: str
    included: Path | None = None


#: Nodes of ``sphinx.ext.doctest`` that are shown and run.
DOCTEST_NODES = {"doctest", "testcode", "testoutput"}
#: The one exception: blocks in the package's docstrings, which the API reference
#: renders through autodoc. They sketch how a decorator is called, beside the
#: signature they belong to, and live in the package's source, not on a page.
DOCSTRING = ":docstring of "


def code_blocks(doctrees: Path) -> list[CodeBlock]:
    """Every literal block (``::``, ``code-block``, ``literalinclude``, ...) and
    doctest block of the pages and the files they include, docstrings aside."""
    blocks = []
    for path in sorted(doctrees.rglob("*.doctree")):
        # Sphinx pickles the doctrees; these are the ones this test just built.
        doctree = pickle.loads(path.read_bytes())  # noqa: S301
        for node in doctree.findall(
            lambda n: isinstance(n, (nodes.literal_block, nodes.doctest_block))
        ):
            source = node.source or doctree["source"]
            if DOCSTRING in source:
                continue
            where = f"{os.path.relpath(source, ROOT)}:{node.line}"
            text = node.astext()
            if (
                isinstance(node, nodes.doctest_block)
                or node.get("testnodetype") in DOCTEST_NODES
            ):
                blocks.append(CodeBlock(where, "doctest", text))
            elif node.get("source"):
                # literalinclude (and docutils' ``include`` with ``:literal:``)
                # records the file it read.
                blocks.append(CodeBlock(where, "included", text, Path(node["source"])))
            else:
                blocks.append(CodeBlock(where, "plain", text))
    return blocks


@pytest.fixture(scope="module")
def docs_build(tmp_path_factory: pytest.TempPathFactory) -> DocsBuild:
    return build_doctests(ROOT / "docs", tmp_path_factory.mktemp("docs"))


def test_the_doctests_pass(docs_build: DocsBuild) -> None:
    assert docs_build.returncode == 0, docs_build.log + docs_build.summary
    counts = doctest_counts(docs_build.summary)
    assert counts["tests"] > 0
    assert counts == {"tests": counts["tests"], "failures": 0, "setup": 0, "cleanup": 0}


def test_every_code_block_is_a_doctest_or_included(docs_build: DocsBuild) -> None:
    blocks = code_blocks(docs_build.doctrees)
    plain = [
        f"{block.where}: {(block.text.strip().splitlines() or [''])[0]}"
        for block in blocks
        if block.kind == "plain"
    ]
    assert plain == [], (
        "Make these doctests, or move the code into a file the tests run and"
        " include it with literalinclude."
    )
    assert {block.kind for block in blocks} == {"doctest", "included"}


def test_included_files_are_run_by_the_tests(docs_build: DocsBuild) -> None:
    """An included file is the project's, and a test (or ``.ci/run``) names it or
    the folder it is in."""
    tests = "\n".join(
        path.read_text(encoding="utf-8")
        for path in (ROOT / "tests").glob("*.py")
        if path.name != "test_docs.py"
    ) + (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    unknown, untested = [], []
    for block in code_blocks(docs_build.doctrees):
        if block.included is None:
            continue
        path = block.included.resolve()
        if not path.is_relative_to(ROOT):
            unknown.append(f"{block.where}: {path}")
            continue
        relative = path.relative_to(ROOT)
        names = [path.name] + [
            f"{folder.as_posix()}/"
            for folder in relative.parents
            if len(folder.parts) > 1
        ]
        if not any(name in tests for name in names):
            untested.append(f"{block.where}: {relative.as_posix()}")
    assert unknown == []
    assert untested == []


def test_the_quickstart_shows_the_readme_commands(docs_build: DocsBuild) -> None:
    shown = [
        block.text.removesuffix("\n")
        for block in code_blocks(docs_build.doctrees)
        if block.where.startswith(f"docs{os.sep}quickstart.rst:")
        and block.included == ROOT / "README.rst"
    ]
    assert shown == readme_commands()


BAD_PAGE = """\
A page
======

.. testsetup::

   answer = 42

>>> answer
42

.. doctest::

   >>> answer + 1
   44

.. literalinclude:: snippet.py

.. code-block:: python

   print("not run")

A literal block::

   not run either
"""


def test_the_checks_fail_on_a_bad_page(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "conf.py").write_text('extensions = ["sphinx.ext.doctest"]\n')
    (source / "index.rst").write_text(BAD_PAGE)
    (source / "snippet.py").write_text("print('included')\n")
    build = build_doctests(source, tmp_path / "out")
    assert build.returncode == 1
    assert doctest_counts(build.summary) == {
        "tests": 2,
        "failures": 1,
        "setup": 0,
        "cleanup": 0,
    }
    blocks = code_blocks(build.doctrees)
    assert [(block.kind, block.text) for block in blocks] == [
        ("doctest", ">>> answer\n42"),
        ("doctest", ">>> answer + 1\n44"),
        ("included", "print('included')\n"),
        ("plain", 'print("not run")'),
        ("plain", "not run either"),
    ]
    assert blocks[2].included == source / "snippet.py"
    line = BAD_PAGE.splitlines().index(".. code-block:: python") + 1
    assert blocks[3].where == f"{os.path.relpath(source / 'index.rst', ROOT)}:{line}"


#: ``read_steps(... "name.console")`` runs a whole transcript, and
#: ``read_steps(... "name.console", "section")`` one section of it.
READ_STEPS = re.compile(
    r'read_steps\(\s*[^,()]*?"(?P<file>[\w.-]+\.console)"\s*'
    r'(?:,\s*"(?P<section>[\w-]+)"\s*)?\)'
)


def test_every_console_section_is_run() -> None:
    """Each section of each transcript under docs/examples/ (what a page
    includes) is read by a test that runs it, or the whole transcript is."""
    calls = [
        (match["file"], match["section"])
        for path in (ROOT / "tests").glob("test_*.py")
        for match in READ_STEPS.finditer(path.read_text(encoding="utf-8"))
    ]
    assert calls
    not_run = []
    for console in sorted((ROOT / "docs" / "examples").glob("*.console")):
        sections = re.findall(
            r"^# \[([\w-]+)\]$", console.read_text(encoding="utf-8"), re.MULTILINE
        )
        if (console.name, None) in calls:
            continue
        assert sections, f"{console.name} has no section and no test runs it"
        not_run += [
            f"{console.name} [{section}]"
            for section in sections
            if (console.name, section) not in calls
        ]
    assert not_run == []


def settings_tables(doctrees: Path) -> list[list[list[str]]]:
    """The tables the ``jwt-settings`` directive wrote into docs/config.rst, as
    Sphinx parsed them: rows of cell texts, header first."""
    doctree = pickle.loads((doctrees / "config.doctree").read_bytes())  # noqa: S301
    tables = []
    for container in doctree.findall(nodes.container):
        if "jwt-settings" in container["classes"]:
            tables.append(
                [
                    [entry.astext() for entry in row.findall(nodes.entry)]
                    for row in container.findall(nodes.row)
                ]
            )
    return tables


def test_the_settings_tables_are_the_registry(docs_build: DocsBuild) -> None:
    """docs/config.rst shows every setting of the registry with its default, and
    the editable ones with their admin label and the bounds of a change (from
    their range), in the form's order; no other."""
    from flask_jwt_authentication.settings_registry import LIMIT_MAX_PER_HOUR
    from flask_jwt_authentication.settings_registry import LIMIT_WINDOW
    from flask_jwt_authentication.settings_registry import REGISTRY

    every, editable = settings_tables(docs_build.doctrees)
    assert every[0] == ["Setting", "Default", "Accepts", "Run-time change"]
    assert sorted(row[0] for row in every[1:]) == sorted(DEFAULTS)
    for setting, (name, default, accepts, change) in zip(
        REGISTRY, every[1:], strict=True
    ):
        assert name == setting.name
        if setting.default is not None or not setting.derived:
            assert default == repr(setting.default).replace("'", '"')
        assert accepts
        assert (change == "no") == (setting.editable is None)

    def bounds(setting: t.Any) -> str:
        if setting.range:
            return f"{setting.range[0]} to {setting.range[1]} seconds"
        if setting.editable == "limit":
            return f"1 per {LIMIT_WINDOW[0]} s to {LIMIT_MAX_PER_HOUR} per hour"
        if setting.editable == "algorithm":
            return "an algorithm with a key"
        return "up to 255 characters"

    assert editable == [["Setting", "Admin field", "A change must be"]] + [
        [s.name, s.label, bounds(s)] for s in EDITABLE_SETTINGS
    ]
    assert [s.name for s in EDITABLE_SETTINGS] == [
        "JWT_AUTH_ALGORITHM",
        "JWT_AUTH_ACCESS_TOKEN_TTL",
        "JWT_AUTH_REFRESH_TOKEN_TTL",
        "JWT_AUTH_ISSUER",
        "JWT_AUTH_AUDIENCE",
        "JWT_AUTH_LEEWAY",
        "JWT_AUTH_FLOOD_IP_LIMIT",
        "JWT_AUTH_FLOOD_USER_LIMIT",
        "JWT_AUTH_FLOOD_REFRESH_LIMIT",
    ]


def test_each_documented_default_is_the_registry_default() -> None:
    """Each ``.. data::`` paragraph of docs/config.rst that states a literal
    default (``Default: ``900``.``) states the registry's."""
    text = (ROOT / "docs" / "config.rst").read_text(encoding="utf-8")
    paragraphs = re.split(r"^\.\. data:: ", text, flags=re.MULTILINE)[1:]
    stated = {}
    for paragraph in paragraphs:
        name = paragraph.split("\n", 1)[0].strip()
        body = " ".join(paragraph.split("\n\n\n", 1)[0].split())
        match = re.search(r"Default: ``([^`]+)``", body)
        if match:
            stated[name] = match.group(1)
    assert len(stated) >= 25
    assert {
        name: value
        for name, value in stated.items()
        if value != repr(DEFAULTS[name]).replace("'", '"')
    } == {}


def test_no_bounds_are_written_into_help_texts() -> None:
    """The help texts of the registry never state a range by hand: the form
    adds it from the setting's range."""
    from flask_jwt_authentication.settings_registry import REGISTRY

    for setting in REGISTRY:
        assert not re.search(r"\d+ (to|and) \d+|from \d+", setting.help), setting.name
        if setting.range:
            low, high = setting.range
            assert setting.description.endswith(f"Seconds, from {low} to {high}.")


def test_each_setting_is_documented_in_its_registry_section() -> None:
    """The ``.. data::`` paragraph of each setting sits under the heading of
    docs/config.rst that its registry entry names."""
    from flask_jwt_authentication.settings_registry import REGISTRY

    lines = (ROOT / "docs" / "config.rst").read_text(encoding="utf-8").splitlines()
    section, found = "", {}
    for line, underline in zip(lines, [*lines[1:], ""], strict=True):
        if underline and set(underline) == {"-"} and len(underline) == len(line):
            section = line
        if line.startswith(".. data:: "):
            found[line.removeprefix(".. data:: ")] = section
    assert list(found.items()) == [(s.name, s.section) for s in REGISTRY]

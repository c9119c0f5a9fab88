"""The README's code blocks, run as a newcomer copies them from the page.

Every block of README.rst is one of: the two commands at the top (the first is
run by tests/test_doc_examples.py, the second is what ``.ci/run`` runs), the
console session against the example, or the application of "Using it in your
application" with the console sessions that start it and log in to it. PyPI
shows the README as it is, so it cannot include files: the tests read the blocks
from it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from docutils import nodes
from docutils.core import publish_doctree
from test_doc_examples import Step
from test_doc_examples import Transcript
from test_doc_examples import free_port
from test_doc_examples import read_steps
from test_doc_examples import readme_commands
from test_doc_examples import server
from test_doc_examples import sh
from test_doc_examples import shell_env

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"

pytestmark = pytest.mark.slow


@dataclasses.dataclass(frozen=True)
class Block:
    """A code block of the README: its language, text and section title."""

    language: str
    text: str
    section: str


def readme_blocks() -> list[Block]:
    """The README's literal blocks, in order, as docutils parses them."""
    doctree = publish_doctree(
        README.read_text(encoding="utf-8"),
        settings_overrides={"report_level": 2, "halt_level": 2},
    )
    blocks = []
    for node in doctree.findall(nodes.literal_block):
        section = node.parent
        while section is not None and not isinstance(section, nodes.section):
            section = section.parent
        title = section[0].astext() if section is not None else ""
        languages = [name for name in node["classes"] if name != "code"]
        blocks.append(Block(languages[0] if languages else "", node.astext(), title))
    return blocks


def steps_of(blocks: list[Block], tmp_path: Path, name: str) -> list[Step]:
    """The commands and outputs of console blocks, as one transcript."""
    path = tmp_path / f"{name}.console"
    path.write_text("\n".join(block.text for block in blocks) + "\n", "utf-8")
    return read_steps(path)


def test_every_block_is_run() -> None:
    """The README holds no block that the tests below (and the two commands'
    tests) do not run."""
    blocks = readme_blocks()
    assert [(b.language, b.section) for b in blocks[:2]] == [("sh", "")] * 2
    assert [b.text for b in blocks[:2]] == readme_commands()
    rest = {(b.language, b.section) for b in blocks[2:]}
    assert rest == {
        ("console", "Trying the example"),
        ("python", "Using it in your application"),
        ("console", "Using it in your application"),
    }


def test_trying_the_example(tmp_path: Path) -> None:
    """The README's first command, then its console session against it."""
    *_, create_user, run = readme_commands()[0].split(" && ")
    env = shell_env(FLASK_SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.db'}")
    assert sh(create_user, env) == "Created user 'alice'.\n"
    steps = steps_of(
        [b for b in readme_blocks() if b.section == "Trying the example"],
        tmp_path,
        "example",
    )
    port = free_port()
    with server(run, port, env | {"FLASK_RUN_PORT": str(port)}, tmp_path / "log"):
        Transcript(env, tmp_path, {"127.0.0.1:5000": f"127.0.0.1:{port}"}).run_all(
            steps
        )


def test_your_application(tmp_path: Path) -> None:
    """The program saved as ``myapp.py`` in an empty folder, started and used
    with the console sessions shown after it; ``flask ... run`` is the server
    the second session talks to."""
    title = "Using it in your application"
    section = [b for b in readme_blocks() if b.section == title]
    (program,) = [b for b in section if b.language == "python"]
    (tmp_path / "myapp.py").write_text(program.text, encoding="utf-8")
    start, use = (b for b in section if b.language == "console")
    *setup, run = steps_of([start], tmp_path, "start")
    assert (run.command, run.expected) == ("flask --app myapp run", [])
    transcript = Transcript(shell_env(), tmp_path)
    transcript.run_all(setup)
    port = free_port()
    with server(
        run.command,
        port,
        transcript.env | {"FLASK_RUN_PORT": str(port)},
        tmp_path / "log",
        cwd=tmp_path,
    ):
        transcript.replace = {"127.0.0.1:5000": f"127.0.0.1:{port}"}
        transcript.run_all(steps_of([use], tmp_path, "use"))
    assert (tmp_path / "instance" / "myapp.db").exists()

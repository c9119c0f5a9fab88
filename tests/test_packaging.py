"""The release as a user gets it: the sdist and the wheel built from this
checkout, checked with twine, the test suite run from the unpacked sdist, and
the wheel installed in a fresh virtual environment with Flask-Migrate, where
an application creates its tables and then upgrades the extension across a
change of its tables, without a file of the installed package changing.

Building and installing take PyPI (for the build backend and the dependencies)
and a minute: the tests that do are marked slow; ``.ci/run`` runs them.
"""

from __future__ import annotations

import base64
import dataclasses
import email.parser
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import types
import typing as t
import zipfile
from pathlib import Path

import pytest
from test_doc_examples import shell_env
from test_migrations import changed_models
from test_migrations import migration_scenario
from test_migrations import tree_hashes

ROOT = Path(__file__).resolve().parent.parent
NAME = "flask_jwt_authentication"
VERSION = "0.1.0"
#: What the next version in the upgrade scenario is called.
NEXT_VERSION = "0.2.0"


@dataclasses.dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path


def run(command: list[str], **kwargs: t.Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=900, **kwargs
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


def build(source: Path, out: Path) -> Dists:
    """``python -m build``: the sdist, then the wheel built from the sdist."""
    run([sys.executable, "-m", "build", "--outdir", str(out), str(source)])
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Dists(sdist, wheel)


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """This checkout's sdist and wheel, built once for the module (from a copy,
    so that the build writes nothing into the checkout)."""
    source = tmp_path_factory.mktemp("source") / NAME
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "*-venv",
            "__pycache__",
            "*.egg-info",
            "_build",
            "build",
            "dist",
            ".*_cache",
            "*.log",
            "instance",
            ".coverage",
        ),
    )
    return build(source, tmp_path_factory.mktemp("dist"))


def venv(folder: Path) -> Path:
    """A fresh virtual environment (no system site-packages); its ``bin``."""
    run([sys.executable, "-m", "venv", str(folder)])
    return folder / "bin"


def site_packages(bin: Path) -> Path:
    out = run(
        [
            str(bin / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ]
    )
    return Path(out.stdout.strip())


def record_intact(site: Path, version: str) -> None:
    """Every file the wheel's RECORD lists is there with its SHA-256, and the
    package's folder holds nothing else (bytecode aside)."""
    (info,) = site.glob(f"{NAME}-{version}.dist-info")
    listed = set()
    for line in (info / "RECORD").read_text(encoding="utf-8").splitlines():
        path, digest, _size = line.rsplit(",", 2)
        listed.add(path)
        if not digest:
            continue
        algorithm, _, expected = digest.partition("=")
        assert algorithm == "sha256"
        actual = base64.urlsafe_b64encode(
            hashlib.sha256((site / path).read_bytes()).digest()
        )
        assert actual.rstrip(b"=").decode() == expected, f"{path} changed"
    present = {f"{NAME}/{relative}" for relative in tree_hashes(site / NAME)}
    assert present <= listed, f"not from the wheel: {sorted(present - listed)}"


def test_twine_check_strict(dists: Dists) -> None:
    """What PyPI would say about an upload: the README renders, the metadata is
    complete."""
    out = run(
        [
            sys.executable,
            "-m",
            "twine",
            "check",
            "--strict",
            str(dists.sdist),
            str(dists.wheel),
        ]
    )
    assert out.stdout.count("PASSED") == 2, out.stdout


def test_wheel_metadata_and_files(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as wheel:
        names = set(wheel.namelist())
        info = f"{NAME}-{VERSION}.dist-info"
        metadata = email.parser.Parser().parsestr(
            wheel.read(f"{info}/METADATA").decode("utf-8")
        )
    assert metadata["Version"] == VERSION
    assert metadata["License-Expression"] == "MIT"
    assert f"{info}/licenses/LICENSE" in names
    assert "Framework :: Flask" in metadata.get_all("Classifier")
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL"))
    assert {"Documentation", "Changes"} <= set(urls)
    extras = set(metadata.get_all("Provides-Extra"))
    assert {"admin", "redis", "docs", "test"} <= extras
    for shipped in ["py.typed", "openapi.json", "admin/__init__.py"]:
        assert f"{NAME}/{shipped}" in names, shipped
    assert any(name.startswith(f"{NAME}/templates/") for name in names)
    # Only the package: no tests, docs or examples, and no Alembic revisions.
    assert {name.split("/")[0] for name in names} == {NAME, info}
    assert not any("/migrations/" in name for name in names)


def test_the_changelog_dates_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.rst").read_text(encoding="utf-8")
    (first,) = re.findall(r"^(\d+\.\d+\.\d+.*)\n-+\n", changelog, re.MULTILINE)[:1]
    assert first == f"{VERSION} (2026-12-06)"


def test_the_sdist_holds_what_the_tests_and_docs_need(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for needed in [
        "pyproject.toml",
        "README.rst",
        "CHANGELOG.rst",
        "LICENSE",
        ".readthedocs.yaml",
        "MANIFEST.in",
        "tests/conftest.py",
        "tests/keys/rsa2048.pem",
        "docs/conf.py",
        "docs/index.rst",
        "docs/examples/migrations.console",
        "examples/app.py",
        "benchmarks/README.rst",
        ".ci/audit.py",
    ]:
        assert needed in names, needed
    # Every file the tests, docs, examples and benchmarks hold.
    for folder in ["tests", "docs", "examples", "benchmarks"]:
        for path in (ROOT / folder).rglob("*"):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and not re.search(
                r"__pycache__|\.py[cod]$|\.db$|^docs/_build/|^examples/instance/",
                relative,
            ):
                assert relative in names, relative
    assert any(name.startswith("tests/vectors/") for name in names)
    assert not any(name.endswith((".pyc", ".log")) for name in names)


#: A part of the suite run from the unpacked sdist: the package's own code,
#: the keys and vectors, the docs' examples and the README.
FROM_THE_SDIST = [
    "tests/test_tokens.py",
    "tests/test_keys.py",
    "tests/test_readme.py",
    "tests/test_migrations.py::test_every_hot_lookup_is_indexed",
    "tests/test_docs.py::test_every_documented_key_exists_in_the_code",
]


@pytest.mark.slow
def test_the_tests_run_from_the_unpacked_sdist(dists: Dists, tmp_path: Path) -> None:
    """Every test module of the sdist is collected there (its imports, fixtures
    and data files are all in it), and a part of the suite passes there with
    the sdist's own package first on the path."""
    with tarfile.open(dists.sdist) as sdist:
        sdist.extractall(tmp_path, filter="data")
    (unpacked,) = tmp_path.iterdir()
    env = shell_env(PYTHONPATH=str(unpacked))
    pytest_command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "--no-cov",
        "-p",
        "no:cacheprovider",
    ]
    out = run([*pytest_command, "--collect-only"], cwd=unpacked, env=env)
    collected = int(re.search(r"(\d+) tests? collected", out.stdout).group(1))  # type: ignore[union-attr]
    here = run([*pytest_command, "--collect-only"], cwd=ROOT, env=shell_env())
    assert f"{collected} tests collected" in here.stdout
    out = run([*pytest_command, *FROM_THE_SDIST], cwd=unpacked, env=env)
    assert re.search(r"\d+ passed", out.stdout), out.stdout
    imported = run(
        [sys.executable, "-c", f"import {NAME}; print({NAME}.__file__)"],
        cwd=unpacked,
        env=env,
    )
    assert Path(imported.stdout.strip()).is_relative_to(unpacked)


def next_version(tmp_path: Path, dists: Dists) -> Path:
    """The wheel of a later version: the sdist's source with one more column,
    indexed, on the sessions table."""
    with tarfile.open(dists.sdist) as sdist:
        sdist.extractall(tmp_path / "next", filter="data")
    (source,) = (tmp_path / "next").iterdir()
    models = source / NAME / "models.py"
    models.write_text(changed_models(models.read_text("utf-8")), "utf-8")
    pyproject = source / "pyproject.toml"
    text = pyproject.read_text("utf-8")
    assert f'version = "{VERSION}"' in text
    pyproject.write_text(
        text.replace(f'version = "{VERSION}"', f'version = "{NEXT_VERSION}"'), "utf-8"
    )
    run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--outdir",
            str(tmp_path / "next-dist"),
            str(source),
        ]
    )
    (wheel,) = (tmp_path / "next-dist").glob("*.whl")
    return wheel


IMPORT_CHECK = f"""
import importlib.resources, json, sys
import {NAME}, {NAME}.admin
files = importlib.resources.files("{NAME}")
assert json.loads((files / "openapi.json").read_text())["openapi"].startswith("3.1")
assert (files / "py.typed").is_file()
print({NAME}.__file__)
"""


@pytest.mark.slow
def test_the_wheel_with_flask_migrate_in_a_fresh_environment(
    dists: Dists, tmp_path: Path
) -> None:
    """docs/deployment.rst's Flask-Migrate commands with the installed wheel:
    the application's revisions create the tables, an upgrade of the extension
    to a version with one more column gives a revision that adds it, and no
    file of site-packages changes or appears on the way (hashed before and
    after each ``flask db`` command, and against the wheel's RECORD)."""
    bin = venv(tmp_path / "venv")
    pip = [
        str(bin / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    run([*pip, f"{dists.wheel}[admin]", "Flask-Migrate"])
    site = site_packages(bin)
    env = {
        name: value
        for name, value in shell_env().items()
        if name not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
    }
    env["PATH"] = f"{bin}{os.pathsep}{env['PATH']}"
    where = run([str(bin / "python"), "-c", IMPORT_CHECK], cwd=tmp_path, env=env)
    assert Path(where.stdout.strip()).is_relative_to(site)
    record_intact(site, VERSION)
    later = next_version(tmp_path, dists)

    def upgrade_extension() -> dict[str, str]:
        run([*pip, "--upgrade", str(later)], cwd=tmp_path, env=env)
        record_intact(site, NEXT_VERSION)
        return env

    migration_scenario(
        tmp_path / "project",
        env,
        f"sqlite:///{tmp_path / 'app.db'}",
        upgrade_extension,
        [site],
    )
    record_intact(site, NEXT_VERSION)
    assert not list(site.rglob("versions/*.py")), "a revision in site-packages"


def audit_module() -> types.ModuleType:
    path = ROOT / ".ci" / "audit.py"
    spec = importlib.util.spec_from_file_location("ci_audit", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_audit_says_when_it_audited_nothing() -> None:
    """pip-audit exits 0 when its advisory database knows none of the packages
    or cannot be reached; the CI step says so instead."""
    summarise = audit_module().summarise
    status, message = summarise(None, "Traceback ...\nConnectionError: no route")
    assert status == 0
    assert "could not be reached" in message
    assert "NOT audited" in message
    skipped = {"name": "flask", "skip_reason": "Dependency not found on PyPI"}
    status, message = summarise({"dependencies": [skipped]}, "")
    assert status == 0
    assert "NOT audited" in message
    clean = {"name": "jinja2", "version": "3.1.6", "vulns": []}
    status, message = summarise({"dependencies": [clean, skipped]}, "")
    assert status == 0
    assert message.startswith("pip-audit: 1 packages audited, no known vulnerability")
    assert "NOT audited (1): flask" in message
    bad = {
        "name": "jinja2",
        "version": "3.1.2",
        "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"]}],
    }
    status, message = summarise({"dependencies": [bad, clean]}, "")
    assert status == 1
    assert "jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)" in message


@pytest.mark.slow
def test_the_docs_extra_alone_builds_the_docs(dists: Dists, tmp_path: Path) -> None:
    """``pip install '.[docs]'`` and nothing else: the pages build with warnings
    as errors, the API reference importing the admin module included."""
    bin = venv(tmp_path / "venv")
    run([str(bin / "python"), "-m", "pip", "install", "-q", f"{dists.wheel}[docs]"])
    out = tmp_path / "html"
    command = [str(bin / "sphinx-build"), "-W", "-q", "-E", "-b", "html"]
    result = subprocess.run(
        [*command, "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        env=shell_env(PATH=f"{bin}{os.pathsep}{os.environ['PATH']}"),
    )
    assert result.returncode == 0, result.stderr
    api = (out / "api.html").read_text(encoding="utf-8")
    assert "flask_jwt_authentication.admin" in api
    assert "init_admin" in api

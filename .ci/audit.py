"""Audit the dependencies installed in this environment with pip-audit.

Run it with the environment's Python (``.ci/run`` does, in the test
environment); extra arguments go to pip-audit. It fails (exit 1) on a known
vulnerability, and says plainly when nothing or not everything could be
audited (the advisory database out of reach, a package unknown to it) instead
of passing silently. tests/test_packaging.py runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t


def summarise(report: t.Mapping[str, t.Any] | None, error: str) -> tuple[int, str]:
    """The exit status and message for pip-audit's JSON ``report`` (``None``
    when it gave none, ``error`` then being what it printed)."""
    if report is None:
        last = (error.strip().splitlines() or ["no output"])[-1]
        return 0, (
            "pip-audit: the advisory database could not be reached; the"
            f" dependencies were NOT audited ({last[:300]})"
        )
    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "vulns" in d]
    skipped = [d for d in dependencies if "vulns" not in d]
    vulnerable = [d for d in audited if d["vulns"]]
    if vulnerable:
        lines = [
            f"  {d['name']} {d['version']}: {v['id']}"
            f" (fixed in {', '.join(v.get('fix_versions') or []) or 'no release yet'})"
            for d in vulnerable
            for v in d["vulns"]
        ]
        return 1, "pip-audit: known vulnerabilities:\n" + "\n".join(lines)
    if not audited:
        return 0, (
            f"pip-audit: the advisory database answered for none of the"
            f" {len(skipped)} installed packages; the dependencies were NOT"
            f" audited ({(skipped[0].get('skip_reason') if skipped else 'none')})"
        )
    message = f"pip-audit: {len(audited)} packages audited, no known vulnerability"
    if skipped:
        names = ", ".join(sorted(d["name"] for d in skipped))
        message += f"; NOT audited ({len(skipped)}): {names}"
    return 0, message


def main(arguments: list[str]) -> int:
    command = [sys.executable, "-m", "pip_audit", "--skip-editable", "--format"]
    command += ["json", "--progress-spinner", "off", *arguments]
    result = subprocess.run(  # noqa: S603 (this interpreter, fixed arguments)
        command, capture_output=True, text=True, check=False, timeout=600
    )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        report = None
    status, message = summarise(report, result.stderr + result.stdout)
    print(message)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The ``flask jwt`` command group."""

from __future__ import annotations

import datetime
import json
import math
import sys
import time

import click
from flask import current_app
from flask.cli import AppGroup

from .diagnostics import CREATE_TABLES_HINT
from .errors import ConfigurationError
from .errors import ServerMisconfigured
from .errors import TemporarilyUnavailable
from .keys import ALGORITHMS
from .keystore import NEXT
from .keystore import RETIRED
from .keystore import RETIRING
from .keystore import KeyStore
from .keystore import retire_after
from .overrides import EDITABLE
from .state import EXTENSION_KEY
from .state import AppState
from .store import Store

jwt_cli = AppGroup("jwt", help="Manage JWT authentication: tokens, sessions, keys.")


def _state() -> AppState:
    state = current_app.extensions.get(EXTENSION_KEY)
    if state is None:
        raise click.ClickException(
            "JWTAuthentication is not initialised on this application."
        )
    return state  # type: ignore[no-any-return]


#: ``flask jwt cleanup``'s exit status when it stopped at the time limit with
#: expired rows left: run it again (0: done; 1: an error).
EXIT_STOPPED = 3

_KINDS = (
    ("sessions", "sessions"),
    ("refresh_tokens", "refresh tokens"),
    ("revoked_tokens", "revoked token ids"),
    ("revocation_log", "revocation log rows"),
)


class CleanupProgress:
    """The progress line of ``flask jwt cleanup`` on a terminal: rows deleted per
    table out of those expired when it started, the rate, and the time left.

    :param totals: the expired rows per kind when the cleanup started.
    :param deadline: the :func:`time.monotonic` time limit.
    :param interval: the least seconds between two updates of the line.
    """

    def __init__(
        self, totals: dict[str, int], deadline: float, interval: float = 0.2
    ) -> None:
        self.totals = totals
        self.deadline = deadline
        self.interval = interval
        self.started = time.monotonic()
        self._shown = 0.0
        self._width = 0

    def line(self, counts: dict[str, int], now: float) -> str:
        """The text of the line for ``counts`` at ``now`` (monotonic)."""
        parts = [
            f"{label} {counts.get(kind, 0)}/{max(total, counts.get(kind, 0))}"
            for kind, label in _KINDS
            # The revocation log is shown only when it has expired rows.
            if (total := self.totals.get(kind, 0)) or kind != "revocation_log"
        ]
        done = sum(counts.values())
        left = max(sum(self.totals.values()) - done, 0)
        rate = done / max(now - self.started, 1e-6)
        if left == 0:
            eta = "done"
        elif now >= self.deadline:
            eta = f"stopped at the time limit, {left} rows left"
        elif rate > 0:
            eta = f"about {math.ceil(left / rate)} s left"
            if now + left / rate > self.deadline:
                eta += (
                    f", stopping at the time limit in {_seconds(self.deadline - now)}"
                )
        else:
            eta = "time left unknown"
        return ", ".join(parts) + f": {rate:.0f} rows/s, {eta}"

    def update(self, counts: dict[str, int], *, final: bool = False) -> None:
        """Redraw the line (at most every ``interval`` seconds, and at the end)."""
        now = time.monotonic()
        if not final and now - self._shown < self.interval:
            return
        self._shown = now
        text = self.line(counts, now)
        padding = " " * max(self._width - len(text), 0)
        self._width = len(text)
        click.echo("\r" + text + padding, nl=final, err=True)


def _rows_left(store: Store) -> bool:
    """Whether expired rows are left (after the time limit ended the cleanup,
    which may also have been just when it was done)."""
    try:
        with store.unavailable_on_error():
            left = store.cleanup(
                now=int(time.time()), batch_size=1, deadline=0.0, dry_run=True
            )
    except (TemporarilyUnavailable, ServerMisconfigured):
        return True
    return any(left.values())


def _seconds(value: float) -> str:
    return f"{max(math.ceil(value), 0)} s"


@jwt_cli.command("cleanup")
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds after which no new batch starts.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=100_000),
    default=1000,
    show_default=True,
    help="Rows deleted per transaction.",
)
@click.option(
    "--dry-run", is_flag=True, help="Count what would be deleted; delete nothing."
)
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Print nothing but errors; the exit status tells the outcome.",
)
def cleanup(time_limit: float, batch_size: int, dry_run: bool, quiet: bool) -> None:
    """Delete expired sessions, refresh tokens, revoked ids and revocation log rows.

    Runs in short batches until done or out of time; safe to run from cron while
    traffic flows, for example every ten minutes:

        */10 * * * * cd /srv/app && .venv/bin/flask jwt cleanup --quiet --time-limit 60

    On a terminal it shows its progress. Exit status: 0 when done, 3 when it
    stopped at the time limit with expired rows left (run it again), 1 on an
    error, 2 on a usage error.
    """
    store = _state().store
    deadline = time.monotonic() + time_limit
    progress: CleanupProgress | None = None
    try:
        with store.unavailable_on_error():
            if not quiet and not dry_run and sys.stderr.isatty():
                totals = store.cleanup(
                    now=int(time.time()),
                    batch_size=batch_size,
                    deadline=deadline,
                    dry_run=True,
                )
                progress = CleanupProgress(totals, deadline)
                progress.update(dict.fromkeys(totals, 0), final=False)
            counts = store.cleanup(
                now=int(time.time()),
                batch_size=batch_size,
                deadline=deadline,
                dry_run=dry_run,
                progress=progress.update if progress is not None else None,
            )
    except TemporarilyUnavailable:
        raise click.ClickException(
            "The database is unavailable; nothing was deleted."
        ) from None
    except ServerMisconfigured:
        raise click.ClickException(
            f"The extension's tables are missing: {CREATE_TABLES_HINT}."
        ) from None
    if progress is not None:
        progress.update(counts, final=True)
    stopped = not dry_run and time.monotonic() >= deadline and _rows_left(store)
    if not quiet:
        verb = "Would delete" if dry_run else "Deleted"
        click.echo(
            f"{verb} {counts['sessions']} sessions, {counts['refresh_tokens']} refresh"
            f" tokens, {counts['revoked_tokens']} revoked token ids,"
            f" {counts['revocation_log']} revocation log rows."
        )
        if stopped:
            click.echo("Stopped at the time limit; run again to continue.")
    if stopped:
        raise click.exceptions.Exit(EXIT_STOPPED)


keys_cli = AppGroup("keys", help="Generate, list, rotate and retire signing keys.")
jwt_cli.add_command(keys_cli)


def _keystore() -> tuple[AppState, KeyStore]:
    state = _state()
    return state, state.keys.store


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC"
    )


@keys_cli.command("generate")
@click.option(
    "--algorithm",
    type=click.Choice(list(ALGORITHMS)),
    help="The key's algorithm; by default JWT_AUTH_ALGORITHM.",
)
@click.option(
    "--current",
    "make_current",
    is_flag=True,
    help="Sign with it at once, instead of publishing it as the next key.",
)
def generate_key(algorithm: str | None, make_current: bool) -> None:
    """Generate a signing key and store it, encrypted, as the next key.

    Its private part is never shown. Publish it for a while (the JWKS lists next
    keys) before `flask jwt keys rotate` makes it sign.
    """
    state, store = _keystore()
    algorithm = algorithm or state.settings.algorithm
    try:
        key = store.generate(algorithm, state=NEXT)
        if make_current:
            store.rotate(
                algorithm, retire_after=retire_after(state.settings), kid=key.kid
            )
    except ConfigurationError as e:
        raise click.ClickException(str(e)) from None
    state.keys.invalidate()
    role = "current" if make_current else "next"
    click.echo(f"Generated {algorithm} key {key.kid} ({role}).")
    if algorithm != state.settings.algorithm:
        click.echo(
            f"It is used only while JWT_AUTH_ALGORITHM is {algorithm};"
            f" it is {state.settings.algorithm} now."
        )


@keys_cli.command("list")
def list_keys() -> None:
    """List the stored keys: kid, algorithm, state, dates. Never the private part."""
    state, store = _keystore()
    rows = store.all_keys()
    configured = state.keys.configured
    configured_kid = configured.current.kid if configured is not None else None
    retired = {row.kid for row in rows if row.state == RETIRED}
    if configured is not None:
        role = ", retired" if configured_kid in retired else ""
        click.echo(
            f"{configured_kid}  {configured.current.algorithm}  configured{role}"
        )
    if not rows and configured is None:
        click.echo("No keys.")
    for row in rows:
        if row.kid == configured_kid:
            continue
        line = (
            f"{row.kid}  {row.algorithm}  {row.state}  created {_when(row.created_at)}"
        )
        if row.state == RETIRING:
            line += f"  verifies until {_when(row.retire_after)}"
        click.echo(line)


@keys_cli.command("rotate")
def rotate_keys() -> None:
    """Make the next key current (generating one if there is none); the current key
    keeps verifying until the tokens it signed have expired."""
    state, store = _keystore()
    try:
        current, previous = store.rotate(
            state.settings.algorithm, retire_after=retire_after(state.settings)
        )
    except ConfigurationError as e:
        raise click.ClickException(str(e)) from None
    state.keys.invalidate()
    click.echo(f"Key {current} now signs.")
    if previous is not None:
        click.echo(
            f"Key {previous} verifies until {_when(retire_after(state.settings))}."
        )
    click.echo(f"Every worker follows within {state.settings.keys_refresh_interval} s.")


# A kid is base64url, so it may start with "-": take it as the argument, not as
# an unknown option.
@keys_cli.command("retire", context_settings={"ignore_unknown_options": True})
@click.argument("kid")
def retire_key(kid: str) -> None:
    """Stop signing and verifying with a key at once, on every worker.

    Any key: next, retiring, current (the next key, or a new one, signs
    instead) or the configured one, whose retirement is recorded in the
    database until `flask jwt keys unretire` undoes it. Tokens the key signed
    stop working: use it after a leak.
    """
    state = _state()
    try:
        done = state.keys.retire(kid)
    except ConfigurationError as e:
        raise click.ClickException(str(e)) from None
    if done is None:
        raise click.ClickException(f"No key {kid!r}, or it is retired already.")
    if done.replaced_by is not None:
        click.echo(f"Key {done.replaced_by} now signs.")
    what = "configured key" if done.configured else "key"
    click.echo(f"Retired {what} {kid}.")
    click.echo(
        "It no longer signs or verifies; every worker follows within"
        f" {state.settings.keys_refresh_interval} s."
    )


@keys_cli.command("unretire", context_settings={"ignore_unknown_options": True})
@click.argument("kid")
def unretire_key(kid: str) -> None:
    """Undo the retirement of the configured key: it verifies again, and signs
    again while no stored key is current."""
    state = _state()
    if not state.keys.unretire(kid):
        raise click.ClickException(
            f"{kid!r} is not a retired configured key; a stored key cannot come"
            " back (generate a new one)."
        )
    click.echo(f"Configured key {kid} verifies again.")
    click.echo(f"Every worker follows within {state.settings.keys_refresh_interval} s.")


@keys_cli.command("export-public")
def export_public() -> None:
    """Print the public keys as a JWK Set (what /.well-known/jwks.json serves)."""
    click.echo(json.dumps(_state().keyset.jwks(), indent=2, sort_keys=True))


settings_cli = AppGroup(
    "settings", help="Show and change the settings that can be edited at run time."
)
jwt_cli.add_command(settings_cli)


def _setting_name(name: str) -> str:
    full = name.upper()
    if not full.startswith("JWT_AUTH_"):
        full = "JWT_AUTH_" + full
    if full not in EDITABLE:
        raise click.BadParameter(
            f"{name!r} cannot be changed at run time; one of: " + ", ".join(EDITABLE),
            param_hint="NAME",
        )
    return full


def _save(changes: dict[str, object]) -> None:
    state = _state()
    try:
        state.overrides.save(changes)
    except ConfigurationError as e:
        raise click.ClickException(f"{e} Nothing was saved.") from None
    except TemporarilyUnavailable:
        raise click.ClickException(
            "The database is unavailable; nothing was saved."
        ) from None
    click.echo(
        f"Saved. Every worker follows within {state.settings.keys_refresh_interval} s."
    )


@settings_cli.command("show")
def show_settings() -> None:
    """List the editable settings: the value in force and where it comes from."""
    overrides = _state().overrides
    stored, defaults = overrides.stored(), overrides.defaults()
    for name in EDITABLE:
        source = "saved" if name in stored else "config"
        value = stored.get(name, defaults[name])
        click.echo(f"{name} = {json.dumps(value)}  ({source})")


@settings_cli.command("set")
@click.argument("name")
@click.argument("value")
def set_setting(name: str, value: str) -> None:
    """Save NAME = VALUE over the configuration (NAME with or without JWT_AUTH_).

    VALUE is read as JSON when it parses (600, ["api", "web"]), else as text
    ("5 per minute").
    """
    full = _setting_name(name)
    try:
        parsed: object = json.loads(value)
    except ValueError:
        parsed = value
    _save({full: parsed})


@settings_cli.command("unset")
@click.argument("name")
def unset_setting(name: str) -> None:
    """Return NAME to its configured value."""
    _save({_setting_name(name): None})

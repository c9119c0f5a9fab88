"""The ``flask jwt`` command group."""

from __future__ import annotations

import datetime
import json
import time

import click
from flask import current_app
from flask.cli import AppGroup

from .errors import ConfigurationError
from .errors import TemporarilyUnavailable
from .extension import EXTENSION_KEY
from .extension import AppState
from .keys import ALGORITHMS
from .keystore import NEXT
from .keystore import RETIRING
from .keystore import KeyStore
from .overrides import EDITABLE

jwt_cli = AppGroup("jwt", help="Manage JWT authentication: tokens, sessions, keys.")


def _state() -> AppState:
    state = current_app.extensions.get(EXTENSION_KEY)
    if state is None:
        raise click.ClickException(
            "JWTAuthentication is not initialised on this application."
        )
    return state  # type: ignore[no-any-return]


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
def cleanup(time_limit: float, batch_size: int, dry_run: bool) -> None:
    """Delete expired login sessions, refresh tokens and revoked token ids.

    Runs in short batches until done or out of time; safe to run from cron while
    traffic flows, for example every ten minutes:

        */10 * * * * cd /srv/app && flask jwt cleanup --time-limit 60
    """
    store = _state().store
    deadline = time.monotonic() + time_limit
    try:
        with store.unavailable_on_error():
            counts = store.cleanup(
                now=int(time.time()),
                batch_size=batch_size,
                deadline=deadline,
                dry_run=dry_run,
            )
    except TemporarilyUnavailable:
        raise click.ClickException(
            "The database is unavailable; nothing was deleted."
        ) from None
    verb = "Would delete" if dry_run else "Deleted"
    click.echo(
        f"{verb} {counts['sessions']} sessions, {counts['refresh_tokens']} refresh"
        f" tokens, {counts['revoked_tokens']} revoked token ids."
    )
    if not dry_run and time.monotonic() >= deadline:
        click.echo("Stopped at the time limit; run again to continue.")


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
            store.rotate(algorithm, retire_after=retire_after(state), kid=key.kid)
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


def retire_after(state: AppState) -> int:
    """Until when a key that stops signing now must keep verifying: the tokens
    it signed live at most the access TTL, plus the leeway. The admin's rotation
    uses it too."""
    return int(time.time()) + state.settings.access_token_ttl + state.settings.leeway


@keys_cli.command("list")
def list_keys() -> None:
    """List the stored keys: kid, algorithm, state, dates. Never the private part."""
    state, store = _keystore()
    rows = store.all_keys()
    configured = state.keys.configured
    if configured is not None:
        click.echo(
            f"{configured.current.kid}  {configured.current.algorithm}  configured"
        )
    if not rows and configured is None:
        click.echo("No keys.")
    for row in rows:
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
            state.settings.algorithm, retire_after=retire_after(state)
        )
    except ConfigurationError as e:
        raise click.ClickException(str(e)) from None
    state.keys.invalidate()
    click.echo(f"Key {current} now signs.")
    if previous is not None:
        click.echo(f"Key {previous} verifies until {_when(retire_after(state))}.")
    click.echo(f"Every worker follows within {state.settings.keys_refresh_interval} s.")


# A kid is base64url, so it may start with "-": take it as the argument, not as
# an unknown option.
@keys_cli.command("retire", context_settings={"ignore_unknown_options": True})
@click.argument("kid")
def retire_key(kid: str) -> None:
    """Stop verifying with a next or retiring key at once."""
    state, store = _keystore()
    if not store.retire(kid):
        raise click.ClickException(
            f"No next or retiring key {kid!r}; the current key cannot be retired,"
            " rotate first."
        )
    state.keys.invalidate()
    click.echo(f"Retired key {kid}.")


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

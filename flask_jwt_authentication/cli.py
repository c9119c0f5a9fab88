"""The ``flask jwt`` command group."""

from __future__ import annotations

import time

import click
from flask import current_app
from flask.cli import AppGroup

from .errors import TemporarilyUnavailable
from .extension import EXTENSION_KEY
from .extension import AppState

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

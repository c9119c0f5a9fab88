"""The users of the examples: their model, the two loaders the extension needs,
and the ``create-user`` command.

``examples/app.py``, ``examples/admin_app.py`` and ``examples/spa_app.py`` import
it as ``users``: ``flask --app examples/app.py`` and ``python examples/app.py``
both put ``examples/`` on the import path. Each example shows only what it adds.
"""

from __future__ import annotations

import time
import typing as t

import click
from flask.cli import with_appcontext
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.security import generate_password_hash


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class User(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(db.String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(db.String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    #: May use the admin pages (read by examples/admin_app.py).
    is_admin: Mapped[bool] = mapped_column(default=False)


def find_user(username: str) -> User | None:
    """The user who logs in as ``username``: surrounding spaces (a pasted name)
    are not part of it, at log-in as at ``create-user``."""
    return db.session.execute(
        db.select(User).filter_by(username=username.strip())
    ).scalar_one_or_none()


def load_user(uid: t.Any) -> User | None:
    """The user of a token's ``uid`` claim."""
    return db.session.get(User, uid) if isinstance(uid, int) else None


@click.command("create-user")
@with_appcontext
@click.argument("username")
@click.password_option()
@click.option("--admin", is_flag=True, help="May use the admin pages.")
def create_user(username: str, password: str, admin: bool) -> None:
    """Create a user who can log in (or set the password of an existing one)."""
    username = username.strip()
    kind = "administrator" if admin else "user"
    user = find_user(username)
    if user is None:
        user = User(username=username)
        db.session.add(user)
        message = f"Created {kind} {username!r}."
    else:
        message = f"Set the password of {kind} {username!r}."
    user.password_hash = generate_password_hash(password)
    user.is_admin = admin
    db.session.commit()
    click.echo(message)


def create_tables(attempts: int = 5) -> None:
    """``db.create_all()``, safe when several workers (``gunicorn -w 4``) start
    on an empty database at once: the ones that lose the race to create a table
    fail, and find the tables there when they try again."""
    for attempt in range(1, attempts + 1):
        try:
            db.create_all()
            return
        except DBAPIError:
            if attempt == attempts:
                raise
            time.sleep(0.2 * attempt)

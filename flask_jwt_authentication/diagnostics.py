"""Recognising misconfiguration in database errors, to name it in the log.

A leaf module: it knows SQLAlchemy's exceptions and the drivers' messages, and
nothing of Flask or of the rest of the package.
"""

from __future__ import annotations

import re

from sqlalchemy import exc as sa_exc

#: The messages of SQLite ("no such table: x"), PostgreSQL ('relation "x" does
#: not exist') and MySQL/MariaDB ("Table 'db.x' doesn't exist").
_MISSING_TABLE = (
    re.compile(r"no such table: (?:main\.)?([\w$]+)"),
    re.compile(r'relation "(?:[\w$]+\.)?([\w$]+)" does not exist'),
    re.compile(r"Table '(?:[\w$]+\.)?([\w$]+)' doesn't exist"),
)

#: What to tell the developer when a table is missing.
CREATE_TABLES_HINT = (
    "create the tables with db.create_all(), or with Flask-Migrate generate and"
    " apply the migration (flask db migrate, then flask db upgrade)"
)


def missing_table(error: BaseException) -> str | None:
    """The name of the missing table ``error`` complains of, or ``None`` if it
    is about something else.

    :param error: an exception raised by SQLAlchemy.
    """
    if not isinstance(error, sa_exc.DBAPIError):
        return None
    message = str(error.orig)
    for pattern in _MISSING_TABLE:
        match = pattern.search(message)
        if match is not None:
            return match.group(1)
    return None

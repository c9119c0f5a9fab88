"""Alembic revisions for the extension's tables.

They form their own branch, labelled ``jwt_authentication``, so they sit beside an
application's revisions. With Flask-Migrate, print the folder with
``python -c "import flask_jwt_authentication.migrations as m; print(m.VERSIONS)"``
and add it to ``version_locations`` in ``migrations/alembic.ini``::

    [alembic]
    version_locations = %(here)s/versions /the/printed/folder

then ``flask db upgrade heads``. Applications that generate their own revisions
with ``flask db migrate`` can do that instead: the tables are on ``db.metadata``.
"""

from __future__ import annotations

from pathlib import Path

#: The folder holding the revisions, for Alembic's ``version_locations``.
VERSIONS = str(Path(__file__).parent / "versions")

#: The branch label of the revisions: ``flask db upgrade jwt_authentication@head``.
BRANCH = "jwt_authentication"

"""An application that creates its tables with Flask-Migrate, as
docs/deployment.rst shows it.

tests/test_migrations.py saves it as ``myapp.py`` in an empty folder and runs
the commands of docs/examples/migrations.console there, on every engine;
tests/test_packaging.py does the same with the built wheel installed in a fresh
virtual environment, across a change of the extension's tables.
"""

# [app]
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_jwt_authentication import JWTAuthentication

db = SQLAlchemy()
jwt = JWTAuthentication()
migrate = Migrate()


class User(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(db.String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(db.String(255))


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.from_prefixed_env()  # FLASK_SQLALCHEMY_DATABASE_URI, FLASK_JWT_AUTH_*
    db.init_app(app)
    jwt.init_app(app, db=db)  # defines the extension's tables on db.metadata
    migrate.init_app(app, db)  # so `flask db migrate` sees them beside User
    return app


# [/app]

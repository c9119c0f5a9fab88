"""The two apps ``wire.py`` serves with gunicorn: ours (revocation on, as always)
and Flask-JWT-Extended without a blocklist. Both load the user from the same
SQLite database on every request.

Configuration comes from the environment: ``WIRE_DATABASE_URL``, ``WIRE_SECRET``.
"""

from __future__ import annotations

import os
import typing as t

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class User(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "wire_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(db.String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(db.String(255))


def _base_app() -> Flask:
    app = Flask("wire")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=os.environ["WIRE_DATABASE_URL"],
        SECRET_KEY=os.environ["WIRE_SECRET"],
        JWT_AUTH_SECRET_KEY=os.environ["WIRE_SECRET"],
        JWT_SECRET_KEY=os.environ["WIRE_SECRET"],
        RATELIMIT_ENABLED=False,
    )
    db.init_app(app)
    return app


def create_ours() -> Flask:
    from flask_jwt_authentication import JWTAuthentication
    from flask_jwt_authentication import current_user
    from flask_jwt_authentication import jwt_required

    app = _base_app()
    jwt = JWTAuthentication(app, db=db)

    @jwt.user_lookup
    def find(username: str) -> t.Any:
        return db.session.execute(
            db.select(User).filter_by(username=username)
        ).scalar_one_or_none()

    @jwt.user_loader
    def load(uid: t.Any) -> t.Any:
        return db.session.get(User, uid)

    @app.get("/api/me")
    @jwt_required
    def me() -> dict[str, t.Any]:
        return {"name": current_user.username}

    return app


def create_fje() -> Flask:
    from flask_jwt_extended import JWTManager
    from flask_jwt_extended import current_user
    from flask_jwt_extended import jwt_required

    app = _base_app()
    jwt = JWTManager(app)

    @jwt.user_lookup_loader
    def load(header: t.Any, payload: dict[str, t.Any]) -> t.Any:
        return db.session.get(User, int(payload["sub"]))

    @app.get("/api/me")
    @jwt_required()
    def me() -> dict[str, t.Any]:
        return {"name": current_user.username}

    return app

"""Settings edited at run time (the admin), stored in the database and overriding
the configuration.

Only the settings an operator tunes live are editable: the algorithm, the token
lifetimes, the issuer, the audience, the leeway and the flood limits. Every worker
keeps the effective :class:`~.config.Settings` in memory and reloads the stored
overrides at most every ``JWT_AUTH_KEYS_REFRESH_INTERVAL`` seconds, the same
interval as the keys, so a change reaches all workers within that time and a
request queries nothing for its settings.

A value is validated before it is saved (types, sane ranges, a usable key for the
algorithm); an invalid stored value (written by hand, say) is logged and the last
good settings stay in force.
"""

from __future__ import annotations

import collections
import json
import logging
import time
import typing as t

import limits
import sqlalchemy as sa
from flask import has_app_context
from flask import has_request_context
from sqlalchemy import exc as sa_exc

from . import config
from .errors import ConfigurationError
from .errors import TemporarilyUnavailable
from .keystore import CURRENT
from .models import read_apart
from .periodic import Periodic
from .settings_registry import MAX_TEXT_LENGTH

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .keyring import KeyRing
    from .keys import KeySet
    from .limits import FloodControl

logger = logging.getLogger("flask_jwt_authentication")

#: The settings that can be edited at run time, in the order a form shows them
#: (see :data:`.config.EDITABLE_SETTINGS`).
EDITABLE: tuple[str, ...] = tuple(s.name for s in config.EDITABLE_SETTINGS)

#: The ranges a run-time edit must stay within (seconds). The configuration itself
#: may go outside them (tests use lifetimes of a second); a form may not.
RANGES: t.Mapping[str, tuple[int, int]] = {
    s.name: s.range for s in config.EDITABLE_SETTINGS if s.range is not None
}

_LIMITS = tuple(s.name for s in config.EDITABLE_SETTINGS if s.editable == "limit")
_MAX_TEXT = MAX_TEXT_LENGTH


class SettingsError(ConfigurationError):
    """A run-time settings change is invalid; nothing was saved.

    :param name: the setting at fault (a ``JWT_AUTH_*`` name).
    :param message: what is wrong, for the person who made the change.
    """

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message, setting=name)
        self.name = name


class SettingsStore:
    """The stored overrides of one application and the effective settings.

    :param db: the application's Flask-SQLAlchemy object.
    :param table: the settings table.
    :param app_config: the application's configuration (the defaults).
    :param app_name: the application's name (the default issuer).
    :param keys: the key ring, told when the algorithm changes.
    :param flood: the flood control, told when a limit changes.
    :param configured_keys: ``(algorithm) -> KeySet or None``: the key the
        configuration gives for an algorithm.
    """

    def __init__(
        self,
        *,
        db: SQLAlchemy,
        table: sa.Table,
        app_config: t.Mapping[str, t.Any],
        app_name: str,
        keys: KeyRing,
        flood: FloodControl,
        configured_keys: t.Callable[[str], KeySet | None],
    ) -> None:
        self.db = db
        self.table = table
        self.app_config = app_config
        self.app_name = app_name
        self.keys = keys
        self.flood = flood
        self.configured_keys = configured_keys
        self.base = config.load_settings(app_config, app_name)
        self._reloads = Periodic(
            float(self.base.keys_refresh_interval), "stored settings"
        )
        self._settings = self.base
        self._overrides: dict[str, t.Any] = {}

    # Reading -------------------------------------------------------------------------

    def settings(self) -> config.Settings:
        """The effective settings.

        In a request they are those :meth:`refresh` loaded when it began; in an
        application context without a request (a command, a shell) they are
        reloaded first if older than the interval; outside any context they are
        returned as they are.
        """
        if self._reloads.due and has_app_context() and not has_request_context():
            self._reload()
        return self._settings

    def refresh(self) -> None:
        """Reload the stored overrides if they are older than the interval.

        Runs before each request (``before_request``), before the request takes
        a database connection: a reload needs a pooled connection of its own,
        and waiting for one while holding another (and perhaps a write lock)
        could stall every request once the pool is exhausted.
        """
        if self._reloads.due:
            self._reload()

    def defaults(self) -> dict[str, t.Any]:
        """The editable settings as the configuration gives them."""
        values = _values_of(self.base)
        return {
            **values,
            "JWT_AUTH_AUDIENCE": values["JWT_AUTH_AUDIENCE"] or None,
            **{
                name: self.app_config.get(name, config.DEFAULTS[name])
                for name in _LIMITS
            },
        }

    def stored(self) -> dict[str, t.Any]:
        """The overrides in the database now (a query, for the admin)."""
        return _decode(self.db.session.execute(self._select()).all())

    def _select(self) -> sa.Select[t.Any]:
        c = self.table.c
        return sa.select(c.name, c.value).where(c.name.in_(EDITABLE))

    def _load(self) -> dict[str, t.Any]:
        return _decode(read_apart(self.db, self._select()))

    def _reload(self) -> None:
        self._reloads.run(self._load_and_apply)

    def _load_and_apply(self) -> None:
        overrides = self._load()
        if overrides != self._overrides:
            try:
                self._apply(overrides)
            except ConfigurationError as e:
                logger.error(
                    "The stored settings are invalid and are ignored until fixed: %s",
                    e,
                )

    def _merged(self, overrides: t.Mapping[str, t.Any]) -> t.Mapping[str, t.Any]:
        return collections.ChainMap(dict(overrides), dict(self.app_config))

    def _apply(self, overrides: dict[str, t.Any]) -> None:
        merged = self._merged(overrides)
        settings = config.load_settings(merged, self.app_name)
        if settings.algorithm != self._settings.algorithm:
            self.keys.use_algorithm(
                settings.algorithm, self.configured_keys(settings.algorithm)
            )
        self.flood.set_limits(merged)
        self._settings = settings
        self._overrides = overrides

    # Writing -------------------------------------------------------------------------

    def save(self, changes: t.Mapping[str, t.Any]) -> None:
        """Validate and store ``changes`` (``{name: value}``; ``None`` removes an
        override), then apply them in this process at once; other workers follow
        within the reload interval.

        :raises SettingsError: a name is not editable or a value is invalid;
            nothing is saved.
        :raises TemporarilyUnavailable: the database cannot be reached; nothing is
            saved.
        """
        for name in changes:
            if name not in EDITABLE:
                raise SettingsError(name, f"{name} cannot be changed at run time.")
        # An empty field means "as configured", like None.
        changes = {
            name: None if value == "" or value == [] else value
            for name, value in changes.items()
        }
        try:
            overrides = {**self.stored(), **changes}
        except sa_exc.SQLAlchemyError as e:
            self.db.session.rollback()
            raise TemporarilyUnavailable() from e
        overrides = {k: v for k, v in overrides.items() if v is not None}
        overrides = self._validate(overrides, changed=set(changes))
        self._write(changes, overrides)
        with self._reloads.lock:
            self._apply(overrides)
            self._reloads.loaded()
        logger.info("Settings changed: %s.", ", ".join(sorted(changes)))

    def _validate(
        self, overrides: dict[str, t.Any], *, changed: set[str]
    ) -> dict[str, t.Any]:
        """Check ``overrides`` and return them normalised (whole seconds as
        integers, limits and text as strings, the audience as a list)."""
        for name in changed & set(overrides):
            _check_shape(name, overrides[name])
        merged = self._merged(overrides)
        try:
            settings = config.load_settings(merged, self.app_name)
        except ConfigurationError as e:
            name = e.setting if e.setting in changed else min(changed, default="")
            raise SettingsError(name or "JWT_AUTH_ALGORITHM", str(e)) from None
        values = _values_of(settings)
        for name, (low, high) in RANGES.items():
            if (
                name in changed
                and name in overrides
                and not low <= values[name] <= high
            ):
                raise SettingsError(
                    name, f"{name} must be between {low} and {high} seconds."
                )
        lifetimes = {"JWT_AUTH_ACCESS_TOKEN_TTL", "JWT_AUTH_REFRESH_TOKEN_TTL"}
        if lifetimes & changed and (
            settings.refresh_token_ttl <= settings.access_token_ttl
        ):
            name = (
                "JWT_AUTH_REFRESH_TOKEN_TTL"
                if "JWT_AUTH_REFRESH_TOKEN_TTL" in changed
                else "JWT_AUTH_ACCESS_TOKEN_TTL"
            )
            raise SettingsError(
                name, "The refresh token must outlive the access token."
            )
        for name in _LIMITS:
            if name in changed and name in overrides:
                _check_limit(name, overrides[name])
        if "JWT_AUTH_ALGORITHM" in changed and settings.algorithm != (
            self._settings.algorithm
        ):
            self._check_key(settings.algorithm)
        return {name: values.get(name, value) for name, value in overrides.items()}

    def _check_key(self, algorithm: str) -> None:
        """The algorithm needs a key: configured, or stored and current."""
        if self.configured_keys(algorithm) is not None:
            return
        c = self.keys.store.table.c
        try:
            kid = self.db.session.execute(
                sa.select(c.kid)
                .where(c.algorithm == algorithm, c.state == CURRENT)
                .limit(1)
            ).scalar()
        except sa_exc.SQLAlchemyError as e:
            self.db.session.rollback()
            raise TemporarilyUnavailable() from e
        if kid is None:
            raise SettingsError(
                "JWT_AUTH_ALGORITHM",
                f"There is no {algorithm} key: configure one, or store one"
                f" (`flask jwt keys generate --algorithm {algorithm} --current`)"
                " before switching.",
            )

    def _write(
        self, changes: t.Mapping[str, t.Any], overrides: dict[str, t.Any]
    ) -> None:
        c = self.table.c
        now = int(time.time())
        session = self.db.session
        try:
            session.execute(sa.delete(self.table).where(c.name.in_(list(changes))))
            rows = [
                {"name": name, "value": json.dumps(overrides[name]), "updated_at": now}
                for name in changes
                if name in overrides
            ]
            if rows:
                session.execute(sa.insert(self.table), rows)
            session.commit()
        except sa_exc.SQLAlchemyError as e:
            session.rollback()
            raise TemporarilyUnavailable() from e


def _values_of(settings: config.Settings) -> dict[str, t.Any]:
    """The editable settings :class:`~.config.Settings` carries (all but the
    flood limits), as ``settings`` has them (whole seconds as integers, the
    audience as a list)."""
    values = {
        s.name: getattr(settings, s.field)
        for s in config.EDITABLE_SETTINGS
        if s.attribute
    }
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _decode(rows: t.Iterable[t.Any]) -> dict[str, t.Any]:
    overrides = {}
    for name, value in rows:
        try:
            overrides[name] = json.loads(value)
        except ValueError:
            logger.error("The stored setting %s is not JSON; it is ignored.", name)
    return overrides


def _check_shape(name: str, value: t.Any) -> None:
    """Refuse values no form would send: nested structures, oversize text."""
    if name == "JWT_AUTH_AUDIENCE" and isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    for item in items:
        if isinstance(item, (dict, list, tuple, bytes)):
            raise SettingsError(name, f"{name} has a value of the wrong type.")
        if isinstance(item, str) and (len(item) > _MAX_TEXT or "\x00" in item):
            raise SettingsError(
                name, f"{name} must be at most {_MAX_TEXT} characters, without NUL."
            )


#: Run-time limits stay within these: at least one attempt per window, windows
#: from a minute to a day, at most this many attempts per hour. Switching a
#: limit off, or anything outside, needs the configuration.
LIMIT_WINDOW = config.LIMIT_WINDOW
LIMIT_MAX_PER_HOUR = config.LIMIT_MAX_PER_HOUR


def _check_limit(name: str, value: t.Any) -> None:
    """Run-time limits must parse and stay within the bounds above."""
    low, high = LIMIT_WINDOW
    most = LIMIT_MAX_PER_HOUR
    message = (
        f"{name} must be a rate limit such as '5 per 5 minutes': at least 1"
        f" attempt per window of {low // 60} minute(s) to {high // 3600} hours, at"
        f" most {most} per hour. Switching it off needs the configuration."
    )
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(name, message)
    try:
        item = limits.parse(value)
    except ValueError:
        raise SettingsError(name, message) from None
    window = item.get_expiry()
    if not (item.amount >= 1 and low <= window <= high):
        raise SettingsError(name, message)
    if item.amount * 3600 > most * window:
        raise SettingsError(name, message)

"""The admin's forms. Every one carries a CSRF token bound to the browser's
session (Flask-Admin's :class:`~flask_admin.form.SecureForm`), so a page of
another site cannot post them."""

from __future__ import annotations

import typing as t

from flask_admin.form import SecureForm  # type: ignore[import-untyped]
from wtforms import Field  # type: ignore[import-untyped]
from wtforms import Form
from wtforms import HiddenField
from wtforms import IntegerField
from wtforms import PasswordField
from wtforms import SelectChoice
from wtforms import SelectField
from wtforms import StringField
from wtforms.validators import InputRequired  # type: ignore[import-untyped]
from wtforms.validators import Length
from wtforms.validators import Optional
from wtforms.validators import ValidationError

from ..config import EDITABLE_SETTINGS
from ..keys import ALGORITHMS
from ..login import MAX_PASSWORD_LENGTH
from ..login import MAX_USERNAME_LENGTH
from ..settings_registry import MAX_TEXT_LENGTH
from ..settings_registry import Setting


def printable(form: Form, field: Field) -> None:
    """Refuse NUL and lone surrogates, as the API does: they cannot be stored or
    compared reliably."""
    value = field.data
    if isinstance(value, str) and (
        "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value)
    ):
        raise ValidationError("This field contains characters that are not allowed.")


class SignInForm(SecureForm):  # type: ignore[misc]
    """Username and password, checked like ``POST {prefix}/tokens``."""

    username = StringField(
        "Username",
        [InputRequired(), Length(max=MAX_USERNAME_LENGTH), printable],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        "Password",
        [InputRequired(), Length(max=MAX_PASSWORD_LENGTH), printable],
        render_kw={"autocomplete": "current-password"},
    )
    next = HiddenField()


class ActionForm(SecureForm):  # type: ignore[misc]
    """A button that changes something: only the CSRF token (sign out)."""


class KeyAlgorithmForm(SecureForm):  # type: ignore[misc]
    """Generate a next key of an algorithm, or rotate that algorithm's keys."""

    algorithm = SelectField("Algorithm", choices=list(ALGORITHMS))


class KeyForm(SecureForm):  # type: ignore[misc]
    """An action on one key (retire)."""

    kid = HiddenField("Key id", [InputRequired(), Length(max=128), printable])


class SessionForm(SecureForm):  # type: ignore[misc]
    """An action on one login session (revoke)."""

    session_id = HiddenField("Session", [InputRequired(), Length(max=64)])
    q = HiddenField("Search", [Optional(), Length(max=MAX_USERNAME_LENGTH)])


class UserSessionsForm(SecureForm):  # type: ignore[misc]
    """An action on every login session of one user (revoke all)."""

    user_key = HiddenField("User", [InputRequired(), Length(max=255)])
    q = HiddenField("Search", [Optional(), Length(max=MAX_USERNAME_LENGTH)])


def _text(label: str, description: str) -> StringField:
    return StringField(
        label,
        [Optional(), Length(max=MAX_TEXT_LENGTH), printable],
        description=description,
    )


def _field(setting: Setting) -> Field:
    """The form field of an editable setting, from the registry."""
    if setting.editable == "algorithm":
        return SelectField(
            setting.label,
            choices=[SelectChoice("", "(default)"), *map(SelectChoice, ALGORITHMS)],
            description=setting.description,
        )
    if setting.editable == "seconds":
        return IntegerField(
            setting.label, [Optional()], description=setting.description
        )
    return _text(setting.label, setting.description)


class SettingsForm(SecureForm):  # type: ignore[misc]
    """The settings editable at run time (:data:`.config.EDITABLE_SETTINGS`, one
    field each); an empty field means "the configured default".

    :attr:`FIELDS` maps each field to its ``JWT_AUTH_*`` name.
    """

    FIELDS: t.ClassVar[dict[str, str]] = {s.field: s.name for s in EDITABLE_SETTINGS}
    #: The fields of settings that take a comma-separated list.
    LISTS: t.ClassVar[frozenset[str]] = frozenset(
        s.field for s in EDITABLE_SETTINGS if s.editable == "audience"
    )

    def value_of(self, field_name: str) -> t.Any:
        """The field's value as a stored override: ``None`` for an empty field,
        a list for the audience, stripped text otherwise."""
        data = self[field_name].data
        if isinstance(data, str):
            data = data.strip()
            if field_name in self.LISTS:
                data = [a.strip() for a in data.split(",") if a.strip()]
        return data if data not in ("", [], None) else None


for _setting in EDITABLE_SETTINGS:
    setattr(SettingsForm, _setting.field, _field(_setting))

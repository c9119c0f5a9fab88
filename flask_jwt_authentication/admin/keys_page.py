"""The admin's Keys page: list, generate, rotate, retire, and undo the retirement
of the configured key. Public parts only."""

from __future__ import annotations

import json
import typing as t

from flask import current_app
from flask import flash
from flask import request
from werkzeug.wrappers import Response

from ..errors import ConfigurationError
from ..introspection import client_listing
from ..keystore import CURRENT
from ..keystore import NEXT
from ..keystore import RETIRED
from ..keystore import RETIRING
from ..keystore import retire_after
from ..state import get_state
from .forms import KeyAlgorithmForm
from .forms import KeyForm

if t.TYPE_CHECKING:
    pass

from .base import _PRIVATE_JWK_MEMBERS
from .base import AdminView
from .base import _current_key
from .base import expose
from .base import when


class KeysView(AdminView):
    """The signing keys: list, generate, rotate, retire. Public parts only."""

    @expose("/")
    def index(self) -> Response:
        state = get_state()
        store = state.keys.store
        with state.store.unavailable_on_error():
            rows = store.all_keys()
        configured = state.keys.configured
        return self.page(
            200,
            "keys.html",
            rows=[
                (row, _public_jwk(row.public_jwk))
                for row in rows
                if configured is None or row.kid != configured.current.kid
            ],
            configured=configured.current if configured is not None else None,
            configured_jwk=(
                _public_jwk(configured.current.public_jwk)
                if configured is not None
                else None
            ),
            settings=state.settings,
            current_key=_current_key(state),
            key_algorithm_form=KeyAlgorithmForm(algorithm=state.settings.algorithm),
            key_form=KeyForm,
            retirable=(NEXT, CURRENT, RETIRING),
            configured_retired=(
                configured is not None
                and any(
                    row.kid == configured.current.kid and row.state == RETIRED
                    for row in rows
                )
            ),
            introspection_clients=client_listing(current_app.config),
        )

    @expose("/generate", methods=("POST",))
    def generate(self) -> Response:
        form = KeyAlgorithmForm(request.form)
        if not form.validate():
            return self.csrf_refused()
        state = get_state()
        algorithm = form.algorithm.data
        try:
            with state.store.unavailable_on_error():
                key = state.keys.store.generate(algorithm, state=NEXT)
        except ConfigurationError as e:
            flash(f"No key was generated: {e}", "error")
            return self.back()
        state.keys.invalidate()
        message = f"Generated {algorithm} key {key.kid} (next)."
        if algorithm != state.settings.algorithm:
            message += (
                f" It is used only while the algorithm is {algorithm};"
                f" it is {state.settings.algorithm} now."
            )
        flash(message, "success")
        return self.back()

    @expose("/rotate", methods=("POST",))
    def rotate(self) -> Response:
        """Make the oldest next key of the chosen algorithm current, as ``flask jwt
        keys rotate`` does. For another algorithm than the one in force, this
        prepares a switch: the key signs once Settings select its algorithm."""
        form = KeyAlgorithmForm(request.form)
        if not form.validate():
            return self.csrf_refused()
        state = get_state()
        algorithm = form.algorithm.data
        until = retire_after(state.settings)
        try:
            with state.store.unavailable_on_error():
                current, previous = state.keys.store.rotate(
                    algorithm, retire_after=until
                )
        except ConfigurationError as e:
            flash(f"No rotation: {e}", "error")
            return self.back()
        state.keys.invalidate()
        if algorithm == state.settings.algorithm:
            message = f"Key {current} now signs."
        else:
            message = (
                f"Key {current} is the current {algorithm} key; it signs once the"
                f" algorithm is {algorithm} (Settings)."
            )
        if previous is not None:
            message += f" Key {previous} verifies until {when(until)}."
        flash(message, "success")
        return self.back()

    @expose("/retire", methods=("POST",))
    def retire(self) -> Response:
        """Retire any key at once, as ``flask jwt keys retire`` does."""
        form = KeyForm(request.form)
        if not form.validate():
            return self.csrf_refused()
        state = get_state()
        kid = form.kid.data
        try:
            with state.store.unavailable_on_error():
                done = state.keys.retire(kid)
        except ConfigurationError as e:
            flash(f"Key {kid} was not retired: {e}", "error")
            return self.back()
        if done is None:
            flash(f"No key {kid}, or it is retired already.", "error")
            return self.back()
        message = f"Retired key {kid}: it no longer signs or verifies."
        if done.replaced_by is not None:
            message += f" Key {done.replaced_by} now signs."
        flash(message, "success")
        return self.back()

    @expose("/unretire", methods=("POST",))
    def unretire(self) -> Response:
        """Undo the retirement of the configured key."""
        form = KeyForm(request.form)
        if not form.validate():
            return self.csrf_refused()
        state = get_state()
        kid = form.kid.data
        with state.store.unavailable_on_error():
            done = state.keys.unretire(kid)
        if not done:
            flash(f"Key {kid} is not a retired configured key.", "error")
            return self.back()
        flash(f"Configured key {kid} verifies again.", "success")
        return self.back()


def _public_jwk(jwk: t.Mapping[str, t.Any] | None) -> str | None:
    """The JWK as indented JSON, without any private member whatever happens."""
    if not jwk:
        return None
    public = {k: v for k, v in jwk.items() if k not in _PRIVATE_JWK_MEMBERS}
    return json.dumps(public, indent=2, sort_keys=True)

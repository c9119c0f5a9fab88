"""Blinker signals sent by the extension, each with the application as sender.

Connect a receiver with ``signals.jwt_created.connect(func, app)`` (or without the
app to hear every app). Receivers run synchronously in the request.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent before an access token is signed. Sender: the app. Arguments: ``payload``
#: (the claims about to be signed; add claims to it, reserved ones are protected)
#: and ``user``.
jwt_created = _signals.signal("jwt-created")

#: Sent after an access token is signed, for audit. Sender: the app. Arguments:
#: ``token`` (the compact JWS) and ``payload`` (its claims).
jwt_encoded = _signals.signal("jwt-encoded")

#: Sent after an access token is verified and found not revoked. Sender: the app.
#: Arguments: ``payload`` and ``token``. Raise
#: :class:`~flask_jwt_authentication.TokenRejected` to refuse the token.
jwt_decoded = _signals.signal("jwt-decoded")

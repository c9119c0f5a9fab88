"""JWT log-in for Flask APIs: access and refresh tokens, rotation with reuse
detection, revocation, and ``@jwt_required``."""

from __future__ import annotations

from . import signals
from .decorators import current_user
from .decorators import get_jwt
from .decorators import jwt_required
from .errors import TokenRejected
from .extension import JWTAuthentication

__all__ = [
    "JWTAuthentication",
    "TokenRejected",
    "current_user",
    "get_jwt",
    "jwt_required",
    "signals",
]

"""JWT log-in for Flask APIs: access and refresh tokens, rotation with reuse
detection, revocation, and ``@jwt_required``."""

from __future__ import annotations

from . import signals
from .callbacks import default_permission_checker
from .decorators import current_user
from .decorators import get_jwt
from .decorators import jwt_required
from .errors import ConfigurationError
from .errors import InvalidToken
from .errors import TokenRejected
from .extension import JWTAuthentication
from .state import ACCESS_PERMISSION
from .state import ADMINISTER_PERMISSION
from .state import USE_PERMISSION

__all__ = [
    "ACCESS_PERMISSION",
    "ADMINISTER_PERMISSION",
    "USE_PERMISSION",
    "ConfigurationError",
    "InvalidToken",
    "JWTAuthentication",
    "TokenRejected",
    "default_permission_checker",
    "current_user",
    "get_jwt",
    "jwt_required",
    "signals",
]

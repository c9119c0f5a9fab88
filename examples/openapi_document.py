"""The OpenAPI document of ``examples/app.py``, written to a file for a client
generator::

    python examples/openapi_document.py openapi.json

The document follows the app's settings (``FLASK_JWT_AUTH_URL_PREFIX``,
``FLASK_JWT_AUTH_REFRESH_COOKIE``, ...), read from the environment as the app
reads them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from flask import Flask

from flask_jwt_authentication.openapi import openapi_document


def write_document(app: Flask, path: Path) -> None:
    """Write the OpenAPI document of ``app`` to ``path``, as JSON."""
    with app.app_context():
        document = openapi_document()
    text = json.dumps(document, indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTPUT.json", file=sys.stderr)
        return 2
    from app import create_app  # examples/app.py, next to this file

    write_document(create_app(), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

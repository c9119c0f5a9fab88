"""Behind a reverse proxy, as docs/deployment.rst and docs/flood.rst show it.

tests/test_doc_examples.py checks that the flood limits then count each client,
not the proxy.
"""

from __future__ import annotations

# [proxy]
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def trust_one_proxy(app: Flask) -> Flask:
    """Take the client's address and scheme from one proxy's ``X-Forwarded-For``
    and ``X-Forwarded-Proto``: set ``x_for`` to the number of proxies in front."""
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)
    return app


# [/proxy]

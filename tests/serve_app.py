"""Serve the test application on 127.0.0.1 in a process of its own.

    python tests/serve_app.py DATABASE_URL CONFIG_JSON

builds ``conftest.build_app(DATABASE_URL, **CONFIG)`` (which creates the tables
afresh), serves it on a threaded Werkzeug server on a free port of 127.0.0.1, prints
that port on the first line of standard output, and serves until its standard input
is closed (or it is terminated). ``test_limits.py`` starts several of these to check
that the flood limits hold across processes that share one Redis.
"""

from __future__ import annotations

import json
import sys
import threading
import typing as t

from conftest import build_app
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request; errors are still logged."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def main(argv: list[str]) -> None:
    database_url, config = argv[1], t.cast(dict[str, t.Any], json.loads(argv[2]))
    env = build_app(database_url, **config)
    server = make_server(
        "127.0.0.1", 0, env.app, threaded=True, request_handler=_QuietHandler
    )

    def stop_when_stdin_closes() -> None:
        sys.stdin.read()
        server.shutdown()

    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    print(server.server_port, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        with env.app.app_context():
            env.db.engine.dispose()


if __name__ == "__main__":
    main(sys.argv)

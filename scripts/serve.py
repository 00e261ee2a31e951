"""uvicorn with the service's logging, exec'd by scripts/startup.py once the database is
migrated. A fresh interpreter: the supervisor keeps none of the start-up's imports, and the
process that receives SIGTERM is uvicorn itself, which shuts down gracefully.

uvicorn's own logging configuration is left out (log_config=None): its supervisor's lines
("Started parent process", worker restarts) go through service/logging.py like every other
line, and the workers configure the same logging when they build the app.
"""

import argparse
import sys
from collections.abc import Sequence

import uvicorn

from service.logging import configure_logging


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.serve")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--graceful-seconds", type=int, required=True)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", default="json", choices=["json", "console"])
    parser.add_argument("--trusted-proxies", default="")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> None:
    options = parse(argv)
    configure_logging(level=options.log_level, log_format=options.log_format)
    uvicorn.run(
        "service.main:app",
        host=options.host,
        port=options.port,
        workers=options.workers,
        timeout_graceful_shutdown=options.graceful_seconds,
        access_log=False,  # the service's middleware writes one line per request
        log_config=None,
        # httptools, with the request's head bounded (service/edge/protocol.py).
        http="service.edge.protocol:EdgeHttpProtocol",
        # No WebSocket routes: an upgrade request is an ordinary request, answered by the
        # API (JSON, a request id, an access line), not by the server's plain-text 403.
        ws="none",
        # uvicorn would otherwise trust X-Forwarded-For from 127.0.0.1, letting a local
        # client choose its own rate-limit key.
        proxy_headers=bool(options.trusted_proxies),
        forwarded_allow_ips=options.trusted_proxies or None,
    )


if __name__ == "__main__":
    main(sys.argv[1:])

"""moto's server for the AWS adapters' tests, applying one request at a time.

moto applies concurrent requests without isolation: two conditional DynamoDB writes on one
item can both succeed, and concurrent Kinesis PutRecords lose acknowledged records. AWS makes
each conditional write atomic and each shard's appends ordered, which is what the adapters
rely on and what the conformance suites check (e.g. "of 4 racing conditional writers exactly
one wins"). Serialising requests makes moto answer as AWS does there; everything else is
moto's own server (`moto.server`), bound to 127.0.0.1.

Usage: python scripts/moto_server.py PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            # Consume the whole response while holding the lock.
            return list(app(environ, start_response))

    run_simple(
        "127.0.0.1",
        port,
        one_at_a_time,
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()

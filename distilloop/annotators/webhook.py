"""The Label Studio webhook listener: annotations pushed to 127.0.0.1 as reviewers submit them.

It binds loopback only, drops every call without the shared secret (compared in constant time) and every body
larger than :data:`MAX_WEBHOOK_BYTES`, and answers malformed calls with 400; only a well-formed annotation of a
task reaches the reviewer.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from distilloop.errors import ConfigError

SECRET_HEADER = "X-Distilloop-Secret"
#: the largest webhook call accepted (an annotation is a few KiB)
MAX_WEBHOOK_BYTES = 1 << 20

__all__ = ["MAX_WEBHOOK_BYTES", "SECRET_HEADER", "_WebhookListener"]


class _WebhookListener:
    """Receives Label Studio's ANNOTATION_CREATED/UPDATED calls on 127.0.0.1; rejects calls without the secret."""

    def __init__(self, host: str, port: int, secret: str, on_annotation: Callable[[int, dict[str, Any]], None]
                 ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError(f"review.webhook_host: the listener binds loopback only, got {host!r}")
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                given = self.headers.get(SECRET_HEADER, "")
                if not hmac.compare_digest(given.encode(), secret.encode()):
                    self.send_response(403)
                    self.end_headers()
                    return
                try:
                    size = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    size = -1
                if not 0 <= size <= MAX_WEBHOOK_BYTES:
                    self.send_response(413)
                    self.end_headers()
                    return
                try:
                    body = json.loads(self.rfile.read(size) or b"{}")
                    ann, task = body.get("annotation"), body.get("task")
                    task_id = int(task["id"]) if isinstance(task, dict) else None
                except (ValueError, TypeError, KeyError, AttributeError):
                    self.send_response(400)
                    self.end_headers()
                    return
                if body.get("action") in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED") and isinstance(ann, dict) \
                        and task_id is not None:
                    # the task's completion as the project counts it (its annotators per task), where sent
                    on_annotation(task_id, {**ann, "task_is_labeled": task.get("is_labeled")})
                listener.received += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = 0
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="ls-webhook")
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

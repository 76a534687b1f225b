"""Serve a :class:`~distilloop.testing.fake_api.server.FakeLLMAPI` on 127.0.0.1 over real HTTP.

One thread per connection (``ThreadingHTTPServer``), Nagle off (otherwise every answer waits ~40 ms for a
delayed ACK), a deep listen backlog for benchmarks with many connections. Use as a context manager::

    with serve(FakeLLMAPI(latency_s=0.3)) as server:
        OpenAITeacher(..., base_url=server.openai_url)      # ends in /v1
        AnthropicTeacher(..., base_url=server.anthropic_url)  # no /v1
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from distilloop.testing.fake_api.base import GENERATION_PATHS
from distilloop.testing.fake_api.server import FakeLLMAPI

_COUNT_LOCK = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    api: FakeLLMAPI
    base_url: str

    def _serve(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        generation = self.command == "POST" and self.path.split("?")[0] in GENERATION_PATHS
        if generation:
            with _COUNT_LOCK:
                self.api.in_flight += 1
                self.api.max_in_flight = max(self.api.max_in_flight, self.api.in_flight)
        try:
            resp = self.api.respond(self.command, self.path, dict(self.headers.items()), body,
                                    base_url=self.base_url)
            if resp.delay_s:
                time.sleep(resp.delay_s)
        finally:
            if generation:
                with _COUNT_LOCK:
                    self.api.in_flight -= 1
        if resp.disconnect:
            self.close_connection = True
            return
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(resp.body)))
        self.end_headers()
        self.wfile.write(resp.body)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):  # a client that timed out and hung up
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class FakeServer:
    """A running fake on 127.0.0.1; stop it with :meth:`close` (or use it as a context manager)."""

    def __init__(self, api: FakeLLMAPI, port: int = 0) -> None:
        attrs: dict[str, object] = {"api": api}
        handler = type("Handler", (_Handler,), attrs)
        self._httpd = _Server(("127.0.0.1", port), handler)
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        setattr(handler, "base_url", self.url)  # noqa: B010 - known only once the port is bound
        self.api = api
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_url(self) -> str:
        return self.url

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(api: FakeLLMAPI, port: int = 0) -> FakeServer:
    return FakeServer(api, port)


def main(argv: list[str] | None = None) -> None:
    """``python -m distilloop.testing.fake_api.http --port 8099 --latency 0.3``: serve the fake until killed."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m distilloop.testing.fake_api",
                                description="Serve the fake OpenAI/Anthropic API on 127.0.0.1.")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one, printed on start)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every generation answer")
    p.add_argument("--api-key", default="sk-fake-test-key-0123456789", help="the key the fake accepts")
    p.add_argument("--disagree", type=float, default=0.0, metavar="SHARE",
                   help="the share of items each model answers with another label (teachers that disagree)")
    args = p.parse_args(argv)
    server = serve(FakeLLMAPI(api_key=args.api_key, latency_s=args.latency, disagree=args.disagree), args.port)
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()

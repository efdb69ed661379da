"""A webhook receiver for the rules tests: a real HTTP server on 127.0.0.1, ports 18200-18299
(reserved for these tests). Several test runs share the machine and the port range, so each
receiver listens on a unique path and records only requests for that path."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORTS = range(18200, 18300)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n)
        srv = self.server
        if self.path != srv.path:  # type: ignore[attr-defined]
            self.send_response(404)
            self.end_headers()
            return
        srv.received.append((dict(self.headers), json.loads(data)))  # type: ignore[attr-defined]
        self.send_response(srv.status)  # type: ignore[attr-defined]
        self.end_headers()

    def log_message(self, *a: object) -> None:
        pass


@contextmanager
def hook() -> Iterator[ThreadingHTTPServer]:
    """A receiver with ``.url``, ``.received`` (headers, body) and ``.status`` (reply code)."""
    srv = None
    for port in PORTS[::-1] if os.urandom(1)[0] & 1 else PORTS:
        try:
            srv = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
            break
        except OSError:
            continue
    assert srv is not None, "no free port in 18200-18299"
    srv.path = f"/hook/{os.urandom(8).hex()}"  # type: ignore[attr-defined]
    srv.url = f"http://127.0.0.1:{srv.server_port}{srv.path}"  # type: ignore[attr-defined]
    srv.received = []  # type: ignore[attr-defined]
    srv.status = 200  # type: ignore[attr-defined]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@contextmanager
def dead_url() -> Iterator[str]:
    """A URL on a port of the range that is bound but not listening: connections are refused."""
    for port in PORTS:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        try:
            yield f"http://127.0.0.1:{port}/nobody"
        finally:
            s.close()
        return
    raise AssertionError("no free port in 18200-18299")

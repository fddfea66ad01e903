"""A real HTTP server on loopback that fails on purpose (test helper).

It serves files from a folder (with HTTP range requests, as GDAL's /vsicurl/
needs) or forwards every request to another server (a STAC API), and it can
answer 503 to the first ``fail_first`` requests of every path, answer 500 to
every request whose path contains one of ``always_fail``, or stall the first
``stall_first`` requests for ``stall`` seconds (a timeout on the client side).
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FlakyServer:
    def __init__(self, root: Path | None = None, upstream: str | None = None, *, fail_first: int = 0,
                 always_fail: tuple[str, ...] = (), stall_first: int = 0, stall: float = 0.0) -> None:
        self.root, self.upstream = root, upstream
        self.fail_first, self.always_fail = fail_first, always_fail
        self.stall_first, self.stall = stall_first, stall
        self.seen: collections.Counter[str] = collections.Counter()
        self.failures = 0
        self.stalls = 0
        self.lock = threading.Lock()

    # -- what the handler asks
    def verdict(self, path: str) -> str:
        with self.lock:
            self.seen[path] += 1
            n = self.seen[path]
            if any(s in path for s in self.always_fail):
                self.failures += 1
                return "500"
            if n <= self.stall_first:
                self.stalls += 1
                return "stall"
            if n <= self.stall_first + self.fail_first:
                self.failures += 1
                return "503"
        return "ok"

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _fail(self, code: int) -> None:
                body = b"failing on purpose"
                self.close_connection = True
                self.send_response(code)
                self.send_header("Connection", "close")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                if self.command != "HEAD":
                    with contextlib.suppress(OSError):  # the client may have hung up
                        self.wfile.write(body)

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(n) if n else None  # read even when failing: keep-alive
                v = owner.verdict(self.path.split("?")[0])
                if v == "stall":
                    time.sleep(owner.stall)
                    with contextlib.suppress(OSError):
                        self._fail(504)
                    return
                if v != "ok":
                    self._fail(int(v))
                    return
                if owner.upstream:
                    self._forward()
                else:
                    self._file()

            def _forward(self) -> None:
                req = urllib.request.Request(owner.upstream + self.path, data=self.body, method=self.command)
                for k in ("Content-Type", "Accept"):
                    if self.headers.get(k):
                        req.add_header(k, self.headers[k])
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        body, code, ctype = r.read(), r.status, r.headers.get("Content-Type", "application/json")
                except urllib.error.HTTPError as e:
                    body, code, ctype = e.read(), e.code, "application/json"
                # links point back at the upstream; rewrite them to this server
                body = body.replace(owner.upstream.encode(), f"http://127.0.0.1:{self.server.server_port}".encode())
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _file(self) -> None:
                path = owner.root / self.path.split("?")[0].lstrip("/")
                if not path.is_file():
                    self._fail(404)
                    return
                data = path.read_bytes()
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    a, _, b = rng[6:].partition("-")
                    start, end = int(a), min(int(b) if b else len(data) - 1, len(data) - 1)
                    part = data[start:end + 1]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                else:
                    part = data
                    self.send_response(200)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "image/tiff")
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(part)

            do_GET = do_POST = do_HEAD = _handle

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            yield f"http://127.0.0.1:{srv.server_port}"
        finally:
            srv.shutdown()
            srv.server_close()

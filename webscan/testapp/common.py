"""Plumbing shared by the webscan test apps.

The apps are the ground truth of picket's web-scanner tests, so everything that is not the app's
own behaviour lives here once: the launch interface (loopback only, `READY <port> <admin_port>`,
ready file, exit on SIGTERM or when a piped stdin closes), the server-side request accounting a
test asserts rate and request caps with, the admin API on its own port (a different origin, so a
scanner never crawls it), and bounded request-body reading.
"""

import argparse
import collections
import json
import os
import secrets
import signal
import socket
import stat
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"
MAX_BODY = 1 << 20  # largest request body any app accepts
MAX_LOG = 10000  # requests kept for GET /requests
MAX_PATH_KEYS = 10000  # distinct paths counted for top_paths
WINDOW_S = 1.0


class Recorder:
    """Counts requests at arrival; the sliding-window maximum is what --max-rps is judged by."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.total = 0
            self.by_method = collections.Counter()
            self.paths = collections.Counter()
            self.window = collections.deque()
            self.max_in_window = 0
            self.first_at = None
            self.last_at = None
            self.log = collections.deque(maxlen=MAX_LOG)
            self.inflight = 0
            self.concurrent_max = 0
            self.counters = collections.Counter()

    def arrive(self, method, path):
        now_m = time.monotonic()
        now_w = time.time()
        with self.lock:
            self.total += 1
            self.by_method[method[:16]] += 1
            key = urlsplit(path).path[:200]
            if key in self.paths or len(self.paths) < MAX_PATH_KEYS:
                self.paths[key] += 1
            # The window is (t - 1 s, t]: arrivals exactly one second apart are in different windows.
            self.window.append(now_m)
            while self.window and self.window[0] <= now_m - WINDOW_S:
                self.window.popleft()
            self.max_in_window = max(self.max_in_window, len(self.window))
            if self.first_at is None:
                self.first_at = now_w
            self.last_at = now_w
            self.inflight += 1
            self.concurrent_max = max(self.concurrent_max, self.inflight)
            entry = {"t": round(now_w, 4), "method": method[:16], "path": path[:2000], "status": 0}
            self.log.append(entry)
            return entry

    def done(self, entry, status):
        with self.lock:
            entry["status"] = status
            self.inflight -= 1

    def bump(self, name, n=1):
        with self.lock:
            self.counters[name] += n

    def stats(self):
        with self.lock:
            out = {
                "requests": self.total,
                "by_method": dict(self.by_method),
                "max_in_window": self.max_in_window,
                "window_s": WINDOW_S,
                "first_at": self.first_at,
                "last_at": self.last_at,
                "concurrent_max": self.concurrent_max,
                "top_paths": dict(self.paths.most_common(50)),
            }
            out.update(self.counters)
            return out

    def requests(self, limit):
        with self.lock:
            items = list(self.log)
        return items[-limit:] if limit > 0 else []


class BaseHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler that records every request and never discloses versions."""

    protocol_version = "HTTP/1.1"
    server_version = "testapp"
    # Idle keep-alive connections and stalled clients must not hold a thread for ever.
    timeout = 30

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if getattr(self.server, "verbose", False):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def handle_one_request(self):
        self._rec = None
        self._status = 0
        try:
            super().handle_one_request()
        except (ConnectionError, socket.timeout, TimeoutError):
            self.close_connection = True
        finally:
            if self._rec is not None:
                self.server.recorder.done(self._rec, self._status)
                self._rec = None

    def parse_request(self):
        ok = super().parse_request()
        if ok:
            token = getattr(self.server, "internal_token", None)
            if token and self.headers.get("X-Testapp-Internal") == token:
                # The app fetching itself (SSRF preview): not a request the scanner sent.
                self.server.recorder.bump("internal_requests")
            else:
                self._rec = self.server.recorder.arrive(self.command, self.path)
        return ok

    def send_response(self, code, message=None):
        self._status = code
        super().send_response(code, message)

    def send_raw_header(self, line: bytes):
        """Appends a header line exactly as given: CR and LF inside it are not checked."""
        if not hasattr(self, "_headers_buffer"):
            self._headers_buffer = []
        self._headers_buffer.append(line + b"\r\n")

    # --- request parsing -------------------------------------------------------------------

    def split_path(self):
        parts = urlsplit(self.path)
        return parts.path, parse_qs(parts.query, keep_blank_values=True)

    def read_body(self, cap=MAX_BODY):
        """The request body, at most `cap` bytes; None (and a 413 already sent) when larger."""
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            return self._read_chunked(cap)
        try:
            length = int(self.headers.get("Content-Length", "0") or "0")
        except ValueError:
            length = -1
        if length < 0 or length > cap:
            self.close_connection = True
            self.send_plain(413, "request body too large\n", close=True)
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self, cap):
        body = bytearray()
        for _ in range(100000):
            line = self.rfile.readline(100)
            try:
                size = int(line.split(b";")[0].strip() or b"x", 16)
            except ValueError:
                size = -1
            if size < 0 or len(body) + size > cap:
                self.send_plain(413, "request body too large\n", close=True)
                return None
            if size == 0:
                # trailers until an empty line
                for _ in range(100):
                    if self.rfile.readline(1000) in (b"\r\n", b"\n", b""):
                        break
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline(10)
        self.send_plain(413, "too many chunks\n", close=True)
        return None

    # --- responses -------------------------------------------------------------------------

    def extra_headers(self, path):
        """Headers every response of this app carries (hardening); apps override."""
        return []

    def send_body(self, status, body, ctype="text/html; charset=utf-8", headers=(), close=False):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        path = urlsplit(self.path).path
        for k, v in self.extra_headers(path):
            self.send_header(k, v)
        for k, v in headers:
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_plain(self, status, text, close=False):
        self.send_body(status, text, "text/plain; charset=utf-8", close=close)

    def send_json(self, status, obj, headers=()):
        self.send_body(status, json.dumps(obj, indent=1) + "\n", "application/json", headers)

    def redirect(self, location, status=302, headers=()):
        self.send_body(status, "", "text/plain; charset=utf-8", [("Location", location)] + list(headers))


class AdminHandler(BaseHTTPRequestHandler):
    """The admin API: counters and state reset, on a port of its own."""

    protocol_version = "HTTP/1.1"
    server_version = "testapp-admin"
    timeout = 30

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        pass

    def _json(self, status, obj):
        body = (json.dumps(obj, indent=1) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = urlsplit(self.path)
        q = parse_qs(parts.query)
        app = self.server.app
        if parts.path in ("/stats", "/__stats"):
            self._json(200, app.recorder.stats())
        elif parts.path == "/requests":
            try:
                limit = min(MAX_LOG, int(q.get("limit", ["1000"])[0]))
            except ValueError:
                limit = 1000
            self._json(200, app.recorder.requests(limit))
        elif (("GET", parts.path)) in app.admin_routes:
            self._json(200, app.admin_routes[("GET", parts.path)]())
        else:
            self._json(404, {"error": "no such admin endpoint"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0") or "0")
        if 0 < length <= MAX_BODY:
            self.rfile.read(length)
        parts = urlsplit(self.path)
        app = self.server.app
        if parts.path == "/reset":
            app.recorder.reset()
            if app.on_reset:
                app.on_reset()
            self._json(200, {"ok": True})
        else:
            self._json(404, {"error": "no such admin endpoint"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class App:
    """What the launcher needs from an app: its handler, its state hooks, its admin routes."""

    def __init__(self, handler, on_reset=None, admin_routes=None):
        self.handler = handler
        self.on_reset = on_reset
        self.admin_routes = admin_routes or {}
        self.recorder = Recorder()
        self.internal_token = secrets.token_hex(16)


def base_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port", type=int, default=0, help="app port on 127.0.0.1 (0: any free port)")
    p.add_argument("--admin-port", type=int, default=0, help="admin API port (0: any free port)")
    p.add_argument("--ready-file", help="also write {port, admin_port, pid} as JSON to this file")
    p.add_argument("--no-stdin-watch", action="store_true", help="do not exit when a piped stdin closes")
    p.add_argument("--verbose", action="store_true", help="log every request on stderr")
    return p


def _stdin_is_pipe():
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def run(app, args, setup=None, cleanup=None):
    """Binds, announces, serves until SIGTERM/SIGINT/stdin EOF, then exits the process."""
    try:
        server = Server((LOOPBACK, args.port), app.handler)
        admin = Server((LOOPBACK, args.admin_port), AdminHandler)
    except OSError as e:
        sys.stderr.write("testapp: cannot bind 127.0.0.1: %s\n" % e)
        sys.exit(2)
    server.app = admin.app = app
    server.internal_token = app.internal_token
    server.recorder = app.recorder
    server.verbose = args.verbose
    port = server.server_address[1]
    admin_port = admin.server_address[1]
    if setup:
        setup(server, port)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if not args.no_stdin_watch and _stdin_is_pipe():

        def watch_stdin():
            try:
                while os.read(0, 4096):
                    pass
            except OSError:
                pass
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()

    for s in (server, admin):
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"port": port, "admin_port": admin_port, "pid": os.getpid()}, f)
        os.replace(tmp, args.ready_file)
    sys.stdout.write("READY %d %d\n" % (port, admin_port))
    sys.stdout.flush()

    while not stop.wait(0.5):
        pass
    server.shutdown()
    admin.shutdown()
    if cleanup:
        cleanup()
    sys.stderr.flush()
    # Handler threads may be inside a deliberately endless response; they are daemons, but
    # os._exit also skips interpreter teardown waiting on anything else.
    os._exit(0)

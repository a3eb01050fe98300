#!/usr/bin/python3
"""A server whose every path misbehaves, for the scanner's robustness tests.

Issue 6: hostile responses (an endless body, a gigantic header, a slowloris server, redirect loops,
invalid UTF-8, deeply nested HTML) must cost the scanner bounded memory and time and end in a
finding or an error, never a hang or a panic. Each path here is one such response, written on the
raw socket where a well-formed HTTP response would get in the way. The server side is bounded as
well: every endless behaviour stops after MAX_S seconds or when the client goes away.
"""

import os
import sys
import tempfile
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

MAX_S = 600.0
HUGE_HEADER = 10 * 1024 * 1024
MANY_HEADERS = 100_000
NESTED = 100_000
MANY_LINKS = 100_000
BOMB_BYTES = 1 << 30

PATHS = [
    "/endless", "/endless-close", "/huge-header", "/many-headers", "/slowloris", "/slow-body",
    "/redirect-loop", "/redirect-self", "/redirect-chain/0", "/invalid-utf8", "/nested", "/many-links",
    "/lying-length", "/gzip-bomb", "/garbage", "/close",
]

_bomb = None
_bomb_lock = threading.Lock()


BOMB_CACHE = os.path.join(tempfile.gettempdir(), "picket-testapp-gzip-bomb-1g-v1.gz")


def gzip_bomb():
    """1 GiB of zeros gzip-compressed (about 1 MiB): 3.5 s of CPU, so made once and cached in /tmp."""
    global _bomb
    with _bomb_lock:
        if _bomb is None:
            try:
                with open(BOMB_CACHE, "rb") as f:
                    data = f.read(4 << 20)
                if data[:2] == b"\x1f\x8b" and len(data) > 1000:
                    _bomb = data
            except OSError:
                pass
        if _bomb is None:
            z = zlib.compressobj(9, zlib.DEFLATED, 31)
            block = bytes(1 << 20)
            parts = [z.compress(block) for _ in range(BOMB_BYTES // len(block))]
            parts.append(z.flush())
            _bomb = b"".join(parts)
            tmp = "%s.%d" % (BOMB_CACHE, os.getpid())
            try:
                with open(tmp, "wb") as f:
                    f.write(_bomb)
                os.replace(tmp, BOMB_CACHE)
            except OSError:
                pass
        return _bomb


def prepare_bomb():
    # Lower priority: it must not slow down whatever is being tested meanwhile.
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except OSError:
        pass
    gzip_bomb()


def html_page(title, body):
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head><body>\n%s\n"
            "</body></html>\n" % (title, body)).encode()


class Handler(common.BaseHandler):
    server_version = "hostile"
    timeout = 30

    def raw(self, data):
        self.wfile.write(data)
        self.wfile.flush()

    def head(self, status_line, headers):
        self._status = int(status_line.split()[0])
        self.raw(("HTTP/1.1 %s\r\n" % status_line).encode() + b"".join(
            k.encode() + b": " + v.encode() + b"\r\n" for k, v in headers) + b"\r\n")

    def do_GET(self):
        path, _ = self.split_path()
        try:
            self.route(path)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            self.close_connection = True

    def route(self, path):
        deadline = time.monotonic() + MAX_S
        if path == "/":
            links = "".join('<li><a href="%s">%s</a></li>' % (p, p) for p in PATHS)
            return self.send_body(200, html_page("Hostile", "<ul>%s</ul>" % links))
        if path == "/endless":
            self.head("200 OK", [("Content-Type", "text/html"), ("Transfer-Encoding", "chunked")])
            chunk = b"<p>" + b"a" * 65530 + b"</p>"
            frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
            while time.monotonic() < deadline:
                self.raw(frame)
            self.close_connection = True
            return
        if path == "/endless-close":
            self.head("200 OK", [("Content-Type", "text/html"), ("Connection", "close")])
            chunk = b"<a href=\"/endless-close\">again</a>" * 2000
            while time.monotonic() < deadline:
                self.raw(chunk)
            self.close_connection = True
            return
        if path == "/huge-header":
            self._status = 200
            self.raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Junk: ")
            block = b"a" * 65536
            for _ in range(HUGE_HEADER // len(block)):
                self.raw(block)
            self.raw(b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            self.close_connection = True
            return
        if path == "/many-headers":
            self._status = 200
            self.raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n")
            batch = []
            for i in range(MANY_HEADERS):
                batch.append(b"X-H-%d: v\r\n" % i)
                if len(batch) == 1000:
                    self.raw(b"".join(batch))
                    batch = []
            self.raw(b"".join(batch) + b"Content-Length: 2\r\nConnection: close\r\n\r\nok")
            self.close_connection = True
            return
        if path == "/slowloris":
            self._status = 200
            self.raw(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while time.monotonic() < deadline:
                self.raw(b"a")
                time.sleep(1.0)
            self.close_connection = True
            return
        if path == "/slow-body":
            self.head("200 OK", [("Content-Type", "text/html"), ("Content-Length", "1000")])
            for _ in range(1000):
                if time.monotonic() >= deadline:
                    break
                self.raw(b"a")
                time.sleep(1.0)
            self.close_connection = True
            return
        if path == "/redirect-loop":
            return self.redirect("/redirect-loop2")
        if path == "/redirect-loop2":
            return self.redirect("/redirect-loop")
        if path == "/redirect-self":
            return self.redirect("/redirect-self")
        if path.startswith("/redirect-chain/"):
            try:
                n = int(path.rsplit("/", 1)[1])
            except ValueError:
                n = 0
            return self.redirect("/redirect-chain/%d" % (n + 1))
        if path == "/invalid-utf8":
            body = (b"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>bad \xff\xfe bytes</title></head>"
                    b"<body><p>lone continuation \x80\xbf, truncated \xe2\x82, overlong \xc0\xaf \xe0\x80\xaf, "
                    b"surrogate \xed\xa0\x80, beyond U+10FFFF \xf4\x90\x80\x80, invalid \xc3\x28</p>"
                    b"<a href=\"/utf8-\xff\xfe-target\">bad link</a> <a href=\"/utf8-ok\">good link</a>"
                    b"<script>var s = \"\xf0\x28\x8c\xbc\";</script></body></html>\n")
            return self.send_body(200, body, "text/html; charset=utf-8")
        if path == "/nested":
            body = (b"<!DOCTYPE html><html><body>" + b"<div>" * NESTED + b"<a href=\"/nested-bottom\">bottom</a>"
                    + b"</div>" * NESTED + b"</body></html>\n")
            return self.send_body(200, body)
        if path == "/many-links":
            body = b"".join(b'<a href="/l/%d">%d</a>\n' % (i, i) for i in range(MANY_LINKS))
            return self.send_body(200, html_page("Many links", "").replace(b"\n\n", b"\n" + body))
        if path == "/lying-length":
            self.head("200 OK", [("Content-Type", "text/html"), ("Content-Length", "1000000000000"),
                                 ("Connection", "close")])
            self.raw(b"<p>short body</p>\n")
            self.close_connection = True
            return
        if path == "/gzip-bomb":
            bomb = gzip_bomb()
            self.head("200 OK", [("Content-Type", "text/html"), ("Content-Encoding", "gzip"),
                                 ("Content-Length", str(len(bomb)))])
            self.raw(bomb)
            return
        if path == "/garbage":
            self._status = 0
            self.raw(b"\x00\x01\x02SSH-2.0-not-http\r\n\xff\xfe garbage \x1b[31m\r\n\r\n" * 100)
            self.close_connection = True
            return
        if path == "/close":
            self._status = 0
            self.close_connection = True
            return
        self.send_body(200, html_page("Quiet page", "<p>Nothing hostile here: %s</p>"
                                      % path.replace("&", "&amp;").replace("<", "&lt;")))

    do_HEAD = do_GET

    def do_POST(self):
        if self.read_body() is None:
            return
        self.do_GET()


def main():
    p = common.base_parser("Hostile HTTP behaviours, one per path; loopback only.")
    args = p.parse_args()
    threading.Thread(target=prepare_bomb, daemon=True).start()
    common.run(common.App(Handler), args)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Proves planted.json true: every planted entry is exploited by a hand-made request, and the same
request against its look-alike shows it safe.

The web scanner's tests and benchmark count a finding right or wrong against planted.json; this
checks the manifest itself, so a scanner that misses a planted entry is wrong, not the app. It also
checks the behaviours the scanner must cope with (login, logged-out redirects, session expiry,
soft 404, discovery documents) and the app's safety nets (the SSRF fetcher stays on loopback).
Starts its own vulnapp on 127.0.0.1; exit status 0 only if every check passed.

    /usr/bin/python3 webscan/testapp/selftest.py [-v] [--vulnapp-only]

bigapp.py (all 200 pages reachable, the 1-second window counted right) and hostile.py (each path
misbehaves as documented) are checked too.
"""

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlencode

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
VERBOSE = "-v" in sys.argv


# --- harness -----------------------------------------------------------------------------------


class AppProc:
    """A test app child process on 127.0.0.1 (stdin piped: it dies with us)."""

    def __init__(self, *extra, script="vulnapp.py"):
        self.proc = subprocess.Popen([PY, os.path.join(HERE, script), "--port", "0", *extra],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        parts = line.split()
        if len(parts) != 3 or parts[0] != "READY":
            raise RuntimeError("%s did not start: %r" % (script, line))
        self.port, self.admin = int(parts[1]), int(parts[2])

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Resp:
    def __init__(self, status, headers, body, elapsed):
        self.status, self.headers, self.body, self.elapsed = status, headers, body, elapsed
        self.text = body.decode("utf-8", "replace")

    def header(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Client:
    def __init__(self, port):
        self.port = port
        self.cookies = {}

    def req(self, method, path, body=None, headers=None, cookies=True, timeout=30):
        h = dict(headers or {})
        if cookies and self.cookies and "Cookie" not in h:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        t0 = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            elapsed = time.monotonic() - t0
            headers = r.getheaders()
        finally:
            conn.close()
        for k, v in headers:
            if k.lower() == "set-cookie" and cookies:
                name, _, rest = v.partition("=")
                self.cookies[name.strip()] = rest.split(";")[0]
        return Resp(r.status, headers, data, elapsed)

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post_form(self, path, fields, **kw):
        return self.req("POST", path, urlencode(fields),
                        {"Content-Type": "application/x-www-form-urlencoded"}, **kw)

    def post_json(self, path, obj, **kw):
        return self.req("POST", path, json.dumps(obj), {"Content-Type": "application/json"}, **kw)

    def post_multipart(self, path, fields, **kw):
        b = "----picketselftest" + uuid.uuid4().hex
        parts = []
        for k, v in fields.items():
            parts.append('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (b, k, v))
        parts.append('--%s\r\nContent-Disposition: form-data; name="picture"; filename="p.txt"\r\n'
                     "Content-Type: text/plain\r\n\r\nhello\r\n--%s--\r\n" % (b, b))
        return self.req("POST", path, "".join(parts), {"Content-Type": "multipart/form-data; boundary=" + b}, **kw)

    def raw(self, request: bytes, limit=1 << 16):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            s.sendall(request)
            data = b""
            while len(data) < limit:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
                if b"\r\n\r\n" in data:
                    break
            return data
        finally:
            s.close()

    def login(self, username="alice", password="wonderland"):
        page = self.get("/login")
        m = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
        token = m.group(1) if m else ""
        return self.post_form("/login", {"csrf_token": token, "next": "/account",
                                         "username": username, "password": password})


def admin(port, method, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=b"" if method == "POST" else None)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


class Elements(HTMLParser):
    """Elements (tag, attrs) and script texts, parsed like a browser would tokenize them."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.scripts, self._in_script = [], [], False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and self.scripts:
            self.scripts[-1] += data


class Callback:
    """A loopback HTTP listener that records the paths it is asked for (SSRF, blind XXE)."""

    def __init__(self):
        hits = self.hits = []

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                body = b"callback-ok " + self.path.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, token):
        return "http://127.0.0.1:%d/%s" % (self.port, token)

    def seen(self, token):
        return any(token in h for h in self.hits)


RESULTS = []


def check(entry_id, ok, detail=""):
    RESULTS.append((entry_id, bool(ok), detail))
    if VERBOSE or not ok:
        print("%s %s %s" % ("PASS" if ok else "FAIL", entry_id, detail), flush=True)


# --- checks ------------------------------------------------------------------------------------

XSS = "<script>alert('pkt%s')</script>"


def script_with(resp, marker):
    return any(marker in s for s in Elements(resp.text).scripts)


def run_checks(app, cb):
    c = Client(app.port)
    anon = Client(app.port)

    # reflected XSS: body, attribute, script string, header
    p = XSS % "b1"
    check("xss-body-search", script_with(c.get("/search?q=" + quote(p)), "pkt" + "b1"))
    check("xss-body-find", not script_with(c.get("/find?q=" + quote(p)), "pktb1")
          and "&lt;script&gt;" in c.get("/find?q=" + quote(p)).text)
    attr = 'x" onmouseover="alert(\'pkta\')" y="'
    tags = Elements(c.get("/share?" + urlencode({"title": attr, "desc": attr})).text).tags
    inputs = {a.get("name"): a for t, a in tags if t == "input"}
    check("xss-attr-share-title", "onmouseover" in inputs.get("title", {}), str(inputs.get("title")))
    check("xss-attr-share-desc", "onmouseover" not in inputs.get("desc", {})
          and inputs.get("desc", {}).get("value") == attr, str(inputs.get("desc")))
    br = "</script><script>alert('pkts')</script>"
    r = c.get("/track?" + urlencode({"campaign": br, "source": "home"}))
    check("xss-script-track-campaign", any(s.strip() == "alert('pkts')" for s in Elements(r.text).scripts))
    str_break = "x';alert('pkts2');//"
    r2 = c.get("/track?" + urlencode({"campaign": str_break}))
    check("xss-script-track-campaign", "var campaign = 'x';alert('pkts2');//';" in r2.text, "string breakout")
    r = c.get("/track?" + urlencode({"campaign": "spring", "source": br}))
    r2 = c.get("/track?" + urlencode({"campaign": "spring", "source": str_break}))
    check("xss-script-track-source", not any(s.strip() == "alert('pkts')" for s in Elements(r.text).scripts)
          and "alert('pkts2');//" not in r2.text.replace("\\u0027", "'").split("var source = ")[0]
          and "var source = \"x\\u0027;alert(\\u0027pkts2\\u0027);//\";" in r2.text)
    hx = 'x"><script>alert(\'pkth\')</script>'
    r = c.get("/about", headers={"X-Forwarded-Host": hx, "User-Agent": hx})
    # Only the header's reflection can make that script element: the UA is escaped in the same page.
    check("xss-header-about-xfh", script_with(r, "pkth") and '<link rel="canonical" href="http://x">' in r.text)
    r = c.get("/about", headers={"User-Agent": hx})
    check("xss-header-about-ua", not script_with(r, "pkth") and "&lt;script&gt;" in r.text)

    # login, then stored XSS
    a = Client(app.port)
    r = a.login()
    check("login", r.status == 302 and r.header("Location") == ["/account"] and "sid" in a.cookies,
          "status %s" % r.status)
    sid_cookie = [v for v in r.header("Set-Cookie") if v.startswith("sid=")]
    check("cookie-flags-sid", sid_cookie and "HttpOnly" in sid_cookie[0] and "SameSite=Lax" in sid_cookie[0],
          str(sid_cookie))
    a.post_form("/notes", {"title": XSS % "st", "body": XSS % "sb"})
    r = a.get("/notes")
    check("xss-stored-notes-body", script_with(r, "pktsb"))
    check("xss-stored-notes-title", not script_with(r, "pktst") and "&lt;script&gt;alert(&#x27;pktst" in r.text)

    # SQL injection
    r = c.get("/catalog?category=" + quote("books'"))
    check("sqli-error-catalog-category", r.status == 500 and "sqlite3.OperationalError" in r.text)
    r = c.get("/catalog?category=books&brand=" + quote("Wiley'"))
    check("sqli-catalog-brand", r.status == 200 and "sqlite3" not in r.text and "OperationalError" not in r.text)

    def boolean(client, path, true_p, false_p, marker):
        t, f = client.get(path + quote(true_p)), client.get(path + quote(false_p))
        return (marker in t.text) != (marker in f.text), "true:%s false:%s" % (marker in t.text, marker in f.text)

    ok, d = boolean(c, "/product?id=", "1 AND 1=1", "1 AND 1=2", "Rust in Action")
    check("sqli-boolean-product-id", ok, d)
    ok, d = boolean(c, "/item?id=", "1 AND 1=1", "1 AND 1=2", "Rust in Action")
    check("sqli-item-id", not ok and "Rust in Action" in c.get("/item?id=1").text, d)
    ok, d = boolean(a, "/orders?status=", "shipped' AND '1'='1", "shipped' AND '1'='2", "Order #1")
    check("sqli-boolean-orders-status", ok, d)

    def cookie_page(name, value):
        jar = {"TrackingId": "d4c3b2a1", "layout": "grid"}
        jar[name] = quote(value, safe="'= ")
        return anon.get("/", headers={"Cookie": "; ".join("%s=%s" % kv for kv in jar.items())}, cookies=False)

    t = cookie_page("TrackingId", "d4c3b2a1' AND '1'='1")
    f = cookie_page("TrackingId", "d4c3b2a1' AND '1'='2")
    check("sqli-boolean-cookie-trackingid", "Welcome back!" in t.text and "Welcome back!" not in f.text)
    t = cookie_page("layout", "grid' AND '1'='1")
    f = cookie_page("layout", "grid' AND '1'='2")
    base = cookie_page("layout", "grid")
    check("sqli-cookie-layout", t.text == f.text and 'class="layout-grid"' in base.text)

    r = c.post_json("/api/v2/stock", {"sku": "BK-001' AND sleep(2) AND '1'='1", "warehouse": "north"})
    r0 = c.post_json("/api/v2/stock", {"sku": "BK-001", "warehouse": "north"})
    check("sqli-time-stock-sku", r.elapsed >= 2.0 and r0.elapsed < 1.0 and r.body == r0.body,
          "%.2fs vs %.2fs" % (r.elapsed, r0.elapsed))
    r = c.post_json("/api/v2/stock", {"sku": "BK-001' AND sleep(3) AND '1'='1", "warehouse": "north"})
    check("sqli-time-stock-sku", r.elapsed >= 3.0, "varied delay %.2fs" % r.elapsed)
    r = c.post_json("/api/v2/stock", {"sku": "BK-001", "warehouse": "north' AND sleep(2) AND '1'='1"})
    check("sqli-time-stock-warehouse", r.elapsed < 1.0, "%.2fs" % r.elapsed)
    r = c.post_json("/api/v2/stock", {"sku": "x' OR sleep(30)='", "warehouse": "north"})
    check("sql-sleep-budget", 9.5 <= r.elapsed < 12.0, "OR sleep(30) over 3 rows capped at %.2fs" % r.elapsed)

    r = c.get("/api/v1/users/1'")
    check("sqli-error-users-path", r.status == 500 and "sqlite3.OperationalError" in r.text, r.text[:80])
    r = c.get("/api/v1/users/2")
    check("sqli-error-users-path", r.status == 200 and "bob" in r.text, "normal value")
    r = c.get("/api/v1/orders/1'")
    check("sqli-orders-path", r.status == 404 and "sqlite" not in r.text)

    # OS command injection
    r = a.get("/tools/banner?text=" + quote("hello;id"))
    check("cmdi-output-banner", "uid=" in r.text, r.text[-200:] if "uid=" not in r.text else "")
    r = a.get("/tools/echo?text=" + quote("hello;id"))
    check("cmdi-echo", "uid=" not in r.text and "hello;id" in r.text)
    r = a.post_form("/tools/lookup", {"domain": "x;sleep 2", "record": "A"})
    r0 = a.post_form("/tools/lookup", {"domain": "shop.example", "record": "A"})
    check("cmdi-time-lookup-domain", r.elapsed >= 2.0 and r0.elapsed < 1.0 and r.body == r0.body,
          "%.2fs vs %.2fs" % (r.elapsed, r0.elapsed))
    r = a.post_form("/tools/lookup", {"domain": "shop.example", "record": "A;sleep 2"})
    r2 = a.post_form("/tools/lookup", {"domain": "shop.example", "record": "$(sleep 2)"})
    check("cmdi-lookup-record", r.elapsed < 1.0 and r2.elapsed < 1.0, "%.2fs %.2fs" % (r.elapsed, r2.elapsed))
    r = a.get("/tools/banner?text=" + quote("x; cat /proc/net/dev"))
    ifaces = re.findall(r"^\s*([\w.@-]+):", r.text, re.M)
    check("cmdi-sandbox", ifaces == ["lo"], "injected commands run in a network namespace with only lo: %s" % ifaces)

    r = c.get("/download?file=" + quote(XSS % "tp"))
    check("xss-download-textplain", (XSS % "tp") in r.text and r.header("Content-Type")[0].startswith("text/plain")
          and r.header("X-Content-Type-Options") == ["nosniff"], "raw, but text/plain")
    r = c.get("/api/v1/users/" + quote(XSS % "js", safe=""))
    check("xss-users-json", "<script>" in r.text and r.header("Content-Type") == ["application/json"],
          "raw, but application/json")

    # path traversal
    trav = "../" * 12 + "etc/passwd"
    check("path-traversal-download", "root:" in c.get("/download?file=" + quote(trav)).text)
    check("path-traversal-download", "root:" in c.get("/download?file=/etc/passwd").text, "absolute path")
    r = c.get("/view?file=" + quote(trav))
    check("path-traversal-view", "root:" not in r.text and r.status == 400
          and "Rust in Action" in c.get("/view?file=price-list.txt").text)
    check("path-traversal-docs", "root:" in c.get("/docs/" + trav).text, "raw ../")
    check("path-traversal-docs", "root:" in c.get("/docs/" + quote(trav, safe="")).text, "%2f-encoded")
    check("path-traversal-manuals", "root:" not in c.get("/manuals/" + trav).text
          and "root:" not in c.get("/manuals/" + quote(trav, safe="")).text
          and "Introduction" in c.get("/manuals/intro.html").text)

    # open redirect
    for target in ("http://evil.example/", "//evil.example/"):
        r = c.get("/go?url=" + quote(target))
        check("open-redirect-go", r.status == 302 and r.header("Location") == [target], target)
        r = c.get("/out?next=" + quote(target))
        check("open-redirect-out", r.status == 302 and r.header("Location") == ["/"], target)
    check("open-redirect-out", c.get("/out?next=/about").header("Location") == ["/about"], "same-site path kept")

    # CRLF
    inj = "en%0d%0aX-Injected:%20pkt"
    raw = c.raw(("GET /lang?set=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % inj).encode())
    check("crlf-lang", b"\r\nX-Injected: pkt" in raw.split(b"\r\n\r\n")[0])
    raw = c.raw(("GET /theme?set=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % inj).encode())
    check("crlf-theme", b"\r\nX-Injected" not in raw and b"theme=en%0D%0AX-Injected" in raw)
    raw = c.raw(b"GET /lang?set=fr HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    check("cookie-flags-elsewhere", b"Set-Cookie: lang=fr; Path=/; HttpOnly; SameSite=Lax\r\n" in raw,
          "the lang cookie has its flags")

    # SSTI
    check("ssti-greet", "Hello 1337!" in c.get("/greet?name=" + quote("{{7*191}}")).text)
    r = c.get("/welcome?name=" + quote("{{7*191}}"))
    check("ssti-welcome", "1337" not in r.text and "Welcome {{7*191}}!" in r.text)
    r = a.post_multipart("/cards", {"to": "Bob", "message": "Hi {{7*191}}"})
    check("ssti-cards-message", "Hi 1337" in r.text, r.text[-200:] if "1337" not in r.text else "")
    r = a.post_multipart("/cards", {"to": "{{7*191}}", "message": "Hi {{ to }}"})
    check("ssti-cards-to", "1337" not in r.text and "Hi {{7*191}}" in r.text)
    check("ssti-greet", "Hello 7777777!" in c.get("/greet?name=" + quote("{{7*'7'}}")).text, "jinja-style 7*'7'")

    # SSRF
    r = c.get("/preview?url=" + quote(cb.url("pre1")))
    check("ssrf-preview", cb.seen("pre1") and "callback-ok /pre1" in r.text)
    r = c.get("/avatar?url=" + quote(cb.url("ava1")))
    check("ssrf-avatar", not cb.seen("ava1") and r.status == 400)
    before = admin(app.admin, "GET", "/stats")
    r = c.get("/avatar?url=" + quote("http://127.0.0.1:%d/static/img/logo.svg" % app.port))
    check("ssrf-avatar", r.status == 200, "own image still served")
    after = admin(app.admin, "GET", "/stats")
    check("self-fetch-not-counted", after["requests"] - before["requests"] == 1
          and after.get("internal_requests", 0) == before.get("internal_requests", 0) + 1,
          "the app fetching itself is counted apart")
    a.post_form("/webhooks", {"callback_url": cb.url("hook1")})
    check("ssrf-blind-webhooks", cb.seen("hook1"))
    a.post_form("/account/profile", {"display_name": "A", "website": cb.url("prof1")})
    time.sleep(0.3)
    check("ssrf-blind-profile", not cb.seen("prof1") and cb.url("prof1") in a.get("/account/profile").text)
    for bad in ("http://10.0.0.1/", "http://example.com/", "http://0x7f000001.example/", "file:///etc/passwd",
                "http://[2001:db8::1]/"):
        r = c.get("/preview?url=" + quote(bad))
        check("ssrf-safety-net", r.status == 400 and "Cannot preview" in r.text, bad)
    hits = admin(app.admin, "GET", "/ssrf-hits")
    check("ssrf-safety-net", all(h["url"].startswith(("http://127.", "http://localhost")) for h in hits),
          "%d fetches, all loopback" % len(hits))

    # XXE
    doc = ('<?xml version="1.0"?><!DOCTYPE order [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
           "<order><item>&e;</item></order>")
    r = c.req("POST", "/api/v1/import", doc, {"Content-Type": "application/xml"})
    check("xxe-import", "root:" in r.text, r.text[:100])
    r2 = c.req("POST", "/api/v1/import-safe", doc, {"Content-Type": "application/xml"})
    check("xxe-import-safe", "root:" not in r2.text and r2.status == 400)
    oob = ('<?xml version="1.0"?><!DOCTYPE order [<!ENTITY e SYSTEM "%s">]><order><item>&e;</item></order>'
           % cb.url("xxe1"))
    c.req("POST", "/api/v1/import", oob, {"Content-Type": "application/xml"})
    check("xxe-import", cb.seen("xxe1"), "out-of-band through the callback")
    c.req("POST", "/api/v1/import-safe", oob.replace("xxe1", "xxe2"), {"Content-Type": "application/xml"})
    check("xxe-import-safe", not cb.seen("xxe2"))
    ok = c.req("POST", "/api/v1/import-safe", "<order><item>BK-001</item></order>",
               {"Content-Type": "application/xml"})
    check("xxe-import-safe", ok.status == 200 and "BK-001" in ok.text, "plain XML accepted")

    # odd input is a plain 500 and the server goes on
    r = c.post_json("/api/v2/stock", {"sku": "\ud800", "warehouse": "north"})
    r2 = c.get("/item?id=%00")
    check("odd-input", r.status == 500 and r2.status in (200, 500) and c.get("/").status == 200,
          "%s %s" % (r.status, r2.status))
    codes = [c.get("/view?file=%2Fe%00").status, c.get("/download?file=%2Fe%00").status,
             a.get("/tools/echo?text=%2Fe%00").status, a.get("/tools/banner?text=%2Fe%00").status]
    check("nul-input", codes == [404, 404, 200, 200], "NUL bytes are not server errors: %s" % codes)

    # passive
    legacy, home = anon.get("/legacy/index.php"), anon.get("/")
    lh = {k.lower() for k, _ in legacy.headers}
    check("missing-headers-legacy", not lh & {"content-security-policy", "x-frame-options",
                                               "x-content-type-options", "referrer-policy"})
    for path in ("/", "/search?q=a", "/openapi.json", "/static/js/app.js", "/nope", "/login"):
        h = {k.lower() for k, _ in anon.get(path).headers}
        check("missing-headers-hardened", {"content-security-policy", "x-frame-options", "x-content-type-options",
                                           "referrer-policy"} <= h, path)
    fresh = Client(app.port).get("/")
    sc = fresh.header("Set-Cookie")
    lay = [v for v in sc if v.startswith("layout=")]
    trk = [v for v in sc if v.startswith("TrackingId=")]
    check("cookie-flags-layout", lay and "httponly" not in lay[0].lower() and "samesite" not in lay[0].lower(), str(lay))
    check("cookie-flags-trackingid", trk and "HttpOnly" in trk[0] and "SameSite" in trk[0], str(trk))
    r = anon.get("/api/v2/me", headers={"Origin": "http://evil.example"})
    check("cors-me", r.header("Access-Control-Allow-Origin") == ["http://evil.example"]
          and r.header("Access-Control-Allow-Credentials") == ["true"])
    r = anon.get("/api/v2/products", headers={"Origin": "http://evil.example"})
    check("cors-products", not r.header("Access-Control-Allow-Origin"))
    check("version-disclosure-legacy", legacy.header("Server") == ["Apache/2.2.22 (Ubuntu)"]
          and legacy.header("X-Powered-By") == ["PHP/5.4.45-0+deb7u2"])
    check("version-disclosure-server", home.header("Server") == ["vulnapp"] and not home.header("X-Powered-By"))
    check("outdated-js-jquery-1.8.3", "/*! jQuery v1.8.3 " in anon.get("/static/js/jquery-1.8.3.min.js").text
          and 'src="/static/js/jquery-1.8.3.min.js"' in legacy.text)
    check("outdated-js-jquery-3.7.1", "/*! jQuery v3.7.1 " in anon.get("/static/js/jquery-3.7.1.min.js").text
          and 'src="/static/js/jquery-3.7.1.min.js"' in home.text and "1.8.3" not in home.text)
    check("exposed-git-head", anon.get("/.git/HEAD").text == "ref: refs/heads/main\n")
    check("exposed-git-config", "[core]" in anon.get("/.git/config").text)
    check("exposed-env", "DB_PASSWORD=" in anon.get("/.env").text)
    check("exposed-backup-php", anon.get("/legacy/index.php.bak").text.startswith("<?php"))
    for eid, path in (("exposed-svn-soft404", "/.svn/entries"), ("exposed-backup-zip-soft404", "/backup.zip")):
        r = anon.get(path)
        check(eid, r.status == 200 and "Sorry, we could not find" in r.text, "soft 404")
    check("exposed-htpasswd-forbidden", anon.get("/.htpasswd").status == 403)
    check("directory-listing-uploads", "<title>Index of /static/uploads/</title>" in anon.get("/static/uploads/").text)
    check("directory-listing-downloads", "Index of" not in anon.get("/downloads/").text)
    check("directory-listing-js-forbidden", anon.get("/static/js/").status == 403)

    # behaviours the scanner must cope with
    r = anon.get("/notes")
    check("logged-out-redirect", r.status == 302 and r.header("Location") == ["/login?next=/notes"])
    r = Client(app.port).login(password="wrong")
    check("login-wrong-password", r.status == 200 and "Invalid username or password" in r.text)
    r = Client(app.port).post_form("/login", {"csrf_token": "0" * 32, "username": "alice", "password": "wonderland"})
    check("login-csrf-checked", r.status == 200 and "expired" in r.text)
    r = a.get("/account")
    check("logged-in-marker", r.status == 200 and "Log out" in r.text)
    check("soft-404", anon.get("/no/such/page").status == 200)
    docs = json.loads(anon.get("/openapi.json").text)
    check("openapi3", docs.get("openapi", "").startswith("3.0") and "/stock" in docs["paths"])
    sw = json.loads(anon.get("/api/v1/swagger.json").text)
    check("swagger2", sw.get("swagger") == "2.0" and "/users/{id}" in sw["paths"])
    robots = anon.get("/robots.txt").text
    check("robots", "Sitemap: /sitemap.xml" in robots and "Disallow: /share" in robots)
    check("sitemap", "/welcome?name=guest" in anon.get("/sitemap.xml").text)
    js = anon.get("/static/js/app.js").text
    check("linked-js-urls", "/preview?url=" in js and "/greet?name=guest" in js and "/preview" not in home.text)
    check("inline-js-urls", "/track?campaign=" in home.text and 'href="/track' not in home.text)
    b = Client(app.port)
    b.login()
    a.post_form("/account/sessions/revoke", {})
    r = b.get("/account")
    check("revoke-ends-sessions", r.status == 302 and "/login" in r.header("Location")[0])
    stats = admin(app.admin, "GET", "/stats")
    check("admin-stats", stats["requests"] > 50 and stats["logins"] >= 2, "requests %d" % stats["requests"])


def session_budget_check():
    app = AppProc("--session-max-requests", "3")
    try:
        c = Client(app.port)
        c.login()
        codes = [c.get("/account").status for _ in range(4)]
        stats = admin(app.admin, "GET", "/stats")
        check("session-expiry", codes == [200, 200, 200, 302] and stats.get("sessions_expired") == 1,
              "codes %s, expired %s" % (codes, stats.get("sessions_expired")))
        admin(app.admin, "POST", "/reset")
        check("admin-reset", admin(app.admin, "GET", "/stats")["requests"] == 0)
    finally:
        app.stop()


def bigapp_checks():
    app = AppProc(script="bigapp.py")
    try:
        c = Client(app.port)
        seen, frontier, depth = {"/": 0}, ["/"], 0
        while frontier and depth < 20:
            nxt = []
            for path in frontier:
                for link in re.findall(r'href="(/page/\d+)"', c.get(path).text):
                    if link not in seen:
                        seen[link] = depth + 1
                        nxt.append(link)
            frontier, depth = nxt, depth + 1
        pages = [p for p in seen if p.startswith("/page/")]
        check("bigapp-pages", len(pages) == 200 and max(seen.values()) <= 7,
              "%d pages, deepest %d links from /" % (len(pages), max(seen.values())))
        forms = c.get("/page/50").text
        check("bigapp-forms", 'action="/search"' in forms and 'action="/feedback"' in forms)
        admin(app.admin, "POST", "/reset")
        for _ in range(30):
            c.get("/page/1")
        st = admin(app.admin, "GET", "/stats")
        check("bigapp-burst-counted", st["requests"] == 30 and st["max_in_window"] == 30,
              "requests %d, max in 1 s %d" % (st["requests"], st["max_in_window"]))
        admin(app.admin, "POST", "/reset")
        for _ in range(20):
            c.get("/page/2")
            time.sleep(0.1)
        st = admin(app.admin, "GET", "/stats")
        check("bigapp-window-slides", st["requests"] == 20 and 5 <= st["max_in_window"] <= 11,
              "20 requests at <= 10/s: max in 1 s %d" % st["max_in_window"])
    finally:
        app.stop()


def read_for(port, path, seconds, limit=32 << 20):
    """Raw GET: (bytes received within `seconds`, True if the server closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=seconds)
    data, closed = bytearray(), False
    deadline = time.monotonic() + seconds
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
        while len(data) < limit and time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(1 << 16)
            except socket.timeout:
                break
            if not chunk:
                closed = True
                break
            data += chunk
    finally:
        s.close()
    return bytes(data), closed


def hostile_checks():
    import zlib
    app = AppProc(script="hostile.py")
    try:
        p = app.port
        d, closed = read_for(p, "/endless", 1.0)
        check("hostile-endless", b"Transfer-Encoding: chunked" in d and len(d) > 1 << 20 and not closed,
              "%d bytes in 1 s" % len(d))
        d, closed = read_for(p, "/endless-close", 1.0)
        check("hostile-endless-close", b"Content-Length" not in d.split(b"\r\n\r\n")[0] and len(d) > 1 << 20)
        d, closed = read_for(p, "/huge-header", 10.0, 12 << 20)
        head = d.split(b"\r\n\r\n")[0]
        check("hostile-huge-header", max(len(x) for x in head.split(b"\r\n")) >= 10 << 20,
              "longest header line %d bytes" % max(len(x) for x in head.split(b"\r\n")))
        d, closed = read_for(p, "/many-headers", 10.0)
        check("hostile-many-headers", d.split(b"\r\n\r\n")[0].count(b"\r\nX-H-") == 100000)
        d, closed = read_for(p, "/slowloris", 2.5)
        check("hostile-slowloris", b"\r\n\r\n" not in d and len(d) < 40 and not closed, repr(d[:40]))
        d, closed = read_for(p, "/slow-body", 2.5)
        check("hostile-slow-body", b"Content-Length: 1000" in d and len(d.split(b"\r\n\r\n", 1)[1]) <= 4)
        c = Client(p)
        check("hostile-redirect-loop", c.get("/redirect-loop").header("Location") == ["/redirect-loop2"]
              and c.get("/redirect-loop2").header("Location") == ["/redirect-loop"]
              and c.get("/redirect-self").header("Location") == ["/redirect-self"]
              and c.get("/redirect-chain/5").header("Location") == ["/redirect-chain/6"])
        body = c.get("/invalid-utf8").body
        try:
            body.decode("utf-8")
            bad = False
        except UnicodeDecodeError:
            bad = True
        check("hostile-invalid-utf8", bad and b'href="/utf8-ok"' in body)
        body = c.get("/nested").body
        check("hostile-nested", body.count(b"<div>") == 100000 and b"/nested-bottom" in body)
        check("hostile-many-links", c.get("/many-links").body.count(b'<a href="/l/') == 100000)
        d, closed = read_for(p, "/lying-length", 2.0)
        check("hostile-lying-length", b"Content-Length: 1000000000000" in d and closed
              and len(d.split(b"\r\n\r\n", 1)[1]) < 100)
        r = c.get("/gzip-bomb", timeout=60)
        z, total = zlib.decompressobj(31), 0
        buf = r.body
        while buf and total <= 1 << 30:
            out = z.decompress(buf, 64 << 20)
            total += len(out)
            buf = z.unconsumed_tail
        check("hostile-gzip-bomb", r.header("Content-Encoding") == ["gzip"] and len(r.body) < 2 << 20
              and total == 1 << 30, "%d bytes -> %d" % (len(r.body), total))
        d, closed = read_for(p, "/garbage", 2.0)
        check("hostile-garbage", not d.startswith(b"HTTP/") and closed)
        d, closed = read_for(p, "/close", 2.0)
        check("hostile-close", d == b"" and closed)
        check("hostile-still-serving", c.get("/").status == 200)
    finally:
        t0 = time.monotonic()
        app.stop()
        check("hostile-exits-on-sigterm", time.monotonic() - t0 < 5)


def manifest_coverage():
    with open(os.path.join(HERE, "planted.json")) as f:
        entries = json.load(f)["entries"]
    checked = {r[0] for r in RESULTS}
    for e in entries:
        if not e.get("catch_all"):
            check("manifest:" + e["id"], e["id"] in checked, "entry has a check")


def main():
    cb = Callback()
    app = AppProc()
    try:
        run_checks(app, cb)
    finally:
        app.stop()
    session_budget_check()
    manifest_coverage()
    if "--vulnapp-only" not in sys.argv:
        bigapp_checks()
        hostile_checks()
    passed = sum(1 for r in RESULTS if r[1])
    failed = len(RESULTS) - passed
    ids = {r[0] for r in RESULTS if not r[0].startswith("manifest:")}
    print("selftest: %d checks of %d manifest entries and behaviours" % (len(RESULTS), len(ids)))
    # cargo's summary format, so scripts/test-all.sh's count of "test result:" lines includes these
    print("test result: %s. %d passed; %d failed; 0 ignored; 0 measured; 0 filtered out"
          % ("ok" if not failed else "FAILED", passed, failed))
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

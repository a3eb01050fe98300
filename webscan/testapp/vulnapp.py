#!/usr/bin/python3
"""A deliberately vulnerable little shop and notes app: the ground truth of `picket scan web`.

Every check class of issue 6 is planted here once or more, each next to a safe look-alike of the
same shape (escaped output, parameterized query, argument list instead of a shell, allow-listed
redirect...). planted.json lists them; selftest.py proves each entry with a hand-made request.
The vulnerable code is real (real sqlite3 queries built by concatenation, a real shell, real file
reads), because a scanner is only worth what the thing it is tested against is worth.

Safety nets that are not part of the "vulnerability": everything binds 127.0.0.1; the SSRF
fetcher and the XXE resolver reach only 127.0.0.0/8 and ::1 and never resolve a name; injected
shell commands run in a network namespace with no interface up; file reads are capped and refuse
anything but regular files; SQL runs read-only with a length limit, a time limit, and a sleep budget.
"""

import ast
import errno
import html
import http.client
import io
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import xml.sax
import xml.sax.handler
import xml.sax.xmlreader
from email.parser import BytesParser
from email.policy import HTTP as HTTP_POLICY
from urllib.parse import parse_qs, quote, unquote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

MAX_READ = 64 * 1024  # cap on file reads, fetched bodies, command output
SLEEP_BUDGET_S = 10.0  # per request, over all sleep()/pg_sleep() calls
SQL_TIME_LIMIT_S = 12.0
CMD_TIMEOUT_S = 15.0
MAX_NOTES = 200
MAX_HITS = 1000

HARDENED = [
    ("Content-Security-Policy",
     "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Permissions-Policy", "geolocation=(), camera=(), microphone=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]
LEGACY_SERVER = "Apache/2.2.22 (Ubuntu)"
LEGACY_POWERED_BY = "PHP/5.4.45-0+deb7u2"
TRACKING_ID = "d4c3b2a1"
CORS_ALLOWED = "https://shop.example.com"

JQUERY_OLD = (
    "/*! jQuery v1.8.3 jquery.com | jquery.org/license */\n"
    "(function(e,t){var n,r,i=typeof t,s=e.location,o=e.document,u=o.documentElement,"
    "v=function(e,t){return new v.fn.init(e,t,n)};v.fn=v.prototype={constructor:v,"
    "init:function(e,n,r){return this},selector:\"\",jquery:\"1.8.3\",length:0};"
    "v.fn.init.prototype=v.fn;e.jQuery=e.$=v})(window);\n"
)
JQUERY_NEW = (
    "/*! jQuery v3.7.1 | (c) OpenJS Foundation and other contributors | jquery.org/license */\n"
    "!function(e,t){\"use strict\";var n=function(e,t){return new n.fn.init(e,t)};"
    "n.fn=n.prototype={jquery:\"3.7.1\",constructor:n,length:0};n.fn.init=function(e,t){return this};"
    "n.fn.init.prototype=n.fn;e.jQuery=e.$=n}(window);\n"
)
LOGO_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
            '<circle cx="20" cy="20" r="18" fill="#2a6"/></svg>\n')

# --- the state a run changes (cleared by the admin API's POST /reset) ---------------------------


class State:
    def __init__(self, username, password, session_max_requests, session_ttl):
        self.lock = threading.Lock()
        self.username = username
        self.password = password
        self.session_max_requests = session_max_requests
        self.session_ttl = session_ttl
        self.port = 0
        self.reset()

    def reset(self):
        with self.lock:
            self.sessions = {}  # sid -> {"created": t, "requests": n}
            self.csrf = {}  # token -> expiry
            self.notes = [{"title": "Welcome", "body": "Your first note."}]
            self.profile = {"display_name": "Alice", "website": "http://127.0.0.1/"}
            self.webhooks = []
            self.ssrf_hits = []

    def new_csrf(self):
        token = secrets.token_hex(16)
        now = time.time()
        with self.lock:
            for t in [t for t, exp in self.csrf.items() if exp < now]:
                del self.csrf[t]
            if len(self.csrf) > 10000:
                self.csrf.clear()
            self.csrf[token] = now + 900
        return token

    def csrf_ok(self, token):
        with self.lock:
            exp = self.csrf.get(token)
        return exp is not None and exp >= time.time()

    def login(self):
        sid = secrets.token_hex(16)
        with self.lock:
            if len(self.sessions) > 10000:
                self.sessions.clear()
            self.sessions[sid] = {"created": time.time(), "requests": 0}
        return sid

    def touch(self, sid, recorder):
        """True if `sid` is a live session; uses up one request of its budget."""
        with self.lock:
            s = self.sessions.get(sid)
            if s is None:
                return False
            if time.time() - s["created"] > self.session_ttl or s["requests"] >= self.session_max_requests:
                del self.sessions[sid]
                recorder.bump("sessions_expired")
                return False
            s["requests"] += 1
            return True

    def logout(self, sid):
        with self.lock:
            self.sessions.pop(sid, None)

    def revoke_all(self):
        with self.lock:
            self.sessions.clear()

    def hit(self, url, what):
        with self.lock:
            if len(self.ssrf_hits) < MAX_HITS:
                self.ssrf_hits.append({"t": round(time.time(), 3), "url": url[:500], "via": what})


STATE = None  # set in main()
DATA = {}  # paths of the temporary data directory

# --- sqlite ------------------------------------------------------------------------------------

_tls = threading.local()


def _sleep(seconds):
    """sleep(n) / pg_sleep(n) for the time-based SQL injections, capped per request."""
    try:
        n = float(seconds)
    except (TypeError, ValueError):
        return 0
    left = getattr(_tls, "sleep_left", SLEEP_BUDGET_S)
    n = max(0.0, min(n, left))
    _tls.sleep_left = left - n
    time.sleep(n)
    return 0


def build_db(path):
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, category TEXT, brand TEXT, price REAL);
        CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, email TEXT, role TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, product_id INTEGER, status TEXT, total REAL);
        CREATE TABLE stock (sku TEXT PRIMARY KEY, warehouse TEXT, qty INTEGER);
        CREATE TABLE tracking (id TEXT PRIMARY KEY, visits INTEGER);
        CREATE TABLE layouts (name TEXT PRIMARY KEY, css TEXT);
        """
    )
    products = [
        (1, "Rust in Action", "books", "Manning", 39.0),
        (2, "The Web Application Hacker's Handbook", "books", "Wiley", 45.5),
        (3, "Network Security Assessment", "books", "OReilly", 41.0),
        (4, "Chess Set", "games", "Acme", 25.0),
        (5, "Go Board", "games", "Acme", 30.0),
        (6, "Puzzle Cube", "games", "Rubik", 9.9),
        (7, "Screwdriver Set", "tools", "Acme", 19.0),
        (8, "Multimeter", "tools", "Fluke", 120.0),
        (9, "Soldering Iron", "tools", "Weller", 89.0),
        (10, "Cable Tester", "tools", "Fluke", 60.0),
        (11, "Lockpick Guide", "books", "Wiley", 15.0),
        (12, "Card Game", "games", "Rubik", 12.0),
    ]
    con.executemany("INSERT INTO products VALUES (?,?,?,?,?)", products)
    con.executemany(
        "INSERT INTO users VALUES (?,?,?,?)",
        [(1, "alice", "alice@shop.example", "admin"), (2, "bob", "bob@shop.example", "user"),
         (3, "carol", "carol@shop.example", "user")],
    )
    con.executemany(
        "INSERT INTO orders VALUES (?,?,?,?)",
        [(1, 1, "shipped", 39.0), (2, 4, "pending", 25.0), (3, 8, "shipped", 120.0), (4, 6, "cancelled", 9.9)],
    )
    con.executemany("INSERT INTO stock VALUES (?,?,?)",
                    [("BK-001", "north", 12), ("GM-004", "north", 3), ("TL-008", "south", 7)])
    con.execute("INSERT INTO tracking VALUES (?, 1)", (TRACKING_ID,))
    con.executemany("INSERT INTO layouts VALUES (?,?)", [("grid", "layout-grid"), ("list", "layout-list")])
    con.commit()
    con.close()


def db():
    """A read-only connection with the app's SQL functions and the safety limits."""
    con = sqlite3.connect("file:%s?mode=ro" % DATA["db"], uri=True, timeout=5)
    con.create_function("sleep", 1, _sleep)
    con.create_function("pg_sleep", 1, _sleep)
    con.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 10_000_000)
    deadline = time.monotonic() + SQL_TIME_LIMIT_S
    # A heavy query (randomblob, cartesian joins) is aborted instead of holding a core.
    con.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10000)
    return con


def query(sql, params=()):
    con = db()
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


# --- the tiny template engine (SSTI) -----------------------------------------------------------

_TPL = re.compile(r"\{\{(.{0,200}?)\}\}", re.S)
_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b}


class TemplateError(Exception):
    pass


def _eval(node, ctx):
    if isinstance(node, ast.Expression):
        return _eval(node.body, ctx)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in ctx:
            raise TemplateError("undefined variable '%s'" % node.id)
        return ctx[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval(node.operand, ctx)
        if not isinstance(v, (int, float)):
            raise TemplateError("bad operand")
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = _eval(node.left, ctx), _eval(node.right, ctx)
        for v in (a, b):
            if isinstance(v, (int, float)) and abs(v) > 10**12:
                raise TemplateError("number too large")
        if isinstance(node.op, ast.Mult) and (isinstance(a, str) or isinstance(b, str)):
            n = b if isinstance(a, str) else a
            s = a if isinstance(a, str) else b
            if not isinstance(n, int) or len(s) * max(n, 0) > 10000:
                raise TemplateError("string repetition too large")
        try:
            return _BINOPS[type(node.op)](a, b)
        except (TypeError, ZeroDivisionError) as e:
            raise TemplateError(str(e))
    raise TemplateError("unsupported expression")


def render(template, ctx):
    """Evaluates every {{ expr }} in `template`; the result is HTML-escaped like any autoescaping engine."""
    out = []
    pos = 0
    for count, m in enumerate(_TPL.finditer(template)):
        if count >= 20:
            break
        out.append(template[pos:m.start()])
        try:
            tree = ast.parse(m.group(1).strip(), mode="eval")
        except SyntaxError as e:
            raise TemplateError("TemplateSyntaxError: %s" % e.msg)
        out.append(str(_eval(tree, ctx)))
        pos = m.end()
    out.append(template[pos:])
    return html.escape("".join(out))


# --- loopback-only fetching (SSRF, XXE) --------------------------------------------------------


class Refused(Exception):
    pass


def loopback_target(url):
    """(host, port, path) for an http URL on 127.0.0.0/8 or ::1; refuses everything else without DNS."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or 80
    except ValueError:
        raise Refused("malformed URL")
    if parts.scheme.lower() != "http":
        raise Refused("only http:// URLs are fetched")
    host = (parts.hostname or "").lower()
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise Refused("only loopback addresses are fetched (no name resolution)")
    if not ip.is_loopback or (ip.version == 4 and ip not in ipaddress.ip_network("127.0.0.0/8")):
        raise Refused("only loopback addresses are fetched")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return str(ip), port, path


def fetch(url, via):
    """GET a loopback URL: (status, body prefix). Never follows redirects."""
    host, port, path = loopback_target(url)
    STATE.hit(url, via)
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        headers = {"User-Agent": "vulnapp-fetcher/1", "Connection": "close"}
        if port == STATE.port:
            headers["X-Testapp-Internal"] = STATE.internal_token
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read(MAX_READ)
    finally:
        conn.close()


def read_regular_file(path):
    """The first MAX_READ bytes of a regular file (no FIFOs, devices or directories)."""
    if "\x00" in path:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise IsADirectoryError("not a regular file: %s" % path)
    with open(path, "rb") as f:
        return f.read(MAX_READ)


# --- XML import (XXE) --------------------------------------------------------------------------


class _Resolver(xml.sax.handler.EntityResolver):
    def resolveEntity(self, publicId, systemId):
        src = xml.sax.xmlreader.InputSource(systemId)
        data = b""
        sid = systemId or ""
        try:
            if sid.startswith("file:"):
                data = read_regular_file(unquote(urlsplit(sid).path))
            elif sid.startswith("http:"):
                _status, data = fetch(sid, "xxe")
            elif sid.startswith("/"):
                data = read_regular_file(sid)
        except (OSError, Refused, http.client.HTTPException):
            data = b""
        src.setByteStream(io.BytesIO(data))
        return src


class _Items(xml.sax.handler.ContentHandler):
    def __init__(self):
        super().__init__()
        self.items = []
        self.cur = None

    def startElement(self, name, attrs):
        if name == "item" and len(self.items) < 100:
            self.cur = []

    def characters(self, content):
        if self.cur is not None and sum(map(len, self.cur)) < MAX_READ:
            self.cur.append(content)

    def endElement(self, name):
        if name == "item" and self.cur is not None:
            self.items.append("".join(self.cur))
            self.cur = None


def parse_items(body, external):
    parser = xml.sax.make_parser()
    handler = _Items()
    parser.setContentHandler(handler)
    parser.setFeature(xml.sax.handler.feature_external_ges, external)
    if external:
        parser.setEntityResolver(_Resolver())
    parser.parse(io.BytesIO(body))
    return handler.items


# --- shell (command injection) -----------------------------------------------------------------

SANDBOX = []  # the argv prefix that puts a command in a network namespace with no interface up


def find_sandbox():
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        try:
            r = subprocess.run(prefix + ["true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0:
            return prefix
    return None


def run_cmd(argv):
    """Runs argv (already sandboxed) with a time limit; (exit code, output prefix)."""
    if any("\x00" in a for a in argv):
        return 2, b"invalid input\n"
    proc = subprocess.Popen(SANDBOX + argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=CMD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return proc.returncode, out[:MAX_READ]


# --- pages -------------------------------------------------------------------------------------

esc = html.escape


def layout(title, body, logged_in=False, legacy=False, extra_head=""):
    js = "/static/js/jquery-1.8.3.min.js" if legacy else "/static/js/jquery-3.7.1.min.js"
    account = ('<a href="/account">My account</a> <a href="/logout">Log out</a>' if logged_in
               else '<a href="/login">Log in</a>')
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{esc(title)} - Picket Test Shop</title>
<link rel="service-desc" href="/openapi.json">
<script src="{js}"></script>
<script src="/static/js/app.js"></script>
{extra_head}
</head>
<body>
<header><img src="/static/img/logo.svg" alt="logo">
<nav><a href="/">Home</a> <a href="/catalog?category=books">Catalog</a> <a href="/about">About</a>
<a href="/downloads/">Downloads</a> <a href="/legacy/index.php">Legacy shop</a> {account}</nav></header>
<main>
<h1>{esc(title)}</h1>
{body}
</main>
<footer>Picket Test Shop</footer>
</body>
</html>
"""


def product_rows(rows):
    return "<ul>" + "".join(
        f'<li><a href="/product?id={r[0]}">{esc(r[1])}</a> ({esc(r[2])}, {esc(r[3])}) {r[4]:.2f} EUR</li>'
        for r in rows) + "</ul>"


OPENAPI = None
SWAGGER = None


def openapi_doc(port):
    return {
        "openapi": "3.0.3",
        "info": {"title": "Picket Test Shop API", "version": "2.0.0"},
        "servers": [{"url": "/api/v2"}],
        "paths": {
            "/products": {"get": {
                "summary": "Products of a category",
                "parameters": [{"name": "category", "in": "query", "required": False,
                                "schema": {"type": "string", "example": "books"}}],
                "responses": {"200": {"description": "product list"}}}},
            "/me": {"get": {"summary": "The logged-in user (session cookie)",
                            "responses": {"200": {"description": "user"}, "401": {"description": "not logged in"}}}},
            "/stock": {"post": {
                "summary": "Stock level request (answered asynchronously)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["sku", "warehouse"],
                    "properties": {"sku": {"type": "string", "example": "BK-001"},
                                   "warehouse": {"type": "string", "example": "north"}}}}}},
                "responses": {"202": {"description": "queued"}}}},
            "/reviews": {"get": {"summary": "Latest reviews",
                                 "responses": {"200": {"description": "reviews"}}}},
        },
    }


def swagger_doc(port):
    return {
        "swagger": "2.0",
        "info": {"title": "Picket Test Shop legacy API", "version": "1.4.0"},
        "host": "127.0.0.1:%d" % port,
        "basePath": "/api/v1",
        "schemes": ["http"],
        "paths": {
            "/users/{id}": {"get": {
                "parameters": [{"name": "id", "in": "path", "required": True, "type": "string", "x-example": "1"}],
                "produces": ["application/json"],
                "responses": {"200": {"description": "user"}}}},
            "/orders/{id}": {"get": {
                "parameters": [{"name": "id", "in": "path", "required": True, "type": "string", "x-example": "1"}],
                "produces": ["application/json"],
                "responses": {"200": {"description": "order"}}}},
            "/import": {"post": {
                "summary": "Import an order as XML",
                "consumes": ["application/xml"],
                "parameters": [{"name": "order", "in": "body", "required": True,
                                "schema": {"type": "string",
                                           "example": "<order><item>BK-001</item></order>"}}],
                "responses": {"200": {"description": "imported items"}}}},
            "/import-safe": {"post": {
                "summary": "Import an order as XML (DTDs refused)",
                "consumes": ["application/xml"],
                "parameters": [{"name": "order", "in": "body", "required": True,
                                "schema": {"type": "string",
                                           "example": "<order><item>BK-001</item></order>"}}],
                "responses": {"200": {"description": "imported items"}}}},
        },
    }


def app_js(port):
    return f"""// Shop front-end helpers. URLs here appear nowhere in the HTML.
(function () {{
  var api = "/api/v2/products?category=books";
  var preview = "/preview?url=" + encodeURIComponent("http://127.0.0.1:{port}/about");
  var avatar = "/avatar?url=" + encodeURIComponent("http://127.0.0.1:{port}/static/img/logo.svg");
  var greeting = '/greet?name=guest';
  function load(u) {{ return fetch(u, {{credentials: "same-origin"}}); }}
  window.shop = {{ api: api, preview: preview, avatar: avatar, greeting: greeting, load: load }};
}})();
"""


ROBOTS = """User-agent: *
Disallow: /share
Disallow: /account/sessions/
Sitemap: /sitemap.xml
"""


def sitemap(port):
    base = "http://127.0.0.1:%d" % port
    paths = ["/", "/about", "/catalog?category=books", "/product?id=1", "/item?id=2", "/welcome?name=guest",
             "/download?file=price-list.txt", "/view?file=terms.txt", "/docs/intro.html",
             "/manuals/intro.html", "/go?url=/catalog", "/out?next=/about"]
    urls = "".join("  <url><loc>%s%s</loc></url>\n" % (base, esc(p)) for p in paths)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n' + urls + "</urlset>\n")


GIT_CONFIG = """[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = false
[remote "origin"]
\turl = git@git.shop.example:web/shop.git
\tfetch = +refs/heads/*:refs/remotes/origin/*
[branch "main"]
\tremote = origin
\tmerge = refs/heads/main
"""
DOTENV = """APP_ENV=production
DB_HOST=127.0.0.1
DB_USER=shop
DB_PASSWORD=s3cr3t-shop-pw
SECRET_KEY=6f1c0a8e7b2d4e5f
"""
PHP_BAK = """<?php
// index.php - legacy shop front page
$db = mysqli_connect('localhost', 'shop', 's3cr3t-shop-pw', 'shop');
$cat = $_GET['cat'];
$res = mysqli_query($db, "SELECT * FROM products WHERE category = '$cat'");
?>
"""


def dir_listing(path, entries):
    rows = "".join(f'<tr><td><a href="{esc(n)}">{esc(n)}</a></td><td align="right">2024-03-01 10:00</td>'
                   f'<td align="right">{s}</td></tr>\n' for n, s in entries)
    return (f"<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html>\n<head>\n"
            f"<title>Index of {esc(path)}</title>\n</head>\n<body>\n<h1>Index of {esc(path)}</h1>\n"
            f"<table>\n<tr><th>Name</th><th>Last modified</th><th>Size</th></tr>\n"
            f'<tr><td><a href="/static/">Parent Directory</a></td><td></td><td>-</td></tr>\n'
            f"{rows}</table>\n</body></html>\n")


UPLOADS = [("invoice-2024-001.pdf", "12K"), ("invoice-2024-002.pdf", "14K"), ("customers.csv", "3.1K")]


class Handler(common.BaseHandler):
    server_version = "vulnapp"

    # --- plumbing --------------------------------------------------------------------------

    def extra_headers(self, path):
        if path.startswith("/legacy/"):
            # The planted unhardened area: no protective headers, and versions disclosed.
            return [("X-Powered-By", LEGACY_POWERED_BY)]
        return HARDENED

    def version_string(self):
        if urlsplit(self.path).path.startswith("/legacy/"):
            return LEGACY_SERVER
        return self.server_version

    def cookies(self):
        out = {}
        for part in self.headers.get("Cookie", "").split(";"):
            if "=" in part:
                k, v = part.split("=", 1)
                out.setdefault(k.strip(), unquote(v.strip()))
        return out

    def session(self):
        sid = self.cookies().get("sid")
        return sid if sid and STATE.touch(sid, self.server.recorder) else None

    def require_login(self):
        """The session id, or None after answering with a redirect to the login page."""
        sid = self.session()
        if sid is None:
            self.redirect("/login?next=" + quote(self.path, safe="/"))
        return sid

    def page(self, title, body, status=200, headers=(), **kw):
        self.send_body(status, layout(title, body, **kw), headers=headers)

    def form(self, body):
        """Form fields of an urlencoded or multipart body: {name: [values]} (files: their text)."""
        ctype = self.headers.get("Content-Type", "")
        if ctype.lower().startswith("multipart/form-data"):
            msg = BytesParser(policy=HTTP_POLICY).parsebytes(
                b"Content-Type: " + ctype.encode("latin-1", "replace") + b"\r\n\r\n" + body)
            out = {}
            if msg.is_multipart():
                for part in list(msg.iter_parts())[:100]:
                    name = part.get_param("name", header="content-disposition")
                    if not name:
                        continue
                    payload = part.get_payload(decode=True) or b""
                    out.setdefault(name, []).append(payload.decode("utf-8", "replace"))
            return out
        return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)

    def json_body(self, body):
        try:
            obj = json.loads(body.decode("utf-8", "replace") or "{}")
        except ValueError:
            return None
        return obj if isinstance(obj, dict) else None

    # --- dispatch --------------------------------------------------------------------------

    def do_HEAD(self):
        self.do_GET()

    def do_OPTIONS(self):
        path, _ = self.split_path()
        origin = self.headers.get("Origin")
        headers = [("Allow", "GET, POST, OPTIONS")]
        if path == "/api/v2/me" and origin:
            headers += [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"),
                        ("Access-Control-Allow-Methods", "GET, POST"), ("Vary", "Origin")]
        self.send_body(204, "", "text/plain", headers)

    def guarded(self, fn, *args):
        """Runs a route; an unexpected error (a NUL or a lone surrogate reaching sqlite, say) is
        a plain 500 that names nothing, like a production server's."""
        try:
            fn(self, *args)
        except (ConnectionError, TimeoutError):
            raise
        except Exception as e:  # noqa: BLE001 - any bug must still answer
            if getattr(self.server, "verbose", False):
                sys.stderr.write("vulnapp: %s %s: %r\n" % (self.command, self.path[:200], e))
            if self._status == 0:
                self.send_body(500, "<h1>Internal Server Error</h1>\n", close=True)
            else:
                self.close_connection = True

    def do_GET(self):
        path, q = self.split_path()
        _tls.sleep_left = SLEEP_BUDGET_S
        arg = lambda name, default="": q.get(name, [default])[0]  # noqa: E731
        route = GET_ROUTES.get(path)
        if route:
            return self.guarded(route, arg, q)
        for prefix, fn in GET_PREFIX_ROUTES:
            if path.startswith(prefix):
                return self.guarded(fn, path[len(prefix):])
        return self.soft_404(path)

    def do_POST(self):
        path, q = self.split_path()
        _tls.sleep_left = SLEEP_BUDGET_S
        body = self.read_body()
        if body is None:
            return
        route = POST_ROUTES.get(path)
        if route:
            return self.guarded(route, body, q)
        return self.soft_404(path)

    def soft_404(self, path):
        self.page("Page not found",
                  f"<p>Sorry, we could not find <code>{esc(unquote(path))}</code>.</p>"
                  '<p><a href="/">Back to the shop</a></p>')

    # --- public pages ----------------------------------------------------------------------

    def home(self, arg, q):
        c = self.cookies()
        headers = []
        if "TrackingId" not in c:
            headers.append(("Set-Cookie", "TrackingId=%s; Path=/; HttpOnly; SameSite=Lax" % TRACKING_ID))
        if "layout" not in c:
            # planted: cookie-flags (no HttpOnly, no SameSite)
            headers.append(("Set-Cookie", "layout=grid; Path=/"))
        welcome = ""
        tid = c.get("TrackingId", TRACKING_ID)
        try:
            # planted: sqli-boolean in the TrackingId cookie (errors swallowed)
            if query("SELECT visits FROM tracking WHERE id = '" + tid + "'"):
                welcome = "<p class=\"welcome\">Welcome back!</p>"
        except sqlite3.Error:
            pass
        css = "layout-grid"
        try:
            # look-alike: the layout cookie in a parameterized query
            rows = query("SELECT css FROM layouts WHERE name = ?", (c.get("layout", "grid"),))
            css = rows[0][0] if rows else "layout-default"
        except sqlite3.Error:
            pass
        body = f"""{welcome}
<div class="{esc(css)}">
<form action="/search" method="get"><input name="q" placeholder="Search products"><button>Search</button></form>
<form action="/find" method="get"><input name="q" placeholder="Find in help pages"><button>Find</button></form>
<ul>
<li><a href="/product?id=1">Product of the week</a></li>
<li><a href="/item?id=2">Staff pick</a></li>
<li><a href="/go?url=/catalog">All products</a> (via our redirector)</li>
<li><a href="/out?next=/about">About us</a> (via our safe redirector)</li>
<li><a href="/guestbook">Guestbook</a></li>
</ul>
</div>
<script>
  var campaign = "/track?campaign=spring&source=home";
  var languages = ["/lang?set=en", "/lang?set=fr"];
  var themes = ["/theme?set=light", "/theme?set=dark"];
  document.addEventListener("DOMContentLoaded", function () {{ new Image().src = campaign; }});
</script>"""
        self.page("Welcome", body, headers=headers, logged_in=self.session() is not None)

    def about(self, arg, q):
        xfh = self.headers.get("X-Forwarded-Host") or "127.0.0.1:%d" % STATE.port
        ua = self.headers.get("User-Agent", "")
        # planted: X-Forwarded-Host reflected raw in an attribute; look-alike: User-Agent escaped
        head = f'<link rel="canonical" href="http://{xfh}/about">'
        body = (f"<p>We sell books, games and tools since 2009.</p><p>Your browser: {esc(ua)}</p>"
                '<p>Developers: <a href="/openapi.json">REST API (OpenAPI)</a>, '
                '<a href="/api/v1/swagger.json">legacy API (Swagger)</a>.</p>')
        self.page("About us", body, extra_head=head)

    def search(self, arg, q):
        term = arg("q")
        # planted: xss-reflected in the HTML body
        self.page("Search", f'<form action="/search"><input name="q"></form><p>Results for <b>{term}</b>: '
                            f'no products found.</p>')

    def find(self, arg, q):
        term = arg("q")
        # look-alike: escaped
        self.page("Find", f'<form action="/find"><input name="q"></form><p>Help pages matching '
                          f'<b>{esc(term)}</b>: none.</p>')

    def share(self, arg, q):
        title, desc = arg("title"), arg("desc")
        # planted: title raw in a double-quoted attribute; look-alike: desc escaped (quotes too)
        body = (f'<form action="/share" method="get">\n'
                f'<input type="text" name="title" value="{title}">\n'
                f'<input type="text" name="desc" value="{esc(desc, quote=True)}">\n'
                f"<button>Share</button></form>")
        self.page("Share a product", body)

    def track(self, arg, q):
        campaign, source = arg("campaign", "none"), arg("source", "direct")
        # planted: campaign raw inside a single-quoted JS string; look-alike: source as a JSON
        # string with <, >, &, ' escaped, which cannot leave the string nor the script element.
        safe_source = json.dumps(source).replace("<", "\\u003c").replace(">", "\\u003e") \
            .replace("&", "\\u0026").replace("'", "\\u0027")
        body = (f"<p>Thanks for visiting.</p>\n<script>\n  var campaign = '{campaign}';\n"
                f"  var source = {safe_source};\n  console.log(campaign, source);\n</script>")
        self.page("Tracking", body)

    def catalog(self, arg, q):
        category, brand = arg("category", "books"), arg("brand")
        try:
            # planted: sqli-error (the database error is shown)
            rows = query("SELECT id, name, category, brand, price FROM products WHERE category = '"
                         + category + "' ORDER BY id")
        except sqlite3.Error as e:
            return self.page("Database error",
                             f"<p>Database error: <code>sqlite3.{type(e).__name__}: {esc(str(e))}</code></p>"
                             f"<pre>SELECT id, name, category, brand, price FROM products WHERE category = "
                             f"'{esc(category)}' ORDER BY id</pre>", status=500)
        if brand:
            try:
                # look-alike: parameterized (and errors are never shown)
                rows = [r for r in rows if r in query(
                    "SELECT id, name, category, brand, price FROM products WHERE brand = ?", (brand,))]
            except sqlite3.Error:
                rows = []
        links = " ".join(f'<a href="/catalog?category={c}">{c}</a>' for c in ("books", "games", "tools"))
        brands = " ".join(f'<a href="/catalog?category={esc(category)}&amp;brand={b}">{b}</a>'
                          for b in ("Acme", "Wiley", "Fluke"))
        self.page("Catalog", f"<p>{links}</p><p>Brands: {brands}</p>{product_rows(rows)}")

    def product(self, arg, q):
        pid = arg("id", "1")
        try:
            # planted: sqli-boolean, numeric context, errors swallowed
            rows = query("SELECT id, name, category, brand, price FROM products WHERE id = " + pid)
        except sqlite3.Error:
            rows = []
        self.product_page(rows)

    def item(self, arg, q):
        pid = arg("id", "1")
        try:
            # look-alike: parameterized
            rows = query("SELECT id, name, category, brand, price FROM products WHERE id = ?", (pid,))
        except sqlite3.Error:
            rows = []
        self.product_page(rows)

    def product_page(self, rows):
        if not rows:
            return self.page("Product", "<p>No such product.</p>")
        r = rows[0]
        self.page("Product", f"<h2>{esc(r[1])}</h2><p>Category: {esc(r[2])}. Brand: {esc(r[3])}. "
                             f"Price: {r[4]:.2f} EUR</p>")

    def greet(self, arg, q):
        name = arg("name", "guest")
        try:
            # planted: ssti (the user's input becomes part of the template)
            text = render("Hello " + name + "!", {"shop": "Picket Test Shop"})
        except TemplateError as e:
            return self.page("Greeting", f"<p>Template error: {esc(str(e))}</p>", status=500)
        self.page("Greeting", f"<p>{text}</p>")

    def welcome(self, arg, q):
        name = arg("name", "guest")
        # look-alike: the input is data for a fixed template
        self.page("Welcome", "<p>%s</p>" % render("Welcome {{ name }}!", {"name": name}))

    def download(self, arg, q):
        name = arg("file", "price-list.txt")
        # planted: path-traversal, the name joined without any check
        target = os.path.join(DATA["files"], name)
        try:
            data = read_regular_file(target)
        except OSError as e:
            return self.send_body(404, "cannot read %s: %s\n" % (name, e.strerror), "text/plain; charset=utf-8")
        self.send_body(200, data, "text/plain; charset=utf-8")

    def view(self, arg, q):
        name = arg("file", "terms.txt")
        # look-alike: normalized and checked to stay in the directory
        base = os.path.realpath(DATA["files"])
        if "\x00" in name:
            return self.send_body(404, "no such file\n", "text/plain; charset=utf-8")
        target = os.path.realpath(os.path.join(base, name))
        if os.path.dirname(target) != base:
            return self.send_body(400, "invalid file name\n", "text/plain; charset=utf-8")
        try:
            data = read_regular_file(target)
        except OSError:
            return self.send_body(404, "no such file\n", "text/plain; charset=utf-8")
        self.send_body(200, data, "text/plain; charset=utf-8")

    def docs(self, rest):
        # planted: path-traversal in the path segments (percent-decoded, then joined)
        name = unquote(rest) or "intro.html"
        try:
            data = read_regular_file(os.path.join(DATA["docs"], name))
        except OSError as e:
            return self.send_body(404, "cannot read %s: %s\n" % (name, e.strerror), "text/plain; charset=utf-8")
        ctype = "text/html; charset=utf-8" if name.endswith(".html") else "text/plain; charset=utf-8"
        self.send_body(200, data, ctype)

    def manuals(self, rest):
        # look-alike: the same, normalized and checked
        base = os.path.realpath(DATA["docs"])
        if "\x00" in unquote(rest):
            return self.send_body(404, "no such document\n", "text/plain; charset=utf-8")
        target = os.path.realpath(os.path.join(base, unquote(rest) or "intro.html"))
        if os.path.dirname(target) != base:
            return self.send_body(400, "invalid document name\n", "text/plain; charset=utf-8")
        try:
            data = read_regular_file(target)
        except OSError:
            return self.send_body(404, "no such document\n", "text/plain; charset=utf-8")
        self.send_body(200, data, "text/html; charset=utf-8")

    def go(self, arg, q):
        # planted: open-redirect (CR/LF removed so that this stays one class)
        url = arg("url", "/").replace("\r", "").replace("\n", "")
        self.redirect(url)

    def out(self, arg, q):
        # look-alike: only same-site paths
        nxt = arg("next", "/")
        ok = (nxt.startswith("/") and not nxt.startswith("//") and not nxt.startswith("/\\")
              and not any(c in nxt for c in "\r\n\t\\"))
        self.redirect(nxt if ok else "/")

    def lang(self, arg, q):
        value = q.get("set", ["en"])[0]
        # planted: crlf, the value written into the header without any check
        self.send_response(302)
        self.send_header("Location", "/")
        self.send_raw_header(b"Set-Cookie: lang=" + value.encode("utf-8", "replace") + b"; Path=/; HttpOnly; SameSite=Lax")
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.close_connection = True
        for k, v in HARDENED:
            self.send_header(k, v)
        self.end_headers()

    def theme(self, arg, q):
        value = arg("set", "light")
        # look-alike: the value is percent-encoded before it goes into the header
        self.redirect("/", headers=[("Set-Cookie", "theme=%s; Path=/; HttpOnly; SameSite=Lax" % quote(value, safe=""))])

    def preview(self, arg, q):
        url = arg("url", "http://127.0.0.1:%d/about" % STATE.port)
        # planted: ssrf (any URL is fetched; the loopback limit is this test app's safety net)
        try:
            status, data = fetch(url, "preview")
        except Refused as e:
            return self.page("Link preview", f"<p>Cannot preview: {esc(str(e))}</p>", status=400)
        except (OSError, http.client.HTTPException) as e:
            return self.page("Link preview", f"<p>Fetch failed: {esc(str(e))}</p>", status=502)
        self.page("Link preview", f"<p>Status {status}</p><pre>{esc(data[:4096].decode('utf-8', 'replace'))}</pre>")

    def avatar(self, arg, q):
        url = arg("url", "")
        # look-alike: only the app's own static images
        allowed = "http://127.0.0.1:%d/static/img/" % STATE.port
        if not url.startswith(allowed) or ".." in url or "@" in url:
            return self.page("Avatar", "<p>Avatars must be one of our own images.</p>", status=400)
        try:
            status, data = fetch(url, "avatar")
        except (Refused, OSError, http.client.HTTPException):
            return self.page("Avatar", "<p>Cannot load the avatar.</p>", status=502)
        self.page("Avatar", f"<p>Avatar: {len(data)} bytes, status {status}.</p>")

    def guestbook(self, arg, q):
        self.page("Guestbook", "<p>The guestbook moved to your account's notes.</p>"
                               '<p><a href="/notes">Notes</a></p>')

    # --- login and account -----------------------------------------------------------------

    def login_page(self, arg, q, error=""):
        token = STATE.new_csrf()
        nxt = arg("next", "/account")
        msg = f'<p class="error">{error}</p>' if error else ""
        body = f"""{msg}<form action="/login" method="post">
<input type="hidden" name="csrf_token" value="{token}">
<input type="hidden" name="next" value="{esc(nxt, quote=True)}">
<label>Username <input type="text" name="username"></label>
<label>Password <input type="password" name="password"></label>
<button type="submit">Log in</button>
</form>"""
        self.page("Log in", body)

    def login_post(self, body, q):
        f = self.form(body)
        g = lambda n: f.get(n, [""])[0]  # noqa: E731
        arg = lambda n, d="": g(n) or d  # noqa: E731
        if not STATE.csrf_ok(g("csrf_token")):
            self.server.recorder.bump("login_failures")
            return self.login_page(arg, q, "Your form expired, please try again.")
        if g("username") != STATE.username or g("password") != STATE.password:
            self.server.recorder.bump("login_failures")
            return self.login_page(arg, q, "Invalid username or password.")
        sid = STATE.login()
        self.server.recorder.bump("logins")
        nxt = g("next") or "/account"
        if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt or "\r" in nxt or "\n" in nxt:
            nxt = "/account"
        self.redirect(nxt, headers=[("Set-Cookie", "sid=%s; Path=/; HttpOnly; SameSite=Lax" % sid)])

    def logout(self, arg, q):
        sid = self.cookies().get("sid")
        if sid:
            STATE.logout(sid)
        self.redirect("/login", headers=[("Set-Cookie", "sid=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")])

    def account(self, arg, q):
        if not self.require_login():
            return
        body = """<p>Hello alice.</p><ul>
<li><a href="/notes">My notes</a></li>
<li><a href="/orders?status=shipped">Shipped orders</a></li>
<li><a href="/tools/banner?text=hello">Banner printer</a> and <a href="/tools/echo?text=hello">echo</a></li>
<li><a href="/tools/lookup">Domain lookup</a></li>
<li><a href="/webhooks">Webhooks</a></li>
<li><a href="/cards">Greeting cards</a></li>
<li><a href="/account/profile">Profile</a></li>
<li><a href="/account/settings">Settings</a></li>
</ul>"""
        self.page("My account", body, logged_in=True, headers=[("Cache-Control", "no-store")])

    def settings(self, arg, q):
        if not self.require_login():
            return
        body = """<p>Signed in on other devices?</p>
<form action="/account/sessions/revoke" method="post"><button>Sign out everywhere</button></form>"""
        self.page("Settings", body, logged_in=True)

    def revoke(self, body, q):
        if not self.require_login():
            return
        STATE.revoke_all()
        self.redirect("/login")

    def notes(self, arg, q):
        if not self.require_login():
            return
        with STATE.lock:
            notes = list(STATE.notes)
        # planted: xss-stored (note body rendered raw); look-alike: the title, escaped
        items = "".join(f'<li><h3>{esc(n["title"])}</h3><div class="note">{n["body"]}</div></li>' for n in notes)
        body = f"""<ul>{items}</ul>
<form action="/notes" method="post">
<input type="text" name="title" value="">
<textarea name="body"></textarea>
<button>Add note</button>
</form>"""
        self.page("My notes", body, logged_in=True)

    def notes_post(self, body, q):
        if not self.require_login():
            return
        f = self.form(body)
        note = {"title": f.get("title", [""])[0][:4096], "body": f.get("body", [""])[0][:4096]}
        with STATE.lock:
            STATE.notes.append(note)
            del STATE.notes[:-MAX_NOTES]
        self.redirect("/notes", status=303)

    def orders(self, arg, q):
        if not self.require_login():
            return
        status = arg("status", "shipped")
        try:
            # planted: sqli-boolean in a string context, errors swallowed
            rows = query("SELECT id, product_id, status, total FROM orders WHERE status = '" + status + "'")
        except sqlite3.Error:
            rows = []
        items = "".join(f"<li>Order #{r[0]}: product {r[1]}, {esc(r[2])}, {r[3]:.2f} EUR</li>" for r in rows)
        self.page("Orders", f"<ul>{items}</ul>" if rows else "<p>No orders.</p>", logged_in=True)

    def banner(self, arg, q):
        if not self.require_login():
            return
        text = arg("text", "hello")
        # planted: cmdi-output (a shell command line built by concatenation)
        _rc, out = run_cmd(["sh", "-c", "echo " + text])
        self.page("Banner", f"<pre>{esc(out.decode('utf-8', 'replace'))}</pre>", logged_in=True)

    def echo(self, arg, q):
        if not self.require_login():
            return
        text = arg("text", "hello")
        # look-alike: the same command, the input as one argument
        _rc, out = run_cmd(["echo", text])
        self.page("Echo", f"<pre>{esc(out.decode('utf-8', 'replace'))}</pre>", logged_in=True)

    def lookup_page(self, arg, q):
        if not self.require_login():
            return
        body = """<form action="/tools/lookup" method="post">
<input type="text" name="domain" value="shop.example">
<select name="record"><option>A</option><option>MX</option></select>
<button>Look up</button></form>"""
        self.page("Domain lookup", body, logged_in=True)

    def lookup_post(self, body, q):
        if not self.require_login():
            return
        f = self.form(body)
        domain, record = f.get("domain", ["shop.example"])[0], f.get("record", ["A"])[0]
        # planted: cmdi-time in domain (concatenated, output discarded); look-alike: record, a
        # positional parameter the shell expands without evaluating
        run_cmd(["sh", "-c", 'echo lookup "$1" ' + domain + ' > /dev/null', "sh", record])
        self.page("Domain lookup", "<p>Your lookup was queued.</p>", logged_in=True)

    def webhooks(self, arg, q):
        if not self.require_login():
            return
        with STATE.lock:
            hooks = list(STATE.webhooks)
        items = "".join(f"<li>{esc(h)}</li>" for h in hooks)
        body = f"""<ul>{items}</ul><form action="/webhooks" method="post">
<input type="url" name="callback_url" value="http://127.0.0.1:{STATE.port}/about">
<button>Register</button></form>"""
        self.page("Webhooks", body, logged_in=True)

    def webhooks_post(self, body, q):
        if not self.require_login():
            return
        url = self.form(body).get("callback_url", [""])[0]
        # planted: ssrf-blind (the URL is pinged; the answer never shows it)
        try:
            fetch(url, "webhook")
        except (Refused, OSError, http.client.HTTPException):
            pass
        with STATE.lock:
            if len(STATE.webhooks) < 100:
                STATE.webhooks.append(url[:500])
        self.page("Webhooks", "<p>Webhook registered.</p>", logged_in=True)

    def profile(self, arg, q):
        if not self.require_login():
            return
        with STATE.lock:
            p = dict(STATE.profile)
        body = f"""<p>{esc(p["display_name"])} - {esc(p["website"])}</p>
<form action="/account/profile" method="post">
<input type="text" name="display_name" value="{esc(p["display_name"], quote=True)}">
<input type="url" name="website" value="{esc(p["website"], quote=True)}">
<button>Save</button></form>"""
        self.page("Profile", body, logged_in=True)

    def profile_post(self, body, q):
        if not self.require_login():
            return
        f = self.form(body)
        # look-alike of ssrf-blind: a URL field that is stored and shown escaped, never fetched
        with STATE.lock:
            STATE.profile = {"display_name": f.get("display_name", [""])[0][:200],
                             "website": f.get("website", [""])[0][:500]}
        self.redirect("/account/profile", status=303)

    def cards(self, arg, q):
        if not self.require_login():
            return
        body = """<form action="/cards" method="post" enctype="multipart/form-data">
<input type="text" name="to" value="Bob">
<textarea name="message">Happy birthday, {{ to }}!</textarea>
<input type="file" name="picture">
<button>Preview</button></form>"""
        self.page("Greeting cards", body, logged_in=True)

    def cards_post(self, body, q):
        if not self.require_login():
            return
        f = self.form(body)
        to, message = f.get("to", ["Bob"])[0][:500], f.get("message", [""])[0][:2000]
        # planted: ssti in the multipart field `message` (it is the template);
        # look-alike: `to` is only ever data for it
        try:
            text = render(message, {"to": to})
        except TemplateError as e:
            return self.page("Card preview", f"<p>Template error: {esc(str(e))}</p>", status=500, logged_in=True)
        self.page("Card preview", f'<div class="card">{text}</div>', logged_in=True)

    # --- legacy area (passive findings) ----------------------------------------------------

    def legacy(self, arg, q):
        body = """<p>Our old shop front. <a href="/legacy/contact.php">Contact</a></p>
<form action="/legacy/contact.php" method="get"><input name="email"><button>Subscribe</button></form>"""
        self.page("Legacy shop", body, legacy=True)

    def legacy_contact(self, arg, q):
        email = arg("email")
        self.page("Contact", f"<p>Thanks, we will write to {esc(email)}.</p>" if email else
                  "<p>Write to shop@shop.example.</p>", legacy=True)

    def legacy_index(self, arg, q):
        self.redirect("/legacy/index.php")

    # --- API -------------------------------------------------------------------------------

    def api_products(self, arg, q):
        category = arg("category", "books")
        headers = [("Vary", "Origin")]
        if self.headers.get("Origin") == CORS_ALLOWED:
            # look-alike of cors: a fixed allow-list
            headers += [("Access-Control-Allow-Origin", CORS_ALLOWED), ("Access-Control-Allow-Credentials", "true")]
        try:
            rows = query("SELECT id, name, price FROM products WHERE category = ?", (category,))
        except sqlite3.Error:
            rows = []
        self.send_json(200, [{"id": r[0], "name": r[1], "price": r[2]} for r in rows], headers)

    def api_me(self, arg, q):
        headers = []
        origin = self.headers.get("Origin")
        if origin:
            # planted: cors, any Origin reflected, with credentials
            headers = [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"),
                       ("Vary", "Origin")]
        if self.session() is None:
            return self.send_json(401, {"error": "not logged in"}, headers)
        self.send_json(200, {"username": STATE.username, "email": "alice@shop.example",
                             "api_key": "ak_live_7d9f2c"}, headers)

    def api_reviews(self, arg, q):
        self.send_json(200, [{"product": 1, "stars": 5, "text": "Great book"},
                             {"product": 4, "stars": 4, "text": "Nice pieces"}])

    def api_stock(self, body, q):
        obj = self.json_body(body)
        if obj is None:
            return self.send_json(400, {"error": "expected a JSON object"})
        sku, warehouse = str(obj.get("sku", "BK-001")), str(obj.get("warehouse", "north"))
        try:
            # planted: sqli-time in sku (no error, no difference in the answer: only time shows it);
            # look-alike: warehouse, bound as a parameter in the same query
            query("SELECT qty FROM stock WHERE sku = '" + sku + "' AND warehouse = ?", (warehouse,))
        except sqlite3.Error:
            pass
        self.send_json(202, {"status": "queued"})

    def api_v1_users(self, rest):
        sql = "SELECT id, username, email FROM users WHERE id = " + unquote(rest)
        try:
            # planted: sqli-error in a path segment
            rows = query(sql)
        except sqlite3.Error as e:
            return self.send_json(500, {"error": "sqlite3.%s: %s" % (type(e).__name__, e), "query": sql})
        if not rows:
            return self.send_json(404, {"error": "no such user"})
        self.send_json(200, {"id": rows[0][0], "username": rows[0][1], "email": rows[0][2]})

    def api_v1_orders(self, rest):
        try:
            # look-alike: parameterized, errors not shown
            rows = query("SELECT id, product_id, status FROM orders WHERE id = ?", (unquote(rest),))
        except sqlite3.Error:
            rows = []
        if not rows:
            return self.send_json(404, {"error": "no such order"})
        self.send_json(200, {"id": rows[0][0], "product_id": rows[0][1], "status": rows[0][2]})

    def api_import(self, body, q):
        # planted: xxe (external entities resolved)
        try:
            items = parse_items(body, external=True)
        except (xml.sax.SAXException, ValueError) as e:
            return self.send_body(400, "XML error: %s\n" % e, "text/plain; charset=utf-8")
        self.send_body(200, "Imported %d item(s):\n%s\n" % (len(items), "\n".join(items)), "text/plain; charset=utf-8")

    def api_import_safe(self, body, q):
        # look-alike: any DTD is refused, external entities are off
        if b"<!doctype" in body.lower() or b"<!entity" in body.lower():
            return self.send_body(400, "DTDs are not allowed\n", "text/plain; charset=utf-8")
        try:
            items = parse_items(body, external=False)
        except (xml.sax.SAXException, ValueError) as e:
            return self.send_body(400, "XML error: %s\n" % e, "text/plain; charset=utf-8")
        self.send_body(200, "Imported %d item(s):\n%s\n" % (len(items), "\n".join(items)), "text/plain; charset=utf-8")

    # --- static and exposed files ----------------------------------------------------------

    def static(self, rest):
        files = {
            "js/jquery-1.8.3.min.js": (JQUERY_OLD, "application/javascript"),
            "js/jquery-3.7.1.min.js": (JQUERY_NEW, "application/javascript"),
            "js/app.js": (app_js(STATE.port), "application/javascript"),
            "img/logo.svg": (LOGO_SVG, "image/svg+xml"),
            "uploads/invoice-2024-001.pdf": ("%PDF-1.4\n% invoice 001\n", "application/pdf"),
            "uploads/invoice-2024-002.pdf": ("%PDF-1.4\n% invoice 002\n", "application/pdf"),
            "uploads/customers.csv": ("name,email\nbob,bob@shop.example\n", "text/csv"),
        }
        if rest in files:
            text, ctype = files[rest]
            return self.send_body(200, text, ctype)
        if rest == "uploads/":
            # planted: directory-listing
            return self.send_body(200, dir_listing("/static/uploads/", UPLOADS))
        if rest in ("", "js/", "img/"):
            return self.send_body(403, "<h1>Forbidden</h1>\n")
        return self.soft_404("/static/" + rest)

    def downloads(self, arg, q):
        # look-alike of directory-listing: a curated page of links
        body = """<ul>
<li><a href="/download?file=price-list.txt">Price list</a></li>
<li><a href="/view?file=terms.txt">Terms</a></li>
<li><a href="/docs/intro.html">Documentation</a> (<a href="/manuals/intro.html">manual</a>)</li>
<li><a href="/static/uploads/">Uploaded invoices</a></li>
</ul>"""
        self.page("Downloads", body)



def _raw(text, ctype="text/plain; charset=utf-8"):
    return lambda h, arg, q: h.send_body(200, text, ctype)


def _forbidden(h, arg, q):
    h.send_body(403, "<h1>Forbidden</h1>\n")


GET_ROUTES = {
    "/": Handler.home, "/about": Handler.about, "/search": Handler.search, "/find": Handler.find,
    "/share": Handler.share, "/track": Handler.track, "/catalog": Handler.catalog,
    "/product": Handler.product, "/item": Handler.item, "/greet": Handler.greet, "/welcome": Handler.welcome,
    "/download": Handler.download, "/view": Handler.view, "/go": Handler.go, "/out": Handler.out,
    "/lang": Handler.lang, "/theme": Handler.theme, "/preview": Handler.preview, "/avatar": Handler.avatar,
    "/guestbook": Handler.guestbook,
    "/login": Handler.login_page, "/logout": Handler.logout, "/account": Handler.account,
    "/account/settings": Handler.settings, "/account/profile": Handler.profile, "/notes": Handler.notes,
    "/orders": Handler.orders, "/tools/banner": Handler.banner, "/tools/echo": Handler.echo,
    "/tools/lookup": Handler.lookup_page, "/webhooks": Handler.webhooks, "/cards": Handler.cards,
    "/legacy/": Handler.legacy_index, "/legacy/index.php": Handler.legacy,
    "/legacy/contact.php": Handler.legacy_contact, "/downloads/": Handler.downloads,
    "/api/v2/products": Handler.api_products, "/api/v2/me": Handler.api_me,
    "/api/v2/reviews": Handler.api_reviews,
    "/robots.txt": lambda h, arg, q: h.send_body(200, ROBOTS, "text/plain; charset=utf-8"),
    "/sitemap.xml": lambda h, arg, q: h.send_body(200, sitemap(STATE.port), "application/xml"),
    "/openapi.json": lambda h, arg, q: h.send_json(200, openapi_doc(STATE.port)),
    "/api/v1/swagger.json": lambda h, arg, q: h.send_json(200, swagger_doc(STATE.port)),
    # planted: exposed-file
    "/.git/HEAD": _raw("ref: refs/heads/main\n"),
    "/.git/config": _raw(GIT_CONFIG),
    "/.env": _raw(DOTENV),
    "/legacy/index.php.bak": _raw(PHP_BAK, "application/octet-stream"),
    # look-alikes: refused
    "/.git/": _forbidden, "/.htpasswd": _forbidden,
}
GET_PREFIX_ROUTES = [
    ("/docs/", Handler.docs), ("/manuals/", Handler.manuals), ("/static/", Handler.static),
    ("/api/v1/users/", Handler.api_v1_users), ("/api/v1/orders/", Handler.api_v1_orders),
]
POST_ROUTES = {
    "/login": Handler.login_post, "/notes": Handler.notes_post, "/tools/lookup": Handler.lookup_post,
    "/webhooks": Handler.webhooks_post, "/account/profile": Handler.profile_post, "/cards": Handler.cards_post,
    "/account/sessions/revoke": Handler.revoke, "/api/v2/stock": Handler.api_stock,
    "/api/v1/import": Handler.api_import, "/api/v1/import-safe": Handler.api_import_safe,
}


def make_data_dir():
    d = tempfile.mkdtemp(prefix="vulnapp-")
    DATA["dir"] = d
    DATA["files"] = os.path.join(d, "files")
    DATA["docs"] = os.path.join(d, "docs")
    os.makedirs(DATA["files"])
    os.makedirs(DATA["docs"])
    for name, text in {"price-list.txt": "Rust in Action 39.00\nChess Set 25.00\n",
                       "terms.txt": "All sales are final.\n"}.items():
        with open(os.path.join(DATA["files"], name), "w") as f:
            f.write(text)
    for name, text in {"intro.html": "<h1>Introduction</h1><p>How to shop.</p>\n",
                       "setup.html": "<h1>Setup</h1><p>Nothing to set up.</p>\n"}.items():
        with open(os.path.join(DATA["docs"], name), "w") as f:
            f.write(text)
    DATA["db"] = os.path.join(d, "shop.db")
    build_db(DATA["db"])


def main():
    global STATE
    p = common.base_parser("Deliberately vulnerable shop (webscan ground truth); loopback only.")
    p.add_argument("--username", default="alice")
    p.add_argument("--password-env", help="environment variable holding the password (default: wonderland)")
    p.add_argument("--session-max-requests", type=int, default=300)
    p.add_argument("--session-ttl", type=float, default=600.0)
    args = p.parse_args()
    password = os.environ.get(args.password_env, "") if args.password_env else "wonderland"
    if not password:
        sys.stderr.write("vulnapp: %s is empty or unset\n" % args.password_env)
        sys.exit(2)
    sandbox = find_sandbox()
    if sandbox is None:
        sys.stderr.write("vulnapp: `unshare -n` / `unshare -rn` is unavailable; the command-injection "
                         "endpoints need a network-less namespace, refusing to start\n")
        sys.exit(2)
    SANDBOX[:] = sandbox
    STATE = State(args.username, password, args.session_max_requests, args.session_ttl)
    make_data_dir()

    def setup(server, port):
        STATE.port = port

    def on_reset():
        STATE.reset()

    def hits():
        with STATE.lock:
            return list(STATE.ssrf_hits)

    app = common.App(Handler, on_reset=on_reset, admin_routes={("GET", "/ssrf-hits"): hits})
    STATE.internal_token = app.internal_token
    try:
        common.run(app, args, setup=setup, cleanup=lambda: shutil.rmtree(DATA["dir"], True))
    finally:
        shutil.rmtree(DATA["dir"], True)


if __name__ == "__main__":
    main()

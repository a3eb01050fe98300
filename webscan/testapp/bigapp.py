#!/usr/bin/python3
"""A 200-page site for the scanner's crawl-scale and politeness tests.

Issue 6 asks that a 200-page app be crawled and scanned at `--max-rps 50` without ever exceeding
it, measured at the server: this app is that server. It records each request's arrival and the
admin API's /stats gives `max_in_window`, the largest number of arrivals in any 1-second window.
Pages are deterministic, so two scans of it see the same thing; the safe forms (escaped echoes)
give the active checks something to test without planting anything.
"""

import html
import os
import sys
import time
from urllib.parse import parse_qs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PAGES = 200
LINKS_PER_PAGE = 5
LATENCY_S = 0.0
HARDENED = [
    ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
]


def links_of(i):
    """Page i links to its 5 children of a 5-ary tree (mod 200) and to one far page."""
    out = [(i * LINKS_PER_PAGE + k) % PAGES for k in range(1, LINKS_PER_PAGE)]
    out.append((i * 37 + 11) % PAGES)
    return out


def depth_of_all():
    """Crawl depth of every page from / (which links to /page/0): used by tests and documented."""
    depth = {0: 1}
    frontier = [0]
    while frontier:
        nxt = []
        for p in frontier:
            for q in links_of(p):
                if q not in depth:
                    depth[q] = depth[p] + 1
                    nxt.append(q)
        frontier = nxt
    return depth


def page(title, body):
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>\n"
            f"<body><h1>{html.escape(title)}</h1>\n{body}\n<p><a href=\"/\">Home</a></p></body></html>\n")


class Handler(common.BaseHandler):
    server_version = "bigapp"

    def extra_headers(self, path):
        return HARDENED

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        if LATENCY_S:
            time.sleep(LATENCY_S)
        path, q = self.split_path()
        if path == "/":
            return self.send_body(200, page("Big app", '<p><a href="/page/0">Start</a> '
                                                       '<a href="/search?q=start">Search</a></p>'))
        if path == "/robots.txt":
            return self.send_body(200, "User-agent: *\nDisallow:\n", "text/plain")
        if path == "/search":
            term = q.get("q", [""])[0]
            return self.send_body(200, page("Search", f"<p>No results for {html.escape(term)}.</p>"))
        if path == "/thanks":
            return self.send_body(200, page("Thanks", "<p>Thank you for your feedback.</p>"))
        if path.startswith("/page/"):
            try:
                i = int(path[len("/page/"):])
            except ValueError:
                i = -1
            if 0 <= i < PAGES:
                return self.send_body(200, page("Page %d" % i, self.page_body(i)))
        self.send_body(404, page("Not found", "<p>No such page.</p>"))

    def page_body(self, i):
        links = "".join(f'<li><a href="/page/{j}">Page {j}</a></li>' for j in links_of(i))
        body = f"<p>This is page {i} of {PAGES}.</p><ul>{links}</ul>"
        if i % 10 == 0:
            body += ('<form action="/search" method="get"><input name="q" value="page%d">'
                     "<button>Search</button></form>" % i)
        if i % 25 == 0:
            body += ('<form action="/feedback" method="post"><input name="name" value="">'
                     '<textarea name="message"></textarea><input type="hidden" name="page" value="%d">'
                     "<button>Send</button></form>" % i)
        return body

    def do_POST(self):
        if LATENCY_S:
            time.sleep(LATENCY_S)
        path, _ = self.split_path()
        body = self.read_body()
        if body is None:
            return
        if path == "/feedback":
            fields = parse_qs(body.decode("utf-8", "replace"))
            name = fields.get("name", [""])[0]
            return self.send_body(200, page("Feedback", f"<p>Thanks, {html.escape(name)}.</p>"))
        self.send_body(404, page("Not found", "<p>No such page.</p>"))


def main():
    global LATENCY_S
    p = common.base_parser("200-page site that measures request rates at the server; loopback only.")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    args = p.parse_args()
    LATENCY_S = max(0.0, args.latency_ms) / 1000.0
    common.run(common.App(Handler), args)


if __name__ == "__main__":
    main()

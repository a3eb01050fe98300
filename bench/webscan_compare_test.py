#!/usr/bin/python3
"""Unit tests of bench/webscan_compare.py: the mapping rules that decide found / false positive.

    /usr/bin/python3 -m unittest bench/webscan_compare_test.py     (from the repository root)
"""

import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import webscan_compare as wc  # noqa: E402

MANIFEST = os.path.join(HERE, "..", "webscan", "testapp", "planted.json")


def f(cwe, url, parameter=None, title="", evidence=""):
    return {"cwe": cwe, "url": url, "parameter": parameter, "title": title, "evidence": evidence}


class Matching(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.entries = wc.load_manifest(MANIFEST)

    def m(self, finding):
        e = wc.match_finding(finding, self.entries)
        return e["id"] if e else None

    def test_query_parameter_planted_and_lookalike(self):
        self.assertEqual(self.m(f([79], "http://127.0.0.1:1/search?q=x", "q")), "xss-body-search")
        self.assertEqual(self.m(f([79], "http://127.0.0.1:1/find?q=x", "q")), "xss-body-find")

    def test_same_page_two_parameters(self):
        self.assertEqual(self.m(f([79], "http://h/share", "title")), "xss-attr-share-title")
        self.assertEqual(self.m(f([79], "http://h/share", "desc")), "xss-attr-share-desc")
        self.assertEqual(self.m(f([79], "http://h/share", "other")), "xss-elsewhere")

    def test_cwe_must_agree(self):
        self.assertEqual(self.m(f([89], "http://h/search", "q")), "sqli-elsewhere")
        self.assertIsNone(self.m(f([352], "http://h/search", "q")))
        self.assertEqual(self.m(f([89, 20], "http://h/catalog", "category")), "sqli-error-catalog-category")

    def test_json_parameter_forms(self):
        for p in ("sku", "$.sku", "json:sku", "body.sku", "$['sku']"):
            self.assertEqual(self.m(f([89], "http://h/api/v2/stock", p)), "sqli-time-stock-sku", p)
        self.assertEqual(self.m(f([89], "http://h/api/v2/stock", "$.warehouse")), "sqli-time-stock-warehouse")

    def test_path_segments(self):
        self.assertEqual(self.m(f([22], "http://h/docs/..%2f..%2fetc%2fpasswd")), "path-traversal-docs")
        self.assertEqual(self.m(f([22], "http://h/docs/../../etc/passwd", "path[1]")), "path-traversal-docs")
        self.assertEqual(self.m(f([22], "http://h/manuals/..%2fx")), "path-traversal-manuals")
        self.assertEqual(self.m(f([89], "http://h/api/v1/users/1%27")), "sqli-error-users-path")

    def test_cookie_and_header_names(self):
        self.assertEqual(self.m(f([89], "http://h/", "TrackingId")), "sqli-boolean-cookie-trackingid")
        self.assertEqual(self.m(f([89], "http://h/", "cookie:trackingid")), "sqli-boolean-cookie-trackingid")
        self.assertEqual(self.m(f([89], "http://h/", "layout")), "sqli-cookie-layout")
        self.assertEqual(self.m(f([79], "http://h/about", "x-forwarded-host")), "xss-header-about-xfh")
        self.assertEqual(self.m(f([79], "http://h/about", "header:User-Agent")), "xss-header-about-ua")

    def test_page_level_most_specific_path_wins(self):
        self.assertEqual(self.m(f([693], "http://h/legacy/index.php")), "missing-headers-legacy")
        self.assertEqual(self.m(f([1021], "http://h/legacy/contact.php")), "missing-headers-legacy")
        self.assertEqual(self.m(f([693], "http://h/")), "missing-headers-hardened")
        self.assertEqual(self.m(f([200], "http://h/legacy/index.php")), "version-disclosure-legacy")
        self.assertEqual(self.m(f([200], "http://h/about")), "version-disclosure-server")
        self.assertEqual(self.m(f([1104], "http://h/legacy/index.php")), "outdated-js-jquery-1.8.3")
        self.assertEqual(self.m(f([1104], "http://h/static/js/jquery-1.8.3.min.js")), "outdated-js-jquery-1.8.3")
        self.assertEqual(self.m(f([1104], "http://h/static/js/jquery-3.7.1.min.js")), "outdated-js-jquery-3.7.1")
        self.assertEqual(self.m(f([1104], "http://h/")), "outdated-js-jquery-3.7.1")

    def test_cookie_name_in_title_when_no_parameter(self):
        self.assertEqual(self.m(f([1004], "http://h/", None, "Cookie layout without HttpOnly")),
                         "cookie-flags-layout")
        self.assertEqual(self.m(f([1004], "http://h/", None, "Cookie TrackingId without HttpOnly")),
                         "cookie-flags-trackingid")
        self.assertEqual(self.m(f([1275], "http://h/login", "sid")), "cookie-flags-sid")
        # a cookie name must be a whole word: "layouts" is not "layout"
        self.assertEqual(self.m(f([1004], "http://h/", None, "Cookie layouts without HttpOnly")),
                         "cookie-flags-elsewhere")

    def test_exposed_files(self):
        self.assertEqual(self.m(f([527], "http://h/.git/HEAD")), "exposed-git-head")
        self.assertEqual(self.m(f([538], "http://h/.env")), "exposed-env")
        self.assertEqual(self.m(f([530], "http://h/legacy/index.php.bak")), "exposed-backup-php")
        self.assertEqual(self.m(f([527], "http://h/.svn/entries")), "exposed-svn-soft404")
        self.assertEqual(self.m(f([527], "http://h/.hg/store")), "exposed-file-elsewhere")
        self.assertEqual(self.m(f([530], "http://h/legacy/contact.php.bak")), "exposed-file-elsewhere")

    def test_relative_urls(self):
        self.assertEqual(self.m(f([601], "/go", "url")), "open-redirect-go")
        self.assertEqual(wc.path_of("/go?url=x#y"), "/go")
        self.assertEqual(wc.path_of(""), "")


class Scoring(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.entries = wc.load_manifest(MANIFEST)

    def test_score_counts(self):
        findings = [
            f([79], "http://h/search", "q"),
            f([79], "http://h/search", "q"),  # a duplicate counts once
            f([79], "http://h/find", "q"),  # look-alike: false positive
            f([352], "http://h/notes"),  # not in the manifest's CWEs
            f([79], "http://h/nowhere", "q"),  # the catch-all look-alike: false positive
            f([1392], "http://h/login"),  # a CWE the manifest does not cover: unmatched
            f([693], "http://h/", None, "X-XSS-Protection is not set"),  # not applicable
            f([614], "http://h/login", "sid", "Secure flag is not set"),  # not applicable on http
        ]
        v = wc.score(findings, self.entries)
        self.assertEqual(v["planted_found"], ["xss-body-search"])
        self.assertEqual(v["false_positive_entries"], ["xss-body-find", "xss-elsewhere"])
        self.assertEqual(len(v["unmatched"]), 2)
        self.assertEqual(len(v["unmatched_in_manifest_cwes"]), 0)
        self.assertEqual(len(v["not_applicable"]), 2)
        self.assertEqual(v["planted_total"], sum(e["planted"] for e in self.entries))
        self.assertEqual(v["per_class"]["xss-reflected"]["found"], 1)
        self.assertEqual(len(v["planted_missed"]), v["planted_total"] - 1)

    def test_hsts_is_applicable_on_https(self):
        fi = f([693], "https://h/", None, "Strict-Transport-Security is not set")
        self.assertTrue(wc.not_applicable(fi, "http"))
        self.assertFalse(wc.not_applicable(fi, "https"))


class Readers(unittest.TestCase):
    def test_wapiti_report(self):
        report = {"vulnerabilities": {
            "Cross Site Scripting": [{"method": "GET", "path": "/search", "info": "XSS in q", "level": 1,
                                      "parameter": "q", "http_request": "GET /search?q=..."}],
            "Blind SQL Injection": [{"method": "POST", "path": "/tools/lookup", "info": "", "level": 3,
                                     "parameter": "domain", "http_request": ""}],
            "Unknown category": [{"method": "GET", "path": "/", "parameter": ""}],
        }, "anomalies": {"Internal Server Error": [{"path": "/catalog"}]}}
        fs = wc.wapiti_findings(report)
        self.assertEqual(len(fs), 3)
        self.assertEqual(fs[0]["cwe"], [79])
        self.assertEqual(fs[1]["cwe"], [89])
        self.assertEqual(fs[2]["cwe"], [])
        self.assertIsNone(fs[2]["parameter"])

    def test_picket_report(self):
        report = {"picket_version": "0", "scan": {"kind": "web"}, "findings": [
            {"id": "a", "title": "Reflected XSS", "severity": "high", "cwe": [79], "cve": [],
             "asset": {}, "url": "http://h/search?q=1", "method": "GET", "parameter": "q",
             "evidence": {"request": "GET ...", "response_excerpt": "..."}, "remediation": ""}]}
        fs = wc.picket_findings(report)
        self.assertEqual(fs[0]["cwe"], [79])
        self.assertEqual(fs[0]["url"], "http://h/search?q=1")
        entries = wc.load_manifest(MANIFEST)
        self.assertEqual(wc.score(fs, entries)["planted_found"], ["xss-body-search"])

    def test_cli_score(self):
        import io
        import tempfile
        from contextlib import redirect_stdout
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as t:
            json.dump({"findings": [{"cwe": [601], "url": "http://h/go?url=x", "parameter": "url"}]}, t)
        buf = io.StringIO()
        with redirect_stdout(buf):
            wc.main(["score", MANIFEST, "--picket", t.name])
        os.unlink(t.name)
        self.assertEqual(json.loads(buf.getvalue())["picket"]["planted_found"], ["open-redirect-go"])


if __name__ == "__main__":
    unittest.main()

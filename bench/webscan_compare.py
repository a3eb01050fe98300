#!/usr/bin/python3
"""Scores web-scanner reports against webscan/testapp/planted.json.

bench/webscan.sh runs wapiti and picket against the same vulnapp; this module turns both reports
into one finding shape, maps each finding to the manifest entry it is about, and counts planted
entries found, look-alikes reported (false positives) and findings that match nothing. The rules
live here once so the benchmark and any test that wants the same verdict agree; the functions are
pure and covered by bench/webscan_compare_test.py.

    webscan_compare.py score MANIFEST --picket REPORT.json [--wapiti REPORT.json]   (prints JSON)
"""

import argparse
import fnmatch
import json
import re
import sys
from urllib.parse import unquote, urlsplit

# wapiti 3.0.4 report categories -> CWE (wapiti's own reports carry no CWE)
WAPITI_CWE = {
    "Cross Site Scripting": [79],
    "Stored Cross Site Scripting": [79],
    "SQL Injection": [89],
    "Blind SQL Injection": [89],
    "Command execution": [78],
    "Path Traversal": [22],
    "Open Redirect": [601],
    "CRLF Injection": [113],
    "Server Side Request Forgery": [918],
    "XML External Entity": [611],
    "Backup file": [530],
    "Potentially dangerous file": [538],
    "HTTP Secure Headers": [693],
    "Content Security Policy Configuration": [693],
    "HttpOnly Flag cookie": [1004],
    "Secure Flag cookie": [614],
    "Cross Site Request Forgery": [352],
    "Weak credentials": [1392],
    "Htaccess Bypass": [285],
}

# Findings about these are not scored for any tool: X-XSS-Protection is deprecated (current advice
# is to leave it unset), and HSTS and the Secure cookie flag mean nothing on a plain-http target.
NOT_APPLICABLE = [
    (re.compile(r"x-xss-protection", re.I), None),
    (re.compile(r"strict-transport-security|\bhsts\b", re.I), "http"),
    (re.compile(r"secure flag", re.I), "http"),
]


def load_manifest(path):
    with open(path) as f:
        return json.load(f)["entries"]


def literal_len(pattern):
    """How specific a path pattern is: the number of characters that are not wildcards."""
    return len(pattern.replace("*", "").replace("?", ""))


def path_of(url):
    """The URL's path as the server saw it (percent-decoding is not applied: /docs/..%2f stays)."""
    if not url:
        return ""
    if url.startswith("/"):
        return url.split("?", 1)[0].split("#", 1)[0]
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return ""


def path_matches(pattern, path):
    """Glob match; `*` spans slashes. A pattern also matches the percent-decoded path."""
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(unquote(path), pattern)


_PARAM_PREFIX = re.compile(r"^(?:\$\.|json:|cookie:|header:|query:|form:|multipart:|body[.:]|path:)", re.I)


def norm_param(p):
    """A parameter name without a location prefix or JSON path: `$.a.sku`, `json:sku` -> `sku`."""
    if p is None:
        return None
    p = _PARAM_PREFIX.sub("", str(p).strip())
    if re.search(r"[.\[\]]", p) and not p.startswith("."):
        parts = [x for x in re.split(r"[.\[\]\"']+", p) if x]
        p = parts[-1] if parts else p
    return p.lower()


def param_ok(entry, finding):
    want = entry.get("parameter")
    if want is None:
        return True
    got = norm_param(finding.get("parameter"))
    if got:
        return got == want.lower()
    # Page-level findings (cookie flags) may name the cookie only in their title or evidence.
    text = (str(finding.get("title", "")) + " " + json.dumps(finding.get("evidence", ""))).lower()
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(want.lower()), text) is not None


def candidates(finding, entries):
    cwes = set(finding.get("cwe") or [])
    path = path_of(finding.get("url", ""))
    out = []
    for e in entries:
        if not cwes & set(e["cwe"]):
            continue
        pats = [e["path"]] + list(e.get("also_paths", []))
        matched = [p for p in pats if path_matches(p, path)]
        if not matched or not param_ok(e, finding):
            continue
        out.append((max(literal_len(p) for p in matched), e.get("parameter") is not None, e))
    return out


def match_finding(finding, entries):
    """The manifest entry a finding is about: the most specific path, then one naming a parameter."""
    c = candidates(finding, entries)
    if not c:
        return None
    c.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return c[0][2]


def not_applicable(finding, target_scheme="http"):
    text = "%s %s" % (finding.get("title", ""), json.dumps(finding.get("evidence", "")))
    for rx, scheme in NOT_APPLICABLE:
        if rx.search(text) and (scheme is None or scheme == target_scheme):
            return True
    return False


def picket_findings(report):
    """Findings of a picket web report (the contract's shape) in the common shape."""
    out = []
    for f in report.get("findings", []):
        out.append({
            "tool": "picket",
            "cwe": [int(c) for c in f.get("cwe", []) if str(c).isdigit()],
            "url": f.get("url") or (f.get("asset") or {}).get("url", ""),
            "method": f.get("method"),
            "parameter": f.get("parameter"),
            "title": f.get("title", ""),
            "evidence": f.get("evidence", ""),
            "severity": f.get("severity"),
        })
    return out


def wapiti_findings(report):
    """Vulnerabilities of a wapiti JSON report in the common shape (anomalies and infos are not findings)."""
    out = []
    for category, items in (report.get("vulnerabilities") or {}).items():
        for v in items or []:
            out.append({
                "tool": "wapiti",
                "cwe": list(WAPITI_CWE.get(category, [])),
                "url": v.get("path", ""),
                "method": v.get("method"),
                "parameter": v.get("parameter") or None,
                "title": "%s: %s" % (category, v.get("info", "")),
                "evidence": v.get("http_request", ""),
                "category": category,
            })
    return out


def score(findings, entries, target_scheme="http"):
    """The verdict of one tool's findings against the manifest."""
    planted = {e["id"]: e for e in entries if e["planted"]}
    found, fps, unmatched, na = {}, [], [], []
    manifest_cwes = {c for e in entries for c in e["cwe"]}
    for f in findings:
        if not_applicable(f, target_scheme):
            na.append(f)
            continue
        e = match_finding(f, entries)
        if e is None:
            unmatched.append(f)
        elif e["planted"]:
            found.setdefault(e["id"], []).append(f)
        else:
            fps.append({"entry": e["id"], "finding": f})
    per_class = {}
    for e in entries:
        if e["planted"]:
            k = per_class.setdefault(e["class"], {"planted": 0, "found": 0})
            k["planted"] += 1
            k["found"] += e["id"] in found
    return {
        "planted_total": len(planted),
        "planted_found": sorted(found),
        "planted_missed": sorted(set(planted) - set(found)),
        "false_positives": fps,
        "false_positive_entries": sorted({x["entry"] for x in fps}),
        "unmatched": unmatched,
        "unmatched_in_manifest_cwes": [f for f in unmatched if set(f["cwe"]) & manifest_cwes],
        "not_applicable": na,
        "per_class": per_class,
        "findings_total": len(findings),
    }


def summary(verdict):
    return {k: (len(v) if isinstance(v, list) else v) for k, v in verdict.items() if k != "per_class"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("score")
    s.add_argument("manifest")
    s.add_argument("--picket")
    s.add_argument("--wapiti")
    args = p.parse_args(argv)
    entries = load_manifest(args.manifest)
    out = {}
    if args.picket:
        with open(args.picket) as f:
            out["picket"] = score(picket_findings(json.load(f)), entries)
    if args.wapiti:
        with open(args.wapiti) as f:
            out["wapiti"] = score(wapiti_findings(json.load(f)), entries)
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

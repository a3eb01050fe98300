#!/usr/bin/env python3
"""Compares the package findings of a `picket scan host --format json` report with gen.py's
expected.json, and prints the differences (with each advisory's case from cases.json).

    compare.py OUT REPORT.json [--host ADDRESS]

Why: when the end-to-end test fails, the question is which case broke; this answers it without
reading 100 findings by eye. Only findings with an `advisory` are compared (configuration
findings have none); when the report covers several hosts, --host picks one by asset address.
The comparison is on (advisory, package, installed_version, fixed_version): a report's
findings carry no source name. Exit status 0 when they are equal, 1 otherwise.
"""

import argparse
import json
import os
import sys

KEYS = ("advisory", "package", "installed_version", "fixed_version")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("report")
    ap.add_argument("--host", help="only findings whose asset address is ADDRESS")
    args = ap.parse_args()

    with open(os.path.join(args.outdir, "expected.json"), encoding="utf-8") as f:
        expected = json.load(f)
    with open(os.path.join(args.outdir, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    with open(args.report, encoding="utf-8") as f:
        report = json.load(f)

    got = []
    for finding in report.get("findings") or []:
        if not finding.get("advisory"):
            continue
        if args.host and (finding.get("asset") or {}).get("address") != args.host:
            continue
        got.append(tuple(finding.get(k) for k in KEYS))
    want = [tuple(e.get(k) for k in KEYS) for e in expected]

    dup = len(got) - len(set(got))
    missing = sorted(set(want) - set(got), key=str)
    extra = sorted(set(got) - set(want), key=str)

    def show(row):
        case = cases.get(row[0], {})
        return (f"  {row[0]} [{case.get('case', 'not in this corpus')}] {row[1]} {row[2]} "
                f"fixed={row[3]}  ({case.get('why', '')})")

    for title, rows in (("missing (expected, not reported)", missing), ("unexpected (reported, not expected)", extra)):
        if rows:
            print(f"{title}: {len(rows)}")
            for r in rows:
                print(show(r))
    if dup:
        print(f"duplicate findings: {dup}")
    ok = not missing and not extra and not dup
    print(f"{'equal' if ok else 'DIFFERENT'}: {len(got)} reported, {len(want)} expected")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

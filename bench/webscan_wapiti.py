#!/usr/bin/python3
"""Runs Debian's wapiti 3.0.4 with one Python 3.11 fix, for bench/webscan.sh.

Debian 12 ships wapiti 3.0.4 on Python 3.11, where its exclusion patterns (`-x URL`) crash:
`wildcard_translate` puts the `(?ms)` flags at the end of the regular expression, which 3.11
rejects ("global flags not at the start"). Without `-x` wapiti crawls /logout and scans the rest
logged out, which would be an unfair comparison. This wrapper puts the flags first (the same
expression otherwise) and then runs wapiti's own entry point with the given arguments.
"""

import re
import sys

import wapitiCore.net.crawler as crawler
from wapitiCore.main.wapiti import wapiti_main


def wildcard_translate(pattern):
    res = "".join(".*" if c == "*" else re.escape(c) for c in pattern)
    return re.compile(r"(?ms)" + res + r"\Z")


crawler.wildcard_translate = wildcard_translate

if __name__ == "__main__":
    sys.argv[0] = "wapiti"
    sys.exit(wapiti_main())

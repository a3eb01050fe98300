#!/usr/bin/env python3
"""Synthetic OSV corpus in osv.dev's published layout, for benchmarking `picket kb import` and host
matching at full scale without downloading the real feeds.

    bench/gen_osv.py OUTDIR [--records N] [--seed S] [--malformed K] [--host-packages [FILE]] [--jobs J]

Writes OUTDIR/<ECOSYSTEM>/all.zip (one deflated `ID.json` per record, as osv.dev publishes them
under gs://osv-vulnerabilities/<ECOSYSTEM>/all.zip) for Debian, Ubuntu, Alpine, Red Hat,
Rocky Linux, AlmaLinux, PyPI, npm, Go, Maven and crates.io, in proportions like osv.dev's (the
Debian and Ubuntu per-CVE feeds dominate), plus OUTDIR/MANIFEST: the printed figures as JSON
(no `.json` suffix, so that `picket kb import OUTDIR` does not take it for a record).

Why synthetic but shaped: import speed, memory and store size depend on record count, record size
and how well records compress, and matching cost on how many advisories name each package. So
records copy the real feeds' structure (ids, aliases/upstream/related, ecosystem strings with
releases, version styles: dpkg epochs, `~`, `+debNuM`, Ubuntu `ubuntuN`/`+esmN`, apk `-rN`, rpm
`.el9_3` with epochs, SemVer, PEP 440, Maven; `versions` lists, ecosystem_specific and
database_specific blobs, severity vectors, references) and carry free text of realistic length and
entropy (CVE-style descriptions built from a vocabulary with random identifiers, GHSA markdown).
Compressed, the average record is about 1 KB, as in the real zips (osv.dev's Go and crates.io
zips are ~1.15 KB per record).

With --host-packages, a share of the Debian records name the source packages installed on this
machine (`dpkg-query`, or FILE with `source<TAB>source_version` lines) with `Debian:12` entries
placed around the installed versions: most fixed below them, some unfixed, a few fixed above, so
matching a real host does real work and finds some but not most.

--malformed K adds K broken records (cut JSON, wrong types, two-key events, missing or bad ids,
non-objects, invalid UTF-8, empty files) spread over the ecosystems, besides the N valid ones.

Deterministic: the same N, seed, host list and K give byte-identical zips whatever --jobs.
"""

import argparse
import json
import multiprocessing
import os
import random
import re
import struct
import subprocess
import sys
import time
import zlib

# (directory/ecosystem, share of the records). Debian and Ubuntu per-CVE feeds dominate osv.dev.
ECOSYSTEMS = [
    ("Debian", 0.27),
    ("Ubuntu", 0.27),
    ("Alpine", 0.06),
    ("Red Hat", 0.08),
    ("Rocky Linux", 0.03),
    ("AlmaLinux", 0.04),
    ("PyPI", 0.07),
    ("npm", 0.08),
    ("Go", 0.03),
    ("Maven", 0.05),
    ("crates.io", 0.02),
]
CHUNK = 1500

# ---------------------------------------------------------------------------------------------
# Vocabulary

SYL = (
    "ab ac ad al am an ap ar as at au av ba be bi bo bu ca ce ci co cu da de di do du el em en "
    "er es et ex fa fe fi fo fu ga ge gi go gu ha he hi ho id il im in io ir is it ka ke ki ko "
    "la le li lo lu ma me mi mo mu na ne ni no nu ob od ol om on op or os ot ox pa pe pi po pu "
    "ra re ri ro ru sa se si so su ta te ti to tu ul um un ur us va ve vi vo xa xe ya yo za ze zo"
).split()
WORDS = (
    "buffer header parser stream socket session token cache handler request response context "
    "decoder encoder frame packet chunk record entry table index node tree list queue map block "
    "page image font glyph pixel color palette channel sample codec filter module plugin driver "
    "config option value key cert chain signature digest cipher hash nonce salt pad length size "
    "offset count limit bound range path file dir link name label tag attr element document "
    "schema query cookie redirect upload archive member extent inode journal lock mutex thread "
    "worker pool timer event signal loop state machine user group role policy rule filter mask "
    "address port host domain zone resolver record answer lease route tunnel proxy client server"
).split()
VULNS = [
    "buffer overflow", "heap-based buffer overflow", "stack-based buffer overflow", "use-after-free",
    "integer overflow", "NULL pointer dereference", "out-of-bounds read", "out-of-bounds write",
    "double free", "infinite loop", "uncontrolled recursion", "path traversal", "memory leak",
    "cross-site scripting (XSS) vulnerability", "SQL injection", "improper input validation",
    "race condition", "type confusion", "improper certificate validation", "signedness error",
    "server-side request forgery (SSRF)", "prototype pollution", "command injection",
    "regular expression denial of service (ReDoS)", "XML external entity (XXE) issue",
    "deserialization of untrusted data", "off-by-one error", "stack exhaustion",
    "timing side channel", "improper authorization check", "open redirect", "format string bug",
]
ACTORS = [
    "a remote attacker", "remote attackers", "a local attacker", "an unauthenticated remote attacker",
    "a local user", "an authenticated user", "context-dependent attackers", "a malicious server",
    "an attacker who can supply input", "a man-in-the-middle attacker",
]
IMPACTS = [
    "cause a denial of service (application crash)", "execute arbitrary code",
    "obtain sensitive information from process memory", "bypass authentication",
    "gain privileges", "read arbitrary files", "cause a denial of service (memory consumption)",
    "inject arbitrary web script or HTML", "overwrite arbitrary files", "spoof signatures",
    "cause a denial of service (infinite loop)", "bypass intended access restrictions",
    "cause a denial of service (CPU consumption)", "possibly have unspecified other impact",
]
FORMATS = [
    "PNG", "TIFF", "JPEG", "PDF", "ELF", "XML", "JSON", "YAML", "ZIP", "tar", "GIF", "WebP", "SVG",
    "TrueType font", "MP4", "Matroska", "ICC profile", "ASN.1", "DER certificate", "HTTP/2", "DNS",
    "TLS", "SMTP", "LDAP", "Kerberos", "SSH", "QUIC", "RTP", "WAV", "BMP", "OpenType", "CPIO",
]
VECTORS = [
    "a crafted {f} file", "a specially crafted {f} message", "a malformed {f} packet",
    "crafted input", "a long {w} string", "a crafted HTTP header", "a malicious archive",
    "a crafted {f} certificate", "a specially crafted URL", "an invalid {w} {w2}",
    "a large number of {w}s", "nested {f} structures",
]
URGENCY = ["not yet assigned", "low", "medium", "high", "unimportant", "low**", "medium**"]
CWES = [20, 22, 78, 79, 89, 94, 119, 120, 125, 190, 200, 287, 352, 400, 401, 415, 416, 434, 476,
        502, 601, 611, 670, 674, 770, 787, 835, 862, 918, 1321, 1333]
GHSA_CHARS = "23456789cfghjmpqrvwx"


def ident(rng, n=None):
    """A C-style identifier like `xa_parse_header_lumo`: random enough to resist compression like
    real function names do."""
    n = n or rng.randint(2, 4)
    parts = [rng.choice(WORDS) if rng.random() < 0.6 else "".join(rng.choices(SYL, k=rng.randint(1, 3)))
             for _ in range(n)]
    return "_".join(parts)


def name_from(rng, lo=1, hi=3):
    return "".join(rng.choices(SYL, k=rng.randint(lo, hi))) + rng.choice(["", "", "", "x", "d", "s", "n", "lib"])


def cve_sentence(rng, pkg, ver):
    v = rng.choice(VULNS)
    vec = rng.choice(VECTORS).format(f=rng.choice(FORMATS), w=rng.choice(WORDS), w2=rng.choice(WORDS))
    fn = ident(rng)
    src = f"{rng.choice(['src', 'lib', 'libs', 'modules', 'core', 'common'])}/{ident(rng, 2)}.{rng.choice(['c', 'c', 'cc', 'cpp', 'h', 'py', 'js', 'go', 'rs', 'java'])}"
    t = rng.randrange(7)
    if t == 0:
        s = f"{pkg} before {ver} has a {v} in {fn} in {src}, which allows {rng.choice(ACTORS)} to {rng.choice(IMPACTS)} via {vec}."
    elif t == 1:
        s = (f"A {v} was found in {pkg}. The {fn}() function in {src} does not properly validate the "
             f"{rng.choice(WORDS)} {rng.choice(WORDS)} when processing {vec}. This flaw allows "
             f"{rng.choice(ACTORS)} to {rng.choice(IMPACTS)}.")
    elif t == 2:
        s = (f"In {pkg} through {ver}, {fn} in {src} mishandles {rng.choice(WORDS)} {rng.choice(WORDS)}s, "
             f"leading to a {v}.")
    elif t == 3:
        s = (f"An issue was discovered in {pkg} {ver}. There is a {v} in the function {fn} at {src}:"
             f"{rng.randint(20, 4000)}, which can be triggered via {vec}.")
    elif t == 4:
        s = (f"A vulnerability has been found in {pkg} up to {ver} and classified as "
             f"{rng.choice(['problematic', 'critical', 'moderate'])}. Affected by this vulnerability is the "
             f"function {fn} of the file {src}. The manipulation of the argument {ident(rng, 1)} leads to "
             f"{v}. The attack can be launched remotely. The identifier VDB-{rng.randint(100000, 299999)} "
             f"was assigned to this vulnerability.")
    elif t == 5:
        s = (f"{pkg} versions prior to {ver} are vulnerable to a {v}. When {rng.choice(WORDS)} "
             f"{rng.choice(WORDS)} is enabled, {rng.choice(ACTORS)} could {rng.choice(IMPACTS)} by sending "
             f"{vec}. Users are advised to upgrade; there are no known workarounds.")
    else:
        s = (f"Improper handling of {rng.choice(WORDS)} {rng.choice(WORDS)}s in {fn} in {pkg} before {ver} "
             f"may allow {rng.choice(ACTORS)} to {rng.choice(IMPACTS)}.")
    if rng.random() < 0.25:
        s += (f" NOTE: this issue exists because of an incomplete fix for CVE-{rng.randint(2010, 2024)}-"
              f"{rng.randint(1000, 49999)}.")
    if rng.random() < 0.2:
        s += (f" This only affects configurations where {ident(rng, 2)} is {rng.choice(['enabled', 'set', 'non-default', 'disabled'])}"
              f" and the {rng.choice(WORDS)} is {rng.choice(['shared', 'exposed', 'reachable from the network', 'writable'])}.")
    return s


def cve_text(rng, pkg, ver, lo=1, hi=2):
    return " ".join(cve_sentence(rng, pkg, ver) for _ in range(rng.randint(lo, hi)))


def cvss(rng):
    av = rng.choices("NALP", [60, 10, 25, 5])[0]
    return ("CVSS:3.1/AV:%s/AC:%s/PR:%s/UI:%s/S:%s/C:%s/I:%s/A:%s" % (
        av, rng.choice("LLLH"), rng.choice("NNLH"), rng.choice("NNR"), rng.choice("UUUC"),
        rng.choice("NLH"), rng.choice("NLH"), rng.choice("NLHH")))


def severity_label(vector):
    highs = vector.count(":H")
    net = "/AV:N" in vector and "/PR:N" in vector
    if highs >= 3 and net:
        return "CRITICAL"
    if highs >= 2:
        return "HIGH"
    if highs == 1 or net:
        return "MODERATE"
    return "LOW"


def stamp(rng, year=None, frac=False):
    year = year or rng.randint(2005, 2025)
    s = "%04d-%02d-%02dT%02d:%02d:%02d" % (year, rng.randint(1, 12), rng.randint(1, 28),
                                          rng.randrange(24), rng.randrange(60), rng.randrange(60))
    return s + (".%06dZ" % rng.randrange(1000000) if frac else "Z")


def later(rng, ts):
    y = int(ts[:4])
    return stamp(rng, min(2025, y + rng.randint(0, 3)), frac=True) if rng.random() < 0.7 else ts


def ghsa(n):
    x = (n * 2654435761 + 0x5DEECE66D) % (20 ** 12)
    out = []
    for _ in range(12):
        x, d = divmod(x, 20)
        out.append(GHSA_CHARS[d])
    s = "".join(out)
    return f"GHSA-{s[0:4]}-{s[4:8]}-{s[8:12]}"


# ---------------------------------------------------------------------------------------------
# Versions

DIGITS = re.compile(r"\d+")


def bump(v, delta, which=-1):
    runs = list(DIGITS.finditer(v))
    if not runs:
        return v + "+1"
    m = runs[which]
    n = int(m.group()) + delta
    if n < 0:
        return None
    return v[: m.start()] + str(n) + v[m.end() :]


DEBVER = re.compile(r"^(?:(\d+):)?(.+?)(?:-([^-]+))?$")
STABLE_UPDATE = re.compile(r"^(.*?)([+~])deb(\d+)u(\d+)$")


def lower(v):
    """A version dpkg orders below v, the way earlier Debian versions look: the previous stable
    update (`+deb12u3` -> `+deb12u2` -> none), else the previous Debian revision, else the upstream
    version's last non-zero number minus one. Kept in bench/gen_osv.py and
    kb/testdata/host-corpus/gen.py alike (the latter checks it with dpkg)."""
    m = DEBVER.match(v)
    if not m:
        return v + "~~"
    epoch, up, rev = m.groups()
    pre = f"{epoch}:" if epoch else ""
    if rev:
        su = STABLE_UPDATE.match(rev)
        if su:
            base, sep, rel, n = su.groups()
            if int(n) > 1:
                return f"{pre}{up}-{base}{sep}deb{rel}u{int(n) - 1}"
            if sep == "+":
                return f"{pre}{up}-{base}"
            rev = base  # `X-R~deb12u1` sorts below `X-R`: go below `X-R` itself
        lead = re.match(r"^(\d+)$", rev)
        if lead and int(lead.group(1)) > 1:
            return f"{pre}{up}-{int(lead.group(1)) - 1}"
        nmu = re.match(r"^(\d+)\.\d+$", rev)
        if nmu:
            return f"{pre}{up}-{nmu.group(1)}"  # before the non-maintainer upload
    runs = [r for r in DIGITS.finditer(up) if int(r.group()) > 0]
    if not runs:
        return v + "~~"
    r = runs[-1]
    up = up[: r.start()] + str(int(r.group()) - 1) + up[r.end() :]
    return f"{pre}{up}-1" if rev else f"{pre}{up}"


def upstream(rng):
    t = rng.random()
    if t < 0.55:
        u = f"{rng.randint(0, 12)}.{rng.randint(0, 40)}.{rng.randint(0, 30)}"
    elif t < 0.8:
        u = f"{rng.randint(0, 9)}.{rng.randint(0, 99)}"
    elif t < 0.9:
        u = f"{rng.randint(2009, 2024)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    else:
        u = f"{rng.randint(1, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}.{rng.randint(0, 99)}"
    r = rng.random()
    if r < 0.12:
        u += "+dfsg"
    elif r < 0.16:
        u += f"+dfsg{rng.randint(1, 3)}"
    elif r < 0.19:
        u += "+ds"
    elif r < 0.22:
        u += f"~rc{rng.randint(1, 4)}"
    return u


DEB_REL = {"10": "buster", "11": "bullseye", "12": "bookworm", "13": "trixie"}


def deb_history(rng, base_u, epoch, release, steps):
    """A package's versions in a Debian release, ascending: the release version, then its
    security updates (`+debNuM`, sometimes `~debNuM`); unstable-style revisions for 13."""
    rev = rng.randint(1, 6)
    sep = "~" if rng.random() < 0.3 else "+"
    out = []
    for step in range(steps):
        if release == "13":
            v = f"{base_u}-{rev + step}"
        elif step == 0:
            v = f"{base_u}-{rev}"
        elif sep == "+":
            v = f"{base_u}-{rev}+deb{release}u{step}"
        else:
            # A newer Debian revision rebuilt for stable: sorts above the release version.
            v = f"{base_u}-{rev + step}~deb{release}u1"
        out.append((f"{epoch}:" if epoch else "") + v)
    return out


# ---------------------------------------------------------------------------------------------
# Package pools (deterministic per seed)


class Pools:
    def __init__(self, seed, host):
        rng = random.Random(f"{seed}/pools")
        self.host = host  # [(source, version)]
        self.deb = sorted({self._debname(rng) for _ in range(7000)})
        rng.shuffle(self.deb)
        self.apk = sorted({name_from(rng, 1, 3) for _ in range(2500)})
        rng.shuffle(self.apk)
        self.rpm = sorted({name_from(rng, 1, 3) for _ in range(3000)})
        rng.shuffle(self.rpm)
        self.pypi = sorted({self._langname(rng, "-_") for _ in range(5000)})
        rng.shuffle(self.pypi)
        self.npm = sorted({(f"@{name_from(rng, 1, 2)}/" if rng.random() < 0.25 else "") + self._langname(rng, "-.")
                           for _ in range(8000)})
        rng.shuffle(self.npm)
        self.go = sorted({f"github.com/{name_from(rng, 1, 3)}/{self._langname(rng, '-')}" +
                          (f"/v{rng.randint(2, 5)}" if rng.random() < 0.2 else "") for _ in range(2500)})
        rng.shuffle(self.go)
        self.maven = sorted({f"{rng.choice(['org', 'com', 'io', 'net'])}.{name_from(rng, 1, 2)}.{name_from(rng, 1, 2)}:"
                             f"{self._langname(rng, '-')}" for _ in range(3000)})
        rng.shuffle(self.maven)
        self.crates = sorted({self._langname(rng, "-_") for _ in range(1500)})
        rng.shuffle(self.crates)

    @staticmethod
    def _debname(rng):
        n = name_from(rng, 1, 3)
        r = rng.random()
        if r < 0.25:
            n = "lib" + n
        elif r < 0.3:
            n = f"{n}{rng.randint(1, 5)}"
        elif r < 0.35:
            n = f"python-{n}"
        elif r < 0.38:
            n = f"golang-github-{n}-{name_from(rng, 1, 2)}"
        elif r < 0.41:
            n = f"node-{n}"
        elif r < 0.43:
            n = f"ruby-{n}"
        elif r < 0.45:
            n = f"lib{n}-perl"
        return n

    @staticmethod
    def _langname(rng, seps):
        parts = [name_from(rng, 1, 3) for _ in range(rng.choice([1, 1, 2, 2, 3]))]
        return rng.choice(seps).join(parts)


def popular(rng, pool):
    """Skewed choice: a few packages have many advisories, most have few."""
    return pool[int(len(pool) * (rng.random() ** 2.2))]


def pkg_rng(seed, name, salt=""):
    return random.Random(f"{seed}/pkg/{name}/{salt}")


# ---------------------------------------------------------------------------------------------
# Record generators: each gets (rng, k, ctx) and returns a dict. Ids are unique by construction.


def debian(rng, k, ctx):
    seed, pools = ctx["seed"], ctx["pools"]
    host_hit = pools.host and rng.random() < ctx["host_share"]
    if host_hit:
        name, installed = pools.host[int(len(pools.host) * rng.random())]
    else:
        name, installed = popular(rng, pools.deb), None
    prng = pkg_rng(seed, name)
    base = {r: upstream(prng) for r in ("10", "11", "12", "13")}
    epoch = prng.choice([0] * 11 + [1, 1, 2])
    kind = rng.random()
    year = 2005 + k % 21
    num = 1000 + (k // 21) * 3 + rng.randrange(3)
    cve = f"CVE-{year}-{num}"
    releases = [r for r in ("10", "11", "12", "13") if rng.random() < (0.45 if r == "10" else 0.85)] or ["12"]
    if host_hit and "12" not in releases and rng.random() < 0.9:
        releases.append("12")
        releases.sort()
    if kind < 0.84:
        rid = f"DEBIAN-CVE-{year}-{num}"
        rec = {"id": rid, "modified": None, "published": None, "upstream": [cve], "details": cve_text(rng, name, base["12"])}
    else:
        dsa = kind < 0.93
        n = k // 8 + (1000 if dsa else 100)
        rid = f"{'DSA' if dsa else 'DLA'}-{n}-{k % 8 + 1}"
        cves = [f"CVE-{year}-{num + i * 17}" for i in range(rng.randint(1, 9))]
        body = "\n\n".join(f"{c}\n\n    " + cve_text(rng, name, base["12"], 1, 1) for c in cves)
        rec = {"id": rid, "summary": f"{name} - security update",
               "details": f"\nSeveral vulnerabilities were discovered in {name}, which may result in "
                          f"{rng.choice(IMPACTS).replace('cause ', '')}.\n\n{body}\n",
               "modified": None, "published": None, "upstream": cves}
        if not dsa:
            releases = [rng.choice(["10", "11"])]
    pub = stamp(rng, year)
    rec["published"], rec["modified"] = pub, later(rng, pub)
    affected = []
    for r in releases:
        vrng = pkg_rng(seed, name, r)
        steps = vrng.randint(2, 6)
        hist = deb_history(vrng, base[r], epoch, r, steps)
        events, versions = [{"introduced": "0"}], []
        if host_hit and r == "12":
            # Placed around the installed version: mostly fixed below it, some unfixed, a few
            # fixed above. `versions` lists what lies below the fix, as osv.dev's do.
            roll = rng.random()
            if roll < 0.72:
                fix = installed
                for _ in range(rng.randint(1, 3)):
                    fix = lower(fix)
                events.append({"fixed": fix})
                versions = [lower(fix)]
            elif roll < 0.94:
                versions = [lower(installed), installed]  # unfixed: the installed version is affected
            else:
                events.append({"fixed": bump(installed, 1)})
                versions = [lower(installed), installed]
        else:
            fixed_at = rng.randint(1, steps)
            if fixed_at < steps and rng.random() < 0.85:
                events.append({"fixed": hist[fixed_at]})
                versions = hist[:fixed_at]
            else:
                versions = hist
        e = {"package": {"name": name, "ecosystem": f"Debian:{r}", "purl": f"pkg:deb/debian/{name}?arch=source"},
             "ranges": [{"type": "ECOSYSTEM", "events": events}]}
        if versions:
            e["versions"] = versions
        if rid.startswith("DEBIAN-CVE"):
            e["ecosystem_specific"] = {"urgency": rng.choice(URGENCY)}
        e["database_specific"] = {"source": f"https://storage.googleapis.com/debian-osv/"
                                            f"{'dsa-osv' if not rid.startswith('DEBIAN') else 'debian-cve-osv'}/{rid}.json"}
        affected.append(e)
    rec["affected"] = affected
    if not rid.startswith("DEBIAN-CVE"):
        rec["references"] = [{"type": "ADVISORY", "url": f"https://www.debian.org/security/{year}/{rid.lower()}"}]
    else:
        rec["references"] = None if rng.random() < 0.3 else [
            {"type": "ADVISORY", "url": f"https://security-tracker.debian.org/tracker/{cve}"}]
    rec["schema_version"] = "1.6.0"
    return rec


UBUNTU = [("Ubuntu:22.04:LTS", "jammy", "22.04"), ("Ubuntu:24.04:LTS", "noble", "24.04"),
          ("Ubuntu:20.04:LTS", "focal", "20.04"), ("Ubuntu:Pro:18.04:LTS", "bionic", "18.04"),
          ("Ubuntu:Pro:16.04:LTS", "xenial", "16.04")]


def ubuntu(rng, k, ctx):
    seed, pools = ctx["seed"], ctx["pools"]
    if pools.host and rng.random() < 0.1:
        name = pools.host[int(len(pools.host) * rng.random())][0]
    else:
        name = popular(rng, pools.deb)
    prng = pkg_rng(seed, name, "ubuntu")
    year = 2005 + k % 21
    num = 1000 + (k // 21) * 3 + rng.randrange(3)
    cve = f"CVE-{year}-{num}"
    rid = f"UBUNTU-{cve}"
    prio = rng.choice(["negligible", "low", "low", "medium", "medium", "high", "critical"])
    pub = stamp(rng, year, frac=True)
    rec = {"id": rid, "details": cve_text(rng, name, upstream(prng)), "aliases": [], "related": [cve],
           "upstream": [cve], "published": pub, "modified": later(rng, pub)}
    bins = [name] + [f"{name}-{s}" for s in prng.sample(["dev", "doc", "utils", "common", "bin", "data", "tests"], prng.randint(0, 4))]
    if not name.startswith("lib") and prng.random() < 0.5:
        bins.append(f"lib{name}{prng.randint(0, 6)}")
    affected = []
    for eco, codename, num_rel in [u for u in UBUNTU if rng.random() < 0.6] or [UBUNTU[0]]:
        vrng = pkg_rng(seed, name, eco)
        u = upstream(vrng)
        rev = vrng.randint(1, 4)
        revs = [f"{u}-{rev}ubuntu{i}" if i < 2 else f"{u}-{rev}ubuntu1.{num_rel}.{i - 1}"
                for i in range(vrng.randint(2, 8))]
        if "Pro" in eco:
            revs = [r + f"+esm{i}" for i, r in enumerate(revs, 1)]
        events = [{"introduced": "0"}]
        fixed = None
        if rng.random() < 0.75:
            fixed = revs[-1]
            events.append({"fixed": fixed})
            listed = revs[:-1]
        else:
            listed = revs
        e = {"package": {"ecosystem": eco, "name": name,
                         "purl": f"pkg:deb/ubuntu/{name}@{fixed or revs[-1]}?arch=source&distro={'esm-infra/' if 'Pro' in eco else ''}{codename}"},
             "ranges": [{"type": "ECOSYSTEM", "events": events}],
             "versions": listed,
             "ecosystem_specific": {"binaries": [{"binary_name": b, "binary_version": fixed or revs[-1]} for b in bins],
                                    "availability": "Available with Ubuntu Pro" if "Pro" in eco else "No subscription required"}}
        affected.append(e)
    rec["affected"] = affected
    rec["references"] = [{"type": "REPORT", "url": f"https://ubuntu.com/security/{cve}"},
                         {"type": "REPORT", "url": f"https://www.cve.org/CVERecord?id={cve}"}]
    for _ in range(rng.randint(0, 4)):
        rec["references"].append({"type": rng.choice(["REPORT", "WEB", "FIX", "ADVISORY"]),
                                  "url": f"https://{rng.choice(['github.com', 'bugs.launchpad.net', 'gitlab.com', 'lists.debian.org', 'www.openwall.com'])}/"
                                         f"{name}/{ident(rng, 2).replace('_', '/')}/{rng.randint(1, 99999)}"})
    sev = [{"type": "Ubuntu", "score": prio}]
    if rng.random() < 0.8:
        sev.append({"type": "CVSS_V3", "score": cvss(rng)})
    rec["severity"] = sev
    rec["schema_version"] = "1.6.3"
    return rec


def alpine(rng, k, ctx):
    seed, pools = ctx["seed"], ctx["pools"]
    name = popular(rng, pools.apk)
    year = 2005 + k % 21
    num = 1000 + (k // 21) * 3 + rng.randrange(3)
    cve = f"CVE-{year}-{num}"
    pub = stamp(rng, year, frac=True)
    rec = {"id": f"ALPINE-{cve}", "modified": later(rng, pub), "published": pub, "upstream": [cve],
           "details": cve_text(rng, name, upstream(rng), 1, 1), "affected": []}
    for rel in [r for r in ("v3.18", "v3.19", "v3.20", "v3.21") if rng.random() < 0.6] or ["v3.20"]:
        vrng = pkg_rng(seed, name, rel)
        fix = f"{upstream(vrng).split('+')[0].split('~')[0]}-r{vrng.randint(0, 8)}"
        rec["affected"].append({
            "package": {"ecosystem": f"Alpine:{rel}", "name": name, "purl": f"pkg:apk/alpine/{name}?arch=source"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fix}]}],
            "database_specific": {"source": f"https://secdb.alpinelinux.org/{rel}/{rng.choice(['main', 'community'])}.json"}})
    rec["schema_version"] = "1.6.0"
    return rec


def rpm_pkg(rng, pools, seed):
    name = popular(rng, pools.rpm)
    prng = pkg_rng(seed, name, "rpm")
    epoch = prng.choice([0] * 8 + [1, 1, 2, 32])
    bins = [name] + [f"{name}-{s}" for s in prng.sample(["libs", "devel", "tools", "common", "doc", "perl", "static", "utils"], prng.randint(1, 5))]
    return name, epoch, bins, prng


def rpm_version(rng, el, epoch_style):
    u = f"{rng.randint(0, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 20)}"
    rel = f"{rng.randint(1, 40)}.el{el}" + (f"_{rng.randint(0, 5)}" if rng.random() < 0.5 else "")
    if rng.random() < 0.2:
        rel += f".{rng.randint(1, 4)}"
    return (f"{epoch_style}:" if epoch_style is not None else "") + f"{u}-{rel}"


def rhel_like(rng, k, ctx, prefix, eco_fn, summary_fn):
    seed, pools = ctx["seed"], ctx["pools"]
    name, epoch, bins, prng = rpm_pkg(rng, pools, seed)
    year = 2019 + k % 7
    rid = f"{prefix}-{year}:{1000 + k // 7}"
    sev = rng.choice(["Low", "Moderate", "Moderate", "Important", "Critical"])
    cves = [f"CVE-{year - rng.randint(0, 1)}-{rng.randint(1000, 52000)}" for _ in range(rng.randint(1, 6))]
    el = rng.choice([8, 9, 9, 9])
    ver = rpm_version(prng, el, None)
    pub = stamp(rng, year)
    details = (f"An update is available for {name}.\nThis update affects {eco_fn(el, None).split(':')[0]} {el}.\n"
               f"Security Fix(es):\n\n" + "\n\n".join(f"* {name}: {cve_text(rng, name, ver, 1, 1)} ({c})" for c in cves)
               + "\n\nFor more details about the security issue(s), including the impact, a CVSS score, "
                 "acknowledgments, and other related information, refer to the CVE page(s) listed in the References section.")
    rec = {"schema_version": "1.6.0", "id": rid, "summary": summary_fn(sev, name), "details": details,
           "aliases": [], "related": cves, "published": pub, "modified": later(rng, pub), "affected": []}
    for b in bins:
        ep = epoch if epoch else (0 if prefix == "RHSA" else None)
        fixed = (f"{ep}:" if ep is not None else "") + ver
        e = {"package": {"ecosystem": eco_fn(el, b), "name": b}}
        if prefix == "RHSA":
            e["package"]["purl"] = f"pkg:rpm/redhat/{b}@{ver}?arch={rng.choice(['x86_64', 'aarch64', 'noarch', 'src'])}"
        e["ranges"] = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]
        rec["affected"].append(e)
    rec["references"] = ([{"type": "ADVISORY", "url": ctx["advisory_url"](rid, year)}] +
                         [{"type": "REPORT", "url": f"https://bugzilla.redhat.com/{rng.randint(1000000, 2400000)}"} for _ in cves] +
                         [{"type": "ADVISORY", "url": f"https://access.redhat.com/security/cve/{c}"} for c in cves])
    if prefix == "RHSA":
        rec["severity"] = [{"type": "CVSS_V3", "score": cvss(rng)}]
        rec["upstream"] = cves
    else:
        rec["severity"] = []
    return rec


def redhat(rng, k, ctx):
    streams = ["baseos", "appstream", "appstream", "crb"]
    stream = rng.choice(streams)
    ctx = dict(ctx, advisory_url=lambda rid, y: f"https://access.redhat.com/errata/{rid}")
    return rhel_like(rng, k, ctx, "RHSA", lambda el, b: f"Red Hat:enterprise_linux:{el}::{stream}",
                     lambda sev, n: f"Red Hat Security Advisory: {n} security update")


def rocky(rng, k, ctx):
    ctx = dict(ctx, advisory_url=lambda rid, y: f"https://errata.rockylinux.org/{rid}")
    return rhel_like(rng, k, ctx, "RLSA", lambda el, b: f"Rocky Linux:{el}", lambda sev, n: f"{sev}: {n} security update")


def alma(rng, k, ctx):
    ctx = dict(ctx, advisory_url=lambda rid, y: f"https://errata.almalinux.org/{rid.split('-')[1][-1]}/{rid.replace(':', '-')}.html")
    return rhel_like(rng, k, ctx, "ALSA", lambda el, b: f"AlmaLinux:{el}", lambda sev, n: f"{sev}: {n} security update")


def semver_history(prng, n):
    major = prng.randint(0, 6)
    minor = prng.randint(0, 12)
    out = []
    patch = 0
    for _ in range(n):
        r = prng.random()
        if r < 0.7:
            patch += 1
        elif r < 0.95:
            minor, patch = minor + 1, 0
        else:
            major, minor, patch = major + 1, 0, 0
        out.append(f"{major}.{minor}.{patch}")
    if prng.random() < 0.2:
        i = prng.randrange(len(out))
        out.insert(i, out[i] + prng.choice(["-rc.1", "-beta.2", "-alpha.1"]))
    return out


def pep440ize(v):
    return re.sub(r"-(rc|beta|alpha)\.(\d+)", lambda m: {"rc": "rc", "beta": "b", "alpha": "a"}[m.group(1)] + m.group(2), v)


def mavenize(v):
    return v.replace("-rc.", "-RC").replace("-beta.", "-beta-").replace("-alpha.", "-alpha-")


def ghsa_details(rng, name, fix):
    impact = cve_text(rng, name, fix or "the latest version", 1, 3)
    parts = [f"### Impact\n{impact}"]
    if fix:
        parts.append(f"### Patches\nThe problem has been patched in version {fix}. Users should upgrade "
                     f"to {fix} or later.")
    if rng.random() < 0.6:
        parts.append(f"### Workarounds\n{rng.choice(['Disable', 'Avoid passing untrusted input to', 'Restrict access to'])} "
                     f"`{ident(rng, 2)}` {rng.choice(['until you can upgrade.', 'in the configuration.', 'at the proxy.'])}")
    if rng.random() < 0.7:
        parts.append("### References\n" + "\n".join(
            f"- https://github.com/{name.split('/')[-1]}/{name.split('/')[-1]}/{rng.choice(['pull', 'issues', 'commit'])}/{rng.randint(1, 9999)}"
            for _ in range(rng.randint(1, 3))))
    if rng.random() < 0.3:
        parts.append("### Credits\nThis issue was found by " + "".join(rng.choices(SYL, k=3)).title() + " using fuzzing.")
    return "\n\n".join(parts)


LANG = {
    # eco: (pool attr, range type, versions list?, purl type, id prefixes)
    "PyPI": ("pypi", "ECOSYSTEM", True, "pypi"),
    "npm": ("npm", "SEMVER", False, "npm"),
    "Go": ("go", "SEMVER", False, "golang"),
    "Maven": ("maven", "ECOSYSTEM", True, "maven"),
    "crates.io": ("crates", "SEMVER", True, "cargo"),
}
ECO_INDEX = {e: i for i, (e, _) in enumerate(ECOSYSTEMS)}


def lang(eco):
    pool_attr, rtype, with_versions, purl_type = LANG[eco]

    def gen(rng, k, ctx):
        seed, pools = ctx["seed"], ctx["pools"]
        name = popular(rng, getattr(pools, pool_attr))
        prng = pkg_rng(seed, name, eco)
        hist = semver_history(prng, prng.randint(4, 60))
        if eco == "PyPI":
            hist = [pep440ize(v) for v in hist]
        elif eco == "Maven":
            hist = [mavenize(v) for v in hist]
        year = 2017 + k % 9
        cve = f"CVE-{year}-{rng.randint(1000, 52000)}" if rng.random() < 0.8 else None
        gid = ghsa(ECO_INDEX[eco] * 10_000_000 + k)
        r = rng.random()
        if eco == "Go":
            rid = f"GO-{year}-{1000 + k // 9}"
        elif eco == "PyPI" and r < 0.3:
            rid = f"PYSEC-{year}-{100 + k // 9}"
        elif eco == "crates.io" and r < 0.5:
            rid = f"RUSTSEC-{year}-{k // 9 + 1:04d}"
        else:
            rid = gid
        aliases = ([gid] if rid != gid else []) + ([cve] if cve else [])
        pub = stamp(rng, year)
        vector = cvss(rng)
        # One or two vulnerable branches.
        affected = []
        branches = 1 if rng.random() < 0.75 else 2
        cut = sorted(rng.sample(range(1, len(hist)), min(branches, len(hist) - 1))) if len(hist) > 1 else [1]
        start = 0
        fixes = []
        for c in cut:
            intro = "0" if start == 0 else hist[start]
            fix = hist[c] if c < len(hist) and rng.random() < 0.9 else None
            events = [{"introduced": intro}]
            if fix:
                events.append({"fixed": fix})
                fixes.append(fix)
            elif rng.random() < 0.5:
                events.append({"last_affected": hist[c - 1]})
            e = {"package": {"ecosystem": eco, "name": name, "purl": f"pkg:{purl_type}/{name.replace(':', '/')}"},
                 "ranges": [{"type": rtype, "events": events}]}
            if with_versions:
                e["versions"] = hist[start:c]
            if eco == "Go":
                e["ecosystem_specific"] = {"imports": [{"path": f"{name}/{ident(rng, 1)}",
                                                        "symbols": [ident(rng, 2).title().replace("_", "") for _ in range(rng.randint(1, 5))]}]}
                e["database_specific"] = {"url": f"https://pkg.go.dev/vuln/{rid}", "review_status": "REVIEWED"}
            else:
                e["database_specific"] = {"source": f"https://github.com/github/advisory-database/blob/main/advisories/"
                                                    f"github-reviewed/{year}/{rng.randint(1, 12):02d}/{gid}/{gid}.json"}
            affected.append(e)
            start = c
        rec = {"schema_version": "1.4.0", "id": rid, "modified": later(rng, pub), "published": pub,
               "aliases": aliases,
               "summary": f"{name.split('/')[-1]} {rng.choice(VULNS)} in {ident(rng, 2)}",
               "details": ghsa_details(rng, name, fixes[-1] if fixes else None),
               "severity": [{"type": "CVSS_V3", "score": vector}],
               "affected": affected,
               "references": ([{"type": "ADVISORY", "url": f"https://nvd.nist.gov/vuln/detail/{cve}"}] if cve else []) +
                             [{"type": "WEB", "url": f"https://github.com/{name.split('/')[-1]}/{name.split('/')[-1]}/security/advisories/{gid}"},
                              {"type": "PACKAGE", "url": f"https://github.com/{name.split('/')[-1]}/{name.split('/')[-1]}"}] +
                             [{"type": "FIX", "url": f"https://github.com/{name.split('/')[-1]}/{name.split('/')[-1]}/commit/"
                                                     f"{rng.getrandbits(160):040x}"} for _ in range(rng.randint(0, 3))],
               "database_specific": {"cwe_ids": [f"CWE-{c}" for c in rng.sample(CWES, rng.randint(0, 2))],
                                     "github_reviewed": True, "github_reviewed_at": later(rng, pub),
                                     "nvd_published_at": pub if cve else None, "severity": severity_label(vector)}}
        if rng.random() < 0.005:
            rec["withdrawn"] = later(rng, pub)
        return rec

    return gen


GENERATORS = {
    "Debian": debian, "Ubuntu": ubuntu, "Alpine": alpine, "Red Hat": redhat, "Rocky Linux": rocky,
    "AlmaLinux": alma, "PyPI": lang("PyPI"), "npm": lang("npm"), "Go": lang("Go"),
    "Maven": lang("Maven"), "crates.io": lang("crates.io"),
}

# ---------------------------------------------------------------------------------------------
# Malformed records


def malformed(rec, i):
    """Bytes of a broken variant of rec (kind i % 9) and its file id."""
    rid = rec["id"] + f"-BROKEN{i}"
    rec = dict(rec, id=rid)
    kind = i % 9
    if kind == 0:
        b = json.dumps(rec, indent=2).encode()
        return rid, b[: len(b) // 2]
    if kind == 1:
        return rid, json.dumps(dict(rec, affected="not a list"), indent=2).encode()
    if kind == 2:
        bad = dict(rec)
        bad["affected"] = [dict(rec["affected"][0], ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1.0"}]}])]
        return rid, json.dumps(bad, indent=2).encode()
    if kind == 3:
        bad = {k: v for k, v in rec.items() if k != "id"}
        return rid, json.dumps(bad, indent=2).encode()
    if kind == 4:
        return rid, json.dumps(dict(rec, id=f"BAD ID {i}"), indent=2).encode()
    if kind == 5:
        return rid, json.dumps([rec], indent=2).encode()
    if kind == 6:
        return rid, json.dumps(rec, indent=2).encode().replace(b'"details": "', b'"details": "\xff\xfe', 1)
    if kind == 7:
        return rid, b""
    bad = {k: v for k, v in rec.items() if k != "modified"}
    return rid, json.dumps(bad, indent=2).encode()


# ---------------------------------------------------------------------------------------------
# Workers and the zip writer


def dos_datetime(ts):
    y, mo, d, h, mi, s = int(ts[0:4]), int(ts[5:7]), int(ts[8:10]), int(ts[11:13]), int(ts[14:16]), int(ts[17:19])
    return ((h << 11) | (mi << 5) | (s // 2)), (((y - 1980) << 9) | (mo << 5) | d)


def entry_bytes(name, data, ts):
    """(local header + deflated data, central-directory fields) of one zip member."""
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    c = comp.compress(data) + comp.flush()
    crc = zlib.crc32(data) & 0xFFFFFFFF
    t, d = dos_datetime(ts)
    fname = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x800, 8, t, d, crc, len(c), len(data), len(fname), 0) + fname
    return local + c, (fname, t, d, crc, len(c), len(data))


CTX = {}


def init_worker(seed, host, host_share):
    CTX["seed"] = seed
    CTX["pools"] = Pools(seed, host)
    CTX["host_share"] = host_share


def run_chunk(task):
    eco, start, count, n_bad, bad_base = task
    gen = GENERATORS[eco]
    out = []
    meta = []
    raw = 0
    for k in range(start, start + count):
        rng = random.Random(f"{CTX['seed']}/{eco}/{k}")
        rec = gen(rng, k, CTX)
        # One line, as the C encoder writes it: indent= would switch json to its pure-Python
        # encoder and double the generation time; whitespace changes little once deflated.
        data = json.dumps(rec).encode()
        raw += len(data)
        blob, m = entry_bytes(rec["id"] + ".json", data, rec["modified"])
        out.append(blob)
        meta.append(m)
    for j in range(n_bad):
        k = 10_000_000 + bad_base + j
        rng = random.Random(f"{CTX['seed']}/{eco}/bad/{k}")
        rec = gen(rng, k, CTX)
        rid, data = malformed(rec, bad_base + j)
        raw += len(data)
        blob, m = entry_bytes(rid + ".json", data, rec["modified"])
        out.append(blob)
        meta.append(m)
    return eco, b"".join(out), meta, raw


class ZipOut:
    """A minimal zip writer for members deflated elsewhere; zip64 end records when there are more
    than 65,535 members (as Python's zipfile writes them). Offsets must stay under 4 GiB."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.central = []
        self.offset = 0

    def add(self, blob, metas):
        off = self.offset
        for fname, t, d, crc, csize, usize in metas:
            self.central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, 0x800, 8, t, d, crc,
                                            csize, usize, len(fname), 0, 0, 0, 0, 0o100644 << 16, off) + fname)
            off += 30 + len(fname) + csize
        self.f.write(blob)
        self.offset += len(blob)
        if self.offset >= 0xFFFFFFFF:
            sys.exit("gen_osv: a zip passed 4 GiB; use fewer records")

    def close(self):
        cd = b"".join(self.central)
        cd_off, n = self.offset, len(self.central)
        self.f.write(cd)
        end = cd_off + len(cd)
        if n > 0xFFFF:
            self.f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(cd), cd_off))
            self.f.write(struct.pack("<IIQI", 0x07064B50, 0, end, 1))
            n16 = 0xFFFF
        else:
            n16 = n
        self.f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n16, n16, len(cd), cd_off, 0))
        self.f.close()


def host_packages(arg):
    if arg == "-":
        out = subprocess.run(["dpkg-query", "-W", "-f", "${source:Package}\t${source:Version}\t${db:Status-Abbrev}\n"],
                             capture_output=True, text=True, check=True).stdout
    else:
        with open(arg, encoding="utf-8") as f:
            out = f.read()
    pkgs = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            continue
        if len(parts) >= 3 and parts[2].strip() and not parts[2].startswith("ii"):
            continue
        if parts[0] == "linux" or parts[0].startswith("linux-signed"):
            continue
        pkgs[parts[0]] = parts[1]
    return sorted(pkgs.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--malformed", type=int, default=0)
    ap.add_argument("--host-packages", nargs="?", const="-", default=None, metavar="FILE",
                    help="name this machine's installed source packages (dpkg-query, or FILE of source<TAB>version lines)")
    ap.add_argument("--host-share", type=float, default=0.15,
                    help="share of the Debian records that name host packages (default 0.15)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = ap.parse_args()
    if args.records < 0 or args.malformed < 0:
        sys.exit("gen_osv: counts must be non-negative")

    t0 = time.monotonic()
    host = host_packages(args.host_packages) if args.host_packages else []
    counts = {eco: int(args.records * share) for eco, share in ECOSYSTEMS}
    rest = args.records - sum(counts.values())
    for eco in ("Debian", "Ubuntu") * (rest // 2 + 1):
        if rest <= 0:
            break
        counts[eco] += 1
        rest -= 1
    bad = {eco: 0 for eco, _ in ECOSYSTEMS}
    for i in range(args.malformed):
        bad[ECOSYSTEMS[i % len(ECOSYSTEMS)][0]] += 1

    tasks = []
    bad_base = 0
    for eco, _ in ECOSYSTEMS:
        n = counts[eco]
        starts = list(range(0, n, CHUNK)) or [0]
        for i, s in enumerate(starts):
            nb = bad[eco] if i == len(starts) - 1 else 0
            tasks.append((eco, s, min(CHUNK, n - s), nb, bad_base))
            bad_base += nb

    os.makedirs(args.outdir, exist_ok=True)
    zips, raw, members = {}, {e: 0 for e, _ in ECOSYSTEMS}, {e: 0 for e, _ in ECOSYSTEMS}
    initargs = (args.seed, host, args.host_share)
    if args.jobs > 1:
        pool = multiprocessing.Pool(args.jobs, initializer=init_worker, initargs=initargs)
        results = pool.imap(run_chunk, tasks)
    else:
        pool = None
        init_worker(*initargs)
        results = map(run_chunk, tasks)
    for eco, blob, meta, nraw in results:
        if eco not in zips:
            for other in list(zips):
                zips.pop(other).close()
            d = os.path.join(args.outdir, eco)
            os.makedirs(d, exist_ok=True)
            zips[eco] = ZipOut(os.path.join(d, "all.zip"))
        zips[eco].add(blob, meta)
        raw[eco] += nraw
        members[eco] += len(meta)
    for z in zips.values():
        z.close()
    if pool:
        pool.close()
        pool.join()
    elapsed = time.monotonic() - t0

    rows = []
    for eco, _ in ECOSYSTEMS:
        path = os.path.join(args.outdir, eco, "all.zip")
        rows.append({"ecosystem": eco, "path": path, "records": counts[eco], "malformed": bad[eco],
                     "json_bytes": raw[eco], "zip_bytes": os.path.getsize(path)})
    total = {"records": sum(r["records"] for r in rows), "malformed": sum(r["malformed"] for r in rows),
             "json_bytes": sum(r["json_bytes"] for r in rows), "zip_bytes": sum(r["zip_bytes"] for r in rows)}
    manifest = {"seed": args.seed, "records": args.records, "host_packages": len(host),
                "host_share": args.host_share if host else 0, "generation_s": round(elapsed, 2),
                "ecosystems": rows, "total": total}
    with open(os.path.join(args.outdir, "MANIFEST"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")

    print(f"{'ecosystem':<12} {'records':>8} {'bad':>4} {'json MB':>9} {'zip MB':>8} {'zip B/rec':>9}")
    for r in rows + [dict(total, ecosystem="total")]:
        n = r["records"] + r["malformed"]
        print(f"{r['ecosystem']:<12} {r['records']:>8} {r['malformed']:>4} {r['json_bytes'] / 1e6:>9.1f} "
              f"{r['zip_bytes'] / 1e6:>8.1f} {r['zip_bytes'] / max(n, 1):>9.0f}")
    print(f"compressed input: {total['zip_bytes']} bytes; {len(host)} host source packages; "
          f"generated in {elapsed:.1f} s with {args.jobs} process(es)")


if __name__ == "__main__":
    main()

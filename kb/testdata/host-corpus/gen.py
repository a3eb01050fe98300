#!/usr/bin/env python3
"""Builds the OSV test corpus for the `picket scan host` end-to-end test against a Debian host.

Why: the findings of a host scan can only be checked exactly against advisories whose outcome is
known in advance. This script reads the host's real package list, writes Debian OSV advisories
placed around the *installed* versions (fixed above, at and below them, unfixed, other releases,
binary-vs-source names, epochs, tildes, binNMUs, withdrawn, `versions` lists, several entries and
several intervals per package) and the exact list of findings a correct scanner must report.

    gen.py DPKG_LIST OUTDIR [--release N] [--os-release FILE]

DPKG_LIST is the output of
    dpkg-query -W -f '${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\t${source:Version}\\t${db:Status-Abbrev}\\n'
The release defaults to VERSION_ID of /etc/os-release (ecosystem `Debian:<VERSION_ID>`).

Output:
    OUTDIR/advisories/PICKET-TEST-NNNN.json   one OSV record per file (import this directory)
    OUTDIR/expected.json   sorted [{"advisory", "package", "source", "installed_version", "fixed_version"}]
    OUTDIR/cases.json      {advisory id: {"case", "source"|"name", "why"}} for reading a failure

The expectations are not computed by re-implementing dpkg: every comparison is asked of the real
`dpkg --compare-versions`, and the OSV range rules (schema 1.6) are applied on top of it. The
generator also checks that each case came out as intended (affected or not) and stops otherwise,
so an unusual package list cannot silently weaken the corpus. Same input, same output.
"""

import argparse
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

MODIFIED = "2025-01-02T03:04:05Z"
PUBLISHED = "2025-01-01T00:00:00Z"


# ---------------------------------------------------------------------------------------------
# dpkg comparisons (the real tool, cached)


@functools.lru_cache(maxsize=None)
def dpkg_cmp(a, b):
    """-1, 0, 1 as `dpkg --compare-versions` orders a and b."""
    if a == b:
        return 0
    for op, res in (("lt", -1), ("gt", 1)):
        r = subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False)
        if r.returncode == 0:
            return res
        if r.returncode != 1:
            sys.exit(f"gen.py: dpkg --compare-versions {a!r} {op} {b!r} failed ({r.returncode})")
    return 0


def lt(a, b):
    return dpkg_cmp(a, b) < 0


def le(a, b):
    return dpkg_cmp(a, b) <= 0


# ---------------------------------------------------------------------------------------------
# OSV evaluation (schema 1.6 rules over dpkg ordering)


def event_sort_key():
    def cmp(x, y):
        (kx, vx), (ky, vy) = x, y
        zx, zy = (kx == "introduced" and vx == "0"), (ky == "introduced" and vy == "0")
        if zx or zy:
            return (zy - zx) if zx != zy else 0
        c = dpkg_cmp(vx, vy)
        if c:
            return c
        # At equal versions `introduced` sorts first: `introduced X, fixed X` is empty.
        return (kx != "introduced") - (ky != "introduced")

    return functools.cmp_to_key(cmp)


def eval_range(events, v):
    """(affected, fixed or None) of one ECOSYSTEM range for version v."""
    evs = sorted(((k, val) for e in events for k, val in e.items() if k != "limit"), key=event_sort_key())
    affected = False
    idx = -1
    for i, (k, val) in enumerate(evs):
        if k == "introduced" and (val == "0" or le(val, v)):
            affected, idx = True, i
        elif k == "fixed" and le(val, v):
            affected, idx = False, i
        elif k == "last_affected" and lt(val, v):
            affected, idx = False, i
    if not affected:
        return False, None
    for k, val in evs[idx + 1 :]:
        if k == "fixed":
            return True, val
        if k == "last_affected":
            return True, None
    return True, None


def eval_advisory(adv, ecosystem, source, v):
    """None when not affected, else {"fixed": F or None}, following the model's rules: withdrawn
    records never match; a version listed in `versions` (same string or dpkg-equal) is affected;
    the fix is the highest over the ranges/entries holding the version, none if any lacks one."""
    if adv.get("withdrawn"):
        return None
    result = None
    for entry in adv.get("affected", []):
        pkg = entry.get("package") or {}
        if pkg.get("ecosystem") != ecosystem or pkg.get("name") != source:
            continue
        hit, fixes = False, []
        for listed in entry.get("versions", []):
            if listed == v or dpkg_cmp(listed, v) == 0:
                hit = True
        for r in entry.get("ranges", []):
            if r.get("type") != "ECOSYSTEM":
                continue
            a, f = eval_range(r["events"], v)
            if a:
                hit = True
                fixes.append(f)
        if not hit:
            continue
        fix = None
        if fixes and all(f is not None for f in fixes):
            fix = functools.reduce(lambda x, y: y if lt(x, y) else x, fixes)
        if result is None:
            result = {"fixed": fix}
        elif result["fixed"] is None or fix is None:
            result = {"fixed": None}
        else:
            result = {"fixed": result["fixed"] if not lt(result["fixed"], fix) else fix}
    return result


# ---------------------------------------------------------------------------------------------
# Version construction (checked afterwards with dpkg)

DIGITS = re.compile(r"\d+")


def bump(v, delta, which=-1):
    """v with its `which`-th digit run (from the end: -1 the last) changed by delta, width kept."""
    runs = list(DIGITS.finditer(v))
    if not runs:
        return None
    m = runs[which]
    n = int(m.group()) + delta
    if n < 0:
        return None
    s = str(n).zfill(len(m.group())) if m.group().startswith("0") and len(m.group()) > 1 else str(n)
    return v[: m.start()] + s + v[m.end() :]


def higher(v):
    h = bump(v, 1)
    if h is None or not lt(v, h):
        h = v + "+picket1"
    assert lt(v, h), (v, h)
    return h


DEBVER = re.compile(r"^(?:(\d+):)?(.+?)(?:-([^-]+))?$")
STABLE_UPDATE = re.compile(r"^(.*?)([+~])deb(\d+)u(\d+)$")


def debian_lower(v):
    """The version before v as Debian numbers them: the previous stable update (`+deb12u3` ->
    `+deb12u2` -> none), else the previous revision (or the one before an NMU), else the upstream
    version's last non-zero number minus one. Same as bench/gen_osv.py's."""
    m = DEBVER.match(v)
    if not m:
        return None
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
            return f"{pre}{up}-{nmu.group(1)}"
    runs = [r for r in DIGITS.finditer(up) if int(r.group()) > 0]
    if not runs:
        return None
    r = runs[-1]
    up = up[: r.start()] + str(int(r.group()) - 1) + up[r.end() :]
    return f"{pre}{up}-1" if rev else f"{pre}{up}"


def lower(v):
    cand = debian_lower(v)
    if cand is not None and lt(cand, v):
        return cand
    # Fallback: the last non-zero digit run minus one (checked), else a `~` suffix.
    runs = list(DIGITS.finditer(v))
    for i in range(len(runs) - 1, -1, -1):
        if int(runs[i].group()) > 0:
            cand = bump(v, -1, i)
            if cand is not None and lt(cand, v) and not cand.startswith("0:"):
                return cand
    cand = v + "~~"
    assert lt(cand, v), (v, cand)
    return cand


def strip_epoch(v):
    return v.split(":", 1)[1] if re.match(r"^\d+:", v) else v


# ---------------------------------------------------------------------------------------------
# Input


def read_list(path):
    pkgs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) < 6:
                sys.exit(f"gen.py: {path}:{n}: expected 6 tab-separated fields, got {len(parts)}")
            name, version, arch, source, source_version, status = parts[:6]
            pkgs.append(
                {
                    "package": name,
                    "version": version,
                    "arch": arch,
                    # dpkg fills these for packages that are their own source; be lenient anyway.
                    "source": source or name,
                    "source_version": source_version or version,
                    "status": status.strip(),
                }
            )
    return pkgs


def release_from_os_release(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("VERSION_ID="):
                return line.split("=", 1)[1].strip().strip('"')
    sys.exit(f"gen.py: no VERSION_ID in {path}")


def is_kernel(source, binaries):
    return (
        source == "linux"
        or source.startswith("linux-signed")
        or source.startswith("linux-latest")
        or any(b["package"].startswith("linux-image-") for b in binaries)
    )


def stable_order(names, salt):
    return sorted(names, key=lambda n: hashlib.sha256(f"{salt}/{n}".encode()).hexdigest())


# ---------------------------------------------------------------------------------------------
# Advisories


def purl(name):
    return f"pkg:deb/debian/{name}?arch=source"


def entry(name, ecosystem, events=None, versions=None, urgency="not yet assigned"):
    e = {"package": {"name": name, "ecosystem": ecosystem, "purl": purl(name)}}
    if events is not None:
        e["ranges"] = [{"type": "ECOSYSTEM", "events": events}]
    if versions is not None:
        e["versions"] = versions
    e["ecosystem_specific"] = {"urgency": urgency}
    return e


class Corpus:
    def __init__(self, release):
        self.eco = f"Debian:{release}"
        self.release = int(release) if release.isdigit() else None
        self.advisories = []
        self.cases = {}

    def add(self, case, subject, why, entries, expect_affected, withdrawn=False):
        n = len(self.advisories) + 1
        adv_id = f"PICKET-TEST-{n:04d}"
        cve = f"CVE-2099-{1000 + n}"
        adv = {
            "schema_version": "1.6.0",
            "id": adv_id,
            "modified": MODIFIED,
            "published": PUBLISHED,
            "aliases": [cve],
            "summary": f"{subject}: picket test advisory ({case})",
            "details": f"Synthetic advisory for Picket's host-scan test: {why}. Not real vulnerability data.",
            "affected": entries,
            "references": [{"type": "WEB", "url": f"https://picket.invalid/advisories/{adv_id}"}],
        }
        if withdrawn:
            adv["withdrawn"] = MODIFIED
        self.advisories.append((adv, expect_affected))
        self.cases[adv_id] = {"case": case, "subject": subject, "why": why, "affected": expect_affected}
        return adv_id

    def other(self, delta):
        if self.release is None:
            return None
        return f"Debian:{self.release + delta}"


def build(pkgs, release):
    c = Corpus(release)
    eco = c.eco

    by_source = {}
    for p in pkgs:
        by_source.setdefault(p["source"], []).append(p)
    installed_names = {p["package"] for p in pkgs}
    source_names = set(by_source)

    # Usable sources: every binary installed ("ii"), one source version, not the kernel.
    usable = {}
    for src, bins in by_source.items():
        if is_kernel(src, bins):
            continue
        if any(b["status"][:2] != "ii" for b in bins):
            continue
        if len({b["source_version"] for b in bins}) != 1:
            continue
        usable[src] = bins
    if len(usable) < 60:
        sys.exit(f"gen.py: only {len(usable)} usable source packages; need at least 60")

    taken = set()

    def pick(n, salt, pred=lambda s, b: True, prefer=None):
        order = stable_order(usable, salt)
        if prefer:
            order = [s for s in order if prefer(s, usable[s])] + [s for s in order if not prefer(s, usable[s])]
        out = []
        for s in order:
            if s in taken or not pred(s, usable[s]):
                continue
            out.append(s)
            taken.add(s)
            if len(out) == n:
                break
        return out

    def sv(s):
        return usable[s][0]["source_version"]

    has_epoch = lambda s, b: bool(re.match(r"^\d+:", sv(s)))
    multi = lambda s, b: len(b) >= 3
    bin_differs = lambda s, b: any(x["version"] != sv(s) for x in b)
    binnmu = lambda s, b: any(re.search(r"\+b\d+$", x["version"]) and x["version"] != sv(s) for x in b)
    tilde = lambda s, b: "~deb" in sv(s)
    plain = lambda s, b: "~" not in sv(s) and not has_epoch(s, b)

    # 1. fixed above the installed source version; a real DSA-style record also lists versions.
    for s in pick(4, "above", prefer=multi):
        v = sv(s)
        c.add("fixed-above", s, f"fixed in {higher(v)}, above the installed {v}",
              [entry(s, eco, [{"introduced": "0"}, {"fixed": higher(v)}], versions=[lower(v), v])], True)
    # 2. fixed exactly at the installed version.
    for s in pick(3, "equal"):
        v = sv(s)
        c.add("fixed-at-installed", s, f"fixed in {v}, the installed version",
              [entry(s, eco, [{"introduced": "0"}, {"fixed": v}])], False)
    # 3. fixed at the installed version spelt with an explicit 0 epoch (dpkg: equal).
    for s in pick(2, "zero-epoch", plain):
        v = sv(s)
        c.add("fixed-at-installed-0-epoch", s, f"fixed in 0:{v}, equal to the installed {v}",
              [entry(s, eco, [{"introduced": "0"}, {"fixed": "0:" + v}])], False)
    # 4. fixed below.
    for s in pick(3, "below"):
        v = sv(s)
        c.add("fixed-below", s, f"fixed in {lower(v)}, below the installed {v}",
              [entry(s, eco, [{"introduced": "0"}, {"fixed": lower(v)}], versions=[lower(lower(v))])], False)
    # 5. unfixed.
    for s in pick(4, "unfixed", prefer=multi):
        c.add("unfixed", s, "no fix (introduced 0 only)",
              [entry(s, eco, [{"introduced": "0"}])], True)
    # 6./7. last_affected at and below the installed version.
    for s in pick(2, "last-eq"):
        v = sv(s)
        c.add("last-affected-at-installed", s, f"last_affected {v} = installed",
              [entry(s, eco, [{"introduced": "0"}, {"last_affected": v}])], True)
    for s in pick(2, "last-below"):
        v = sv(s)
        c.add("last-affected-below", s, f"last_affected {lower(v)} < installed {v}",
              [entry(s, eco, [{"introduced": "0"}, {"last_affected": lower(v)}])], False)
    # 8. introduced above the installed version (a regression in a later version).
    for s in pick(2, "intro-above"):
        v = sv(s)
        h = higher(v)
        c.add("introduced-above", s, f"introduced in {h} > installed {v}",
              [entry(s, eco, [{"introduced": h}, {"fixed": higher(h)}])], False)
    # 9. other releases (and another distribution) of the same source: never this release.
    for s in pick(3, "other-release"):
        v = sv(s)
        for delta in (-1, 1):
            other = c.other(delta)
            if other:
                c.add("other-release", s, f"affects {other} only",
                      [entry(s, other, [{"introduced": "0"}, {"fixed": higher(v)}])], False)
        c.add("other-distribution", s, "affects Ubuntu:22.04:LTS only",
              [{"package": {"name": s, "ecosystem": "Ubuntu:22.04:LTS",
                            "purl": f"pkg:deb/ubuntu/{s}?arch=source&distro=jammy"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}], False)
    # 10. a binary package name that is not a source name: Debian OSV names source packages.
    traps = []
    # The classic confusions first (libssl3 is openssl's library), then any others.
    for name in ("libssl3", "libc6", "libsystemd0"):
        src = next((p["source"] for p in pkgs if p["package"] == name), None)
        if src in usable and name not in source_names and len(traps) < 2:
            traps.append((name, src))
    for s in stable_order(usable, "binary-name"):
        if any(src == s for _, src in traps):
            continue
        for b in sorted(usable[s], key=lambda x: x["package"]):
            if b["package"] != s and b["package"] not in source_names:
                traps.append((b["package"], s))
                break
        if len(traps) == 3:
            break
    for name, s in traps:
        c.add("binary-name", name, f"names the binary {name} (source {s}); must not match",
              [entry(name, eco, [{"introduced": "0"}])], False)
    # 11./12. epochs: a fix above keeps the epoch; the same fix without the epoch is far below.
    for s in pick(2, "epoch-above", has_epoch):
        v = sv(s)
        c.add("epoch-fixed-above", s, f"fixed in {higher(v)} (epoch kept) > installed {v}",
              [entry(s, eco, [{"introduced": "0"}, {"fixed": higher(v)}])], True)
    for s in pick(2, "epoch-dropped", has_epoch):
        v = sv(s)
        f = strip_epoch(higher(v))
        c.add("epoch-missing-in-fix", s, f"fixed in {f} (no epoch: lower than installed {v})",
              [entry(s, eco, [{"introduced": "0"}, {"fixed": f}])], False)
    # 13. binary versions unlike the source version (other upstream, epoch only on binaries):
    #     the source version is what Debian advisories are about.
    for s in pick(3, "bin-differs", lambda s, b: bin_differs(s, b) and not binnmu(s, b)):
        v = sv(s)
        c.add("binary-version-differs", s,
              f"fixed in {higher(v)}; source version {v} compared, not the binaries' "
              + ", ".join(sorted({b['version'] for b in usable[s]})),
              [entry(s, eco, [{"introduced": "0"}, {"fixed": higher(v)}])], True)
    # 14. binNMUs (+bN): the fix at the source version does not apply; a +deb12u1 fix does.
    for i, s in enumerate(pick(4, "binnmu", binnmu)):
        v = sv(s)
        if i % 2 == 0:
            c.add("binnmu-fixed-at-source", s, f"fixed in {v}; binaries are binNMUs of it",
                  [entry(s, eco, [{"introduced": "0"}, {"fixed": v}])], False)
        else:
            f = f"{v}+deb{release}u1" if not re.search(r"[+~]deb\d+u\d+$", v) else higher(v)
            c.add("binnmu-fixed-above", s, f"fixed in {f}; binaries are binNMUs of {v}",
                  [entry(s, eco, [{"introduced": "0"}, {"fixed": f}])], True)
    # 15. tildes: ~debNuM sorts before the bare revision.
    for s in pick(2, "tilde-above", tilde):
        v = sv(s)
        c.add("tilde-fixed-above", s, f"fixed in {higher(v)} > installed {v}",
              [entry(s, eco, [{"introduced": "0"}, {"fixed": higher(v)}])], True)
    for s in pick(2, "tilde-base", tilde):
        v = sv(s)
        f = re.sub(r"~deb\d+u\d+$", "", v)
        c.add("tilde-base-fix", s, f"fixed in {f}, above the installed {v} (~ sorts first)",
              [entry(s, eco, [{"introduced": "0"}, {"fixed": f}])], True)
    for s in pick(2, "tilde-below", lambda s, b: "~" not in sv(s)):
        v = sv(s)
        f = f"{v}~deb{release}u1"
        c.add("tilde-fix-below", s, f"fixed in {f}, below the installed {v}",
              [entry(s, eco, [{"introduced": "0"}, {"fixed": f}])], False)
    # 16. withdrawn.
    for s in pick(2, "withdrawn"):
        c.add("withdrawn", s, "unfixed but withdrawn", [entry(s, eco, [{"introduced": "0"}])], False,
              withdrawn=True)
    # 17. `versions` lists without ranges: exact membership.
    for s in pick(2, "versions-listed"):
        v = sv(s)
        c.add("versions-listed", s, f"versions list holds {v}",
              [entry(s, eco, versions=[lower(v), v, higher(v)])], True)
    for s in pick(2, "versions-not-listed"):
        v = sv(s)
        c.add("versions-not-listed", s, f"versions list lacks {v}",
              [entry(s, eco, versions=[lower(v), higher(v)])], False)
    # 18. two entries for the package in this release (one range per branch).
    for s in pick(2, "two-entries-hit"):
        v = sv(s)
        c.add("two-entries-second-hits", s, f"old branch fixed in {lower(v)}; branch from {v} fixed in {higher(v)}",
              [entry(s, eco, [{"introduced": "0"}, {"fixed": lower(v)}]),
               entry(s, eco, [{"introduced": v}, {"fixed": higher(v)}])], True)
    for s in pick(2, "two-entries-miss"):
        v = sv(s)
        h = higher(v)
        c.add("two-entries-neither", s, f"old branch fixed in {lower(v)}; new branch from {h}",
              [entry(s, eco, [{"introduced": "0"}, {"fixed": lower(v)}]),
               entry(s, eco, [{"introduced": h}, {"fixed": higher(h)}])], False)
    # 19. several intervals in one range: re-introduced below the installed version.
    for s in pick(2, "reintroduced"):
        v = sv(s)
        lo = lower(v)
        lolo = lower(lo)
        if not lt(lolo, lo):
            continue
        c.add("reintroduced", s, f"fixed in {lolo}, re-introduced in {lo}, fixed in {higher(v)}",
              [entry(s, eco, [{"introduced": "0"}, {"fixed": lolo}, {"introduced": lo}, {"fixed": higher(v)}])],
              True)
    # 20. two advisories for the same source, both affecting: one finding each.
    for s in pick(2, "two-advisories", prefer=multi):
        v = sv(s)
        c.add("two-advisories-a", s, f"fixed in {higher(v)}",
              [entry(s, eco, [{"introduced": "0"}, {"fixed": higher(v)}])], True)
        c.add("two-advisories-b", s, "unfixed", [entry(s, eco, [{"introduced": "0"}])], True)
    # 21. a package that is not installed at all.
    c.add("not-installed", "picket-test-not-installed", "no such package on the host",
          [entry("picket-test-not-installed", eco, [{"introduced": "0"}])], False)
    return c, usable


def expectations(c, usable):
    expected = []
    for adv, want in c.advisories:
        hits = 0
        for src, bins in usable.items():
            v = bins[0]["source_version"]
            m = eval_advisory(adv, c.eco, src, v)
            if m is None:
                continue
            hits += 1
            for b in bins:
                expected.append(
                    {
                        "advisory": adv["id"],
                        "package": b["package"],
                        "source": src,
                        "installed_version": b["version"],
                        "fixed_version": m["fixed"],
                    }
                )
        if (hits > 0) != want:
            sys.exit(f"gen.py: {adv['id']} ({c.cases[adv['id']]['case']}) came out "
                     f"{'affected' if hits else 'not affected'}; the case wants the opposite")
    expected.sort(key=lambda e: (e["advisory"], e["package"]))
    # Several architectures of one binary (multiarch) are one finding per name.
    dedup = []
    for e in expected:
        if not dedup or (dedup[-1]["advisory"], dedup[-1]["package"]) != (e["advisory"], e["package"]):
            dedup.append(e)
    return dedup


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dpkg_list")
    ap.add_argument("outdir")
    ap.add_argument("--release", help="Debian release number (default: VERSION_ID of --os-release)")
    ap.add_argument("--os-release", default="/etc/os-release")
    args = ap.parse_args()

    release = args.release or release_from_os_release(args.os_release)
    pkgs = read_list(args.dpkg_list)
    c, usable = build(pkgs, release)
    expected = expectations(c, usable)

    adv_dir = os.path.join(args.outdir, "advisories")
    if os.path.isdir(adv_dir):
        shutil.rmtree(adv_dir)
    os.makedirs(adv_dir)
    for adv, _ in c.advisories:
        with open(os.path.join(adv_dir, adv["id"] + ".json"), "w", encoding="utf-8") as f:
            json.dump(adv, f, indent=2, sort_keys=False)
            f.write("\n")
    with open(os.path.join(args.outdir, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    with open(os.path.join(args.outdir, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(c.cases, f, indent=1, sort_keys=True)
        f.write("\n")
    affected = sum(1 for _, want in c.advisories if want)
    print(
        f"gen.py: {c.eco}: {len(c.advisories)} advisories ({affected} affecting the host), "
        f"{len(expected)} expected findings over {len({e['source'] for e in expected})} source packages",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

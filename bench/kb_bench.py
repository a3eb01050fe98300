#!/usr/bin/env python3
"""Runs the `bench/kb.sh` measurements: knowledge-base import, re-import, status, and host-scan
matching against the imported corpus.

Every picket run is under GNU time (`%e %M`: wall seconds, peak RSS in KiB). Host scans run in the
test network's scanner namespace against the SSH lab's `deb` host (this machine's own root) and
its fleet addresses. Writes OUT/kb-results.json and prints a table of the figures with the goals
of the host-scanning issue.

    kb_bench.py --picket BIN --corpus DIR --work DIR --out DIR [--state TESTNET_STATE] [--reps N]
                [PHASE...]     phases: import status scan (default: all; scan needs --state)
"""

import argparse
import datetime
import glob
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTNET = os.path.join(HERE, "..", "netscan", "testnet", "testnet.sh")
SSHLAB = os.path.join(HERE, "..", "netscan", "testnet", "sshlab.sh")
DEB = "198.18.0.30"
FLEET = [f"198.18.1.{i}" for i in range(1, 51)]
TIMEOUT = 1800

GOALS = {
    "import_s": 30.0,
    "import_rss_mb": 500.0,
    "disk_ratio": 2.0,
    "matching_ms_per_1000": 100.0,
    "one_host_s": 2.0,
    "fleet_ratio": 5.0,
}


def timed(cmd, workdir, netns_state=None, stdin=None):
    """Runs cmd under GNU time (in the scanner namespace when netns_state is set).
    Returns (wall_s, rss_kib, exit, stdout, stderr)."""
    tfile = os.path.join(workdir, "time.txt")
    if os.path.exists(tfile):
        os.unlink(tfile)
    full = ["/usr/bin/time", "-f", "%e %M", "-o", tfile] + cmd
    if netns_state:
        full = [TESTNET, "exec", netns_state] + full
    p = subprocess.run(full, capture_output=True, text=True, timeout=TIMEOUT, check=False, input=stdin)
    wall, rss = None, None
    try:
        with open(tfile) as f:
            last = f.read().strip().splitlines()[-1].split()
            wall, rss = float(last[0]), int(last[1])
    except (OSError, IndexError, ValueError):
        pass
    return wall, rss, p.returncode, p.stdout, p.stderr


def as_json(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def du_bytes(path):
    out = subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def tail(text, n=600):
    text = (text or "").strip()
    return text[-n:]


def run_import(args, zips, state_dir, label):
    wall, rss, code, out, err = timed(
        [args.picket, "--state-dir", state_dir, "--format", "json", "kb", "import"] + zips, args.work)
    rep = as_json(out)
    res = {"wall_s": wall, "rss_kib": rss, "exit": code}
    if isinstance(rep, dict):
        for k in ("added", "updated", "unchanged", "withdrawn", "malformed", "duration_ms"):
            res[k] = rep.get(k)
        res["errors"] = len(rep.get("errors") or [])
        res["sources"] = rep.get("sources")
    else:
        res["error"] = tail(err) or tail(out) or f"exit {code}"
    print(f"kb-bench: {label}: {wall} s, {rss} KiB, exit {code}", file=sys.stderr)
    return res


def phase_import(args, manifest, results):
    zips = sorted(glob.glob(os.path.join(args.corpus, "*", "all.zip")))
    if not zips:
        sys.exit(f"kb-bench: no */all.zip under {args.corpus}")
    state_dir = os.path.join(args.work, "state")
    subprocess.run(["rm", "-rf", state_dir], check=True)
    os.makedirs(state_dir)
    first = run_import(args, zips, state_dir, "import")
    first["disk_bytes"] = du_bytes(state_dir)
    first["input_zip_bytes"] = sum(os.path.getsize(z) for z in zips)
    first["disk_ratio"] = round(first["disk_bytes"] / first["input_zip_bytes"], 3)
    results["import"] = first
    again = run_import(args, zips, state_dir, "re-import")
    again["disk_bytes"] = du_bytes(state_dir)
    again["idempotent"] = again.get("added") == 0 and again.get("updated") == 0
    results["reimport"] = again


def phase_status(args, results):
    state_dir = os.path.join(args.work, "state")
    wall, rss, code, out, err = timed(
        [args.picket, "--state-dir", state_dir, "--format", "json", "kb", "status"], args.work)
    rep = as_json(out)
    res = {"wall_s": wall, "rss_kib": rss, "exit": code}
    if isinstance(rep, dict):
        res["report"] = rep
    else:
        res["error"] = tail(err) or tail(out) or f"exit {code}"
    results["status"] = res


def lab_identity(state):
    p = subprocess.run([SSHLAB, "info", state], capture_output=True, text=True, check=False, timeout=120)
    info = as_json(p.stdout)
    if not isinstance(info, dict):
        sys.exit(f"kb-bench: sshlab.sh info failed: {tail(p.stderr)}")
    for k in info.get("client_keys", []):
        if "ed25519" in os.path.basename(k.get("path", "")):
            return k["path"], info
    keys = info.get("client_keys") or []
    if not keys:
        sys.exit("kb-bench: the SSH lab lists no client key")
    return keys[0]["path"], info


def scan(args, targets, identity, label):
    state_dir = os.path.join(args.work, "state")
    runs = []
    for _ in range(args.reps):
        cmd = [args.picket, "--state-dir", state_dir, "--format", "json", "scan", "host"] + \
              [f"ssh://{args.user}@{t}" for t in targets] + ["--identity", identity, "--trust-on-first-use"]
        if args.user != "root":
            cmd.append("--sudo")
        wall, rss, code, out, err = timed(cmd, args.work, netns_state=args.state)
        rep = as_json(out)
        r = {"wall_s": wall, "rss_kib": rss, "exit": code}
        if isinstance(rep, dict):
            st = rep.get("stats") or {}
            r.update({k: st.get(k) for k in ("targets", "succeeded", "failed", "packages", "kb_advisories",
                                             "matching_ms", "duration_ms")})
            r["findings"] = len(rep.get("findings") or [])
            failed = [h for h in rep.get("hosts") or [] if h.get("status") != "ok"]
            if failed:
                r["failed_hosts"] = [{"target": h.get("target"), "error": h.get("error")} for h in failed[:5]]
        else:
            r["error"] = tail(err) or tail(out) or f"exit {code}"
        print(f"kb-bench: {label}: {wall} s, {rss} KiB, exit {code}, "
              f"matching {r.get('matching_ms')} ms over {r.get('packages')} packages", file=sys.stderr)
        runs.append(r)
    ok = [r for r in runs if r.get("wall_s") is not None and "error" not in r]
    res = {"runs": runs}
    if ok:
        res["wall_s"] = statistics.median(r["wall_s"] for r in ok)
        res["matching_ms"] = statistics.median(r["matching_ms"] for r in ok if r.get("matching_ms") is not None) \
            if any(r.get("matching_ms") is not None for r in ok) else None
        res["rss_kib"] = max(r["rss_kib"] or 0 for r in ok)
        for k in ("targets", "succeeded", "failed", "packages", "kb_advisories", "findings", "duration_ms"):
            res[k] = ok[-1].get(k)
    return res


QUERY = "dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\t${db:Status-Abbrev}\n'"


def ssh_cmd(identity):
    return ["ssh", "-i", identity, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]


def ssh_baseline(args, identity):
    """OpenSSH's client running the same package query: the floor under a host scan's time
    (connection, key exchange, authentication, dpkg-query), for the deb host alone and for the 50
    fleet addresses 32 at a time (picket's default --parallel). The fleet is one machine answering
    on 50 addresses, so the second figure is what that machine can serve, not 50 hosts' worth."""
    one = []
    lines = None
    for _ in range(args.reps):
        wall, _rss, code, out, _err = timed(ssh_cmd(identity) + [f"{args.user}@{DEB}", QUERY], args.work,
                                            netns_state=args.state)
        if code == 0 and wall is not None:
            one.append(wall)
            lines = len(out.splitlines())
    fleet = []
    for _ in range(args.reps):
        wall, _rss, code, out, _err = timed(
            ["xargs", "-P", "32", "-I{}"] + ssh_cmd(identity) + [f"{args.user}@{{}}", QUERY], args.work,
            netns_state=args.state, stdin="".join(f"{a}\n" for a in FLEET))
        if code == 0 and wall is not None and len(out.splitlines()) == 50 * (lines or 0):
            fleet.append(wall)
    return {"wall_s": statistics.median(one) if one else None, "packages": lines,
            "fleet_wall_s": statistics.median(fleet) if fleet else None}


def phase_scan(args, results):
    if not args.state:
        results["scan"] = {"error": "no test network (--state)"}
        return
    identity, _info = lab_identity(args.state)
    results["ssh_baseline"] = ssh_baseline(args, identity)
    one = scan(args, [DEB], identity, "scan host (1)")
    if one.get("matching_ms") is not None and one.get("packages"):
        one["matching_ms_per_1000"] = round(one["matching_ms"] * 1000 / one["packages"], 2)
    results["scan_one"] = one
    fleet = scan(args, FLEET, identity, "scan host (50)")
    if fleet.get("wall_s") is not None and one.get("wall_s"):
        fleet["ratio_to_one"] = round(fleet["wall_s"] / one["wall_s"], 2)
    results["scan_fleet"] = fleet


def verdict(value, goal, lower_is_better=True, failed=False):
    if failed:
        return "FAILED"
    if value is None:
        return "n/a"
    return "ok" if (value <= goal if lower_is_better else value >= goal) else "MISSED"


def table(results):
    rows = []
    imp, again = results.get("import", {}), results.get("reimport", {})
    if imp:
        bad = "error" in imp
        rows.append(("import wall time (s)", imp.get("wall_s"), f"<= {GOALS['import_s']}",
                     verdict(imp.get("wall_s"), GOALS["import_s"], failed=bad)))
        rss_mb = imp["rss_kib"] / 1024 if imp.get("rss_kib") else None
        rows.append(("import peak RSS (MB)", round(rss_mb, 1) if rss_mb else None, f"<= {GOALS['import_rss_mb']}",
                     verdict(rss_mb, GOALS["import_rss_mb"], failed=bad)))
        rows.append(("records added / malformed", f"{imp.get('added')} / {imp.get('malformed')}", "", ""))
        rows.append(("store size / input zips (MB)",
                     f"{imp.get('disk_bytes', 0) / 1e6:.1f} / {imp.get('input_zip_bytes', 0) / 1e6:.1f}", "", ""))
        rows.append(("store / input ratio", imp.get("disk_ratio"), f"<= {GOALS['disk_ratio']}",
                     verdict(imp.get("disk_ratio"), GOALS["disk_ratio"], failed=bad)))
    if again:
        bad = "error" in again
        rows.append(("re-import wall time (s)", again.get("wall_s"), "", "FAILED" if bad else ""))
        rows.append(("re-import added / updated", f"{again.get('added')} / {again.get('updated')}", "0 / 0",
                     "ok" if again.get("idempotent") and not bad else "MISSED"))
    st = results.get("status", {})
    if st:
        rep = st.get("report") or {}
        rows.append(("kb status advisories", rep.get("advisories", st.get("error")), "", ""))
        rows.append(("kb status wall (s) / peak RSS (MB)",
                     f"{st.get('wall_s')} / {round((st.get('rss_kib') or 0) / 1024, 1)}", "", ""))
    one, fleet = results.get("scan_one", {}), results.get("scan_fleet", {})
    if one:
        rows.append(("1 host: packages / findings", f"{one.get('packages')} / {one.get('findings')}", "", ""))
        rows.append(("1 host: matching (ms)", one.get("matching_ms"), "", ""))
        rows.append(("matching per 1,000 packages (ms)", one.get("matching_ms_per_1000"), f"<= {GOALS['matching_ms_per_1000']}",
                     verdict(one.get("matching_ms_per_1000"), GOALS["matching_ms_per_1000"])))
        rows.append(("1 host: scan duration_ms / wall (s)", f"{one.get('duration_ms')} / {one.get('wall_s')}", "", ""))
        rows.append(("1 host end to end (s)", one.get("wall_s"), f"<= {GOALS['one_host_s']}",
                     verdict(one.get("wall_s"), GOALS["one_host_s"], failed=one.get("succeeded") == 0)))
    base = results.get("ssh_baseline")
    if base:
        rows.append(("OpenSSH ssh + dpkg-query, 1 host (s)", base.get("wall_s"), "", "baseline"))
        rows.append(("OpenSSH ssh + dpkg-query, 50 (s)", base.get("fleet_wall_s"), "", "baseline"))
    if fleet:
        rows.append(("50 hosts: ok / failed", f"{fleet.get('succeeded')} / {fleet.get('failed')}", "", ""))
        rows.append(("50 hosts end to end (s)", fleet.get("wall_s"), "", ""))
        rows.append(("50 hosts / 1 host", fleet.get("ratio_to_one"), f"<= {GOALS['fleet_ratio']}", verdict(fleet.get("ratio_to_one"), GOALS["fleet_ratio"])))
        rows.append(("50 hosts: matching (ms)", fleet.get("matching_ms"), "", ""))
    if results.get("store_bytes_final"):
        rows.append(("store size at the end (MB)", round(results["store_bytes_final"] / 1e6, 1), "", ""))
    for k in ("import", "reimport", "status", "scan_one", "scan_fleet", "scan"):
        if isinstance(results.get(k), dict) and results[k].get("error"):
            rows.append((f"{k}: error", results[k]["error"].splitlines()[-1][:80], "", ""))
    w = max(len(r[0]) for r in rows) if rows else 10
    print(f"{'measure':<{w}}  {'value':>18}  {'goal':>10}  verdict")
    for name, val, goal, ver in rows:
        print(f"{name:<{w}}  {str(val):>18}  {goal:>10}  {ver}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--picket", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--state", help="test network STATE_DIR (for the scan phase)")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--user", default="picket",
                    help="login user of the host scans (default: the SSH lab's picket user, with --sudo)")
    ap.add_argument("phases", nargs="*", default=[])
    args = ap.parse_args()
    phases = args.phases or ["import", "status", "scan"]
    for p in phases:
        if p not in ("import", "status", "scan"):
            sys.exit(f"kb-bench: unknown phase {p!r} (import, status, scan)")
    os.makedirs(args.work, exist_ok=True)
    try:
        with open(os.path.join(args.corpus, "MANIFEST")) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        manifest = None

    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "picket": args.picket, "corpus": args.corpus, "corpus_manifest": manifest,
               "goals": GOALS, "reps": args.reps, "cpus": os.cpu_count(), "scan_user": args.user,
               # Times mean little on a machine busy with other work: keep how busy it was.
               "loadavg_before": list(os.getloadavg())}
    if "import" in phases:
        phase_import(args, manifest, results)
    if "status" in phases:
        phase_status(args, results)
    if "scan" in phases:
        phase_scan(args, results)
    results["loadavg_after"] = list(os.getloadavg())
    state_dir = os.path.join(args.work, "state")
    if os.path.isdir(state_dir):
        # The store after everything above (status and scans open and write it too).
        results["store_bytes_final"] = du_bytes(state_dir)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "kb-results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    if manifest:
        t = manifest["total"]
        print(f"corpus: {t['records']} records (+{t['malformed']} malformed), {t['zip_bytes'] / 1e6:.1f} MB zipped, "
              f"{t['json_bytes'] / 1e6:.1f} MB of JSON, {manifest.get('host_packages')} host source packages")
    table(results)
    print(f"load average (1, 5, 15 min) before: {' '.join(f'{x:.1f}' for x in results['loadavg_before'])}; "
          f"after: {' '.join(f'{x:.1f}' for x in results['loadavg_after'])} ({results['cpus']} CPUs)")
    print(f"results: {path}")


if __name__ == "__main__":
    main()

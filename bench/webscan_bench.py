#!/usr/bin/python3
"""The body of bench/webscan.sh: wapiti and picket against the same vulnapp, measured at the server.

Issue 6's goal: on the project's own test app, picket finds at least as many planted
vulnerabilities as wapiti, with no false positive, in at most half wapiti's wall time and with
fewer requests. Each tool gets a freshly started vulnapp (same state, same credentials); wall time
and peak RSS come from GNU time, request counts and the largest 1-second burst from the app's own
admin API, and both reports are scored by webscan_compare against planted.json.

Run through bench/webscan.sh, which puts it in a network namespace where only loopback exists.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import webscan_compare as wc  # noqa: E402

TESTAPP = os.path.join(ROOT, "webscan", "testapp")
MANIFEST = os.path.join(TESTAPP, "planted.json")
PY = "/usr/bin/python3"
PASSWORD = "wonderland"
WAPITI_MODULES = os.environ.get(
    "WAPITI_MODULES",
    "xss,permanentxss,sql,blindsql,exec,file,redirect,crlf,ssrf,xxe,backup,htaccess,http_headers,csp,cookieflags")


class VulnApp:
    def __init__(self, workdir):
        self.ready = os.path.join(workdir, "vulnapp-ready.json")
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        self.log = open(os.path.join(workdir, "vulnapp.log"), "wb")
        # wapiti cannot log in again, so by default sessions do not expire here (the Rust tests
        # exercise expiry and re-login); BENCH_STRICT_SESSIONS=1 keeps the app's defaults.
        sessions = [] if os.environ.get("BENCH_STRICT_SESSIONS") == "1" else [
            "--session-max-requests", "100000000", "--session-ttl", "86400"]
        self.proc = subprocess.Popen([PY, os.path.join(TESTAPP, "vulnapp.py"), "--port", "0",
                                      "--ready-file", self.ready] + sessions, stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        for _ in range(100):
            if os.path.exists(self.ready):
                break
            time.sleep(0.1)
        with open(self.ready) as f:
            info = json.load(f)
        self.port, self.admin = info["port"], info["admin_port"]
        self.base = "http://127.0.0.1:%d" % self.port

    def stats(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/stats" % self.admin, timeout=10) as r:
            return json.load(r)

    def ssrf_hits(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/ssrf-hits" % self.admin, timeout=10) as r:
            return json.load(r)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def timed(argv, log_path, timeout, env=None):
    """Runs argv under GNU time: (exit code or None on timeout, wall seconds, peak RSS in MB)."""
    tfile = log_path + ".time"
    with open(log_path, "wb") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", tfile] + argv, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            rc = None
        wall = time.monotonic() - t0
    rss = None
    try:
        with open(tfile) as f:
            rss = int(f.read().strip().splitlines()[-1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return rc, wall, rss


def run_wapiti(workdir, out_dir, timeout):
    app = VulnApp(workdir)
    try:
        b = app.base
        session = os.path.join(workdir, "wapiti-session")
        config = os.path.join(workdir, "wapiti-config")
        report = os.path.join(out_dir, "webscan-wapiti-report.json")
        argv = [PY, os.path.join(HERE, "webscan_wapiti.py"), "-u", b + "/", "--scope", "folder",
                "-a", "alice%" + PASSWORD, "--auth-type", "post", "-s", b + "/login",
                "-x", b + "/logout", "-x", b + "/account/sessions/revoke",
                "-m", WAPITI_MODULES, "-f", "json", "-o", report, "--flush-session", "--no-bugreport",
                "--store-session", session, "--store-config", config,
                # Its SSRF/XXE callback service is on the internet; here only a dead loopback port.
                "--endpoint", "http://127.0.0.1:9/", "-v", "1"]
        rc, wall, rss = timed(argv, os.path.join(out_dir, "webscan-wapiti.log"), timeout)
        stats = app.stats()
        hits = app.ssrf_hits()
    finally:
        app.stop()
    findings = []
    if os.path.exists(report):
        with open(report) as f:
            findings = wc.wapiti_findings(json.load(f))
    return {"tool": "wapiti 3.0.4", "exit": rc, "wall_s": round(wall, 2), "peak_rss_mb": rss,
            "requests": stats["requests"], "max_in_window": stats["max_in_window"],
            "logins": stats.get("logins", 0), "sessions_expired": stats.get("sessions_expired", 0),
            "ssrf_fetches": len(hits), "modules": WAPITI_MODULES, "report": report, "findings": findings}


def run_picket(picket, workdir, out_dir, timeout, max_rps, max_requests, extra):
    app = VulnApp(workdir)
    state = tempfile.mkdtemp(prefix="picket-state-", dir=workdir)
    try:
        report = os.path.join(out_dir, "webscan-picket-report.json")
        if os.path.exists(report):
            os.unlink(report)
        env = dict(os.environ, PICKET_BENCH_WEB_PASSWORD=PASSWORD)
        argv = [picket, "--state-dir", state, "--format", "json", "--output", report,
                "scan", "web", app.base + "/", "--login-url", app.base + "/login", "--username", "alice",
                "--password-env", "PICKET_BENCH_WEB_PASSWORD", "--max-rps", str(max_rps),
                "--max-requests", str(max_requests)] + extra
        rc, wall, rss = timed(argv, os.path.join(out_dir, "webscan-picket.log"), timeout, env)
        stats = app.stats()
        hits = app.ssrf_hits()
    finally:
        app.stop()
        shutil.rmtree(state, True)
    findings = []
    if os.path.exists(report):
        try:
            with open(report) as f:
                findings = wc.picket_findings(json.load(f))
        except ValueError:
            pass
    return {"tool": "picket", "exit": rc, "wall_s": round(wall, 2), "peak_rss_mb": rss,
            "requests": stats["requests"], "max_in_window": stats["max_in_window"],
            "logins": stats.get("logins", 0), "sessions_expired": stats.get("sessions_expired", 0),
            "ssrf_fetches": len(hits), "max_rps": max_rps, "max_requests": max_requests,
            "argv": argv, "report": report, "findings": findings}


def reused_wapiti(path):
    """wapiti's figures from an earlier results file (a wapiti run takes about 40 minutes); its
    saved report is scored again against the current manifest."""
    with open(path) as f:
        run = dict(json.load(f)["tools"]["wapiti"])
    run.pop("verdict", None)
    run.pop("summary", None)
    with open(run["report"]) as f:
        run["findings"] = wc.wapiti_findings(json.load(f))
    run["reused_from"] = path
    print("bench: wapiti figures reused from %s" % path, file=sys.stderr, flush=True)
    return run


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def main():
    out_dir = os.environ.get("BENCH_OUT", os.path.join(HERE, "out"))
    os.makedirs(out_dir, exist_ok=True)
    picket = os.environ.get("PICKET_BIN", os.path.join(ROOT, "target", "release", "picket"))
    tools = os.environ.get("BENCH_TOOLS", "wapiti,picket").split(",")
    timeout = float(os.environ.get("BENCH_TIMEOUT_S", "3600"))
    max_rps = int(os.environ.get("BENCH_MAX_RPS", "200"))
    max_requests = int(os.environ.get("BENCH_MAX_REQUESTS", "20000"))
    extra = os.environ.get("PICKET_WEB_ARGS", "").split()
    entries = wc.load_manifest(MANIFEST)
    workdir = tempfile.mkdtemp(prefix="webscan-bench-")
    runs = {}
    reuse = os.environ.get("WAPITI_FROM")
    try:
        if reuse:
            runs["wapiti"] = reused_wapiti(reuse)
        elif "wapiti" in tools:
            print("bench: wapiti ...", file=sys.stderr, flush=True)
            runs["wapiti"] = run_wapiti(workdir, out_dir, timeout)
        if "picket" in tools:
            print("bench: picket ...", file=sys.stderr, flush=True)
            runs["picket"] = run_picket(picket, workdir, out_dir, timeout, max_rps, max_requests, extra)
    finally:
        shutil.rmtree(workdir, True)

    results = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "manifest": MANIFEST,
               "planted": sum(e["planted"] for e in entries),
               "lookalikes": sum(not e["planted"] for e in entries), "tools": {}}
    for name, run in runs.items():
        verdict = wc.score(run.pop("findings"), entries)
        run["verdict"] = verdict
        run["summary"] = wc.summary(verdict)
        results["tools"][name] = run
    w, p = runs.get("wapiti"), runs.get("picket")
    if w and p:
        wf, pf = len(w["verdict"]["planted_found"]), len(p["verdict"]["planted_found"])
        results["ratios"] = {"wall_picket_over_wapiti": ratio(p["wall_s"], w["wall_s"]),
                             "requests_picket_over_wapiti": ratio(p["requests"], w["requests"])}
        results["goals"] = {
            "found_at_least_wapiti": pf >= wf,
            "no_false_positive": not p["verdict"]["false_positives"],
            "wall_at_most_half": p["wall_s"] <= 0.5 * w["wall_s"],
            "fewer_requests": p["requests"] < w["requests"],
        }
    path = os.path.join(out_dir, "webscan-results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print_table(results, entries)
    print("\nresults: %s" % path)


def print_table(results, entries):
    tools = list(results["tools"])
    rows = [
        ("planted found (of %d)" % results["planted"], lambda r: len(r["verdict"]["planted_found"])),
        ("false positives", lambda r: len(r["verdict"]["false_positives"])),
        ("unmatched, manifest CWE", lambda r: len(r["verdict"]["unmatched_in_manifest_cwes"])),
        ("unmatched, other CWE", lambda r: len(r["verdict"]["unmatched"])
         - len(r["verdict"]["unmatched_in_manifest_cwes"])),
        ("not applicable (http)", lambda r: len(r["verdict"]["not_applicable"])),
        ("wall time (s)", lambda r: r["wall_s"]),
        ("requests (at the server)", lambda r: r["requests"]),
        ("max requests in 1 s", lambda r: r["max_in_window"]),
        ("peak RSS (MB)", lambda r: None if r["peak_rss_mb"] is None else round(r["peak_rss_mb"], 1)),
        ("logins", lambda r: r["logins"]),
        ("exit status", lambda r: r["exit"]),
    ]
    print("%-28s" % "" + "".join("%16s" % results["tools"][t]["tool"] for t in tools))
    for label, fn in rows:
        print("%-28s" % label + "".join("%16s" % fn(results["tools"][t]) for t in tools))
    for k, v in (results.get("ratios") or {}).items():
        print("%-28s%16s" % (k, v))
    for k, v in (results.get("goals") or {}).items():
        print("%-28s%16s" % ("goal: " + k, "yes" if v else "NO"))
    print("\nper class (found / planted):")
    classes = sorted({e["class"] for e in entries if e["planted"]})
    print("%-28s" % "" + "".join("%16s" % t for t in tools))
    for c in classes:
        cells = []
        for t in tools:
            pc = results["tools"][t]["verdict"]["per_class"].get(c, {"found": 0, "planted": 0})
            cells.append("%d / %d" % (pc["found"], pc["planted"]))
        print("%-28s" % c + "".join("%16s" % x for x in cells))
    for t in tools:
        fps = results["tools"][t]["verdict"]["false_positives"]
        if fps:
            print("\n%s false positives (entry: count, first examples):" % t)
            by_entry = {}
            for x in fps:
                by_entry.setdefault(x["entry"], []).append(x["finding"])
            for entry, fs in sorted(by_entry.items()):
                examples = ", ".join("%s %s" % (f["url"], f.get("parameter") or "") for f in fs[:4])
                print("  %s: %d (%s%s)" % (entry, len(fs), examples.strip(), ", ..." if len(fs) > 4 else ""))


if __name__ == "__main__":
    main()

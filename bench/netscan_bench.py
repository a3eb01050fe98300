#!/usr/bin/env python3
"""Runs the `bench/netscan.sh` scenarios: nmap and picket side by side in the scanner namespace.

Each tool runs under GNU time (`%e %M`: wall seconds, peak RSS in KiB). Results are normalised to
{address: {"tcp": [open ports], "services": {port: {name, product, version}}}} and compared with each
other and with the test network's ground truth. Writes OUT/results.json and prints a table.
"""

import argparse
import datetime
import ipaddress
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
TESTNET = os.path.join(HERE, "..", "netscan", "testnet", "testnet.sh")
SERVICE_HOSTS = ["ssh", "web", "redis", "memcached", "ftp", "dns", "mail", "filtered"]
SERVICE_PORTS = "21,22,25,53,80,443,6379,8080,11211"
LAN_PORTS = "1-12000"
TIMEOUT = 1800


def sh(*cmd, check=True, timeout=120):
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)


def truth(state):
    return json.loads(sh(TESTNET, "truth", state).stdout)


def timed(state, cmd, workdir):
    """Runs cmd in the scanner namespace under GNU time; returns (wall_s, rss_kib, exit, stdout, stderr)."""
    tfile = os.path.join(workdir, "time.txt")
    full = [TESTNET, "exec", state, "/usr/bin/time", "-f", "%e %M", "-o", tfile] + cmd
    p = subprocess.run(full, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    wall, rss = None, None
    try:
        with open(tfile) as f:
            last = f.read().strip().splitlines()[-1].split()
            wall, rss = float(last[0]), int(last[1])
    except (OSError, IndexError, ValueError):
        pass
    return wall, rss, p.returncode, p.stdout, p.stderr


def norm_product(p):
    return (p or "").strip().lower() or None


def parse_nmap(xml_path):
    hosts = {}
    root = ET.parse(xml_path).getroot()
    for h in root.findall("host"):
        st = h.find("status")
        if st is None or st.get("state") != "up":
            continue
        addr = next((a.get("addr") for a in h.findall("address") if a.get("addrtype") in ("ipv4", "ipv6")), None)
        if addr is None:
            continue
        tcp, services = [], {}
        for p in h.findall("ports/port"):
            state = p.find("state")
            if p.get("protocol") != "tcp" or state is None or state.get("state") != "open":
                continue
            port = int(p.get("portid"))
            tcp.append(port)
            s = p.find("service")
            if s is not None and s.get("method") == "probed":
                services[port] = {"name": s.get("name"), "product": s.get("product"), "version": s.get("version"),
                                  "tls": s.get("tunnel") == "ssl"}
        hosts[addr] = {"tcp": sorted(tcp), "services": services}
    return hosts


def parse_picket(text):
    report = json.loads(text)
    hosts = {}
    for h in report.get("hosts", []):
        if h.get("status") != "up":
            continue
        tcp, services = [], {}
        for p in h.get("ports", []):
            if p.get("protocol") != "tcp" or p.get("state") != "open":
                continue
            tcp.append(p["port"])
            s = p.get("service")
            if s:
                services[p["port"]] = {"name": s.get("name"), "product": s.get("product"),
                                       "version": s.get("version"), "tls": bool(s.get("tunnel_tls"))}
        hosts[h["address"]] = {"tcp": sorted(tcp), "services": services}
    return hosts, report.get("stats", {})


def expected(t, addresses=None, cidr=None):
    """Truth hosts (by address list or CIDR) as normalised results."""
    out = {}
    for h in t["hosts"]:
        a = h["address"]
        if addresses is not None and a not in addresses:
            continue
        if cidr is not None and (":" in a or ipaddress.ip_address(a) not in ipaddress.ip_network(cidr)):
            continue
        out[a] = {"tcp": h["tcp"], "services": {s["port"]: s for s in h["services"] if s["protocol"] == "tcp"}}
    return out


def port_diffs(got, want, skip=()):
    diffs = []
    for a in sorted(set(got) | set(want)):
        if a in skip:
            continue
        if a not in got:
            diffs.append(f"{a}: missing")
        elif a not in want:
            diffs.append(f"{a}: extra host")
        elif got[a]["tcp"] != want[a]["tcp"]:
            diffs.append(f"{a}: tcp {got[a]['tcp']} != {want[a]['tcp']}")
    return diffs


def up_diffs(got, want, skip=()):
    g, w = set(got) - set(skip), set(want) - set(skip)
    return [f"{a}: missing" for a in sorted(w - g)] + [f"{a}: extra host" for a in sorted(g - w)]


def product_ok(want, got):
    w, g = norm_product(want), norm_product(got)
    return w is None or (g is not None and (g == w or g.startswith(w + " ")))


def version_ok(want, got):
    if not want:
        return True
    return bool(got) and (got == want or got.startswith(want + " ") or got.startswith(want + "-"))


def service_diffs(got, want):
    """Service identification against the truth: product and version (when announced)."""
    diffs = []
    for a, w in sorted(want.items()):
        g = got.get(a, {"services": {}})
        for port, ws in sorted(w["services"].items()):
            gs = g["services"].get(port)
            if gs is None:
                diffs.append(f"{a}:{port}: not identified")
                continue
            if not product_ok(ws.get("product"), gs.get("product")):
                diffs.append(f"{a}:{port}: product {gs.get('product')!r} != {ws.get('product')!r}")
            if not version_ok(ws.get("version"), gs.get("version")):
                diffs.append(f"{a}:{port}: version {gs.get('version')!r} != {ws.get('version')!r}")
    return diffs


def run_tool(state, cmd, reps, workdir, parse):
    runs = []
    for _ in range(reps):
        wall, rss, rc, out, err = timed(state, cmd, workdir)
        runs.append((wall, rss, rc, out, err))
    walls = [r[0] for r in runs if r[0] is not None]
    rsss = [r[1] for r in runs if r[1] is not None]
    last = runs[-1]
    parsed, extra, error = None, {}, None
    if last[2] == 0:
        try:
            parsed, extra = parse(last[3])
        except (ValueError, KeyError, ET.ParseError, OSError) as e:
            error = f"unparsable output: {e}"
    else:
        error = f"exit {last[2]}: {last[4].strip()[-600:]}"
    return {
        "cmd": " ".join(cmd),
        "wall_s": statistics.median(walls) if walls else None,
        "wall_runs_s": walls,
        "rss_kib": max(rsss) if rsss else None,
        "exit": last[2],
        "error": error,
        "stats": extra,
    }, parsed


def scenario(state, reps, picket, sid, desc, nmap_args, picket_args, want, goal, compare, skip=(), cross=None):
    workdir = tempfile.mkdtemp(prefix=f"picket-bench-{sid}-")
    os.chmod(workdir, 0o755)
    try:
        xml = os.path.join(workdir, "nmap.xml")
        nmap_cmd = ["nmap"] + nmap_args + ["-oX", xml]

        def parse_n(_out):
            return parse_nmap(xml), {}

        store = os.path.join(workdir, "store")
        picket_cmd = [picket, "--state-dir", store, "--format", "json", "scan", "net"] + picket_args

        def parse_p(out):
            return parse_picket(out)

        n, nres = run_tool(state, nmap_cmd, reps, workdir, parse_n)
        p, pres = run_tool(state, picket_cmd, reps, workdir, parse_p)
        res = {"id": sid, "desc": desc, "nmap": n, "picket": p, "goal_time_ratio": goal}
        if nres is not None:
            n["truth_diffs"] = compare(nres, want, skip)
            n["exact"] = not n["truth_diffs"]
            n["hosts_up"] = len(set(nres) - set(skip))
        if pres is not None:
            p["truth_diffs"] = compare(pres, want, skip)
            p["exact"] = not p["truth_diffs"]
            p["hosts_up"] = len(set(pres) - set(skip))
        if nres is not None and pres is not None:
            res["picket_vs_nmap_diffs"] = (cross or compare)(pres, nres, skip)
            res["equal"] = not res["picket_vs_nmap_diffs"]
        if n["wall_s"] and p["wall_s"]:
            res["time_ratio"] = round(p["wall_s"] / n["wall_s"], 3)
            res["time_goal_met"] = res["time_ratio"] <= goal
        if n["rss_kib"] and p["rss_kib"]:
            res["rss_ratio"] = round(p["rss_kib"] / n["rss_kib"], 3)
            res["rss_goal_met"] = p["rss_kib"] <= n["rss_kib"]
        return res
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--picket", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("scenarios", nargs="*", default=[])
    a = ap.parse_args()
    wanted = set(a.scenarios or "abcde")
    t = truth(a.state)
    v4 = {h["host"]: h["address"] for h in t["hosts"] if h["address"].startswith("198.18.0.")}
    scanner = [t["scanner"]["ipv4"], t["scanner"]["ipv6"]]
    results = []

    def emit(r):
        results.append(r)
        print(f"  scenario {r['id']} done: picket {r['picket']['wall_s']} s, nmap {r['nmap']['wall_s']} s",
              file=sys.stderr)

    if "a" in wanted:
        host = v4["web"]
        emit(scenario(a.state, a.reps, a.picket, "a", f"all 65,535 TCP ports of one host ({host})",
                      ["-sS", "-T4", "-Pn", "-n", "-p-", host],
                      [host, "--ports", "all", "--no-ping", "--no-service", "--no-rdns"],
                      expected(t, addresses={host}), 1.0, port_diffs))
    if "b" in wanted:
        cidr = t["wide"]["cidr"]
        emit(scenario(a.state, a.reps, a.picket, "b", f"ports 1-1024 of the 1,024-address host ({cidr})",
                      ["-sS", "-T4", "-Pn", "-n", "--min-rate", "10000", "-p1-1024", cidr],
                      [cidr, "--ports", "1-1024", "--no-ping", "--no-service", "--no-rdns"],
                      expected(t, cidr=cidr), 0.5, port_diffs))
    if "c" in wanted:
        emit(scenario(a.state, a.reps, a.picket, "c", "host discovery of 198.18.0.0/24 (with reverse DNS)",
                      ["-sn", t["subnet"]],
                      [t["subnet"], "--ports", "none"],
                      expected(t, cidr=t["subnet"]), 0.5, up_diffs, skip=scanner))
    if "d" in wanted:
        hosts = [v4[h] for h in SERVICE_HOSTS]
        want = expected(t, addresses=set(hosts))

        def svc_compare(got, ref, skip):
            return port_diffs(got, ref, skip) + service_diffs(got, ref)

        emit(scenario(a.state, a.reps, a.picket, "d", f"service detection, ports {SERVICE_PORTS} of {len(hosts)} hosts",
                      ["-sV", "-Pn", "-n", "-p", SERVICE_PORTS] + hosts,
                      hosts + ["--ports", SERVICE_PORTS, "--no-ping", "--no-rdns"],
                      want, 0.25, svc_compare, cross=port_diffs))
    if "e" in wanted:
        sh(TESTNET, "loss", a.state, "1")
        try:
            emit(scenario(a.state, a.reps, a.picket, "e", f"1% loss: TCP {LAN_PORTS} of 198.18.0.0/24",
                          ["-sS", "-T4", "-n", "-p" + LAN_PORTS, t["subnet"]],
                          [t["subnet"], "--ports", LAN_PORTS, "--no-service", "--no-rdns"],
                          expected(t, cidr=t["subnet"]), 1.0, port_diffs, skip=scanner))
        finally:
            sh(TESTNET, "loss", a.state, "0")

    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nmap": sh("nmap", "--version").stdout.splitlines()[0],
        "picket": sh(a.picket, "--version", check=False).stdout.strip(),
        "cpus": os.cpu_count(),
        "kernel": os.uname().release,
    }
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"env": env, "scenarios": results}, f, indent=1)
        f.write("\n")
    print_table(results)


def fmt(v, spec="{:.2f}"):
    return "-" if v is None else spec.format(v)


def print_table(results):
    cols = ["scen", "picket s", "nmap s", "ratio", "goal", "picket RSS MiB", "nmap RSS MiB", "picket exact",
            "nmap exact", "equal"]
    rows = []
    for r in results:
        p, n = r["picket"], r["nmap"]
        rows.append([
            r["id"],
            fmt(p["wall_s"]), fmt(n["wall_s"]), fmt(r.get("time_ratio"), "{:.3f}"),
            ("<= {:.2f} ".format(r["goal_time_ratio"]) + ("ok" if r.get("time_goal_met") else "MISS")),
            fmt(p["rss_kib"] / 1024 if p["rss_kib"] else None, "{:.1f}"),
            fmt(n["rss_kib"] / 1024 if n["rss_kib"] else None, "{:.1f}"),
            {True: "yes", False: "NO"}.get(p.get("exact"), "error"),
            {True: "yes", False: "NO"}.get(n.get("exact"), "error"),
            {True: "yes", False: "NO"}.get(r.get("equal"), "-"),
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(cols, *rows)]
    line = lambda vals: "  ".join(str(v).ljust(w) for v, w in zip(vals, widths))
    print(line(cols))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))
    print()
    for r in results:
        print(f"{r['id']}: {r['desc']}")
        for tool in ("picket", "nmap"):
            x = r[tool]
            if x.get("error"):
                print(f"   {tool}: {x['error']}")
            for d in (x.get("truth_diffs") or [])[:8]:
                print(f"   {tool} vs truth: {d}")
        for d in (r.get("picket_vs_nmap_diffs") or [])[:8]:
            print(f"   picket vs nmap: {d}")


if __name__ == "__main__":
    main()

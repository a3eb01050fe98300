#!/usr/bin/env python3
"""Helpers of bench/platform.sh.

  platform_bench.py sample PID OUT            samples /proc/PID every 0.25 s until PID exits
                                              (lines: unix_time rss_kib cpu_ticks)
  platform_bench.py report LOAD_JSON SAMPLES STORE_BYTES OUT_JSON
                                              lines samples up with the load generator's phases,
                                              prints a table and writes OUT_JSON
"""

import json
import os
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def read_sample(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # Fields after the command name (which may contain spaces) start after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, ticks


def sample(pid, out):
    with open(out, "w") as f:
        # Bounded by the process: ends when /proc/PID disappears (or when killed).
        while True:
            try:
                rss, ticks = read_sample(pid)
            except (FileNotFoundError, ProcessLookupError):
                return
            f.write(f"{time.time():.3f} {rss} {ticks}\n")
            f.flush()
            time.sleep(0.25)


def window(samples, start, end):
    inside = [s for s in samples if start <= s[0] <= end]
    if len(inside) < 2:
        return None
    (t0, _, c0), (t1, _, c1) = inside[0], inside[-1]
    return {
        "cpu_percent": round(100.0 * (c1 - c0) / TICKS / (t1 - t0), 1),
        "rss_max_mib": round(max(s[1] for s in inside) / 1024, 1),
        "rss_end_mib": round(inside[-1][1] / 1024, 1),
    }


def report(load_path, samples_path, store_bytes, out_path):
    with open(load_path) as f:
        load = json.load(f)
    samples = []
    with open(samples_path) as f:
        for line in f:
            t, rss, ticks = line.split()
            samples.append((float(t), int(rss), int(ticks)))
    ph = load["phases"]
    platform = {
        "enroll": window(samples, ph["start"], ph["enrolled"]),
        "idle_with_all_polling": window(samples, ph["connected"], ph["idle_end"]),
        "ingest": window(samples, ph["ingest_start"], ph["ingest_end"]),
        "rss_peak_mib": round(max(s[1] for s in samples) / 1024, 1) if samples else None,
        "store_bytes_after": int(store_bytes),
    }
    result = {"load": load, "platform": platform}
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)
    ing = load["ingest"]
    idle = platform["idle_with_all_polling"] or {}
    during = platform["ingest"] or {}
    rows = [
        ("appliances enrolled", f"{load['appliances']} in {load['enroll_secs']:.1f} s"),
        ("pollers connected", f"{load['pollers_connected']} (poll errors {load['poll_errors']}, reconnects {load['reconnects']})"),
        ("platform idle, all polling", f"{idle.get('cpu_percent')} % CPU, RSS {idle.get('rss_end_mib')} MiB"),
        ("job -> poll latency, idle", f"p50 {load['job_latency_idle']['p50_ms']:.1f} ms, max {load['job_latency_idle']['max_ms']:.1f} ms ({load['job_latency_idle']['probes']} probes)"),
        ("job -> poll latency, ingesting", f"p50 {load['job_latency_during_ingest']['p50_ms']:.1f} ms, p95 {load['job_latency_during_ingest']['p95_ms']:.1f} ms, max {load['job_latency_during_ingest']['max_ms']:.1f} ms ({load['job_latency_during_ingest']['probes']} probes)"),
        ("ingest", f"{ing['findings_per_sec']:.0f} findings/s ({ing['findings_stored']} findings, {ing['chunks_stored']} chunks of {ing['findings_per_chunk']} in {ing['secs']:.1f} s over {ing['connections']} connections)"),
        ("re-sent chunks refused", f"{ing['resent_refused_as_duplicate']} of {ing['resent']} (errors {ing['errors']})"),
        ("complete scans read back exactly", f"{sum(1 for v in ing.get('read_back', []) if v['findings_read_back'] == v['expected'])} of {len(ing.get('read_back', []))}"),
        ("platform during ingest", f"{during.get('cpu_percent')} % CPU (of 200), RSS max {during.get('rss_max_mib')} MiB"),
        ("load generator during ingest", f"{ing['generator_cpu_secs'] / max(ing['secs'], 1e-9) * 100:.0f} % CPU"),
        ("platform RSS peak", f"{platform['rss_peak_mib']} MiB"),
        ("state dir after (store + bodies)", f"{int(store_bytes) / 1048576:.0f} MiB"),
    ]
    width = max(len(r[0]) for r in rows)
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")
    print(f"(figures: {out_path})")


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "sample":
        sample(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 6 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Benchmark of `picket scan web` against wapiti (Debian's 3.0.4) on the project's own vulnerable
# app (webscan/testapp/vulnapp.py): planted vulnerabilities found, look-alikes reported (false
# positives), wall time, peak RSS, and requests counted by the app itself. Both tools run inside a
# network namespace that has nothing but loopback, so neither can reach anything else (wapiti's
# SSRF/XXE callback service and update URLs are on the internet).
#
#   bench/webscan.sh
#
# Env: PICKET_BIN          use this picket binary instead of building target/release/picket
#      BENCH_TOOLS         wapiti,picket (default both)
#      BENCH_MAX_RPS       picket --max-rps (default 200)
#      BENCH_MAX_REQUESTS  picket --max-requests (default 20000)
#      PICKET_WEB_ARGS     extra arguments for `picket scan web`
#      WAPITI_MODULES      wapiti -m list (default: every module that maps to a planted class)
#      BENCH_TIMEOUT_S     per tool (default 3600)
#      WAPITI_FROM         an earlier webscan-results.json: reuse its wapiti figures (wall time,
#                          requests, RSS) and re-score its saved report, instead of a ~40 min run
#      BENCH_STRICT_SESSIONS=1  keep vulnapp's session expiry (300 requests / 600 s); by default
#                          sessions never expire here, because wapiti cannot log in again
# Output: a table on stdout and bench/out/webscan-results.json (reports and logs beside it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[ "$(id -u)" -eq 0 ] || {
    echo "bench: must run as root (network namespace)" >&2
    exit 1
}
for tool in /usr/bin/python3 /usr/bin/time unshare ip; do
    command -v "$tool" >/dev/null || {
        echo "bench: $tool is missing (scripts/install-deps.sh)" >&2
        exit 1
    }
done
if [ -z "${WAPITI_FROM:-}" ]; then
    case ",${BENCH_TOOLS:-wapiti,picket}," in
    *,wapiti,*)
        command -v wapiti >/dev/null || {
            echo "bench: wapiti is missing (scripts/install-deps.sh)" >&2
            exit 1
        }
        ;;
    esac
fi
case ",${BENCH_TOOLS:-wapiti,picket}," in
*,picket,*)
    if [ -z "${PICKET_BIN:-}" ]; then
        echo "bench: building picket (release)" >&2
        nice -n 10 cargo build --release -q -p picket-appliance
        export PICKET_BIN="$ROOT/target/release/picket"
    fi
    ;;
esac

# Only loopback exists in the namespace; it starts down.
exec unshare -n /bin/sh -c 'ip link set lo up && exec /usr/bin/python3 "$1"' sh "$ROOT/bench/webscan_bench.py"

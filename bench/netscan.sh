#!/usr/bin/env bash
# Benchmark of `picket scan net` against nmap on the namespace test network: for each scenario both
# run inside the scanner namespace in the same session; wall time and peak RSS come from GNU time,
# results are compared with each other and with the ground truth.
#
#   bench/netscan.sh [SCENARIO...]     scenarios: a b c d e (default: all)
#
# Env: PICKET_BIN   use this picket binary instead of building target/release/picket
#      BENCH_REPS   runs per tool and scenario (default 1; the median is reported)
#      PICKET_TESTNET  use an already-up test network (STATE_DIR) instead of building one
# Output: a table on stdout and bench/out/results.json.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[ "$(id -u)" -eq 0 ] || {
    echo "bench: must run as root (network namespaces)" >&2
    exit 1
}
command -v nmap >/dev/null || {
    echo "bench: nmap is missing (scripts/install-deps.sh)" >&2
    exit 1
}
[ -x /usr/bin/time ] || {
    echo "bench: GNU time is missing (Debian package time)" >&2
    exit 1
}

if [ -z "${PICKET_BIN:-}" ]; then
    echo "bench: building picket (release)" >&2
    cargo build --release -q -p picket-appliance --bin picket
    PICKET_BIN="$ROOT/target/release/picket"
fi
[ -x "$PICKET_BIN" ] || {
    echo "bench: $PICKET_BIN is not executable" >&2
    exit 1
}

if [ -n "${PICKET_TESTNET:-}" ]; then
    STATE=$PICKET_TESTNET
else
    STATE=$(mktemp -d /tmp/picket-bench-net.XXXXXX)
    export PICKET_TESTNET_PREFIX="pkb$$"
    trap 'netscan/testnet/testnet.sh down "$STATE" >/dev/null 2>&1 || true; rm -rf "$STATE"' EXIT
    netscan/testnet/testnet.sh up "$STATE"
fi

mkdir -p bench/out
python3 bench/netscan_bench.py --state "$STATE" --picket "$PICKET_BIN" --out bench/out \
    --reps "${BENCH_REPS:-1}" "$@"

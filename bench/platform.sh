#!/usr/bin/env bash
# Benchmark of the reference platform against the sync issue's goal: ONE `picket-platform serve`
# process on this machine serving 1,000 simulated appliances that long-poll, while ingesting
# result chunks at >= 20,000 findings/s.
#
#   bench/platform.sh
#
# picket-platform-load (platform/src/bin/picket-platform-load.rs) enrolls every appliance (its own
# device key and client certificate), opens one TLS connection per appliance holding a long-poll
# loop, leaves them idle for a while (the idle cost of the fleet), creates jobs as latency probes
# (time from "create job" to the target appliance's open poll returning it), then uploads 500-
# finding chunks over a few more connections (some re-sent: each re-send must be refused as a
# duplicate) while probing again. bench/platform_bench.py samples the platform process's RSS and
# CPU every 0.25 s from /proc and lines the samples up with the generator's phases.
#
# The load generator runs on the same two cores as the platform: its CPU use is reported too.
#
# Env: PLATFORM_APPLIANCES (1000) PLATFORM_INGEST_SECS (30) PLATFORM_INGEST_CONNS (4)
#      PLATFORM_IDLE_SECS (10) PLATFORM_FINDINGS_PER_CHUNK (500)
#      PLATFORM_BIN / PLATFORM_LOAD_BIN (prebuilt binaries)
# Output: a table on stdout, bench/out/platform-results.json, and the raw samples of the platform
# process (unix time, RSS KiB, CPU ticks) in bench/out/platform-samples.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

APPLIANCES=${PLATFORM_APPLIANCES:-1000}
INGEST_SECS=${PLATFORM_INGEST_SECS:-30}
INGEST_CONNS=${PLATFORM_INGEST_CONNS:-4}
IDLE_SECS=${PLATFORM_IDLE_SECS:-10}
PER_CHUNK=${PLATFORM_FINDINGS_PER_CHUNK:-500}

if [ -z "${PLATFORM_BIN:-}" ] || [ -z "${PLATFORM_LOAD_BIN:-}" ]; then
    echo "bench: building picket-platform and picket-platform-load (release)" >&2
    cargo build --release -q -p picket-platform --bins
    PLATFORM_BIN="$ROOT/target/release/picket-platform"
    PLATFORM_LOAD_BIN="$ROOT/target/release/picket-platform-load"
fi

# One descriptor per appliance connection on each side, plus the store's files.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d /tmp/picket-platform-bench.XXXXXX)
PLATFORM_PID=""
SAMPLER_PID=""
cleanup() {
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
    [ -n "$PLATFORM_PID" ] && kill "$PLATFORM_PID" 2>/dev/null || true
    [ -n "$PLATFORM_PID" ] && wait "$PLATFORM_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/platform.toml" <<TOML
listen = "127.0.0.1:0"
server_names = ["localhost", "127.0.0.1"]
max_connections = 8192
TOML

PICKET_LOG=warn ${PLATFORM_ENV:-} "$PLATFORM_BIN" serve --config "$WORK/platform.toml" --state-dir "$WORK/state" \
    --addr-file "$WORK/addr" 2>"$WORK/platform.log" &
PLATFORM_PID=$!
for _ in $(seq 1 100); do
    [ -s "$WORK/addr" ] && break
    sleep 0.1
done
[ -s "$WORK/addr" ] || {
    echo "bench: the platform did not start:" >&2
    cat "$WORK/platform.log" >&2
    exit 1
}
ADDR=$(cat "$WORK/addr")
echo "bench: platform pid $PLATFORM_PID on $ADDR" >&2

python3 "$ROOT/bench/platform_bench.py" sample "$PLATFORM_PID" "$WORK/samples.txt" &
SAMPLER_PID=$!

"$PLATFORM_LOAD_BIN" --addr "$ADDR" --ca "$WORK/state/ca/ca.pem" --token-file "$WORK/state/admin-token" \
    --appliances "$APPLIANCES" --ingest-secs "$INGEST_SECS" --ingest-conns "$INGEST_CONNS" \
    --idle-secs "$IDLE_SECS" --findings-per-chunk "$PER_CHUNK" >"$WORK/load.json"

kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""
STORE_BYTES=$(du -sb "$WORK/state" | cut -f1)

mkdir -p "$ROOT/bench/out"
cp "$WORK/samples.txt" "$ROOT/bench/out/platform-samples.txt"
python3 "$ROOT/bench/platform_bench.py" report "$WORK/load.json" "$WORK/samples.txt" "$STORE_BYTES" \
    "$ROOT/bench/out/platform-results.json"
if grep -q "ERROR\|panicked" "$WORK/platform.log"; then
    echo "bench: the platform logged errors:" >&2
    grep "ERROR\|panicked" "$WORK/platform.log" | head -20 >&2
    exit 1
fi

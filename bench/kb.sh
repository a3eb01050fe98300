#!/usr/bin/env bash
# Benchmark of the vulnerability knowledge base and host matching, with the host-scanning
# issue's goals: `picket kb import` of a 200,000-record osv.dev-style corpus (wall time, peak RSS,
# store size vs the zipped input), an idempotent re-import, `kb status`, and `picket scan host`
# against the SSH lab's deb host (this machine's own packages) and its 50 fleet addresses, with
# OpenSSH running the same package query as the baseline.
#
#   bench/kb.sh [PHASE...]     phases: import status scan (default: all)
#
# The corpus comes from bench/gen_osv.py (with --host-packages, so that this machine's source
# packages have advisories around their installed versions); it is cached in KB_CORPUS.
#
# Env: PICKET_BIN      use this picket binary instead of building target/release/picket
#      KB_RECORDS      corpus size (default 200000)       KB_SEED  corpus seed (default 1)
#      KB_MALFORMED    broken records added (default 0)
#      KB_CORPUS       corpus directory (default /tmp/picket-kb-corpus-RECORDS-SEED; reused when
#                      its manifest matches, regenerated otherwise)
#      KB_WORK         work directory holding the store (default: a fresh temporary one)
#      BENCH_REPS      host-scan runs per measurement (default 1; the median is reported)
#      KB_SCAN_USER    login user of the host scans (default picket, the SSH lab's user, with
#                      --sudo). Not root by default: the deb host is this machine, and root's
#                      ~/.bashrc here runs `pyenv init` in every SSH session (bash reads it for
#                      sshd's commands), ~0.4 s each and, 32 sessions at a time, minutes of
#                      `pyenv rehash` lock waits: it would measure this machine's dotfiles.
#      PICKET_TESTNET  use an already-up test network (STATE_DIR) instead of building one
# Output: a table on stdout and bench/out/kb-results.json. The scan phase needs root (network
# namespaces); import and status do not.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PHASES=("$@")
[ ${#PHASES[@]} -gt 0 ] || PHASES=(import status scan)
want_scan=0
for p in "${PHASES[@]}"; do
    case "$p" in
        import | status) ;;
        scan) want_scan=1 ;;
        *)
            echo "bench: unknown phase '$p' (import, status, scan)" >&2
            exit 2
            ;;
    esac
done

[ -x /usr/bin/time ] || {
    echo "bench: GNU time is missing (Debian package time)" >&2
    exit 1
}
if [ "$want_scan" -eq 1 ] && [ "$(id -u)" -ne 0 ]; then
    echo "bench: the scan phase must run as root (network namespaces)" >&2
    exit 1
fi

if [ -z "${PICKET_BIN:-}" ]; then
    echo "bench: building picket (release)" >&2
    cargo build --release -q -p picket-appliance --bin picket
    PICKET_BIN="$ROOT/target/release/picket"
fi
[ -x "$PICKET_BIN" ] || {
    echo "bench: $PICKET_BIN is not executable" >&2
    exit 1
}

RECORDS=${KB_RECORDS:-200000}
SEED=${KB_SEED:-1}
MALFORMED=${KB_MALFORMED:-0}
CORPUS=${KB_CORPUS:-/tmp/picket-kb-corpus-$RECORDS-$SEED}
if ! python3 - "$CORPUS/MANIFEST" "$RECORDS" "$SEED" "$MALFORMED" <<'EOF'; then
import json, sys
try:
    m = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit(1)
ok = (m.get("records") == int(sys.argv[2]) and m.get("seed") == int(sys.argv[3])
      and m["total"]["malformed"] == int(sys.argv[4]) and m.get("host_packages", 0) > 0)
sys.exit(0 if ok else 1)
EOF
    echo "bench: generating $RECORDS OSV records (seed $SEED) in $CORPUS" >&2
    rm -rf "$CORPUS"
    python3 bench/gen_osv.py "$CORPUS" --records "$RECORDS" --seed "$SEED" --malformed "$MALFORMED" \
        --host-packages >&2
else
    echo "bench: reusing the corpus in $CORPUS" >&2
fi

CLEANUP=()
cleanup() {
    local c
    for c in "${CLEANUP[@]}"; do eval "$c" || true; done
}
trap cleanup EXIT

if [ -n "${KB_WORK:-}" ]; then
    WORK=$KB_WORK
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d /tmp/picket-bench-kb.XXXXXX)
    CLEANUP+=("rm -rf '$WORK'")
fi

STATE_ARGS=()
if [ "$want_scan" -eq 1 ]; then
    if [ -n "${PICKET_TESTNET:-}" ]; then
        STATE=$PICKET_TESTNET
    else
        STATE=$(mktemp -d /tmp/picket-bench-net.XXXXXX)
        export PICKET_TESTNET_PREFIX="pkk$$"
        # Runs before the work directory is removed (cleanup goes in order).
        CLEANUP=("netscan/testnet/testnet.sh down '$STATE' >/dev/null 2>&1; rm -rf '$STATE'" "${CLEANUP[@]}")
        netscan/testnet/testnet.sh up "$STATE" >&2
    fi
    STATE_ARGS=(--state "$STATE")
fi

mkdir -p bench/out
python3 bench/kb_bench.py --picket "$PICKET_BIN" --corpus "$CORPUS" --work "$WORK" --out bench/out \
    --reps "${BENCH_REPS:-1}" --user "${KB_SCAN_USER:-picket}" "${STATE_ARGS[@]}" "${PHASES[@]}"

#!/usr/bin/env bash
# Picket's main job on its embedded default: build the release binary, bring up the repository's own
# test network (real daemons in network namespaces, 198.18.0.0/24, no route anywhere else), scan it
# from the scanner namespace, import the repository's OSV fixtures and inventory the SSH lab's Debian
# host over SSH, list the stored scan history, and tear everything down.
#
#   scripts/demo.sh            # as root; installs the test network's Debian packages on first use
#   scripts/demo.sh --json     # the JSON report instead of the table
#
# Needs root: namespaces and raw sockets. Packets never leave the namespaces this script creates.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
format=table
[ "${1:-}" = "--json" ] && format=json

if [ "$(id -u)" -ne 0 ]; then
    echo "demo: must run as root (network namespaces, raw sockets)" >&2
    exit 2
fi
command -v nginx >/dev/null && command -v sshd >/dev/null || scripts/install-deps.sh
cargo build --release -p picket-appliance >&2

STATE=$(mktemp -d /tmp/picket-demo.XXXXXX)
# The test network's daemons drop privileges and must traverse this directory.
chmod 755 "$STATE"
export PICKET_TESTNET_PREFIX="pkdemo$$"
trap 'netscan/testnet/testnet.sh down "$STATE/net" >/dev/null 2>&1 || true; rm -rf "$STATE"' EXIT
netscan/testnet/testnet.sh up "$STATE/net" >&2

picket() {
    netscan/testnet/testnet.sh exec "$STATE/net" "$ROOT/target/release/picket" --state-dir "$STATE/store" "$@"
}

echo "== picket scan net 198.18.0.0/24 --udp-ports 53,161 (run inside the test network's scanner namespace)" >&2
picket scan net 198.18.0.0/24 --udp-ports 53,161 --format "$format"
echo "== picket kb import: the repository's OSV fixtures, and test advisories written around this machine's installed versions (kb/testdata/host-corpus)" >&2
dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\t${db:Status-Abbrev}\n' >"$STATE/dpkg.txt"
/usr/bin/python3 kb/testdata/host-corpus/gen.py "$STATE/dpkg.txt" "$STATE/corpus" >&2
picket -q kb import "$ROOT/kb/testdata/osv" "$STATE/corpus/advisories" --format table
echo "== picket scan host ssh://root@198.18.0.30 (the SSH lab's deb host: this machine's own packages)" >&2
picket scan host ssh://root@198.18.0.30 --identity "$STATE/net/sshlab/client/id_ed25519" \
    --trust-on-first-use --format "$format"
echo "== picket scans list (the history kept in the store)" >&2
picket scans list --format table

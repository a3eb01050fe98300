#!/usr/bin/env bash
# Installs every Debian package Picket's tests and benchmark need: the daemons of the namespace test
# network (netscan/testnet/testnet.sh), nmap for the benchmark, and the tools both use.
#
# Debian starts a service as soon as its package is installed; on a test machine that would bind
# ports in the root namespace and hold /var/run files the test network does not expect. A
# policy-rc.d that answers 101 ("action forbidden") stops that. An existing policy-rc.d is put
# back afterwards; one this script created is left in place (harmless on a CI machine, and it keeps
# later installs quiet too).
set -euo pipefail

PACKAGES=(
    # test network plumbing
    iproute2 nftables procps util-linux libcap2-bin
    # daemons of the test network
    openssh-server openssh-client nginx redis-server memcached vsftpd dnsmasq-base snmpd postfix openssl
    # scripts, hostile test services, ground truth
    python3 bash coreutils
    # PEP 440 reference for kb's pep440 oracle test (packaging.version, seen by /usr/bin/python3)
    python3-packaging
    # Maven's ComparableVersion (maven3-artifact.jar) and a JRE for kb's maven oracle test
    default-jre-headless libmaven3-core-java
    # benchmark
    nmap time
    # webscan benchmark baseline (bench/webscan.sh); the webscan test apps need only python3
    wapiti
    # building the workspace
    build-essential pkg-config ca-certificates curl git
    # reference implementations for kb's version-ordering oracle tests (dpkg --compare-versions, rpm.labelCompare)
    dpkg python3-rpm
    # SSH lab of the test network (netscan/testnet/sshlab.sh): sudo for the sudo checks, rpmbuild and
    # rpm for the Rocky host's package database
    sudo rpm
    # platform console browser test (platform/tests/browser.rs): headless Chromium driven by
    # chromedriver through Debian's Selenium (/usr/bin/python3)
    chromium chromium-driver python3-selenium
    # appliance daemon tests (appliance/tests/daemon.rs): an HTTP CONNECT proxy with Basic auth
    tinyproxy
    # console tests (appliance/tests/console.rs): systemd-networkd applies the files `picket
    # console` writes (in a namespace of its own); `script` gives the console a terminal
    systemd bsdutils
    # appliance image (image/build.sh) and its QEMU tests (qemu-tests/run.py): root file system,
    # squashfs + dm-verity, UKI stub and boot loader, ESP and GPT tools, OVMF, swtpm for the TPM test
    mmdebstrap squashfs-tools cryptsetup-bin dosfstools mtools fdisk binutils zstd systemd-boot-efi
    qemu-system-x86 qemu-utils ovmf swtpm swtpm-tools
)

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: must run as root" >&2
    exit 1
fi

POLICY=/usr/sbin/policy-rc.d
backup=""
if [ -e "$POLICY" ]; then
    backup=$(mktemp)
    cp -p "$POLICY" "$backup"
fi
restore_policy() {
    if [ -n "$backup" ]; then
        cp -p "$backup" "$POLICY"
        rm -f "$backup"
    fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# Installed by picket scripts/install-deps.sh: no service starts on install.\nexit 101\n' >"$POLICY"
chmod 755 "$POLICY"

export DEBIAN_FRONTEND=noninteractive
# Postfix would otherwise ask how to deliver mail; the test network runs it with its own config.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string picket.test" | debconf-set-selections

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}" >&2
    apt-get update -q
    apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold "${missing[@]}"
else
    echo "install-deps: all Debian packages present" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps: cargo is missing; install a Rust toolchain (rustup, rust-version in Cargo.toml)" >&2
    exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

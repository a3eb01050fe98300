#!/usr/bin/env bash
# Turns the mmdebstrap tree into the appliance root: overlays image/rootfs (the one copy of every
# unit and config, shared with the Yocto layer), installs picket, creates the service account,
# enables and masks units, locks root, and moves the kernel and initramfs out (they go into the
# UKI, never into the verity-protected root). Writes a package list and the units' security
# scores next to the kernel.
#
#   customize.sh ROOTFS PICKET_BINARY REPO BOOT_OUT
set -euo pipefail

ROOTFS=$1
BIN=$2
REPO=$3
BOOT=$4
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$BOOT"

# Overlay: files keep their modes, owned by root.
cp -r --preserve=mode,timestamps --no-preserve=ownership "$HERE/rootfs/." "$ROOTFS/"
chown -R root:root "$ROOTFS/etc/systemd" "$ROOTFS/usr/lib/picket" "$ROOTFS/etc/initramfs-tools"

# The binary, stripped (the release build keeps symbols; the image does not need them).
strip --strip-all -o "$ROOTFS/usr/bin/picket" "$BIN"
chmod 0755 "$ROOTFS/usr/bin/picket"
sha256sum "$ROOTFS/usr/bin/picket" | cut -d' ' -f1 >"$BOOT/picket.sha256"
if "$ROOTFS/usr/bin/picket" console --help >/dev/null 2>&1; then echo 1; else echo 0; fi >"$BOOT/has-console"
mkdir -p "$ROOTFS/usr/share/doc/picket"
[ -f "$REPO/SECURITY_FEATURES.md" ] && cp "$REPO/SECURITY_FEATURES.md" "$ROOTFS/usr/share/doc/picket/"

# No way in: root locked and without a shell; no getty anywhere; no debug or rescue shells.
chroot "$ROOTFS" usermod --lock --shell /usr/sbin/nologin root
rm -f "$ROOTFS/etc/systemd/system/getty.target.wants/getty@tty1.service"
systemctl --root="$ROOTFS" mask --quiet \
    getty@.service serial-getty@.service autovt@.service console-getty.service \
    container-getty@.service debug-shell.service emergency.service rescue.service \
    systemd-firstboot.service \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer dpkg-db-backup.timer dpkg-db-backup.service
# Kernel interfaces and boot-time jobs an appliance does not use: less to attack, and each costs
# boot time under emulation.
systemctl --root="$ROOTFS" mask --quiet \
    dev-hugepages.mount dev-mqueue.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
    sys-fs-fuse-connections.mount sys-kernel-config.mount proc-sys-fs-binfmt_misc.automount \
    systemd-binfmt.service systemd-pstore.service kmod-static-nodes.service \
    modprobe@drm.service modprobe@fuse.service modprobe@loop.service modprobe@configfs.service \
    modprobe@efi_pstore.service systemd-update-utmp.service systemd-update-utmp-runlevel.service \
    systemd-journal-catalog-update.service systemd-machine-id-commit.service ldconfig.service \
    systemd-hwdb-update.service systemd-boot-system-token.service
systemctl --root="$ROOTFS" enable --quiet \
    systemd-networkd.service systemd-resolved.service systemd-timesyncd.service \
    nftables.service picket-daemon.service picket-network-config.service \
    picket-console@tty1.service picket-console@ttyS0.service
systemctl --root="$ROOTFS" set-default --quiet multi-user.target

# No set-user-id or set-group-id programs: nobody logs in, and the services run with
# NoNewPrivileges, so they could only ever help an attacker who already runs code here.
find "$ROOTFS" -xdev -type f -perm /6000 -exec chmod ug-s {} +

# Identity: the machine id is generated per boot into /run (empty file on a read-only /etc);
# names resolve through resolved's stub.
: >"$ROOTFS/etc/machine-id"
echo picket >"$ROOTFS/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tpicket\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOTFS/etc/hosts"
ln -sf ../run/systemd/resolve/stub-resolv.conf "$ROOTFS/etc/resolv.conf"

# Kernel and initramfs leave the root: they are measured into the UKI instead.
kver=$(basename "$(ls -d "$ROOTFS"/lib/modules/*)")
echo "$kver" >"$BOOT/kver"
cp "$ROOTFS/boot/vmlinuz-$kver" "$BOOT/vmlinuz"
cp "$ROOTFS/boot/initrd.img-$kver" "$BOOT/initrd.img"
rm -rf "${ROOTFS:?}/boot/"*

# What is installed, for the manifest and for anyone auditing the image.
chroot "$ROOTFS" dpkg-query -W -f='${Package}=${Version}\n' | sort >"$BOOT/packages.txt"
mkdir -p "$ROOTFS/usr/share/picket"
cp "$BOOT/packages.txt" "$ROOTFS/usr/share/picket/packages.txt"

# Leftovers that differ between two builds or that nobody needs at run time (/var is hidden under
# the data partition anyway; dpkg's database stays for audits).
rm -rf "$ROOTFS"/var/log/* "$ROOTFS"/var/cache/* "$ROOTFS"/var/lib/apt/lists/* \
    "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/lib/dpkg/*-old \
    "$ROOTFS"/etc/passwd- "$ROOTFS"/etc/group- "$ROOTFS"/etc/shadow- "$ROOTFS"/etc/gshadow- \
    "$ROOTFS"/tmp/* "$ROOTFS"/run/*
# Password-age fields hold "days since epoch" of the build day; pin them to SOURCE_DATE_EPOCH.
day=$((SOURCE_DATE_EPOCH / 86400))
sed -i -E "s/^([^:]*:[^:]*:)[0-9]+:/\1$day:/" "$ROOTFS/etc/shadow"

# Security exposure of every service we ship, as systemd scores it.
{
    for unit in picket-daemon.service picket-console@ttyS0.service picket-network-config.service; do
        echo "== $unit"
        systemd-analyze security --offline=true --root="$ROOTFS" --no-pager "$unit" 2>&1 | tail -n 3 || true
    done
} >"$BOOT/security.txt"

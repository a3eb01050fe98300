#!/usr/bin/env bash
# Builds the Picket appliance disk image: picket.raw, picket.qcow2 and picket.vmdk in the output
# directory (default image/out), from Debian 12 packages (mmdebstrap) and the release `picket`.
#
#   image/build.sh [OUT_DIR]
#
# Layout (GPT, fixed identities in rootfs/usr/lib/picket/partitions.env):
#   1 ESP      systemd-boot + one UKI per slot (kernel, initramfs, command line with the root hash)
#   2 root A   squashfs + dm-verity hash tree (no superblock: every parameter is in the UKI)
#   3 root B   empty until the first update
#   4 data     placeholder; on first boot grown to the end of the disk, LUKS2 + ext4, mounted at /var
#
# Environment:
#   SOURCE_DATE_EPOCH        timestamps of everything built (default: the last commit's time)
#   PICKET_BINARY            the picket binary to install (default target/release/picket, built
#                            with `cargo build --release -p picket-appliance` when missing)
#   PICKET_REBUILD_BINARY=1  rebuild target/release/picket even if present
#   PICKET_IMAGE_CACHE       downloaded .debs are kept here (default /var/cache/picket-image)
#   PICKET_MIRROR            Debian mirror (default http://deb.debian.org/debian)
#   PICKET_KERNEL            kernel package (default linux-image-cloud-amd64, see README.md)
#   PICKET_VERIFY            full (default: the initramfs reads the whole root through dm-verity
#                            before mounting it) or lazy (blocks are checked only when read)
#
# Needs root (mmdebstrap in root mode, loop-free: partitions are written into the file with dd).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=$(mkdir -p "${1:-$HERE/out}" && cd "${1:-$HERE/out}" && pwd)
CACHE=${PICKET_IMAGE_CACHE:-/var/cache/picket-image}
MIRROR=${PICKET_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${PICKET_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
KERNEL_PKG=${PICKET_KERNEL:-linux-image-cloud-amd64}
SUITE=bookworm

if [ "$(id -u)" -ne 0 ]; then
    echo "image/build.sh: must run as root" >&2
    exit 1
fi
for tool in mmdebstrap mksquashfs veritysetup sfdisk mkfs.vfat mcopy mmd objcopy qemu-img zstd; do
    command -v "$tool" >/dev/null || { echo "image/build.sh: $tool missing (scripts/install-deps.sh)" >&2; exit 1; }
done
STUB=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
BOOTLOADER=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
[ -f "$STUB" ] && [ -f "$BOOTLOADER" ] || { echo "image/build.sh: systemd-boot-efi missing" >&2; exit 1; }

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || echo 1700000000)
fi
export SOURCE_DATE_EPOCH
export LC_ALL=C.UTF-8 TZ=UTC

# shellcheck source=rootfs/usr/lib/picket/partitions.env
. "$HERE/rootfs/usr/lib/picket/partitions.env"

# Partition sizes in MiB. Root slots hold the squashfs plus its hash tree (~1%).
ESP_MB=64
ROOT_MB=${PICKET_ROOT_MB:-128}
DATA_MB=16

t0=$(date +%s)
step() { echo "image: [$(($(date +%s) - t0))s] $*" >&2; }

WORK=$(mktemp -d /var/tmp/picket-image.XXXXXX)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
ROOTFS="$WORK/rootfs"

# --- the picket binary -------------------------------------------------------------------------
BIN=${PICKET_BINARY:-$REPO/target/release/picket}
if [ -z "${PICKET_BINARY:-}" ] && { [ ! -x "$BIN" ] || [ "${PICKET_REBUILD_BINARY:-0}" = 1 ]; }; then
    step "building the release binary"
    (cd "$REPO" && nice -n 10 cargo build --release -p picket-appliance)
fi
[ -x "$BIN" ] || { echo "image/build.sh: no picket binary at $BIN" >&2; exit 1; }
step "picket binary: $BIN ($(date -u -r "$BIN" +%FT%TZ))"

# --- root file system ---------------------------------------------------------------------------
# variant=essential: Essential:yes packages plus the list below, installed by mmdebstrap's own apt
# from outside, so the image carries no apt. The kernel is the cloud flavour: virtio, Hyper-V,
# Xen and NVMe drivers without the thousands of modules for hardware a VM never has (a physical
# box build sets PICKET_KERNEL=linux-image-amd64).
PACKAGES=(
    systemd systemd-sysv udev dbus systemd-resolved systemd-timesyncd
    "$KERNEL_PKG" initramfs-tools zstd kmod
    cryptsetup-bin e2fsprogs fdisk
    libtss2-esys-3.0.2-0 libtss2-mu0 libtss2-rc0 libtss2-tcti-device0
    nftables ca-certificates
)
mkdir -p "$CACHE/debs"
step "mmdebstrap ($SUITE, ${#PACKAGES[@]} packages + essential)"
include=$(IFS=,; echo "${PACKAGES[*]}")
mmdebstrap --variant=essential --mode=root --format=directory \
    --include="$include" \
    --aptopt='Acquire::Languages "none"' \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --dpkgopt='path-exclude=/usr/share/bug/*' \
    --skip=download/empty --skip=essential/unlink \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
    --setup-hook="sync-in '$CACHE/debs' /var/cache/apt/archives/" \
    --essential-hook="mkdir -p \"\$1\"/etc/initramfs-tools" \
    --essential-hook="sync-in '$HERE/rootfs/etc/initramfs-tools' /etc/initramfs-tools" \
    --customize-hook="sync-out /var/cache/apt/archives '$CACHE/debs'" \
    --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb "$1"/var/cache/apt/archives/lock; rm -rf "$1"/var/cache/apt/archives/partial' \
    "$SUITE" "$ROOTFS" \
    "deb $MIRROR $SUITE main" \
    "deb $MIRROR $SUITE-updates main" \
    "deb $SECURITY_MIRROR $SUITE-security main" >"$WORK/mmdebstrap.log" 2>&1 ||
    { tail -40 "$WORK/mmdebstrap.log" >&2; exit 1; }

step "customizing the root"
"$HERE/customize.sh" "$ROOTFS" "$BIN" "$REPO" "$WORK/boot"

# --- root image and its hash tree ----------------------------------------------------------------
step "squashfs"
# SOURCE_DATE_EPOCH (exported) sets the superblock and every inode time.
mksquashfs "$ROOTFS" "$WORK/root.squashfs" -noappend -quiet -no-progress \
    -comp zstd -Xcompression-level 15 -b 131072 -no-xattrs \
    -reproducible \
    -processors 2 >/dev/null
data_bytes=$(stat -c %s "$WORK/root.squashfs")
if [ $((data_bytes % 4096)) -ne 0 ]; then
    echo "image/build.sh: squashfs not padded to 4 KiB ($data_bytes)" >&2
    exit 1
fi
data_blocks=$((data_bytes / 4096))
# A fixed salt keeps the root hash a function of the image content alone (reproducibility); the
# salt only matters against precomputed attacks across many images, which a per-release value
# defeats as well as a random one.
salt=$(printf 'picket-root-%s' "$SOURCE_DATE_EPOCH" | sha256sum | cut -c1-64)
cp "$WORK/root.squashfs" "$WORK/rootA.img"
veritysetup format --no-superblock --hash=sha256 --data-block-size=4096 --hash-block-size=4096 \
    --data-blocks="$data_blocks" --hash-offset="$data_bytes" --salt="$salt" \
    "$WORK/rootA.img" "$WORK/rootA.img" >"$WORK/verity.txt"
roothash=$(sed -n 's/^Root hash:[[:space:]]*//p' "$WORK/verity.txt")
[ ${#roothash} -eq 64 ] || { cat "$WORK/verity.txt" >&2; exit 1; }
slot_bytes=$(stat -c %s "$WORK/rootA.img")
if [ "$slot_bytes" -gt $((ROOT_MB * 1024 * 1024)) ]; then
    echo "image/build.sh: root image ($slot_bytes bytes) exceeds the ${ROOT_MB} MiB slot" >&2
    exit 1
fi
step "root: squashfs $data_bytes bytes, with hash tree $slot_bytes bytes, root hash $roothash"

# --- UKI -------------------------------------------------------------------------------------------
# The command line is part of the UKI: the root hash is bound to the boot entry. systemd-boot runs
# with editor off, so nothing typed at boot replaces it.
kver=$(cat "$WORK/boot/kver")
cmdline=(
    "root=/dev/mapper/picket-root" "rootfstype=squashfs" "ro"
    "picket.root=PARTUUID=$PICKET_ROOT_A_UUID" "picket.roothash=$roothash" "picket.salt=$salt"
    "picket.datablocks=$data_blocks" "picket.hashoffset=$data_bytes" "picket.slot=a"
    "picket.verify=${PICKET_VERIFY:-full}"
    "console=tty1" "console=ttyS0,115200"
    # Fail closed: an initramfs error reboots (initramfs-tools' panic with panic=), never a shell.
    "panic=10" "oops=panic"
    "systemd.gpt_auto=0" "systemd.show_status=error" "loglevel=4"
    # Under a loaded emulator the kernel's IO-APIC timer check can fail spuriously and stop the
    # boot (seen here: "8254 timer not connected to IO-APIC"); cloud images skip it likewise.
    "no_timer_check"
    # Kernel hardening.
    "lockdown=integrity" "module.sig_enforce=1" "slab_nomerge" "init_on_alloc=1"
    "page_alloc.shuffle=1" "randomize_kstack_offset=on" "vsyscall=none" "debugfs=off"
    "pti=on" "mitigations=auto"
)
printf '%s ' "${cmdline[@]}" | sed 's/ $//' >"$WORK/cmdline.txt"
{
    grep -v -e '^PRETTY_NAME=' -e '^NAME=' -e '^ID=' "$ROOTFS/usr/lib/os-release"
    echo 'NAME="Picket appliance"'
    echo 'ID=picket'
    echo 'ID_LIKE=debian'
    echo "PRETTY_NAME=\"Picket appliance (slot a, Debian 12, kernel $kver)\""
    echo "IMAGE_VERSION=$SOURCE_DATE_EPOCH"
} >"$WORK/os-release"
# The classic systemd-stub section layout (systemd 252, no ukify in bookworm).
objcopy \
    --add-section .osrel="$WORK/os-release" --change-section-vma .osrel=0x20000 \
    --add-section .cmdline="$WORK/cmdline.txt" --change-section-vma .cmdline=0x30000 \
    --add-section .linux="$WORK/boot/vmlinuz" --change-section-vma .linux=0x2000000 \
    --add-section .initrd="$WORK/boot/initrd.img" --change-section-vma .initrd=0x3000000 \
    "$STUB" "$WORK/picket-a.efi"
step "UKI: $(stat -c %s "$WORK/picket-a.efi") bytes (kernel $kver)"

# --- ESP ---------------------------------------------------------------------------------------------
mkdir -p "$WORK/esp"
cat >"$WORK/esp/loader.conf" <<'EOF'
default picket-a.efi
timeout 0
editor no
auto-entries no
auto-firmware no
EOF
find "$WORK/esp" "$WORK/picket-a.efi" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
truncate -s "${ESP_MB}M" "$WORK/esp.img"
mkfs.vfat -F 32 -S 512 -s 1 -n PICKET-ESP -i 5049434b --invariant "$WORK/esp.img" >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$WORK/esp.img" ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/EFI/Linux ::/loader
mcopy -m -i "$WORK/esp.img" "$BOOTLOADER" ::/EFI/BOOT/BOOTX64.EFI
mcopy -m -i "$WORK/esp.img" "$BOOTLOADER" ::/EFI/systemd/systemd-bootx64.efi
mcopy -m -i "$WORK/esp.img" "$WORK/esp/loader.conf" ::/loader/loader.conf
mcopy -m -i "$WORK/esp.img" "$WORK/picket-a.efi" ::/EFI/Linux/picket-a.efi

# --- disk ---------------------------------------------------------------------------------------------
step "assembling the disk"
MB=$((1024 * 1024))
esp_start=1
a_start=$((esp_start + ESP_MB))
b_start=$((a_start + ROOT_MB))
d_start=$((b_start + ROOT_MB))
disk_mb=$((d_start + DATA_MB + 1))
RAW="$WORK/picket.raw"
rm -f "$RAW"
truncate -s "${disk_mb}M" "$RAW"
sfdisk --quiet "$RAW" <<EOF
label: gpt
label-id: $PICKET_DISK_GUID
unit: sectors
first-lba: 2048
start=$((esp_start * 2048)), size=$((ESP_MB * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$PICKET_ESP_UUID, name="esp"
start=$((a_start * 2048)), size=$((ROOT_MB * 2048)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$PICKET_ROOT_A_UUID, name="root-a"
start=$((b_start * 2048)), size=$((ROOT_MB * 2048)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$PICKET_ROOT_B_UUID, name="root-b"
start=$((d_start * 2048)), size=$((DATA_MB * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$PICKET_DATA_UUID, name="data"
EOF
dd if="$WORK/esp.img" of="$RAW" bs=1M seek="$esp_start" conv=notrunc,sparse status=none
dd if="$WORK/rootA.img" of="$RAW" bs=1M seek="$a_start" conv=notrunc,sparse status=none

step "converting to qcow2 and vmdk"
qemu-img convert -f raw -O qcow2 -c "$RAW" "$WORK/picket.qcow2"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$RAW" "$WORK/picket.vmdk"

# --- manifest ---------------------------------------------------------------------------------------
root_sha=$(sha256sum "$WORK/rootA.img" | cut -d' ' -f1)
squash_sha=$(sha256sum "$WORK/root.squashfs" | cut -d' ' -f1)
mv "$RAW" "$WORK/picket.qcow2" "$WORK/picket.vmdk" "$OUT/"
cp "$WORK/picket-a.efi" "$WORK/cmdline.txt" "$OUT/"
cp "$WORK/boot/packages.txt" "$OUT/packages.txt"
cp "$WORK/boot/security.txt" "$OUT/systemd-analyze-security.txt" 2>/dev/null || true
cat >"$OUT/manifest.env" <<EOF
# Written by image/build.sh; read by qemu-tests.
SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH
KERNEL_VERSION=$kver
KERNEL_PACKAGE=$KERNEL_PKG
ROOT_HASH=$roothash
ROOT_SALT=$salt
ROOT_DATA_BYTES=$data_bytes
ROOT_SLOT_BYTES=$slot_bytes
ROOT_IMAGE_SHA256=$root_sha
SQUASHFS_SHA256=$squash_sha
ROOT_A_START_MIB=$a_start
ROOT_MB=$ROOT_MB
DISK_MB=$disk_mb
PICKET_BINARY_SHA256=$(cat "$WORK/boot/picket.sha256")
PICKET_HAS_CONSOLE=$(cat "$WORK/boot/has-console")
BUILD_SECONDS=$(($(date +%s) - t0))
EOF
cat "$OUT/manifest.env" | sed 's/^/image:   /' >&2
ls -l "$OUT" >&2
step "done"

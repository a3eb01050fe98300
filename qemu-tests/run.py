#!/usr/bin/env python3
"""The appliance image's tests: boots image/out/picket.raw in QEMU (OVMF, KVM or TCG) and checks
what SECURITY_FEATURES.md promises, each test a PASS or FAIL with the reason and the figures.

    qemu-tests/run.py [--image-dir image/out] [--only boot,portscan,...] [--keep]

Needs root (network namespace, tap device). The last line is "N passed, N failed".
Serial logs of every boot are kept in the scratch directory it prints (removed unless --keep or a
test failed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import picketvm  # noqa: E402
from picketvm import VM, TestNet, overlay, run  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PROMPT = r"Choice \[1-5\]: "
MARKER = r"picket-console: starting on ttyS0"
BOOT_BUDGET_S = 60.0
BOOT_TIMEOUT_S = 240.0
MEMORY_MB = 1024


class Failure(Exception):
    """A test's expectation did not hold; the message is the reason shown."""


class Ctx:
    def __init__(self, image_dir: Path, work: Path) -> None:
        self.image_dir = image_dir
        self.raw = image_dir / "picket.raw"
        self.work = work
        self.manifest = picketvm.read_manifest(image_dir)
        self.has_console = self.manifest.get("PICKET_HAS_CONSOLE") == "1"
        self.ready = PROMPT if self.has_console else MARKER
        self.figures: dict[str, object] = {}

    def ready_name(self) -> str:
        return "the setup prompt" if self.has_console else \
            "the console unit's start marker (this picket has no `console` command yet)"

    def subdir(self, name: str) -> Path:
        d = self.work / name
        d.mkdir(parents=True, exist_ok=True)
        return d


def boot_to_ready(vm: VM, ctx: Ctx, what: str) -> float:
    vm.start()
    m = vm.wait_for(ctx.ready, BOOT_TIMEOUT_S)
    if m is None:
        tail = vm.text()[-1500:]
        raise Failure(f"{what}: no {ctx.ready_name()} within {BOOT_TIMEOUT_S:.0f} s "
                      f"(QEMU {'running' if vm.alive() else 'exited'}); serial tail:\n{tail}")
    return vm.elapsed()


def no_way_in(text: str, what: str) -> None:
    for bad in ("login:", "Give root password", "emergency mode", "(initramfs)", "maintenance"):
        if bad in text:
            raise Failure(f"{what}: the serial line offered a way in ({bad!r})")


# -- tests ------------------------------------------------------------------------------------------

def test_boot(ctx: Ctx) -> str:
    """First boot (creates the encrypted data partition) and second boot, each to the console,
    in a 1 GiB VM, each within the budget."""
    work = ctx.subdir("boot")
    disk = overlay(ctx.raw, work, "disk")
    vm = VM(disk, work, "first", memory_mb=MEMORY_MB)
    try:
        first = boot_to_ready(vm, ctx, "first boot")
        if "picket-data: data partition ready" not in vm.text():
            raise Failure("first boot: the data partition was not created "
                          "('picket-data: data partition ready' missing)")
        no_way_in(vm.text(), "first boot")
    finally:
        vm.kill()
    vm = VM(disk, work, "second", memory_mb=MEMORY_MB)
    try:
        second = boot_to_ready(vm, ctx, "second boot")
        text = vm.text()
        if "picket-data: unlocked" not in text or "first boot: creating" in text:
            raise Failure("second boot: the data partition was not simply unlocked")
        no_way_in(text, "second boot")
    finally:
        vm.kill()
    ctx.figures["boot_first_s"] = round(first, 1)
    ctx.figures["boot_second_s"] = round(second, 1)
    ctx.figures["accelerator"] = picketvm.accelerator()
    slow = [f"{n} {t:.1f} s" for n, t in (("first", first), ("second", second)) if t > BOOT_BUDGET_S]
    if slow:
        raise Failure(f"boot to {ctx.ready_name()} over {BOOT_BUDGET_S:.0f} s: {', '.join(slow)} "
                      f"({picketvm.accelerator()}, {MEMORY_MB} MiB)")
    return (f"{ctx.ready_name()} after {first:.1f} s (first boot, data partition created) and "
            f"{second:.1f} s (second boot), {picketvm.accelerator()}, {MEMORY_MB} MiB RAM")


def nmap_xml(net: TestNet, args: list[str], timeout: float) -> ET.Element:
    out = run(net.exec_argv(["nmap", "-n", "-oX", "-", *args]), timeout=timeout)
    return ET.fromstring(out.stdout)


def open_ports(root: ET.Element) -> list[str]:
    found = []
    for port in root.iter("port"):
        state = port.find("state")
        if state is not None and state.get("state") == "open":
            found.append(f"{port.get('protocol')}/{port.get('portid')} ({state.get('reason')})")
    return found


def test_portscan(ctx: Ctx) -> str:
    """From the test network, nmap finds the appliance (ARP) but no open TCP or UDP port."""
    work = ctx.subdir("portscan")
    disk = overlay(ctx.raw, work, "disk")
    net = TestNet(work)
    vm = VM(disk, work, "scan", memory_mb=MEMORY_MB, net=net)
    listener = None
    try:
        boot_to_ready(vm, ctx, "boot")
        if not net.wait_lease(90):
            raise Failure(f"the appliance took no DHCP lease for {picketvm.APPLIANCE_ADDR}")
        # Control 1: the scanner sees an open port where there is one (a listener on the
        # namespace's own address), so "nothing open" below is a finding, not a blind scanner.
        listener = subprocess.Popen(net.exec_argv([
            sys.executable, "-c",
            "import socket,time;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
            f"s.bind(('{picketvm.HOST_ADDR}',18080));s.listen();time.sleep(600)"]))
        time.sleep(0.5)
        ctl = nmap_xml(net, ["-sS", "-Pn", "-p", "18080", picketvm.HOST_ADDR], 60)
        if not open_ports(ctl):
            raise Failure("control failed: nmap did not see the namespace's own open port 18080")
        # Control 2: the appliance is at that address and up (it answers ARP, which nftables
        # does not filter), so the silence below is its firewall, not an absent host.
        up = nmap_xml(net, ["-sn", "-PR", picketvm.APPLIANCE_ADDR], 60)
        status = up.find("./host/status")
        if status is None or status.get("state") != "up":
            raise Failure(f"the appliance at {picketvm.APPLIANCE_ADDR} did not answer ARP")
        t0 = time.monotonic()
        tcp = nmap_xml(net, ["-sS", "-Pn", "-p-", "--min-rate", "3000", "--max-retries", "2",
                             picketvm.APPLIANCE_ADDR], 600)
        udp = nmap_xml(net, ["-sU", "-Pn", "--top-ports", "200", "--max-retries", "2",
                             "--min-rate", "200", picketvm.APPLIANCE_ADDR], 600)
        tcp6_note = ""
        scan_s = time.monotonic() - t0
        found = open_ports(tcp) + open_ports(udp)
        if found:
            raise Failure(f"open ports on the appliance: {', '.join(found)}")
        if not vm.alive():
            raise Failure("the appliance stopped during the scan")
        ctx.figures["portscan_s"] = round(scan_s, 1)
        return (f"appliance up at {picketvm.APPLIANCE_ADDR} (ARP), no open port among 65,535 TCP "
                f"and the top 200 UDP ports ({scan_s:.0f} s){tcp6_note}; control listener seen open")
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        vm.kill()
        net.close()


def flip_byte(disk: Path, base: Path, offset: int) -> tuple[int, int]:
    with open(base, "rb") as f:
        f.seek(offset)
        old = f.read(1)[0]
    new = old ^ 0xFF
    run(["qemu-io", "-f", "qcow2", "-c", f"write -P {new} {offset} 1", str(disk)])
    return old, new


def test_verity(ctx: Ctx) -> str:
    """One byte flipped in root A (superblock, top hash block, a random data byte, the last data
    block): the boot stops before userland, with a verity error, every time."""
    work = ctx.subdir("verity")
    a_start = int(ctx.manifest["ROOT_A_START_MIB"]) * 1024 * 1024
    data_bytes = int(ctx.manifest["ROOT_DATA_BYTES"])
    rng = random.Random(int(ctx.manifest["SOURCE_DATE_EPOCH"]))
    cases = [
        ("squashfs superblock", a_start + 40),
        ("top block of the hash tree", a_start + data_bytes + 100),
        ("random data byte", a_start + rng.randrange(4096, data_bytes - 4096)),
        ("last data block", a_start + data_bytes - 2000),
    ]
    results = []
    for label, offset in cases:
        name = label.split()[0] + str(len(results))
        disk = overlay(ctx.raw, work, name)
        old, new = flip_byte(disk, ctx.raw, offset)
        vm = VM(disk, work, name, memory_mb=MEMORY_MB)
        try:
            vm.start()
            code = vm.wait_exit(BOOT_TIMEOUT_S)
            text = vm.text()
            if ctx.ready and (picketvm_re(MARKER, text) or picketvm_re(PROMPT, text)):
                raise Failure(f"{label} (offset {offset}): the console started on a tampered root")
            if "systemd[1]" in text or "Welcome to" in text:
                raise Failure(f"{label}: userland started on a tampered root")
            if code is None:
                raise Failure(f"{label}: the machine neither booted nor stopped within "
                              f"{BOOT_TIMEOUT_S:.0f} s; serial tail:\n{text[-800:]}")
            evidence = re.findall(r"device-mapper: verity: [^\n]*corrupted|picket-verity: [^\n]*fail[^\n]*", text)
            if not evidence:
                raise Failure(f"{label}: stopped without a verity error; serial tail:\n{text[-800:]}")
            no_way_in(text, label)
            results.append(f"{label} @{offset - a_start} ({old:#04x}->{new:#04x}): "
                           f"stopped after {vm.elapsed():.0f} s, \"{evidence[0].strip()[:90]}\"" +
                           (", rebooted" if "dm-verity device corrupted" in text else ""))
        finally:
            vm.kill()
    return "; ".join(results)


def picketvm_re(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


def network_answers(address: str) -> list[tuple[str, str]]:
    """The serial-console dialogue of menu 1 setting a static address on the first interface."""
    return [
        (PROMPT, "1"),
        (r"Interface \[1-\d+ or name[^\]]*\]: ", "1"),
        (r"Addressing: 1 DHCP, 2 static \[1\]: ", "2"),
        (r"Address/prefix \(e\.g\. [^)]*\): ", address),
        (r"Gateway \(Enter for none\): ", ""),
        (r"DNS servers, up to 3, space separated \(Enter for none\): ", ""),
        (r"VLAN id 1-4094 \(Enter for untagged\): ", ""),
        (r"Apply these settings\? \[[^\]]*\]: ", ""),
    ]


def settled_menu(vm: VM, timeout: float = 120) -> str:
    """Waits, through the console's Status screen, until the daemon runs and holds the store,
    and returns the menu drawn after it. Until then the console and the starting daemon race for
    the store ("in use by another picket process"), which a person would see as a transient
    error and which would make a typed answer fail."""
    deadline = time.monotonic() + timeout
    while True:
        pos = len(vm.text())
        vm.type("4\r")
        m = vm.wait_for(PROMPT, 90, pos)
        if m is None:
            raise Failure(f"no menu after Status; tail:\n{vm.text()[-800:]}")
        screen = vm.text()[pos:m.end()]
        if re.search(r"Daemon\s*:\s*running", screen) and "is in use by" not in screen:
            return screen
        if time.monotonic() > deadline:
            raise Failure(f"the daemon was not running {timeout:.0f} s after the console "
                          f"started; last status:\n{screen[-900:]}")
        time.sleep(3)

def arp_up(net: TestNet, address: str) -> bool:
    up = nmap_xml(net, ["-sn", "-PR", address], 60)
    st = up.find("./host/status")
    return st is not None and st.get("state") == "up"


def test_powercut(ctx: Ctx) -> str:
    """QEMU SIGKILLed during the first boot's data-partition setup and at random moments while
    the system runs (journal writes to /var): every next boot reaches the console with the data
    partition unlocked, never re-created once committed. With the console: network settings
    saved in the store, QEMU killed right after "Saved." and again in the middle of a second
    save: the next boots open the store, show the settings, and the address rendered from the
    store at boot answers on the test network."""
    work = ctx.subdir("powercut")
    disk = overlay(ctx.raw, work, "disk")
    net = TestNet(work, dhcp=False)
    rng = random.Random(7)
    notes = []
    try:
        # 1. during first-boot setup
        vm = VM(disk, work, "cut1", memory_mb=MEMORY_MB, net=net)
        vm.start()
        m = vm.wait_for(r"picket-data: first boot", BOOT_TIMEOUT_S)
        if m is None:
            vm.kill()
            raise Failure("first boot never started the data partition setup")
        delay = rng.uniform(0.2, 2.0)
        time.sleep(delay)
        committed = "data partition ready" in vm.text()
        vm.kill()
        notes.append(f"cut {delay:.1f} s into first-boot setup ({'after' if committed else 'before'} commit)")
        # 2. boots after cuts while running
        for i in range(2, 5):
            vm = VM(disk, work, f"cut{i}", memory_mb=MEMORY_MB, net=net)
            try:
                t = boot_to_ready(vm, ctx, f"boot {i}")
                text = vm.text()
                if "cannot unlock" in text:
                    raise Failure(f"boot {i}: data partition did not unlock")
                redid = "first boot: creating" in text
                if redid and i > 2:
                    raise Failure(f"boot {i}: data partition was created again after it was committed")
                if "data partition ready" not in text and "picket-data: unlocked" not in text:
                    raise Failure(f"boot {i}: no data partition line on the console")
                notes.append(f"boot {i}: ready in {t:.0f} s, data {'re-created (setup was cut)' if redid else 'unlocked'}")
                if not ctx.has_console:
                    time.sleep(rng.uniform(1.0, 6.0))
                    continue
                if i == 3:
                    # An acknowledged store write, then the power cut.
                    settled_menu(vm)
                    at = converse(vm, network_answers(f"{picketvm.APPLIANCE_ADDR}/24"))
                    if vm.wait_for(r"Saved\.", 60, at) is None:
                        raise Failure(f"boot {i}: the console never said Saved.; tail:\n{vm.text()[-800:]}")
                    notes.append("settings saved, cut at once")
                elif i == 4:
                    # A cut in the middle of a store write (the Enter that saves).
                    text = settled_menu(vm)
                    if f"static {picketvm.APPLIANCE_ADDR}/24" not in text:
                        raise Failure(f"boot {i}: the saved settings are not in the menu after the cut; "
                                      f"tail:\n{text[-900:]}")
                    wait_until(f"boot {i}: the address stored before the cut to answer (rendered "
                               "from the store at boot)", 90, lambda: arp_up(net, picketvm.APPLIANCE_ADDR))
                    at = converse(vm, network_answers(f"{picketvm.NET_PREFIX}.11/24")[:-1])
                    if vm.wait_for(r"Apply these settings\? \[[^\]]*\]: ", 30, at) is None:
                        raise Failure(f"boot {i}: no confirmation question; tail:\n{vm.text()[-800:]}")
                    vm.type("\r")
                    time.sleep(rng.uniform(0.0, 0.5))
                    notes.append("stored address answered after reboot; cut during a second save")
            finally:
                vm.kill()
        if ctx.has_console:
            vm = VM(disk, work, "cut5", memory_mb=MEMORY_MB, net=net)
            try:
                boot_to_ready(vm, ctx, "boot 5")
                text = settled_menu(vm)
                if "cannot be read" in text or "stored settings are invalid" in text:
                    raise Failure(f"boot 5: the store is damaged after the cut: {text[-900:]}")
                shown = [a for a in (f"{picketvm.APPLIANCE_ADDR}/24", f"{picketvm.NET_PREFIX}.11/24")
                         if f"static {a}" in text]
                if not shown:
                    raise Failure(f"boot 5: neither the old nor the new settings are shown; {text[-900:]}")
                notes.append(f"boot 5: store opens, settings {shown[0]} ({'new' if '.11/' in shown[0] else 'old'})")
            finally:
                vm.kill()
    finally:
        net.close()
    return "; ".join(notes)

def luks_dump(disk: Path, work: Path) -> str:
    """`cryptsetup luksDump` of the data partition's header, read from the VM's disk (the host
    needs no device-mapper: the 16 MiB header is copied out of a raw conversion)."""
    full = work / "full.raw"
    run(["qemu-img", "convert", "-O", "raw", str(disk), str(full)])
    table = json.loads(run(["sfdisk", "-J", str(full)]).stdout)
    data = [p for p in table["partitiontable"]["partitions"] if p.get("name") == "data"]
    if not data:
        raise Failure("no partition named data on the disk")
    start = int(data[0]["start"]) * 512
    header = work / "data-header.img"
    with open(full, "rb") as src, open(header, "wb") as dst:
        src.seek(start)
        dst.write(src.read(16 * 1024 * 1024))
    full.unlink()
    return run(["cryptsetup", "luksDump", str(header)]).stdout


def test_tpm(ctx: Ctx) -> str:
    """With a TPM (swtpm), first boot seals the data key to it and leaves no other keyslot and no
    key in the header; the second boot unlocks through the TPM. Without one, the header holds the
    key in the clear (the documented weaker mode)."""
    work = ctx.subdir("tpm")
    disk = overlay(ctx.raw, work, "disk")
    vm = VM(disk, work, "tpm1", memory_mb=MEMORY_MB, tpm=True)
    try:
        t1 = boot_to_ready(vm, ctx, "first boot with TPM")
        if "key sealed to the TPM" not in vm.text():
            raise Failure("first boot with a TPM did not seal the key to it")
    finally:
        vm.kill()
    vm = VM(disk, work, "tpm2", memory_mb=MEMORY_MB, tpm=True)
    try:
        t2 = boot_to_ready(vm, ctx, "second boot with TPM")
        if "picket-data: unlocked" not in vm.text():
            raise Failure("second boot did not unlock the data partition through the TPM")
    finally:
        vm.kill()
    dump = luks_dump(disk, work)
    if "systemd-tpm2" not in dump:
        raise Failure("the LUKS header has no systemd-tpm2 token")
    if "picket-cleartext-key" in dump:
        raise Failure("the LUKS header still holds a cleartext key next to the TPM token")
    slots = [ln for ln in dump.splitlines() if ln.strip().endswith(": luks2") and ln.startswith("  ")]
    if len(slots) != 1:
        raise Failure(f"expected exactly one keyslot (the TPM's), found {len(slots)}")
    # Without a TPM the same image boots, with the weaker, documented key storage.
    disk2 = overlay(ctx.raw, work, "notpm")
    vm = VM(disk2, work, "notpm", memory_mb=MEMORY_MB)
    try:
        boot_to_ready(vm, ctx, "first boot without TPM")
    finally:
        vm.kill()
    if "picket-cleartext-key" not in luks_dump(disk2, work):
        raise Failure("without a TPM the header lacks the documented cleartext key token")
    return (f"TPM: key sealed (PCR 7) at first boot ({t1:.0f} s), one keyslot, no key in the "
            f"header, unlocked by the TPM at second boot ({t2:.0f} s); no TPM: key token in the header")


def extract_root(ctx: Ctx) -> Path:
    """Root A's squashfs, copied out of picket.raw (unsquashfs reads it; the host needs no mount)."""
    path = ctx.work / "root.squashfs"
    if not path.exists():
        start = int(ctx.manifest["ROOT_A_START_MIB"]) * 1024 * 1024
        size = int(ctx.manifest["ROOT_DATA_BYTES"])
        with open(ctx.raw, "rb") as src, open(path, "wb") as dst:
            src.seek(start)
            dst.write(src.read(size))
    return path


def root_file(sq: Path, name: str) -> str:
    return run(["unsquashfs", "-cat", str(sq), name]).stdout


def test_static(ctx: Ctx) -> str:
    """What can be read off the image without booting it: accounts, services, firewall, boot
    entry, set-id programs, kernel command line, unit exposure scores, size."""
    sq = extract_root(ctx)
    problems = []
    listing = run(["unsquashfs", "-lls", "-d", "", str(sq)]).stdout.splitlines()
    names = {ln.split()[-1] if " -> " not in ln else ln.split(" -> ")[0].split()[-1]: ln for ln in listing
             if ln[:1] in "-dlcbps"}
    # Accounts: no password that could ever match, root without a shell.
    for line in root_file(sq, "etc/shadow").splitlines():
        user, pw = line.split(":")[:2]
        if not (pw.startswith("!") or pw.startswith("*")):
            problems.append(f"account {user} has a usable password field")
    root_pw = root_file(sq, "etc/passwd").splitlines()[0].split(":")
    if root_pw[0] != "root" or not root_pw[-1].endswith("nologin"):
        problems.append(f"root's shell is {root_pw[-1]}")
    # No remote or local login service.
    for banned in ("/usr/sbin/sshd", "/usr/sbin/dropbear", "/usr/sbin/telnetd", "/usr/sbin/in.telnetd",
                   "/usr/bin/sudo"):
        if banned in names:
            problems.append(f"{banned} is in the image")
    masked = ["getty@.service", "serial-getty@.service", "autovt@.service", "console-getty.service",
              "debug-shell.service", "emergency.service", "rescue.service"]
    for unit in masked:
        entry = names.get(f"/etc/systemd/system/{unit}", "")
        if "-> /dev/null" not in entry:
            problems.append(f"{unit} is not masked")
    for tty in ("tty1", "ttyS0"):
        if f"/etc/systemd/system/getty.target.wants/picket-console@{tty}.service" not in names:
            problems.append(f"the console is not enabled on {tty}")
    setid = [n for n, ln in names.items() if ln[0] == "-" and (ln[3] in "sS" or ln[6] in "sS")]
    if setid:
        problems.append(f"set-id programs: {', '.join(sorted(setid)[:8])}")
    nft = root_file(sq, "etc/nftables.conf")
    if "type filter hook input priority filter; policy drop;" not in nft:
        problems.append("nftables input policy is not drop")
    # Boot entry: no editor, the root hash in the UKI's command line.
    loader = run(["mtype", "-i", f"{ctx.raw}@@1M", "::/loader/loader.conf"],
                 env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"}).stdout
    if "editor no" not in loader:
        problems.append("systemd-boot's editor is not off")
    cmdline = (ctx.image_dir / "cmdline.txt").read_text()
    for flag in (f"picket.roothash={ctx.manifest['ROOT_HASH']}", "picket.verify=full", "panic=10",
                 "lockdown=integrity", "module.sig_enforce=1", "init_on_alloc=1", "vsyscall=none"):
        if flag not in cmdline:
            problems.append(f"kernel command line lacks {flag}")
    uki = (ctx.image_dir / "picket-a.efi").read_bytes()
    if f"picket.roothash={ctx.manifest['ROOT_HASH']}".encode() not in uki:
        problems.append("the UKI does not carry the root hash")
    sysctl = root_file(sq, "etc/sysctl.d/90-picket-hardening.conf")
    for key in ("kernel.kptr_restrict = 2", "kernel.unprivileged_bpf_disabled = 1", "kernel.kexec_load_disabled = 1"):
        if key not in sysctl:
            problems.append(f"sysctl {key} missing")
    # Exposure scores systemd-analyze gave at build time.
    scores = {}
    text = (ctx.image_dir / "systemd-analyze-security.txt").read_text()
    for unit, score in re.findall(r"Overall exposure level for (\S+): ([0-9.]+)", text):
        scores[unit] = float(score)
        if float(score) > 2.5:
            problems.append(f"{unit} exposure {score} > 2.5")
    if len(scores) < 3:
        problems.append(f"exposure scores missing ({scores})")
    packages = (ctx.image_dir / "packages.txt").read_text().split()
    for banned in ("openssh-server", "dropbear", "telnetd", "apt", "sudo"):
        if any(p.split("=")[0] == banned for p in packages):
            problems.append(f"package {banned} installed")
    raw_mb = ctx.raw.stat().st_size / 2**20
    qcow_mb = (ctx.image_dir / "picket.qcow2").stat().st_size / 2**20
    if raw_mb > 400:
        problems.append(f"raw image {raw_mb:.0f} MiB > 400 MiB")
    ctx.figures.update({"exposure": scores, "packages": len(packages), "raw_mib": round(raw_mb),
                        "qcow2_mib": round(qcow_mb)})
    if problems:
        raise Failure("; ".join(problems))
    return (f"accounts locked, root nologin, gettys/debug/rescue shells masked, console on tty1+ttyS0, "
            f"no set-id file, nftables input drop, editor off, root hash in the UKI, hardened "
            f"cmdline and sysctls, {len(packages)} packages, exposure "
            + ", ".join(f"{u.split('.')[0]} {v}" for u, v in scores.items())
            + f"; disk {raw_mb:.0f} MiB raw, {qcow_mb:.0f} MiB qcow2")


def platform_bin() -> Path:
    env = os.environ.get("PICKET_PLATFORM_BIN")
    candidates = [Path(env)] if env else [REPO / "target" / "release" / "picket-platform",
                                          REPO / "target" / "debug" / "picket-platform"]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise Failure("no picket-platform binary (cargo build -p picket-platform, or PICKET_PLATFORM_BIN)")


class RefPlatform:
    """`picket-platform serve` in the test namespace on 198.18.5.1:8443, with its CA, an
    enrollment code and the operator token, and curl (in the namespace) for its API."""

    def __init__(self, net: TestNet, work: Path) -> None:
        self.net = net
        self.bin = platform_bin()
        self.dir = work / "platform"
        self.dir.mkdir()
        self.state = self.dir / "state"
        self.config = self.dir / "platform.toml"
        self.url = f"https://{picketvm.HOST_ADDR}:8443"
        self.config.write_text(f'listen = "{picketvm.HOST_ADDR}:8443"\n'
                               f'server_names = ["{picketvm.HOST_ADDR}"]\n')
        common = ["--config", str(self.config), "--state-dir", str(self.state)]
        self.fingerprint = run([str(self.bin), "init", *common]).stdout.strip()
        ca_out = run([str(self.bin), "ca", "--state-dir", str(self.state)]).stdout
        self.ca = self.dir / "ca.pem"
        self.ca.write_text("".join(ln + "\n" for ln in ca_out.splitlines()
                                   if not ln.startswith("SHA256 Fingerprint=")))
        self.token = run([str(self.bin), "admin-token", *common]).stdout.strip()
        addr = self.dir / "addr"
        self.proc = subprocess.Popen(net.exec_argv([str(self.bin), "serve", *common,
                                                    "--addr-file", str(addr)]),
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "serve.log", "wb"))
        deadline = time.monotonic() + 60
        while not addr.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Failure("picket-platform serve did not start: "
                              + (self.dir / "serve.log").read_text()[-800:])
            time.sleep(0.2)
        self.code = run(net.exec_argv([str(self.bin), "code", *common, "--url", self.url])).stdout.strip()

    def call(self, method: str, path: str, body: object = None) -> object:
        argv = ["curl", "-sS", "--max-time", "30", "--cacert", str(self.ca),
                "-H", f"Authorization: Bearer {self.token}", "-X", method]
        if body is not None:
            argv += ["-H", "content-type: application/json", "--data-binary", json.dumps(body)]
        out = run(self.net.exec_argv(argv + [self.url + path]), check=False)
        if out.returncode != 0:
            raise Failure(f"platform API {method} {path}: curl {out.returncode}: {out.stderr.strip()}")
        try:
            return json.loads(out.stdout)
        except json.JSONDecodeError:
            raise Failure(f"platform API {method} {path}: not JSON: {out.stdout[:300]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def converse(vm: VM, steps: list[tuple[str, str]], timeout: float = 60) -> int:
    """Waits for each prompt (a regex, searched after what was already answered) and types the
    answer with Enter, as a person at the serial console would. Returns the output offset."""
    text = vm.text()
    pos = len(text)
    if steps and steps[0][0] == PROMPT:
        # The menu prompt may already be on the screen, waiting: start from the last one.
        last = text.rfind("Choice [1-5]: ")
        pos = last if last >= 0 else pos
    for prompt, answer in steps:
        m = vm.wait_for(prompt, timeout, pos)
        if m is None:
            raise Failure(f"the console never asked {prompt!r}; serial tail:\n{vm.text()[-1200:]}")
        pos = m.end()
        vm.type(answer + "\r")
    return pos


def wait_until(what: str, timeout: float, probe) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(2)


# A TLS server for the test host: accepts one connection at a time, completes the handshake
# with its self-signed certificate, reads a little and closes. Bounded: exits after 1 hour.
TLS_HOST = """
import socket, ssl, sys, time
addr, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(16)
s.settimeout(5)
end = time.monotonic() + 3600
while time.monotonic() < end:
    try:
        c, _ = s.accept()
    except OSError:
        continue
    c.settimeout(5)
    try:
        t = ctx.wrap_socket(c, server_side=True)
        t.recv(1024)
        t.close()
    except OSError:
        c.close()
"""


def test_enroll(ctx: Ctx) -> str:
    """The whole setup at the serial console: static network settings and an enrollment code
    typed at the menu; the appliance enrolls with `picket-platform serve` in the test namespace,
    takes a scan job against a test host there, and the results reach the platform."""
    if not ctx.has_console:
        raise Failure("the picket in the image has no `console` command")
    work = ctx.subdir("enroll")
    disk = overlay(ctx.raw, work, "disk")
    net = TestNet(work, dhcp=False)   # the only address the appliance gets is the one typed
    listener = platform = vm = None
    target = f"{picketvm.NET_PREFIX}.20"
    try:
        net.ip("addr", "add", f"{target}/24", "dev", "tap0")
        platform = RefPlatform(net, work)
        # The test host: a TLS service with a self-signed certificate, which picket reports as
        # a finding, so what reaches the platform can be checked for content, not just arrival.
        key, cert = work / "host.key", work / "host.crt"
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-out", str(cert), "-days", "2", "-subj", "/CN=picket-qemu-test-host"])
        listener = subprocess.Popen(net.exec_argv([sys.executable, "-c", TLS_HOST, target, "18443",
                                                   str(cert), str(key)]),
                                    stderr=open(work / "tls-host.log", "wb"))
        vm = VM(disk, work, "enroll", memory_mb=MEMORY_MB, net=net)
        t_boot = boot_to_ready(vm, ctx, "boot")
        t0 = time.monotonic()
        settled_menu(vm)
        converse(vm, network_answers(f"{picketvm.APPLIANCE_ADDR}/24"))
        pos = len(vm.text())
        if vm.wait_for(PROMPT, 60, pos) is None:
            raise Failure(f"no menu after the network settings; serial tail:\n{vm.text()[-1200:]}")
        # The typed address is live: the appliance answers ARP there.
        wait_until("the typed address to answer ARP", 60, lambda: arp_up(net, picketvm.APPLIANCE_ADDR))
        pos = converse(vm, [
            (PROMPT, "3"),
            (r"Platform URL \(https://HOST\[:PORT\][^)]*\): ", platform.url),
            (r"Enrollment code: ", platform.code),
            (r"Platform CA SHA-256 fingerprint \([^)]*\): ", platform.fingerprint),
        ])
        m = vm.wait_for(r"Enrolled as appliance (\S+)\.|Enrollment failed[^\n]*(\n[^\n]*){0,3}", 150, pos)
        if m is None or not m.group(0).startswith("Enrolled"):
            raise Failure(f"enrollment did not succeed: {m.group(0) if m else 'no answer'}; "
                          f"serial tail:\n{vm.text()[-1200:]}")
        appliance = m.group(1)
        t_enrolled = time.monotonic() - t0
        listed = platform.call("GET", "/api/v1/appliances")
        if appliance not in json.dumps(listed):
            raise Failure(f"appliance {appliance} not listed by the platform")
        # Scope: the platform tells the appliance which networks it may scan.
        cmd = platform.call("POST", f"/api/v1/appliances/{appliance}/commands", {
            "kind": {"type": "update_config", "toml": f'[scan]\nscope = ["{picketvm.NET_PREFIX}.0/24"]\n'}})
        cmd_id = cmd.get("id") if isinstance(cmd, dict) else None

        def cmd_done() -> object:
            views = platform.call("GET", f"/api/v1/appliances/{appliance}/commands")
            for v in views if isinstance(views, list) else []:
                if cmd_id and cmd_id in json.dumps(v) and '"ok"' in json.dumps(v):
                    return v
            return None
        answered = wait_until("the appliance to answer update_config", 180, cmd_done)
        if '"ok": true' not in json.dumps(answered):
            raise Failure(f"update_config refused: {json.dumps(answered)[:400]}")
        job = platform.call("POST", "/api/v1/jobs", {
            "appliance_id": appliance, "kind": "net", "targets": [target],
            "options": {"ports": "18443", "udp_ports": None, "exclude": [], "no_service": False,
                        "sudo": False, "max_rps": None, "max_requests": None, "login_url": None,
                        "username": None},
            "every_secs": None, "timeout_secs": 600, "credentials": None})
        job_id = job["job"]["id"] if isinstance(job, dict) and "job" in job else None
        if job_id is None:
            raise Failure(f"job not created: {json.dumps(job)[:400]}")

        def job_done() -> object:
            v = platform.call("GET", f"/api/v1/jobs/{job_id}")
            state = v.get("state") if isinstance(v, dict) else None
            if state == "done" and v.get("chunks_expected") is not None \
                    and v.get("chunks_received") == v.get("chunks_expected"):
                return v
            if state in ("failed", "cancelled"):
                raise Failure(f"job {state}: {v.get('reason')}")
            return None
        done = wait_until("the scan job's results at the platform", 400, job_done)
        findings = platform.call("GET", f"/api/v1/findings?job={job_id}")
        t_job = time.monotonic() - t0 - t_enrolled
        wanted = f"net.tls.cert-self-signed:{target}:18443"
        ids = [f.get("finding", {}).get("id", "") for f in findings] if isinstance(findings, list) else []
        if not any(i.startswith("net.tls.cert-self-signed") and f"{target}:18443" in i for i in ids):
            raise Failure(f"the platform has no self-signed-certificate finding for {target}:18443 "
                          f"(findings: {ids[:5]}; job: {json.dumps(done)[:300]})")
        ctx.figures["enroll_s"] = round(t_enrolled, 1)
        ctx.figures["job_s"] = round(t_job, 1)
        return (f"booted in {t_boot:.0f} s; typed static {picketvm.APPLIANCE_ADDR}/24 and the code; "
                f"enrolled as {appliance} ({t_enrolled:.0f} s); scope pushed; job {job_id} on {target} "
                f"done with {done.get('chunks_received')} result chunk(s) at the platform, "
                f"{len(findings)} finding(s) incl. {wanted}, {t_job:.0f} s")
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        if vm is not None:
            vm.kill()
        if platform is not None:
            platform.close()
        net.close()


TESTS = {
    "static": test_static,
    "boot": test_boot,
    "portscan": test_portscan,
    "verity": test_verity,
    "powercut": test_powercut,
    "tpm": test_tpm,
    "enroll": test_enroll,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image-dir", type=Path, default=REPO / "image" / "out")
    ap.add_argument("--only", default="", help="comma-separated test names: " + ",".join(TESTS))
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    if not (args.image_dir / "picket.raw").exists():
        print(f"qemu-tests: no image in {args.image_dir} (run image/build.sh)", file=sys.stderr)
        return 2
    names = [n for n in args.only.split(",") if n] or list(TESTS)
    unknown = [n for n in names if n not in TESTS]
    if unknown:
        print(f"qemu-tests: unknown tests {unknown}", file=sys.stderr)
        return 2
    work = picketvm.scratch_dir()
    ctx = Ctx(args.image_dir, work)
    print(f"qemu-tests: image {args.image_dir} (root hash {ctx.manifest.get('ROOT_HASH', '?')[:16]}...), "
          f"accelerator {picketvm.accelerator()}, scratch {work}", flush=True)
    passed = failed = 0
    results = {}
    for name in names:
        t0 = time.monotonic()
        try:
            reason = TESTS[name](ctx)
            ok = True
        except Failure as e:
            reason, ok = str(e), False
        except Exception as e:  # a harness error is a failure of that test, with its trace
            reason, ok = f"harness error: {e!r}\n{traceback.format_exc()}", False
        dt = time.monotonic() - t0
        results[name] = {"ok": ok, "reason": reason, "seconds": round(dt, 1)}
        print(f"{'PASS' if ok else 'FAIL'} {name} ({dt:.0f} s): {reason}", flush=True)
        passed += ok
        failed += not ok
    results["figures"] = ctx.figures
    results["manifest"] = ctx.manifest
    out = REPO / "qemu-tests" / "out"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if failed == 0 and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"qemu-tests: serial logs kept in {work}", flush=True)
    # cargo's summary shape too, so scripts/test-all.sh adds these tests to its closing count.
    print(f"test result: {'ok' if failed == 0 else 'FAILED'}. {passed} passed; {failed} failed; "
          "0 ignored; 0 measured; 0 filtered out (qemu-tests)", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

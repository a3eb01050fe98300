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
import random
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
            evidence = [ln for ln in text.splitlines()
                        if "verity" in ln.lower() and ("corrupt" in ln.lower() or "fail" in ln.lower())]
            if not evidence:
                raise Failure(f"{label}: stopped without a verity error; serial tail:\n{text[-800:]}")
            no_way_in(text, label)
            results.append(f"{label} @{offset - a_start} ({old:#04x}->{new:#04x}): "
                           f"stopped after {vm.elapsed():.0f} s, \"{evidence[0].strip()[:90]}\"")
        finally:
            vm.kill()
    return "; ".join(results)


def picketvm_re(pattern: str, text: str) -> bool:
    import re
    return re.search(pattern, text) is not None


def test_powercut(ctx: Ctx) -> str:
    """QEMU SIGKILLed during the first boot's data-partition setup and then twice while the
    system runs and writes its journal to /var: every next boot reaches the console with the
    data partition unlocked, never reformatted once it was committed."""
    work = ctx.subdir("powercut")
    disk = overlay(ctx.raw, work, "disk")
    rng = random.Random(7)
    notes = []
    # 1. during first-boot setup
    vm = VM(disk, work, "cut1", memory_mb=MEMORY_MB)
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
        vm = VM(disk, work, f"cut{i}", memory_mb=MEMORY_MB)
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
            if i < 4:
                time.sleep(rng.uniform(1.0, 6.0))
        finally:
            vm.kill()
    return "; ".join(notes)


TESTS = {
    "boot": test_boot,
    "portscan": test_portscan,
    "verity": test_verity,
    "powercut": test_powercut,
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
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Boots the Picket appliance image in QEMU and talks to it the way a person would.

Why this exists: the image's promises (boots to the setup console, no open port, refuses a
tampered root, survives power loss) can only be shown on the real disk image booting real
firmware, so the tests drive QEMU with OVMF and read/type on the emulated serial line.

Everything the harness creates it also removes, by name or PID it recorded: one network namespace
(``pkq<pid>``) holding a tap device with a 198.18.5.0/24 address and no default route, the QEMU
process (run inside that namespace) and a dnsmasq serving exactly one DHCP lease without a router.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
QEMU = "qemu-system-x86_64"

NET_PREFIX = "198.18.5"
HOST_ADDR = f"{NET_PREFIX}.1"
APPLIANCE_ADDR = f"{NET_PREFIX}.10"
APPLIANCE_MAC = "52:54:00:5e:18:0a"

ANSI = re.compile(rb"\x1b\[[0-9;?=]*[A-Za-z]")


def read_manifest(image_dir: Path) -> dict[str, str]:
    """The key=value facts image/build.sh wrote about the image it built."""
    facts: dict[str, str] = {}
    for line in (image_dir / "manifest.env").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            facts[key] = value
    return facts


_ACCEL: str | None = None


def accelerator() -> str:
    """KVM when it really starts a VM here, TCG otherwise (PICKET_QEMU_ACCEL overrides).

    /dev/kvm can exist where KVM cannot run a guest (seen here: it opens, `-cpu host` dies on
    an MSR write at the first vCPU reset, and qemu64 guests crash in the firmware), so KVM is
    used only when the CPU shows vmx/svm and a `-cpu host` guest (SeaBIOS, no disk) runs 3 s.
    """
    global _ACCEL
    if _ACCEL is not None:
        return _ACCEL
    forced = os.environ.get("PICKET_QEMU_ACCEL")
    if forced:
        _ACCEL = forced
        return forced
    _ACCEL = "tcg"
    flags = Path("/proc/cpuinfo").read_text()
    if os.access("/dev/kvm", os.R_OK | os.W_OK) and re.search(r"\b(vmx|svm)\b", flags):
        probe = subprocess.Popen(
            [QEMU, "-accel", "kvm", "-cpu", "host", "-machine", "q35", "-nodefaults", "-display", "none",
             "-monitor", "none", "-serial", "none"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            probe.wait(timeout=3.0)
        except subprocess.TimeoutExpired:
            _ACCEL = "kvm"
            probe.kill()
            probe.wait()
    return _ACCEL


def run(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


class TestNet:
    """A namespace with one tap device for the appliance's NIC and DHCP for exactly its MAC."""

    def __init__(self, workdir: Path, dhcp: bool = True) -> None:
        self.name = f"pkq{os.getpid()}"
        self.workdir = workdir
        self.dnsmasq: subprocess.Popen | None = None
        self.leases = workdir / "dnsmasq.leases"
        self.created = False
        run(["ip", "netns", "add", self.name])
        self.created = True
        try:
            self.ip("link", "set", "lo", "up")
            self.ip("tuntap", "add", "dev", "tap0", "mode", "tap")
            self.ip("addr", "add", f"{HOST_ADDR}/24", "dev", "tap0")
            self.ip("link", "set", "tap0", "up")
            if dhcp:
                self._start_dnsmasq()
        except BaseException:
            self.close()
            raise

    def ip(self, *args: str) -> None:
        run(["ip", "-n", self.name, *args])

    def exec_argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def _start_dnsmasq(self) -> None:
        # One lease for the appliance's MAC, no router option (the appliance gets no default
        # route), no DNS service.
        self.dnsmasq = subprocess.Popen(self.exec_argv([
            "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--port=0",
            "--interface=tap0", "--bind-interfaces", "--dhcp-authoritative",
            f"--dhcp-range={APPLIANCE_ADDR},{APPLIANCE_ADDR},255.255.255.0,10m",
            f"--dhcp-host={APPLIANCE_MAC},{APPLIANCE_ADDR}",
            "--dhcp-option=3", "--dhcp-option=6",
            f"--dhcp-leasefile={self.leases}", "--pid-file=",
            f"--log-facility={self.workdir / 'dnsmasq.log'}", "--log-dhcp",
        ]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_lease(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.leases.exists() and APPLIANCE_ADDR in self.leases.read_text():
                return True
            time.sleep(0.5)
        return False

    def close(self) -> None:
        if self.dnsmasq is not None and self.dnsmasq.poll() is None:
            self.dnsmasq.terminate()
            try:
                self.dnsmasq.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.dnsmasq.kill()
                self.dnsmasq.wait()
        if self.created:
            run(["ip", "netns", "del", self.name], check=False)
            self.created = False


class VM:
    """One QEMU run of a disk: serial line captured with timestamps, keystrokes typed into it."""

    def __init__(self, disk: Path, workdir: Path, name: str, memory_mb: int = 1024,
                 net: TestNet | None = None, tpm: bool = False) -> None:
        self.disk = disk
        self.workdir = workdir
        self.name = name
        self.memory_mb = memory_mb
        self.net = net
        self.tpm = tpm
        self.proc: subprocess.Popen | None = None
        self.swtpm: subprocess.Popen | None = None
        self.buf = bytearray()
        self.lock = threading.Lock()
        self.log_path = workdir / f"{name}.serial.log"
        self.started = 0.0
        self.sock: socket.socket | None = None
        self.reader: threading.Thread | None = None
        self._line_start = True

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        vars_fd = self.workdir / "OVMF_VARS.fd"
        if not vars_fd.exists():
            shutil.copyfile(OVMF_VARS, vars_fd)
        serial_path = self.workdir / f"{self.name}.serial.sock"
        if serial_path.exists():
            serial_path.unlink()
        accel = accelerator()
        argv = [
            QEMU, "-name", f"picket-{self.name}", "-machine", "q35", "-nodefaults",
            "-accel", accel if accel == "kvm" else "tcg,thread=multi",
            "-cpu", "host" if accel == "kvm" else "max",
            "-smp", "2", "-m", str(self.memory_mb),
            "-display", "none", "-monitor", "none", "-no-reboot",
            "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,file={vars_fd}",
            # Default cache mode (writeback, honouring the guest's flushes): a SIGKILL then loses
            # exactly what a power cut loses, and qcow2 metadata stays consistent.
            "-drive", f"if=virtio,format={'qcow2' if self.disk.suffix == '.qcow2' else 'raw'},"
            f"file={self.disk}",
            "-chardev", f"socket,id=serial0,path={serial_path},server=on,wait=on",
            "-serial", "chardev:serial0",
            "-device", "virtio-rng-pci",
        ]
        if self.net is not None:
            argv += ["-nic", f"tap,ifname=tap0,script=no,downscript=no,model=virtio-net-pci,"
                     f"mac={APPLIANCE_MAC}"]
        else:
            argv += ["-nic", "none"]
        if self.tpm:
            tpm_dir = self.workdir / "tpm"
            tpm_dir.mkdir(exist_ok=True)
            tpm_sock = tpm_dir / "swtpm.sock"
            self.swtpm = subprocess.Popen(
                ["swtpm", "socket", "--tpmstate", f"dir={tpm_dir}", "--tpm2",
                 "--ctrl", f"type=unixio,path={tpm_sock}", "--flags", "startup-clear"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(50):
                if tpm_sock.exists():
                    break
                time.sleep(0.1)
            argv += ["-chardev", f"socket,id=chrtpm,path={tpm_sock}",
                     "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
                     "-device", "tpm-tis,tpmdev=tpm0"]
        if self.net is not None:
            argv = self.net.exec_argv(argv)
        self.log_file = open(self.log_path, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=open(self.workdir / f"{self.name}.qemu.err", "wb"))
        # wait=on: QEMU does not run the guest until the serial socket is connected, so not a
        # byte of output is missed.
        deadline = time.monotonic() + 20
        while True:
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(serial_path))
                self.sock = sock
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"QEMU did not start: {self.qemu_stderr()}")
                time.sleep(0.05)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.sock is not None
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.buf += data
            # Each line stamped with the seconds since QEMU started at which it began: where a
            # boot spends its time.
            for byte in ANSI.sub(b"", data).replace(b"\r", b""):
                if self._line_start:
                    self.log_file.write(f"[{time.monotonic() - self.started:7.2f}] ".encode())
                    self._line_start = False
                self.log_file.write(bytes([byte]))
                if byte == 0x0A:
                    self._line_start = True
            self.log_file.flush()

    def qemu_stderr(self) -> str:
        path = self.workdir / f"{self.name}.qemu.err"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def kill(self) -> None:
        """Power cut: SIGKILL to QEMU, nothing flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._close_rest()

    def wait_exit(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._close_rest()
        return code

    def _close_rest(self) -> None:
        if self.reader is not None:
            self.reader.join(timeout=2)
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.swtpm is not None and self.swtpm.poll() is None:
            self.swtpm.terminate()
            self.swtpm.wait()
        if hasattr(self, "log_file") and not self.log_file.closed:
            self.log_file.close()

    # -- the serial line ----------------------------------------------------------------------
    def text(self) -> str:
        with self.lock:
            raw = bytes(self.buf)
        return ANSI.sub(b"", raw).replace(b"\r", b"").decode("utf-8", "replace")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match | None:
        """First match of `pattern` in the serial output after offset `start`, or None if the
        timeout passes or QEMU exits first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.text(), start)
            if m:
                return m
            if time.monotonic() > deadline:
                return None
            if self.proc is not None and self.proc.poll() is not None:
                time.sleep(0.3)  # last bytes still in the reader
                return rx.search(self.text(), start)
            time.sleep(0.1)

    def type(self, text: str, delay: float = 0.02) -> None:
        """Types like a person: one character at a time (a serial line has no paste)."""
        assert self.sock is not None
        for ch in text:
            self.sock.sendall(ch.encode())
            time.sleep(delay)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def overlay(base: Path, workdir: Path, name: str, size: str = "2G") -> Path:
    """A qcow2 that writes to itself and reads the shipped image beneath: the image stays
    pristine, and the bigger virtual size gives first boot room to grow the data partition."""
    path = workdir / f"{name}.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(path), size])
    return path


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="picket-qemu-", dir=os.environ.get("PICKET_QEMU_TMP", "/var/tmp")))

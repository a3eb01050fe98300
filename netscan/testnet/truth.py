#!/usr/bin/env python3
"""Ground truth of Picket's test network, read from what the daemons really listen on.

Called by `testnet.sh truth STATE_DIR`. For every target namespace it runs `ss -Hlntup` and maps each
listener onto the host's addresses: a wildcard listener counts on all of the host's addresses of its
family (`*` on both), a specific address only on itself, loopback never. The nftables-filtered host
only exposes its allowed port. The expected service of a port follows from the process that holds
the socket; product versions are read from the daemons themselves (their banner or `--version`).
"""

import ipaddress
import json
import os
import re
import subprocess
import sys

STATE = os.environ["PICKET_TESTNET_STATE"]
SCAN_NS = os.environ["PICKET_TESTNET_SCAN_NS"]
SW_NS = os.environ["PICKET_TESTNET_SW_NS"]
SUBNET = ipaddress.ip_network("198.18.0.0/24")
FLEET = ipaddress.ip_network("198.18.1.0/24")
SCANNER_V4 = "198.18.0.2"
SCANNER_V6 = "2001:db8:18::2"


def run(*cmd, timeout=10):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    return (out.stdout + out.stderr).strip()


def first_match(pattern, text):
    m = re.search(pattern, text)
    return m.group(1) if m else None


def banner(ns, port):
    """First line a TCP service sends, read from inside its namespace over loopback."""
    script = f"exec 3<>/dev/tcp/127.0.0.1/{port} && head -n1 <&3"
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "timeout", "5", "bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return out.stdout.strip()


_DPKG = {}


def dpkg_version(pkg):
    if pkg not in _DPKG:
        _DPKG[pkg] = run("dpkg-query", "-W", "-f=${Version}", pkg) or None
    return _DPKG[pkg]


class Versions:
    """Versions as the daemons announce them, computed once."""

    def __init__(self, hosts):
        self.ns = {h["name"]: h["ns"] for h in hosts}
        self._cache = {}

    def get(self, key):
        if key not in self._cache:
            self._cache[key] = getattr(self, "_" + key)()
        return self._cache[key]

    def _ssh(self):
        line = banner(self.ns["ssh"], 22)
        return line, first_match(r"^SSH-[\d.]+-OpenSSH_([^\s]+)", line)

    def _ftp(self):
        line = banner(self.ns["ftp"], 21)
        return line, first_match(r"vsFTPd ([\d.]+)", line)

    def _smtp(self):
        return banner(self.ns["mail"], 25), None

    def _nginx(self):
        return None, first_match(r"nginx/([\d.]+)", run("/usr/sbin/nginx", "-v"))

    def _redis(self):
        return None, first_match(r"v=([\d.]+)", run("/usr/bin/redis-server", "--version"))

    def _memcached(self):
        return None, first_match(r"memcached ([\d.]+)", run("/usr/bin/memcached", "-V"))

    def _dnsmasq(self):
        return None, first_match(r"version ([\d.]+)", run("/usr/sbin/dnsmasq", "--version"))


def service_for(process, port, tls_ports, versions):
    """Expected service of a socket held by `process`; None for the hostile test servers."""
    if process == "sshd":
        line, ver = versions.get("ssh")
        return {"name": "ssh", "product": "OpenSSH", "version": ver, "banner": line,
                "package_version": dpkg_version("openssh-server")}
    if process == "nginx":
        _, ver = versions.get("nginx")
        return {"name": "http", "product": "nginx", "version": ver, "tls": port in tls_ports,
                "package_version": dpkg_version("nginx")}
    if process == "redis-server":
        _, ver = versions.get("redis")
        return {"name": "redis", "product": "Redis", "version": ver,
                "package_version": dpkg_version("redis-server")}
    if process == "memcached":
        _, ver = versions.get("memcached")
        return {"name": "memcached", "product": "memcached", "version": ver,
                "package_version": dpkg_version("memcached")}
    if process == "vsftpd":
        line, ver = versions.get("ftp")
        return {"name": "ftp", "product": "vsftpd", "version": ver, "banner": line,
                "package_version": dpkg_version("vsftpd")}
    if process == "dnsmasq":
        _, ver = versions.get("dnsmasq")
        return {"name": "domain", "product": "dnsmasq", "version": ver,
                "package_version": dpkg_version("dnsmasq-base")}
    if process == "snmpd":
        # net-snmp announces no version on the wire (sysDescr is the kernel's uname).
        return {"name": "snmp", "product": "net-snmp", "version": None,
                "package_version": dpkg_version("snmpd")}
    if process in ("master", "smtpd"):
        line, _ = versions.get("smtp")
        # The Debian banner names Postfix but not its version.
        return {"name": "smtp", "product": "Postfix", "version": None, "banner": line,
                "package_version": dpkg_version("postfix")}
    return None


def listeners(ns):
    """(proto, local address or None for wildcard-both, family, port, process) per listening socket."""
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hlntup"], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    result = []
    for line in out.splitlines():
        cols = line.split()
        if len(cols) < 5:
            continue
        proto, local = cols[0], cols[4]
        proc = first_match(r'users:\(\("([^"]+)"', line) or ""
        addr, _, port = local.rpartition(":")
        addr = addr.strip("[]").split("%")[0]
        result.append((proto, addr, int(port), proc))
    return result


def lo_addresses(ns):
    """IPv4 addresses the kernel delivers locally through lo (the wide host's /22), read from the
    local routing table: every `local` prefix on lo except 127/8, minus the `broadcast` routes (the
    /22's last address is a broadcast address, which no TCP listener answers on)."""
    out = subprocess.run(["ip", "-n", ns, "-4", "route", "show", "table", "local"], capture_output=True,
                         text=True, timeout=10, check=True).stdout
    local, broadcast = set(), set()
    for line in out.splitlines():
        cols = line.split()
        if len(cols) < 4 or cols[2:4] != ["dev", "lo"]:
            continue
        net = ipaddress.ip_network(cols[1], strict=False)
        if net.subnet_of(ipaddress.ip_network("127.0.0.0/8")):
            continue
        if cols[0] == "local":
            local.update(net)
        elif cols[0] == "broadcast":
            broadcast.update(net)
    return sorted(local - broadcast)


def host_entries(h, versions):
    """One entry per address of host h."""
    addrs = [ipaddress.ip_address(h["v4"]), ipaddress.ip_address(h["v6"])] + lo_addresses(h["ns"])
    allow = None if h["allow"] == "-" else {int(p) for p in h["allow"].split(",")}
    tls_ports = set() if h["tls"] == "-" else {int(p) for p in h["tls"].split(",")}
    socks = listeners(h["ns"])
    entries = []
    for a in sorted(set(addrs), key=lambda x: (x.version, x)):
        tcp, udp, services = set(), set(), {}
        for proto, laddr, port, proc in socks:
            if laddr == "*":
                match = True
            elif laddr in ("0.0.0.0", ""):
                match = a.version == 4
            elif laddr == "::":
                match = a.version == 6
            else:
                la = ipaddress.ip_address(laddr)
                match = (not la.is_loopback) and la == a
            if not match:
                continue
            if allow is not None and (proto != "tcp" or port not in allow):
                continue
            (tcp if proto == "tcp" else udp).add(port)
            svc = service_for(proc, port, tls_ports, versions)
            if svc is not None:
                services[f"{port}/{proto}"] = dict(svc, port=port, protocol=proto)
        on_link = a.version == 4 and a in SUBNET
        entries.append({
            "address": str(a),
            "ns": h["ns"],
            "host": h["name"],
            "hostname": h["hostname"] if str(a) in (h["v4"], h["v6"]) else None,
            "mac": h["mac"] if on_link or str(a) == h["v6"] else None,
            "tcp": sorted(tcp),
            "udp": sorted(udp),
            "services": [services[k] for k in sorted(services, key=lambda k: (k.split("/")[1], int(k.split("/")[0])))],
        })
    return entries


def fleet(hosts):
    """The SSH lab's fleet (sshlab.sh): extra addresses of the deb host, routed via its /24 address."""
    deb = next((h for h in hosts if h["name"] == "deb"), None)
    if deb is None:
        return None
    addrs = [a for a in lo_addresses(deb["ns"]) if a in FLEET]
    return {"cidr": str(FLEET), "ns": deb["ns"], "gateway": deb["v4"], "addresses": [str(a) for a in addrs]}


def main():
    hosts = []
    with open(os.path.join(STATE, "hosts.tsv")) as f:
        for line in f:
            name, ns, v4, v6, mac, extra, allow, tls, hostname = line.rstrip("\n").split("\t")
            hosts.append(dict(name=name, ns=ns, v4=v4, v6=v6, mac=mac, extra=extra, allow=allow, tls=tls,
                              hostname=hostname))
    versions = Versions(hosts)
    out_hosts = []
    for h in hosts:
        out_hosts.extend(host_entries(h, versions))
    used = {h["v4"] for h in hosts} | {SCANNER_V4}
    empty = [str(a) for a in SUBNET.hosts() if str(a) not in used]
    loss = 0
    try:
        with open(os.path.join(STATE, "loss")) as f:
            loss = int(f.read().strip() or 0)
    except FileNotFoundError:
        pass
    json.dump({
        "prefix": open(os.path.join(STATE, "prefix")).read().strip(),
        "state_dir": STATE,
        "scanner_ns": SCAN_NS,
        "switch_ns": SW_NS,
        "scanner": {"ipv4": SCANNER_V4, "ipv6": SCANNER_V6},
        "subnet": str(SUBNET),
        "wide": next(({"cidr": h["extra"], "ns": h["ns"], "gateway": h["v4"]} for h in hosts if h["extra"] != "-"), None),
        "fleet": fleet(hosts),
        "loss_percent": loss,
        "hosts": out_hosts,
        "empty": empty,
    }, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

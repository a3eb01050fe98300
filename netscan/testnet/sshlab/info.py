#!/usr/bin/env python3
"""What the SSH lab offers, as JSON, for the tests of `picket scan host` (`sshlab.sh info STATE`).

Everything is read back from the files the lab really uses: the keys from the key files, the
expected rpm packages from the database built for the rocky host (`rpm -qa` of it), the expected
apk packages by parsing the installed-database file mounted on the alpine host.
Arguments: one "user uid password sudo hosts" line per lab user (sshlab.sh's USERS).
"""

import base64
import hashlib
import json
import os
import subprocess
import sys

STATE = os.environ["PICKET_SSHLAB_STATE"]
PREFIX = os.environ["PICKET_SSHLAB_PREFIX"]
FLEET_NET, FLEET_COUNT, FLEET_CIDR = os.environ["PICKET_SSHLAB_FLEET"].split(":")
LAB = os.path.join(STATE, "sshlab")
DATA = os.path.dirname(os.path.abspath(__file__))
DOMAIN = "picket.test"
RPM_QF = r"%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n"

BEHAVIOUR = {
    "hostile": "login shell writes 100 MB of /dev/urandom to stdout, whatever the command",
    "slow": "login shell writes one byte every 5 s for 600 s, whatever the command",
    "junk": "login shell writes 10 KB of binary junk and exits 0, whatever the command",
}


def public_key(path):
    """type, one-line public key (type and base64), SHA256 fingerprint as ssh-keygen -l shows it."""
    with open(path) as f:
        kind, blob = f.read().split()[:2]
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    fp = "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
    return {"type": kind, "public": f"{kind} {blob}", "fingerprint": fp}


def os_release(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                out[k] = v.strip('"')
    return out


def apk_packages(path):
    pkgs, cur = [], {}
    with open(path) as f:
        for line in f.read().split("\n"):
            if not line:
                if cur:
                    pkgs.append(cur)
                cur = {}
                continue
            key, _, val = line.partition(":")
            if key == "P":
                cur["name"] = val
            elif key == "V":
                cur["version"] = val
            elif key == "A":
                cur["arch"] = val
            elif key == "o":
                cur["origin"] = val
    if cur:
        pkgs.append(cur)
    return pkgs


def rpm_packages(path):
    pkgs = []
    with open(path) as f:
        for line in f:
            name, epoch, version, release, arch, srpm = line.rstrip("\n").split("\t")
            pkgs.append({"name": name, "epoch": int(epoch), "version": version, "release": release,
                         "arch": arch, "sourcerpm": srpm})
    return pkgs


def hosts_table():
    rows = {}
    with open(os.path.join(STATE, "hosts.tsv")) as f:
        for line in f:
            name, ns, v4, v6, _mac, _extra, _allow, _tls, hostname = line.rstrip("\n").split("\t")
            rows[name] = {"ns": ns, "address": v4, "ipv6": v6, "hostname": hostname}
    return rows


def main():
    users = []
    for spec in sys.argv[1:]:
        name, uid, password, sudo, hosts = spec.split()
        u = {"name": name, "uid": int(uid), "password": password,
             "sudo": None if sudo == "-" else sudo, "hosts": hosts.split(","),
             "password_login": True, "key_login": True}
        if name in BEHAVIOUR:
            u["behaviour"] = BEHAVIOUR[name]
        users.append(u)
    users.insert(0, {"name": "root", "uid": 0, "password": None, "sudo": None,
                     "hosts": ["deb", "rocky", "alpine"], "password_login": False, "key_login": True})

    client = os.path.join(LAB, "client")
    client_keys = []
    for kind in ("ed25519", "ecdsa", "rsa"):
        k = public_key(os.path.join(client, f"id_{kind}.pub"))
        k.update(path=os.path.join(client, f"id_{kind}"), public_path=os.path.join(client, f"id_{kind}.pub"))
        client_keys.append(k)

    table = hosts_table()
    fleet = [f"{FLEET_NET}.{i}" for i in range(1, int(FLEET_COUNT) + 1)]
    hosts = {}
    for name, osr_path, pm in (("deb", "/usr/lib/os-release", "dpkg"),
                               ("rocky", os.path.join(DATA, "rocky", "os-release"), "rpm"),
                               ("alpine", os.path.join(DATA, "alpine", "os-release"), "apk"),
                               ("hostile-ssh", "/usr/lib/os-release", None)):
        row = table[name]
        keydir = os.path.join(LAB, "hosts", name, "keys")
        keys = []
        for fn in sorted(os.listdir(keydir)):
            if fn.endswith(".pub"):
                k = public_key(os.path.join(keydir, fn))
                k["path"] = os.path.join(keydir, fn)
                keys.append(k)
        h = dict(row, name=name, port=22,
                 users=[u["name"] for u in users if name in u["hosts"]],
                 host_keys=keys, os_release=os_release(osr_path), package_manager=pm,
                 # The kernel is the machine's on every host: `uname -r` is not faked.
                 uname_r=os.uname().release)
        if name == "deb":
            h["rekeyed"] = os.path.isdir(os.path.join(LAB, "hosts", "deb", "keys.orig"))
            h["fleet"] = fleet
            out = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Version}\n"], capture_output=True,
                                 text=True, check=True, timeout=30).stdout
            h["dpkg_package_count"] = len(out.splitlines())
        if name == "rocky":
            h["rpm_query_format"] = RPM_QF
            h["rpm_packages"] = rpm_packages(os.path.join(LAB, "rocky", "packages.tsv"))
        if name == "alpine":
            h["apk_installed_path"] = "/lib/apk/db/installed"
            h["apk_packages"] = apk_packages(os.path.join(DATA, "alpine", "installed"))
        hosts[name] = h

    json.dump({
        "state_dir": STATE,
        "prefix": PREFIX,
        "scanner_ns": f"{PREFIX}_scan",
        "known_hosts": os.path.join(LAB, "known_hosts"),
        "client_keys": client_keys,
        "users": users,
        "hosts": hosts,
        "fleet": {"cidr": FLEET_CIDR, "host": "deb", "addresses": fleet},
    }, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Checks the SSH lab of an up test network with the real OpenSSH client, from the scanner
# namespace: every host and user logs in, each host shows the system it should, sudo behaves as
# configured, the hostile shells misbehave as intended, the fleet takes 50 clients with 8 channels
# each at once, and a re-keyed host is refused. Exit 0 when every check passed.
#
#   sshlab-selftest.sh STATE_DIR
#
# Remote commands are single-quoted on purpose: they expand on the lab host, not here.
# shellcheck disable=SC2016
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "sshlab-selftest: must run as root" >&2; exit 2; }
STATE=$(realpath -m "$1")
[ -f "$STATE/up" ] || { echo "sshlab-selftest: $STATE is not up" >&2; exit 2; }
L="$STATE/sshlab"
SCAN="$(cat "$STATE/prefix")_scan"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$HERE/sshlab.sh" info "$STATE" >"$TMP/info.json" || { echo "sshlab-selftest: info failed" >&2; exit 1; }
q() { python3 -c "import json,sys; d=json.load(open('$TMP/info.json')); print($1)"; }
DEB=$(q 'd["hosts"]["deb"]["address"]')
ROCKY=$(q 'd["hosts"]["rocky"]["address"]')
ALPINE=$(q 'd["hosts"]["alpine"]["address"]')
HOSTILE=$(q 'd["hosts"]["hostile-ssh"]["address"]')
DEB6=$(q 'd["hosts"]["deb"]["ipv6"]')
pw_of() { q "next(u['password'] for u in d['users'] if u['name'] == '$1')"; }

FAILED=0
PASSED=0
check() { # name, then a command whose success is the check
    local name=$1
    shift
    local t0=$SECONDS
    if "$@" >"$TMP/out" 2>&1; then
        PASSED=$((PASSED + 1))
        printf 'ok    %-64s %2ds\n' "$name" $((SECONDS - t0))
    else
        FAILED=$((FAILED + 1))
        printf 'FAIL  %-64s %2ds\n' "$name" $((SECONDS - t0))
        sed 's/^/      | /' "$TMP/out" | head -20
    fi
}

SSH_OPTS=(-F none -o ConnectTimeout=10 -o "UserKnownHostsFile=$L/known_hosts" -o StrictHostKeyChecking=yes
    -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR -o ServerAliveInterval=0)
# ssh with a key: KEY USER@ADDR CMD...
kssh() {
    local key=$1
    shift
    ip netns exec "$SCAN" timeout 120 ssh "${SSH_OPTS[@]}" -o BatchMode=yes -o IdentitiesOnly=yes \
        -i "$L/client/$key" "$@"
}
# ssh with a password (the real client, fed through SSH_ASKPASS): PASSWORD USER@ADDR CMD...
pssh() {
    local pw=$1
    shift
    printf '#!/bin/sh\nprintf "%%s\\n" "$PICKET_LAB_PW"\n' >"$TMP/askpass"
    chmod 700 "$TMP/askpass"
    PICKET_LAB_PW=$pw SSH_ASKPASS="$TMP/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=none \
        ip netns exec "$SCAN" timeout 60 setsid -w ssh "${SSH_OPTS[@]}" -o BatchMode=no -o NumberOfPasswordPrompts=1 \
        -o PreferredAuthentications=password -o PubkeyAuthentication=no "$@" </dev/null
}
eq() { # expected actual
    [ "$1" = "$2" ] || { echo "expected: $1"; echo "got:      $2"; return 1; }
}

# --- deb -----------------------------------------------------------------------------------------
t_dpkg() { eq "$(dpkg-query -W | wc -l)" "$(kssh id_ed25519 "root@$DEB" 'dpkg-query -W | wc -l')"; }
check "deb: root (ed25519 key) sees this machine's dpkg database" t_dpkg
t_keytype() { eq root "$(kssh "$1" "root@$DEB" 'id -un')"; }
check "deb: root logs in with the ecdsa-p256 key" t_keytype id_ecdsa
check "deb: root logs in with the rsa-3072 key" t_keytype id_rsa
t_hostkey() { eq ok "$(kssh id_ed25519 -o "HostKeyAlgorithms=$1" "root@$DEB" 'echo ok')"; }
check "deb: host key ssh-ed25519 matches known_hosts" t_hostkey ssh-ed25519
check "deb: host key ecdsa-sha2-nistp256 matches known_hosts" t_hostkey ecdsa-sha2-nistp256
check "deb: host key rsa-sha2-512 matches known_hosts" t_hostkey rsa-sha2-512
t_ipv6() { eq ok "$(kssh id_ed25519 "root@$DEB6" 'echo ok')"; }
check "deb: root over IPv6" t_ipv6
t_root_pw() { ! pssh wrong "root@$DEB" true; }
check "deb: root cannot log in with a password" t_root_pw
t_pw() { eq "$1" "$(pssh "$(pw_of "$1")" "$1@$DEB" 'id -un')"; }
check "deb: picket logs in with its password" t_pw picket
check "deb: picketpw logs in with its password" t_pw picketpw
t_wrong_pw() { ! pssh wrong-password "picket@$DEB" true; }
check "deb: picket with a wrong password is refused" t_wrong_pw
t_sudo_n() { eq 0 "$(kssh id_ed25519 "picket@$DEB" 'sudo -n id -u')"; }
check "deb: picket: sudo -n works (NOPASSWD)" t_sudo_n
t_sudo_needs_pw() {
    local out
    out=$(kssh id_ed25519 "picketpw@$DEB" 'sudo -n true 2>&1; echo "rc=$?"')
    echo "$out"
    grep -q 'a password is required' <<<"$out" && grep -q 'rc=1' <<<"$out"
}
check "deb: picketpw: sudo -n refuses (a password is required)" t_sudo_needs_pw
t_sudo_pw() {
    eq 0 "$(printf '%s\n' "$(pw_of picketpw)" | kssh id_ed25519 "picketpw@$DEB" "sudo -S -p '' id -u")"
}
check "deb: picketpw: sudo -S with its password works" t_sudo_pw
t_sshd_t() { kssh id_ed25519 "root@$DEB" '/usr/sbin/sshd -T' | grep -qx 'permitrootlogin without-password'; }
check "deb: sshd -T shows the running config (prohibit-password)" t_sshd_t
t_sessions() {
    # One connection, 10 sessions over a control master: MaxSessions must allow them.
    local sock="$TMP/cm-deb" i
    kssh id_ed25519 -o ControlMaster=yes -o "ControlPath=$sock" -o ControlPersist=no -f -N "root@$DEB" || return 1
    for i in $(seq 10); do kssh id_ed25519 -o "ControlPath=$sock" "root@$DEB" 'sleep 1; echo ok' >"$TMP/s$i" & done
    wait
    kssh id_ed25519 -o "ControlPath=$sock" -O exit "root@$DEB" 2>/dev/null
    eq 10 "$(cat "$TMP"/s* | grep -c '^ok$')"
}
check "deb: 10 concurrent sessions on one connection" t_sessions

# --- rocky ---------------------------------------------------------------------------------------
RPM_QF='%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n'
t_rpm() {
    kssh id_ed25519 "$1@$ROCKY" "rpm -qa --qf '$RPM_QF'" | LC_ALL=C sort >"$TMP/rpm.$1"
    diff "$L/rocky/packages.tsv" "$TMP/rpm.$1" && [ "$(wc -l <"$TMP/rpm.$1")" -ge 30 ]
}
check "rocky: rpm -qa as root lists exactly the lab's packages" t_rpm root
check "rocky: rpm -qa as picket (no root) lists them too" t_rpm picket
t_rpm_kernel() {
    kssh id_ed25519 "root@$ROCKY" "rpm -q kernel-core openssl-libs vim-minimal --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{SOURCERPM}\n'" >"$TMP/k"
    cat "$TMP/k"
    grep -qx 'kernel-core 0:5.14.0-427.13.1.el9_4 kernel-5.14.0-427.13.1.el9_4.src.rpm' "$TMP/k" &&
        grep -qx 'kernel-core 0:5.14.0-362.24.1.el9_3 kernel-5.14.0-362.24.1.el9_3.src.rpm' "$TMP/k" &&
        grep -qx 'openssl-libs 1:3.0.7-24.el9 openssl-3.0.7-24.el9.src.rpm' "$TMP/k" &&
        grep -qx 'vim-minimal 2:8.2.2637-20.el9_1 vim-8.2.2637-20.el9_1.src.rpm' "$TMP/k"
}
check "rocky: two kernel-core, epoch 1 openssl-libs, epoch 2 vim-minimal" t_rpm_kernel
t_os() { # addr expected "ID VERSION_ID"
    eq "$2" "$(kssh id_ed25519 "picket@$1" '. /etc/os-release; echo "$ID $VERSION_ID"')"
}
check "rocky: /etc/os-release says rocky 9.4" t_os "$ROCKY" "rocky 9.4"
t_rocky_files() {
    eq "Rocky Linux release 9.4 (Blue Onyx)|absent|$(uname -r)" \
        "$(kssh id_ed25519 "picket@$ROCKY" 'printf "%s|" "$(cat /etc/redhat-release)"; [ -e /etc/debian_version ] && printf present || printf absent; printf "|%s" "$(uname -r)"')"
}
check "rocky: /etc/redhat-release, no /etc/debian_version, uname -r unchanged" t_rocky_files
check "rocky: picket: sudo -n works" eq 0 "$(kssh id_ed25519 "picket@$ROCKY" 'sudo -n id -u' 2>&1)"

# --- alpine --------------------------------------------------------------------------------------
t_apk() {
    kssh id_ed25519 "picket@$ALPINE" 'cat /lib/apk/db/installed' >"$TMP/apk"
    cmp "$HERE/sshlab/alpine/installed" "$TMP/apk" && [ "$(grep -c '^P:' "$TMP/apk")" -ge 20 ]
}
check "alpine: cat /lib/apk/db/installed gives the lab's file" t_apk
check "alpine: /etc/os-release says alpine 3.20.3" t_os "$ALPINE" "alpine 3.20.3"
check "alpine: /etc/alpine-release" eq 3.20.3 "$(kssh id_ed25519 "root@$ALPINE" 'cat /etc/alpine-release' 2>&1)"

# --- hostile-ssh ---------------------------------------------------------------------------------
t_hostile() { eq 104857600 "$(kssh id_ed25519 "hostile@$HOSTILE" 'uname -a' | wc -c)"; }
check "hostile-ssh: hostile's shell writes 100 MB whatever the command" t_hostile
t_hostile_pw() { eq 65536 "$(pssh "$(pw_of hostile)" "hostile@$HOSTILE" 'id' | head -c 65536 | wc -c)"; }
check "hostile-ssh: hostile logs in with its password too" t_hostile_pw
t_junk() {
    kssh id_ed25519 "junk@$HOSTILE" 'rpm -qa' >"$TMP/junk"
    local rc=$?
    eq "0 10240" "$rc $(wc -c <"$TMP/junk")"
}
check "hostile-ssh: junk's shell writes 10 KB of junk and exits 0" t_junk
t_slow() {
    local n
    n=$(ip netns exec "$SCAN" timeout 7 ssh "${SSH_OPTS[@]}" -o BatchMode=yes -o IdentitiesOnly=yes \
        -i "$L/client/id_ed25519" "slow@$HOSTILE" 'cat /etc/os-release' | wc -c)
    echo "bytes in 7 s: $n"
    [ "$n" -ge 1 ] && [ "$n" -le 3 ]
}
check "hostile-ssh: slow's shell trickles one byte per 5 s" t_slow
t_refused() { ! kssh id_ed25519 "picket@$HOSTILE" true; }
check "hostile-ssh: picket is not a user there" t_refused

# --- the fleet -----------------------------------------------------------------------------------
check "fleet: 198.18.1.50 answers (deb's sshd)" eq /usr/lib/os-release "$(kssh id_ed25519 root@198.18.1.50 'readlink -f /etc/os-release' 2>&1)"
t_fleet() {
    # 50 connections at once, one per fleet address, each with 8 sessions in parallel.
    local a i n=0 pids=()
    for a in $(q '" ".join(d["fleet"]["addresses"])'); do
        (
            sock="$TMP/cm-$a"
            kssh id_ecdsa -o ControlMaster=yes -o "ControlPath=$sock" -o ControlPersist=no -f -N "picket@$a" || exit 1
            for i in 1 2 3 4 5 6 7 8; do kssh id_ecdsa -o "ControlPath=$sock" "picket@$a" 'echo ok' >"$TMP/f-$a-$i" & done
            wait
            kssh id_ecdsa -o "ControlPath=$sock" -O exit "picket@$a" 2>/dev/null
        ) &
        pids+=($!)
    done
    for a in "${pids[@]}"; do wait "$a"; done
    n=$(cat "$TMP"/f-* 2>/dev/null | grep -c '^ok$')
    eq 400 "$n"
}
check "fleet: 50 parallel connections x 8 sessions" t_fleet

# --- rekey ---------------------------------------------------------------------------------------
FP0=$(q 'sorted(k["fingerprint"] for k in d["hosts"]["deb"]["host_keys"])')
t_rekey() {
    "$HERE/sshlab.sh" rekey "$STATE" || return 1
    local out
    out=$(kssh id_ed25519 "root@$DEB" true 2>&1)
    local rc=$?
    echo "$out" | head -3
    local fp
    fp=$("$HERE/sshlab.sh" info "$STATE" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sorted(k["fingerprint"] for k in d["hosts"]["deb"]["host_keys"]), d["hosts"]["deb"]["rekeyed"])')
    [ $rc -ne 0 ] && grep -q 'REMOTE HOST IDENTIFICATION HAS CHANGED' <<<"$out" && [ "$fp" != "$FP0 False" ] &&
        [ "${fp##* }" = True ]
}
check "rekey: deb with new host keys is refused by known_hosts" t_rekey
t_restore() {
    "$HERE/sshlab.sh" restore "$STATE" || return 1
    eq ok "$(kssh id_ed25519 "root@$DEB" 'echo ok')" &&
        eq "$FP0" "$("$HERE/sshlab.sh" info "$STATE" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sorted(k["fingerprint"] for k in d["hosts"]["deb"]["host_keys"]))')"
}
check "restore: deb has its original host keys again" t_restore

# --- nothing leaked into the machine ---------------------------------------------------------------
t_clean() {
    # No lab mount is seen outside the lab's mount namespaces, and the files are the machine's own.
    awk '{print $5}' /proc/self/mountinfo | grep -v '^/run/netns' | grep -E '^/(etc|usr/lib|var/lib/rpm|var/log|run)(/|$)' &&
        return 1
    ! grep -q '^picket:' /etc/passwd && ! grep -q '^picket:' /etc/shadow && ! grep -q picket /etc/sudoers &&
        [ ! -e /lib/apk ] && grep -q '^ID=debian' /etc/os-release
}
check "no lab mount or account leaked into the machine's own /etc, /usr, /var" t_clean

echo "sshlab-selftest: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

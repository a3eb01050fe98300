#!/usr/bin/env bash
# The SSH lab of Picket's test network: sshd hosts that `picket scan host ssh://USER@HOST` logs in
# to, each showing a different operating system through bind mounts in its own mount namespace.
#
#   sshlab.sh info    STATE_DIR   print addresses, users, passwords, keys, host keys and the
#                                 packages each host should report, as JSON
#   sshlab.sh rekey   STATE_DIR   restart the deb host's sshd with NEW host keys
#   sshlab.sh restore STATE_DIR   restart it with its original host keys
#   sshlab.sh exec    STATE_DIR HOST CMD...   run CMD as the host's sessions see it (its network and
#                                 mount namespaces), without SSH
#   sshlab.sh build-rpms          build (or find in the cache) the Rocky rpm database; prints its dir
#
# `testnet.sh up` calls `sshlab.sh _start STATE_DIR` once the namespaces exist; `testnet.sh down`
# removes everything (every process here is recorded in STATE_DIR/pids, all state is in
# STATE_DIR/sshlab, the bind mounts live and die with each sshd's private mount namespace).
#
# The hosts (namespaces made by testnet.sh, which lists them in its HOSTS):
#   deb          this machine's own Debian root; also answers on the fleet 198.18.1.1-50
#   rocky        Rocky Linux 9.4: os-release and an rpm database of real (empty) rpm packages
#   alpine       Alpine 3.20.3: os-release and a hand-written /lib/apk/db/installed
#   hostile-ssh  users whose login shells misbehave (100 MB of noise, a trickle, binary junk)
#
# Nothing under the machine's /etc, /usr or /var is written: every changed file is a copy in
# STATE_DIR mounted over the original inside the sshd's own mount namespace (`unshare -m`), or
# an extra read-only overlay layer there. /run and /var/log are private tmpfs mounts in those
# namespaces, so logins (utmp, wtmp, btmp, lastlog) and sudo timestamps stay inside them.
#
# Env: PICKET_TESTNET_CACHE (default /var/cache/picket-testnet) caches the built rpm database,
# keyed by the hash of the spec files.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
DATA="$HERE/sshlab"

DOMAIN=picket.test
# The fleet: extra addresses of the deb host, routed from the scanner through its /24 address.
FLEET_NET=198.18.1
FLEET_CIDR=198.18.1.0/24
FLEET_COUNT=50
LAB_HOSTS=(deb rocky alpine hostile-ssh)
# user uid password sudo(nopasswd|password|-) hosts(comma list)
USERS=(
    "picket 4930 picket-test-password nopasswd deb,rocky,alpine"
    "picketpw 4931 picketpw-test-password password deb,rocky,alpine"
    "hostile 4933 hostile-test-password - hostile-ssh"
    "slow 4934 slow-test-password - hostile-ssh"
    "junk 4935 junk-test-password - hostile-ssh"
)
CACHE=${PICKET_TESTNET_CACHE:-/var/cache/picket-testnet}
# The rpm database is rebuilt only when a spec file or this recipe changes.
RPM_RECIPE=1
# A fixed build time: the same specs give the same headers.
RPM_EPOCH=1714521600

die() {
    echo "sshlab: $*" >&2
    exit 1
}

usage() {
    sed -n '2,11p' "$SELF" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

state_init() {
    STATE=$(realpath -m "$1")
    [ -f "$STATE/prefix" ] || die "$STATE is not a test network state directory"
    P=$(cat "$STATE/prefix")
    L="$STATE/sshlab"
    # sshd_config and sudoers take paths unquoted.
    [[ "$STATE" =~ ^[A-Za-z0-9/._+-]+$ ]] || die "STATE_DIR path must not contain spaces or special characters"
}

host_ns() { echo "${P}_$1"; }

# The last octet of a lab host, from testnet.sh's hosts table (the single source of addresses).
host_v4() {
    local a
    a=$(awk -F'\t' -v h="$1" '$1 == h { print $3 }' "$STATE/hosts.tsv")
    [ -n "$a" ] || die "host $1 is not in $STATE/hosts.tsv (is it in testnet.sh's HOSTS?)"
    echo "$a"
}

# --- rocky: the rpm database ----------------------------------------------------------------------

# A machine whose /var/cache cannot be written (a read-only image) still comes up, only slower:
# the cache then lives in the state directory, for this network alone.
use_cache() {
    if ! mkdir -p "$CACHE" 2>/dev/null || [ ! -w "$CACHE" ]; then
        [ -n "${STATE:-}" ] || die "cache $CACHE is not writable"
        echo "sshlab: $CACHE is not writable, caching in $STATE/sshlab-cache" >&2
        CACHE="$STATE/sshlab-cache"
        mkdir -p "$CACHE"
    fi
}

rpm_key() {
    { echo "recipe $RPM_RECIPE"; rpm --version; cat "$DATA"/rpm/rocky.inc "$DATA"/rpm/*.spec; } | sha256sum | cut -c1-16
}

# Builds the rpm packages from the spec files and installs them (--justdb) into a fresh database.
# Prints the directory holding rpmdb.sqlite and packages.tsv (`rpm -qa` of it, sorted).
build_rpms() {
    command -v rpmbuild >/dev/null || die "rpmbuild is missing (apt-get install rpm; scripts/install-deps.sh)"
    local key dir tmp f
    key=$(rpm_key)
    dir="$CACHE/sshlab-rpmdb-$key"
    if [ -f "$dir/packages.tsv" ]; then
        echo "$dir"
        return 0
    fi
    use_cache
    dir="$CACHE/sshlab-rpmdb-$key"
    if [ -f "$dir/packages.tsv" ]; then
        echo "$dir"
        return 0
    fi
    tmp=$(mktemp -d "$CACHE/.sshlab-rpmdb-build.XXXXXX")
    mkdir -p "$tmp/top" "$tmp/db"
    for f in "$DATA"/rpm/*.spec; do
        SOURCE_DATE_EPOCH=$RPM_EPOCH rpmbuild -bb --quiet --define "_topdir $tmp/top" \
            --define "_sourcedir $DATA/rpm" --target x86_64 "$f" >>"$tmp/build.log" 2>&1 ||
            { rm -rf "$tmp"; die "rpmbuild $f failed"; }
    done
    # --justdb: only the database entries, no files; the packages carry none anyway.
    # --force-debian: Debian's rpm otherwise asks to use alien instead.
    rpm -i --force-debian --dbpath "$tmp/db" --justdb --nodeps --noscripts --notriggers \
        --ignorearch --ignoreos "$tmp"/top/RPMS/*/*.rpm >>"$tmp/build.log" 2>&1 ||
        { rm -rf "$tmp"; die "rpm -i --justdb failed"; }
    rpm -qa --dbpath "$tmp/db" \
        --qf '%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n' | LC_ALL=C sort >"$tmp/packages.tsv"
    rm -rf "$tmp/top"
    # SQLite in WAL mode: readers that cannot write (any user but root) need the -shm and -wal
    # files to exist, as they do on a real Rocky machine.
    chmod 755 "$tmp" "$tmp/db"
    chmod 644 "$tmp"/db/* "$tmp/packages.tsv"
    # Two test networks may build at once: the first rename wins, the other copy is dropped.
    if ! mv -T "$tmp" "$dir" 2>/dev/null; then
        rm -rf "$tmp"
    fi
    [ -f "$dir/packages.tsv" ] || die "rpm database build left no $dir/packages.tsv"
    echo "$dir"
}

# --- preparation (files only, no namespaces) --------------------------------------------------

gen_key() { # type bits file
    ssh-keygen -q -t "$1" ${2:+-b "$2"} -N '' -C "$(basename "$3")@$DOMAIN" -f "$3" </dev/null
}

# An RSA-3072 key takes ~1 s to generate here (the slowest step of `up`), so the two that `up`
# needs (the deb host key, the client key) are made once per machine and copied; ed25519 and
# ecdsa keys are fresh on every `up`, and `rekey` makes new RSA keys too.
cached_rsa_key() { # name dest
    local dir="$CACHE/sshlab-rsa-3072" tmp
    if [ ! -s "$dir/$1" ] || [ ! -s "$dir/$1.pub" ]; then
        use_cache
        dir="$CACHE/sshlab-rsa-3072"
    fi
    if [ ! -s "$dir/$1" ] || [ ! -s "$dir/$1.pub" ]; then
        tmp=$(mktemp -d "$CACHE/.sshlab-rsa.XXXXXX")
        gen_key rsa 3072 "$tmp/host"
        gen_key rsa 3072 "$tmp/client"
        chmod 700 "$tmp"
        mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
    fi
    cp "$dir/$1" "$2"
    cp "$dir/$1.pub" "$2.pub"
}

make_host_keys() { # dir rsa-mode (rsa: new key, cached-rsa: the cached one, empty: none)
    mkdir -p "$1"
    gen_key ed25519 "" "$1/ssh_host_ed25519_key"
    gen_key ecdsa 256 "$1/ssh_host_ecdsa_key"
    case $2 in
    rsa) gen_key rsa 3072 "$1/ssh_host_rsa_key" ;;
    cached-rsa) cached_rsa_key host "$1/ssh_host_rsa_key" ;;
    esac
}

# A whiteout (a 0/0 character device) in a lower overlay layer hides that name below it.
whiteout() { mknod "$1" c 0 0; }

make_accounts() {
    local u uid pw sudo hash
    mkdir -p "$L/etc" "$L/home" "$L/authorized_keys" "$L/shells"
    cp /etc/passwd "$L/etc/passwd"
    cp /etc/group "$L/etc/group"
    # root's key login: with UsePAM no, sshd refuses an account whose hash starts with `!` (locked);
    # `*` means "no password" and still allows keys.
    awk -F: -v OFS=: '$1 == "root" && $2 ~ /^!/ { $2 = "*" } { print }' /etc/shadow >"$L/etc/shadow"
    cp /etc/sudoers "$L/etc/sudoers"
    cat >>"$L/etc/sudoers" <<EOF

# Picket SSH lab (a copy of the machine's sudoers, mounted only inside the lab's sshd).
Defaults lecture=never
Defaults !syslog
EOF
    for u in "${USERS[@]}"; do
        read -r u uid pw sudo _ <<<"$u"
        if getent passwd "$u" >/dev/null || getent passwd "$uid" >/dev/null || getent group "$uid" >/dev/null; then
            die "user $u or uid/gid $uid already exists on this machine; the lab needs both unused"
        fi
        hash=$(openssl passwd -6 "$pw")
        local shell=/bin/bash
        case $u in hostile | slow | junk) shell="$L/shells/$u" ;; esac
        echo "$u:x:$uid:$uid:Picket SSH lab:$L/home/$u:$shell" >>"$L/etc/passwd"
        echo "$u:$hash:20000:0:99999:7:::" >>"$L/etc/shadow"
        echo "$u:x:$uid:" >>"$L/etc/group"
        mkdir -p "$L/home/$u"
        chown "$uid:$uid" "$L/home/$u"
        chmod 755 "$L/home/$u"
        case $sudo in
        nopasswd) echo "$u ALL=(root) NOPASSWD: ALL" >>"$L/etc/sudoers" ;;
        password) echo "$u ALL=(root) ALL" >>"$L/etc/sudoers" ;;
        esac
    done
    chmod 644 "$L/etc/passwd" "$L/etc/group"
    chown root:shadow "$L/etc/shadow" 2>/dev/null || true
    chmod 640 "$L/etc/shadow"
    chmod 440 "$L/etc/sudoers"
    # The login shells of the hostile host: whatever they are asked to run, they misbehave.
    cat >"$L/shells/hostile" <<'EOF'
#!/bin/sh
# Whatever it is asked to run (sshd calls `shell -c COMMAND`): 100 MB of noise.
exec head -c 104857600 /dev/urandom
EOF
    cat >"$L/shells/slow" <<'EOF'
#!/bin/sh
# Whatever it is asked to run: one byte every 5 s for 600 s.
i=0
while [ $i -lt 120 ]; do
    printf .
    sleep 5
    i=$((i + 1))
done
EOF
    cat >"$L/shells/junk" <<'EOF'
#!/bin/sh
# Whatever it is asked to run: 10 KB of binary junk, then success.
head -c 10240 /dev/urandom
exit 0
EOF
    chmod 755 "$L/shells/"*
}

make_client_keys() {
    mkdir -p "$L/client"
    gen_key ed25519 "" "$L/client/id_ed25519"
    gen_key ecdsa 256 "$L/client/id_ecdsa"
    cached_rsa_key client "$L/client/id_rsa"
}

authorize_clients() {
    local u
    for u in root picket picketpw hostile slow junk; do
        cat "$L/client/id_ed25519.pub" "$L/client/id_ecdsa.pub" "$L/client/id_rsa.pub" >"$L/authorized_keys/$u"
        chmod 644 "$L/authorized_keys/$u"
    done
}

make_rocky() {
    local d="$L/rocky" db
    mkdir -p "$d/etc/rpm"
    cp "$DATA/rocky/os-release" "$d/os-release"
    cp "$DATA/rocky/os-release" "$d/etc/os-release"
    echo "Rocky Linux release 9.4 (Blue Onyx)" >"$d/etc/rocky-release"
    echo "Derived from Red Hat Enterprise Linux 9.4" >"$d/etc/rocky-release-upstream"
    ln -s rocky-release "$d/etc/redhat-release"
    ln -s rocky-release "$d/etc/system-release"
    echo "cpe:/o:rocky:rocky:9::baseos" >"$d/etc/system-release-cpe"
    # Debian's rpm keeps its database in ~/.rpmdb; Rocky's in /var/lib/rpm.
    printf '%%_dbpath /var/lib/rpm\n' >"$d/etc/rpm/macros.dbpath"
    whiteout "$d/etc/debian_version"
    db=$(build_rpms)
    cp -a "$db/db" "$d/rpmdb"
    cp "$db/packages.tsv" "$d/packages.tsv"
}

make_alpine() {
    local d="$L/alpine"
    mkdir -p "$d/etc/apk/keys" "$d/usrlib/apk/db"
    cp "$DATA/alpine/os-release" "$d/etc/os-release"
    cp "$DATA/alpine/os-release" "$d/usrlib/os-release"
    echo "3.20.3" >"$d/etc/alpine-release"
    printf 'alpine-baselayout\nalpine-keys\napk-tools\nbusybox\ncurl\nlibc-utils\nopenssh-server\nsudo\n' >"$d/etc/apk/world"
    printf 'https://dl-cdn.alpinelinux.org/alpine/v3.20/main\nhttps://dl-cdn.alpinelinux.org/alpine/v3.20/community\n' \
        >"$d/etc/apk/repositories"
    echo x86_64 >"$d/etc/apk/arch"
    whiteout "$d/etc/debian_version"
    # /lib is a symlink to usr/lib on this machine, so /lib/apk/db/installed lives in /usr/lib.
    cp "$DATA/alpine/installed" "$d/usrlib/apk/db/installed"
    : >"$d/usrlib/apk/db/triggers"
    chmod -R go-w "$d"
}

write_sshd_config() { # host allow-users with-rsa
    local h=$1 d="$L/hosts/$1"
    {
        cat <<EOF
# Picket SSH lab: host $h (generated by sshlab.sh; mounted at /etc/ssh/sshd_config inside it).
Port 22
ListenAddress 0.0.0.0
ListenAddress ::
HostKey $d/keys/ssh_host_ed25519_key
HostKey $d/keys/ssh_host_ecdsa_key
EOF
        [ "$3" = rsa ] && echo "HostKey $d/keys/ssh_host_rsa_key"
        cat <<EOF
PidFile $d/sshd.pid
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile $L/authorized_keys/%u
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers $2
# The fleet test: 50 clients at once, each with ~8 channels on its connection.
MaxStartups 200:30:400
MaxSessions 32
MaxAuthTries 6
LoginGraceTime 20
PrintMotd no
PrintLastLog no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
Match User picket,picketpw,hostile,slow,junk
    PasswordAuthentication yes
EOF
    } >"$d/sshd_config"
}

prepare() {
    [ -f "$STATE/hosts.tsv" ] || die "$STATE/hosts.tsv is missing (testnet.sh up builds it)"
    local tool
    for tool in sudo rpm rpmbuild ssh-keygen openssl unshare nsenter python3; do
        command -v "$tool" >/dev/null || die "$tool is missing (run scripts/install-deps.sh)"
    done
    [ -f /etc/sudoers ] || die "/etc/sudoers is missing (is sudo installed? scripts/install-deps.sh)"
    rm -rf "$L"
    mkdir -p "$L/hosts"
    chmod 755 "$L"
    make_client_keys
    local h
    for h in "${LAB_HOSTS[@]}"; do
        mkdir -p "$L/hosts/$h"
        if [ "$h" = deb ]; then make_host_keys "$L/hosts/$h/keys" cached-rsa; else make_host_keys "$L/hosts/$h/keys" ""; fi
    done
    make_accounts
    make_rocky
    make_alpine
    write_sshd_config deb "root picket picketpw" rsa
    write_sshd_config rocky "root picket picketpw" ""
    write_sshd_config alpine "root picket picketpw" ""
    write_sshd_config hostile-ssh "hostile slow junk" ""
    local k
    for k in "$L"/client/id_ed25519 "$L"/client/id_ecdsa "$L"/client/id_rsa "$L"/hosts/deb/keys/ssh_host_rsa_key; do
        if [ ! -s "$k" ] || [ ! -s "$k.pub" ]; then die "key generation failed: $k"; fi
    done
    chmod 600 "$L"/hosts/*/keys/*_key "$L"/client/id_ed25519 "$L"/client/id_ecdsa "$L"/client/id_rsa
    authorize_clients
    write_known_hosts
}

# known_hosts of every lab host under its names and addresses (the deb line covers the fleet too).
# Written once at start: after `rekey` it still holds the original keys, which is the point.
write_known_hosts() {
    local h names v4 v6 pub i
    : >"$L/known_hosts"
    for h in "${LAB_HOSTS[@]}"; do
        v4=$(host_v4 "$h")
        v6=$(awk -F'\t' -v h="$h" '$1 == h { print $4 }' "$STATE/hosts.tsv")
        names="$h.$DOMAIN,$v4,$v6"
        if [ "$h" = deb ]; then
            for ((i = 1; i <= FLEET_COUNT; i++)); do names+=",$FLEET_NET.$i"; done
        fi
        for pub in "$L/hosts/$h/keys/"*.pub; do
            echo "$names $(cut -d' ' -f1,2 "$pub")" >>"$L/known_hosts"
        done
    done
    chmod 644 "$L/known_hosts"
}

# --- daemons -----------------------------------------------------------------------------------

# Runs inside `ip netns exec NS unshare -m --propagation private`: sets up what this host shows,
# then becomes its sshd. Mounts made here exist only in this mount namespace.
inner_sshd() {
    local h=$1
    case $h in
    rocky)
        mount -t overlay picket-lab-etc -o "lowerdir=$L/rocky/etc:/etc" /etc
        mount --bind "$L/rocky/os-release" /usr/lib/os-release
        mount --bind "$L/rocky/rpmdb" /var/lib/rpm
        ;;
    alpine)
        mount -t overlay picket-lab-etc -o "lowerdir=$L/alpine/etc:/etc" /etc
        mount -t overlay picket-lab-usrlib -o "lowerdir=$L/alpine/usrlib:/usr/lib" /usr/lib
        ;;
    esac
    local f
    for f in passwd shadow group sudoers; do
        mount --bind "$L/etc/$f" "/etc/$f"
    done
    mount --bind "$L/hosts/$h/sshd_config" /etc/ssh/sshd_config
    # root's shell start-up files are this development machine's (pyenv init in ~/.bashrc costs
    # ~0.4 s per SSH session, and 32 sessions at once queue on pyenv's rehash lock): the lab's
    # root gets Debian's stock ones, as a fresh server has.
    if [ -f /etc/skel/.bashrc ] && [ -f /root/.bashrc ]; then
        mount --bind /etc/skel/.bashrc /root/.bashrc
    fi
    if [ -f /etc/skel/.profile ] && [ -f /root/.profile ]; then
        mount --bind /etc/skel/.profile /root/.profile
    fi
    mount -t tmpfs -o mode=755,size=16m picket-lab-run /run
    mount -t tmpfs -o mode=755,size=16m picket-lab-log /var/log
    # sshd's privilege separation directory; wtmp/btmp/lastlog exist so logins are recorded
    # (in this tmpfs) as on a real machine.
    mkdir -m 755 /run/sshd
    touch /run/utmp /var/log/wtmp /var/log/btmp /var/log/lastlog
    exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config
}

start_host() { # host
    local h=$1 ns
    ns=$(host_ns "$h")
    ip netns exec "$ns" unshare -m --propagation private "$SELF" _inner "$STATE" "$h" \
        >>"$STATE/log/sshlab-$h.log" 2>&1 </dev/null &
    echo "$!" >"$L/hosts/$h/daemon.pid"
    echo "$! $ns sshlab-$h" >>"$STATE/pids"
}

wait_ssh() { # host
    local ns i
    ns=$(host_ns "$1")
    for ((i = 0; i < 150; i++)); do
        if [ -n "$(ip netns exec "$ns" ss -Hlnt 'sport = :22')" ]; then
            return 0
        fi
        sleep 0.1
    done
    die "sshd of $1 does not listen after 15 s (see $STATE/log/sshlab-$1.log)"
}

# Kills a lab host's sshd by its recorded PID, after checking that PID still lives in that host's
# namespace (so a recycled PID is never hit), and waits until port 22 is free.
stop_host() {
    local h=$1 ns pid i
    ns=$(host_ns "$h")
    pid=$(cat "$L/hosts/$h/daemon.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && [ -d "/proc/$pid" ] && [ "$(ip netns identify "$pid" 2>/dev/null)" = "$ns" ]; then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            [ -d "/proc/$pid" ] || break
            [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
            sleep 0.1
        done
        [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] && kill -9 "$pid" 2>/dev/null
    fi
    for ((i = 0; i < 50; i++)); do
        [ -z "$(ip netns exec "$ns" ss -Hlnt 'sport = :22')" ] && return 0
        sleep 0.1
    done
    die "port 22 of $h is still taken after stopping its sshd"
}

cmd_start() {
    state_init "$1"
    local t0
    t0=$(date +%s%N)
    prepare
    local deb_ns i
    deb_ns=$(host_ns deb)
    # The fleet: 50 more local addresses of the deb host, reached through its /24 address.
    for ((i = 1; i <= FLEET_COUNT; i++)); do echo "addr add $FLEET_NET.$i/32 dev lo"; done |
        ip -n "$deb_ns" -batch -
    ip -n "${P}_scan" route add "$FLEET_CIDR" via "$(host_v4 deb)"
    local h
    for h in "${LAB_HOSTS[@]}"; do start_host "$h"; done
    for h in "${LAB_HOSTS[@]}"; do wait_ssh "$h"; done
    echo "sshlab: up in $((($(date +%s%N) - t0) / 1000000)) ms"
}

cmd_rekey() {
    state_init "$1"
    [ -f "$STATE/up" ] || die "$STATE is not up"
    local d="$L/hosts/deb"
    stop_host deb
    if [ ! -d "$d/keys.orig" ]; then
        mv "$d/keys" "$d/keys.orig"
    else
        rm -rf "$d/keys"
    fi
    make_host_keys "$d/keys" rsa
    chmod 600 "$d"/keys/*_key
    start_host deb
    wait_ssh deb
}

cmd_restore() {
    state_init "$1"
    [ -f "$STATE/up" ] || die "$STATE is not up"
    local d="$L/hosts/deb"
    stop_host deb
    if [ -d "$d/keys.orig" ]; then
        rm -rf "$d/keys"
        mv "$d/keys.orig" "$d/keys"
    fi
    start_host deb
    wait_ssh deb
}

# Enters the namespaces of the host's sshd, after checking that the recorded PID still is that
# host's sshd (in its network namespace), so a recycled PID is never entered.
cmd_exec() {
    state_init "$1"
    local h=$2 pid
    shift 2
    pid=$(cat "$L/hosts/$h/daemon.pid" 2>/dev/null) || die "no lab host '$h'"
    if [ ! -d "/proc/$pid" ] || [ "$(ip netns identify "$pid" 2>/dev/null)" != "$(host_ns "$h")" ]; then
        die "the sshd of $h (PID $pid) is not running"
    fi
    exec nsenter -t "$pid" -m -n -- "$@"
}

cmd_info() {
    state_init "$1"
    [ -d "$L" ] || die "$STATE has no SSH lab"
    local u users=()
    for u in "${USERS[@]}"; do users+=("$u"); done
    PICKET_SSHLAB_STATE="$STATE" PICKET_SSHLAB_PREFIX="$P" PICKET_SSHLAB_FLEET="$FLEET_NET:$FLEET_COUNT:$FLEET_CIDR" \
        python3 "$DATA/info.py" "${users[@]}"
}

main() {
    [ $# -ge 1 ] || usage
    local cmd=$1
    shift
    case $cmd in
    build-rpms)
        [ $# -eq 0 ] || usage
        build_rpms
        ;;
    info | rekey | restore | _start)
        [ $# -eq 1 ] || usage
        [ "$(id -u)" -eq 0 ] || [ "$cmd" = info ] || die "must run as root"
        case $cmd in
        info) cmd_info "$1" ;;
        rekey) cmd_rekey "$1" ;;
        restore) cmd_restore "$1" ;;
        _start) cmd_start "$1" ;;
        esac
        ;;
    exec)
        [ $# -ge 3 ] || usage
        [ "$(id -u)" -eq 0 ] || die "must run as root"
        cmd_exec "$@"
        ;;
    _inner)
        [ $# -eq 2 ] || usage
        state_init "$1"
        inner_sshd "$2"
        ;;
    *) usage ;;
    esac
}

main "$@"

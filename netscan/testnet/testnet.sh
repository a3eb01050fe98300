#!/usr/bin/env bash
# Picket's test network: real Debian daemons in network namespaces, so the scanner's results can be
# compared exactly with what is really listening (the ground truth is read back from `ss`, never
# typed in by hand).
#
#   testnet.sh up    STATE_DIR          build the network (refuses if STATE_DIR says it is up)
#   testnet.sh down  STATE_DIR          kill every process started (by PID) and delete every namespace
#   testnet.sh loss  STATE_DIR PERCENT  drop PERCENT% of the packets every target receives (0 removes)
#   testnet.sh truth STATE_DIR          print the ground truth as JSON
#   testnet.sh exec  STATE_DIR CMD...   run CMD inside the scanner namespace
#   testnet.sh hostexec STATE_DIR HOST CMD...   run CMD inside a target's namespace (e.g. `lab`)
#   testnet.sh ns    STATE_DIR HOST     print the namespace name of HOST (`scanner`, `switch`, `ssh`, ...)
#
# `up` also starts the SSH lab (sshlab.sh: hosts deb, rocky, alpine, hostile-ssh for `scan host`).
#
# Env: PICKET_TESTNET_PREFIX (default `pk`) prefixes every namespace name, so two networks can
# coexist. PICKET_TESTNET_OWNER_PID: when set at `up`, a watcher tears the network down once that
# process has exited (test binaries use it, as Rust tests have no global teardown).
#
# Nothing is created in the root namespace apart from the namespace handles and
# /etc/netns/<scanner-ns>/resolv.conf (which `ip netns exec` bind-mounts over /etc/resolv.conf), and
# the SSH lab's cache (sshlab.sh: an rpm database and two RSA keys, /var/cache/picket-testnet).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"

SUBNET4=198.18.0
SUBNET6=2001:db8:18:
WIDE_CIDR=198.18.4.0/22
DOMAIN=picket.test

# name  last-octet  (every target gets 198.18.0.N, 2001:db8:18::N and MAC 02:00:c6:12:00:NN)
HOSTS=(
    "ssh 10" "web 11" "redis 12" "memcached 13" "ftp 14" "dns 15" "snmp 16" "mail 17"
    "quiet 20" "filtered 21" "hostile 66" "lab 200" "wide 250"
    # The SSH lab (sshlab.sh starts their sshd; deb also answers on 198.18.1.1-50).
    "deb 30" "rocky 31" "alpine 32" "hostile-ssh 33"
)
# The only port the nftables policy of the `filtered` host lets through (sshd also listens there,
# behind the filter, so a scanner that reports 22 is wrong).
FILTERED_ALLOWED=8080

die() {
    echo "testnet: $*" >&2
    exit 1
}

usage() {
    sed -n '2,22p' "$SELF" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces)"
}

# --- state ---------------------------------------------------------------------------------------

state_init() {
    STATE=$(realpath -m "$1")
    if [ -f "$STATE/prefix" ]; then
        P=$(cat "$STATE/prefix")
    else
        P=${PICKET_TESTNET_PREFIX:-pk}
    fi
    [[ "$P" =~ ^[a-z][a-z0-9]{0,23}$ ]] || die "prefix '$P' must be 1-24 lowercase letters/digits"
    SW="${P}_sw"
    SCAN="${P}_scan"
}

host_ns() { echo "${P}_$1"; }
host_mac() { printf '02:00:c6:12:00:%02x' "$1"; }

record_ns() { echo "$1" >>"$STATE/namespaces"; }

# Starts a daemon in namespace $1 and records its PID. `ip netns exec` execs the command, so $! is
# the daemon itself (every daemon here is told to stay in the foreground).
start_daemon() {
    local ns=$1 label=$2
    shift 2
    ip netns exec "$ns" "$@" >"$STATE/log/$label.log" 2>&1 </dev/null &
    echo "$! $ns $label" >>"$STATE/pids"
}

# Bounded wait until something listens on proto/port in ns.
wait_listen() {
    local ns=$1 proto=$2 port=$3 i
    for ((i = 0; i < 150; i++)); do
        if [ -n "$(ip netns exec "$ns" ss -Hln"$proto" "sport = :$port")" ]; then
            return 0
        fi
        sleep 0.1
    done
    die "nothing listens on $proto/$port in $ns after 15 s (see $STATE/log)"
}

# --- network -------------------------------------------------------------------------------------

new_ns() {
    local ns=$1
    if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns"; then
        die "namespace $ns already exists (another test network with prefix $P? set PICKET_TESTNET_PREFIX)"
    fi
    ip netns add "$ns"
    record_ns "$ns"
    ip -n "$ns" link set lo up
    # DAD would delay IPv6 by a second or two and nothing here can collide.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
        net.ipv6.conf.all.forwarding=0
}

# Attaches namespace $1 to the bridge as interface eth0 with the given MAC and addresses.
attach() {
    local ns=$1 port=$2 mac=$3 v4=$4 v6=$5
    ip -n "$SW" link add name "$port" type veth peer name eth0 netns "$ns"
    ip -n "$SW" link set "$port" master br0 up
    ip -n "$ns" link set eth0 address "$mac"
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.eth0.accept_ra=0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" addr add "$v4/24" dev eth0
    ip -n "$ns" addr add "$v6/64" dev eth0 nodad
}

build_network() {
    new_ns "$SW"
    ip -n "$SW" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
    ip -n "$SW" link set br0 up

    new_ns "$SCAN"
    attach "$SCAN" scanner "$(host_mac 2)" "$SUBNET4.2" "${SUBNET6}:2"
    # No default route: the scanner can only reach what this script built.
    ip -n "$SCAN" route add "$WIDE_CIDR" via "$SUBNET4.250"
    mkdir -p "/etc/netns/$SCAN"
    printf 'nameserver %s.15\nsearch %s\noptions timeout:1 attempts:2\n' "$SUBNET4" "$DOMAIN" \
        >"/etc/netns/$SCAN/resolv.conf"

    local h name n ns
    : >"$STATE/hosts.tsv"
    for h in "${HOSTS[@]}"; do
        read -r name n <<<"$h"
        ns=$(host_ns "$name")
        new_ns "$ns"
        attach "$ns" "$name" "$(host_mac "$n")" "$SUBNET4.$n" "${SUBNET6}:$n"
        local extra="-" allow="-" tls="-"
        case $name in
        wide)
            # A local route for the whole /22 on lo: the host answers on all 1,024 addresses.
            ip -n "$ns" addr add "$WIDE_CIDR" dev lo
            # Without this the /22's last address is a broadcast address that no TCP listener
            # answers on; removing the route makes all 1,024 addresses ordinary local ones.
            ip -n "$ns" route del broadcast 198.18.7.255 dev lo table local
            extra=$WIDE_CIDR
            ;;
        filtered)
            allow=$FILTERED_ALLOWED
            ip netns exec "$ns" nft -f - <<EOF
table inet picket_filter {
    chain input {
        type filter hook input priority 0; policy drop;
        iif lo accept
        icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
        tcp dport $FILTERED_ALLOWED accept
    }
}
EOF
            ;;
        web) tls=443 ;;
        esac
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$ns" "$SUBNET4.$n" "${SUBNET6}:$n" \
            "$(host_mac "$n")" "$extra" "$allow" "$tls" "$name.$DOMAIN" >>"$STATE/hosts.tsv"
    done
}

# --- daemons -------------------------------------------------------------------------------------

make_keys() {
    mkdir -p "$STATE/keys"
    ssh-keygen -q -t ed25519 -N '' -f "$STATE/keys/ssh_host_ed25519_key" </dev/null
    ssh-keygen -q -t ecdsa -b 256 -N '' -f "$STATE/keys/ssh_host_ecdsa_key" </dev/null
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=web.$DOMAIN/O=Picket test network" \
        -addext "subjectAltName=DNS:web.$DOMAIN,IP:$SUBNET4.11" \
        -keyout "$STATE/keys/web.key" -out "$STATE/keys/web.crt" 2>/dev/null
    chmod 600 "$STATE/keys/"*key
}

start_sshd() {
    local name=$1 d="$STATE/hosts/$1"
    # sshd insists on its compiled-in privilege-separation directory; the package creates it at boot.
    mkdir -p /run/sshd
    cat >"$d/sshd_config" <<EOF
Port 22
ListenAddress 0.0.0.0
ListenAddress ::
HostKey $STATE/keys/ssh_host_ed25519_key
HostKey $STATE/keys/ssh_host_ecdsa_key
PidFile $d/sshd.pid
UsePAM no
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile none
MaxStartups 100:30:200
LoginGraceTime 20
EOF
    start_daemon "$(host_ns "$name")" "$name-sshd" /usr/sbin/sshd -D -e -f "$d/sshd_config"
    WAIT+=("$(host_ns "$name") t 22")
}

# $2: space-separated "port" or "port:ssl" entries.
start_nginx() {
    local name=$1 listens=$2 d="$STATE/hosts/$1/nginx" l port servers="" ssl
    mkdir -p "$d/tmp" "$d/logs"
    for l in $listens; do
        port=${l%%:*}
        ssl=""
        [ "$l" != "${l%:ssl}" ] && ssl=" ssl"
        servers+="    server {
        listen $port$ssl;
        listen [::]:$port$ssl;
        server_name $name.$DOMAIN;
"
        [ -n "$ssl" ] && servers+="        ssl_certificate $STATE/keys/web.crt;
        ssl_certificate_key $STATE/keys/web.key;
"
        servers+="        location / { return 200 \"picket test $name $port\\n\"; }
    }
"
    done
    cat >"$d/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/logs/error.log;
events { worker_connections 512; }
http {
    default_type text/plain;
    access_log $d/logs/access.log;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
$servers}
EOF
    start_daemon "$(host_ns "$name")" "$name-nginx" /usr/sbin/nginx -p "$d" -e "$d/logs/error.log" -c "$d/nginx.conf"
    for l in $listens; do WAIT+=("$(host_ns "$name") t ${l%%:*}"); done
}

start_redis() {
    local d="$STATE/hosts/redis"
    cat >"$d/redis.conf" <<EOF
port 6379
bind * -::*
protected-mode no
daemonize no
supervised no
pidfile $d/redis.pid
logfile $d/redis.log
dir $d
save ""
appendonly no
EOF
    start_daemon "$(host_ns redis)" redis /usr/bin/redis-server "$d/redis.conf"
    WAIT+=("$(host_ns redis) t 6379")
}

start_memcached() {
    start_daemon "$(host_ns memcached)" memcached /usr/bin/memcached -u nobody -p 11211 -U 0 -m 16 -c 256
    WAIT+=("$(host_ns memcached) t 11211")
}

start_vsftpd() {
    local d="$STATE/hosts/ftp"
    # vsftpd refuses to start with neither local nor anonymous logins: a read-only anonymous
    # area holding one file, chroot'ed, is the least it accepts.
    mkdir -p "$d/empty" "$d/anon"
    echo "Picket test network" >"$d/anon/README"
    chmod 755 "$d/empty" "$d/anon"
    cat >"$d/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_port=21
background=NO
anonymous_enable=YES
anon_root=$d/anon
ftp_username=nobody
no_anon_password=YES
local_enable=NO
write_enable=NO
anon_upload_enable=NO
anon_mkdir_write_enable=NO
secure_chroot_dir=$d/empty
xferlog_enable=NO
vsftpd_log_file=$d/vsftpd.log
EOF
    start_daemon "$(host_ns ftp)" vsftpd /usr/sbin/vsftpd "$d/vsftpd.conf"
    WAIT+=("$(host_ns ftp) t 21")
}

start_dnsmasq() {
    local d="$STATE/hosts/dns" args=() h name n
    args+=(--keep-in-foreground --user=root --group=root --conf-file=/dev/null --no-hosts --no-resolv
        --port=53 "--pid-file=$d/dnsmasq.pid" "--log-facility=$d/dnsmasq.log"
        "--local=/$DOMAIN/" "--local=/18.198.in-addr.arpa/" "--local=/8.1.0.0.8.b.d.0.1.0.0.2.ip6.arpa/"
        "--host-record=scanner.$DOMAIN,$SUBNET4.2,${SUBNET6}:2")
    for h in "${HOSTS[@]}"; do
        read -r name n <<<"$h"
        args+=("--host-record=$name.$DOMAIN,$SUBNET4.$n,${SUBNET6}:$n")
    done
    start_daemon "$(host_ns dns)" dnsmasq /usr/sbin/dnsmasq "${args[@]}"
    WAIT+=("$(host_ns dns) t 53" "$(host_ns dns) u 53")
}

start_snmpd() {
    local d="$STATE/hosts/snmp"
    mkdir -p "$d/persist"
    cat >"$d/snmpd.conf" <<EOF
rocommunity public default
rocommunity6 public default
sysName snmp.$DOMAIN
sysLocation Picket test network
sysContact picket@$DOMAIN
# SMUX would listen on 0.0.0.0:199; keep it to loopback (which the ground truth ignores).
smuxsocket 127.0.0.1
EOF
    start_daemon "$(host_ns snmp)" snmpd /usr/bin/env "SNMP_PERSISTENT_DIR=$d/persist" MIBS= \
        /usr/sbin/snmpd -f -C -c "$d/snmpd.conf" -Lf "$d/snmpd.log" -p "$d/snmpd.pid" udp:161 udp6:161
    WAIT+=("$(host_ns snmp) u 161")
}

start_postfix() {
    local d="$STATE/hosts/mail/postfix"
    mkdir -p "$d/conf" "$d/queue" "$d/data"
    chown postfix "$d/data"
    cat >"$d/conf/main.cf" <<EOF
compatibility_level = 3.6
myhostname = mail.$DOMAIN
mydomain = $DOMAIN
myorigin = \$myhostname
mydestination = \$myhostname, localhost
mynetworks = 127.0.0.0/8
inet_interfaces = all
inet_protocols = all
queue_directory = $d/queue
data_directory = $d/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
smtpd_banner = \$myhostname ESMTP \$mail_name (Debian/GNU)
biff = no
alias_maps =
alias_database =
# Only /var and /dev/stdout are allowed prefixes; master -s keeps stdout, our log file.
maillog_file = /dev/stdout
EOF
    # Debian's master.cf, with no chroot (the chroot would need copies of /etc files in the queue).
    local src=/etc/postfix/master.cf
    [ -f "$src" ] || src=/usr/share/postfix/master.cf.dist
    awk '/^[a-z]/ && NF >= 8 { $5 = "n" } { print }' "$src" >"$d/conf/master.cf"
    grep -q '^postlog' "$d/conf/master.cf" ||
        echo 'postlog   unix-dgram n  -       n       -       1       postlogd' >>"$d/conf/master.cf"
    ip netns exec "$(host_ns mail)" /usr/sbin/postfix -c "$d/conf" check >"$STATE/log/postfix-check.log" 2>&1 ||
        die "postfix check failed (see $STATE/log/postfix-check.log)"
    start_daemon "$(host_ns mail)" postfix /usr/lib/postfix/sbin/master -c "$d/conf" -s
    WAIT+=("$(host_ns mail) t 25")
}

start_hostile() {
    start_daemon "$(host_ns hostile)" hostile "$PYTHON" "$HERE/hostile.py"
    local p
    for p in 7001 7002 7003 7004; do WAIT+=("$(host_ns hostile) t $p"); done
}

start_daemons() {
    local h name n
    for h in "${HOSTS[@]}"; do
        read -r name n <<<"$h"
        mkdir -p "$STATE/hosts/$name"
    done
    WAIT=()
    # The SSH lab prepares its files (keys, accounts, rpm database) and starts its four sshds
    # while the other daemons come up.
    "$HERE/sshlab.sh" _start "$STATE" >>"$STATE/log/sshlab.log" 2>&1 </dev/null &
    local lab=$!
    make_keys
    start_sshd ssh
    start_nginx web "80 443:ssl"
    start_redis
    start_memcached
    start_vsftpd
    start_dnsmasq
    start_snmpd
    start_postfix
    start_sshd filtered
    start_nginx filtered "$FILTERED_ALLOWED"
    start_hostile
    start_sshd wide
    start_nginx wide 80
    local w
    for w in "${WAIT[@]}"; do
        # shellcheck disable=SC2086
        wait_listen $w
    done
    wait "$lab" || die "the SSH lab did not come up (see $STATE/log/sshlab.log)"
}

# --- subcommands ---------------------------------------------------------------------------------

cmd_up() {
    need_root
    state_init "$1"
    if [ -f "$STATE/up" ] || [ -f "$STATE/namespaces" ]; then
        die "$STATE already holds a test network (run: $SELF down $STATE)"
    fi
    PYTHON=$(command -v python3) || die "python3 is missing"
    local t0=$SECONDS
    mkdir -p "$STATE/log"
    # Daemons drop privileges (postfix, memcached's nobody) and must traverse the state directory.
    chmod 755 "$STATE"
    echo "$P" >"$STATE/prefix"
    : >"$STATE/namespaces"
    : >"$STATE/pids"
    # A half-built network is torn down rather than left behind.
    trap 'echo "testnet: bring-up failed, tearing down" >&2; cmd_down "$STATE" >&2 || true' EXIT
    build_network
    start_daemons
    trap - EXIT
    date -u +%FT%TZ >"$STATE/up"
    if [ -n "${PICKET_TESTNET_OWNER_PID:-}" ]; then
        [[ "$PICKET_TESTNET_OWNER_PID" =~ ^[0-9]+$ ]] || die "PICKET_TESTNET_OWNER_PID must be a PID"
        touch "$STATE/ephemeral"
        setsid "$SELF" _watch "$STATE" "$PICKET_TESTNET_OWNER_PID" >>"$STATE/log/watch.log" 2>&1 </dev/null &
        echo "$!" >"$STATE/watcher"
    fi
    echo "testnet: up in $((SECONDS - t0)) s (prefix $P, state $STATE)" >&2
}

# True while PID runs (a zombie has released its namespaces: PID 1 here may reap late or never).
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# PIDs that still live in one of our namespaces, from the recorded PIDs and from `ip netns pids`
# (daemon children: sshd sessions, postfix services, nginx workers, test servers). Checking the
# namespace of every PID means a recycled PID is never hit.
our_pids() {
    local pid ns label
    if [ -f "$STATE/pids" ]; then
        while read -r pid ns label; do
            [ -n "$pid" ] && alive "$pid" && [ "$(ip netns identify "$pid" 2>/dev/null)" = "$ns" ] && echo "$pid"
        done <"$STATE/pids"
    fi
    if [ -f "$STATE/namespaces" ]; then
        while read -r ns; do
            [ -n "$ns" ] || continue
            ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns" || continue
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                alive "$pid" && echo "$pid"
            done
        done <"$STATE/namespaces"
    fi
    return 0
}

kill_ours() {
    local pids pid i
    pids=$(our_pids | sort -u)
    [ -n "$pids" ] || return 0
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 30; i++)); do
        pids=$(for pid in $pids; do alive "$pid" && echo "$pid"; done || true)
        [ -n "$pids" ] || return 0
        sleep 0.1
    done
    for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
}

cmd_down() {
    need_root
    state_init "$1"
    [ -d "$STATE" ] || die "no state directory $STATE"
    local pid ns label
    if [ -f "$STATE/watcher" ]; then
        pid=$(cat "$STATE/watcher")
        # The watcher calls down itself; it must not kill its own process.
        if [ "$pid" != "${WATCHER_SELF:-}" ] && [ -d "/proc/$pid" ] &&
            grep -qa "_watch" "/proc/$pid/cmdline" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
        fi
        rm -f "$STATE/watcher"
    fi
    kill_ours
    # Forked children of killed daemons may appear late (e.g. a postfix service mid-spawn).
    kill_ours
    if [ -f "$STATE/namespaces" ]; then
        while read -r ns; do
            [ -n "$ns" ] || continue
            ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns" || continue
            ip netns del "$ns"
        done <"$STATE/namespaces"
    fi
    rm -rf "/etc/netns/$SCAN"
    rm -f "$STATE/up" "$STATE/namespaces" "$STATE/pids"
    local left
    left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${P}_" || true)
    [ -z "$left" ] || die "namespaces left behind: $left"
}

cmd_watch() {
    state_init "$1"
    local owner=$2
    WATCHER_SELF=$$
    while [ -d "/proc/$owner" ]; do sleep 0.5; done
    [ -f "$STATE/up" ] || [ -f "$STATE/namespaces" ] || exit 0
    echo "owner $owner exited, tearing down" >&2
    cmd_down "$STATE"
    # A network brought up for one process also takes its state directory away with it.
    if [ -f "$STATE/ephemeral" ]; then
        rm -rf "$STATE"
    fi
}

cmd_loss() {
    need_root
    state_init "$1"
    local pct=$2 ns
    if ! [[ "$pct" =~ ^[0-9]+$ ]] || [ "$pct" -gt 100 ]; then
        die "PERCENT must be 0-100"
    fi
    [ -f "$STATE/up" ] || die "$STATE is not up"
    # shellcheck disable=SC2013 # namespace names have no spaces (checked prefix + fixed names)
    for ns in $(cut -f2 "$STATE/hosts.tsv"); do
        ip netns exec "$ns" nft delete table inet picket_loss 2>/dev/null || true
        [ "$pct" -eq 0 ] && continue
        # Before every other hook (priority -400), so the filtered host's policy sees the survivors.
        ip netns exec "$ns" nft -f - <<EOF
table inet picket_loss {
    chain input {
        type filter hook prerouting priority -400;
        iif lo accept
        numgen random mod 100 < $pct counter drop
    }
}
EOF
    done
    # ARP is not IP: drop it on the switch, on its way to the targets (not the scanner).
    ip netns exec "$SW" nft delete table bridge picket_loss 2>/dev/null || true
    if [ "$pct" -gt 0 ]; then
        ip netns exec "$SW" nft -f - <<EOF
table bridge picket_loss {
    chain forward {
        type filter hook forward priority 0;
        oifname != "scanner" ether type arp numgen random mod 100 < $pct counter drop
    }
}
EOF
    fi
    echo "$pct" >"$STATE/loss"
}

cmd_truth() {
    state_init "$1"
    [ -f "$STATE/up" ] || die "$STATE is not up"
    PICKET_TESTNET_STATE="$STATE" PICKET_TESTNET_SCAN_NS="$SCAN" PICKET_TESTNET_SW_NS="$SW" \
        python3 "$HERE/truth.py"
}

main() {
    [ $# -ge 2 ] || usage
    local cmd=$1 dir=$2
    shift 2
    case $cmd in
    up) cmd_up "$dir" ;;
    down) cmd_down "$dir" ;;
    loss)
        [ $# -eq 1 ] || usage
        cmd_loss "$dir" "$1"
        ;;
    truth) cmd_truth "$dir" ;;
    exec)
        [ $# -ge 1 ] || usage
        state_init "$dir"
        exec ip netns exec "$SCAN" "$@"
        ;;
    hostexec)
        [ $# -ge 2 ] || usage
        state_init "$dir"
        local ns
        ns=$(awk -F'\t' -v h="$1" '$1 == h { print $2 }' "$STATE/hosts.tsv")
        [ -n "$ns" ] || die "no host '$1'"
        shift
        exec ip netns exec "$ns" "$@"
        ;;
    ns)
        [ $# -eq 1 ] || usage
        state_init "$dir"
        case $1 in
        scanner) echo "$SCAN" ;;
        switch) echo "$SW" ;;
        *) host_ns "$1" ;;
        esac
        ;;
    _watch)
        [ $# -eq 1 ] || usage
        cmd_watch "$dir" "$1"
        ;;
    *) usage ;;
    esac
}

main "$@"

//! Host discovery against real hosts in network namespaces this test builds itself.
//!
//! Topology (all in 198.18.200.0/22 + 198.18.204.0/22 and 2001:db8:c8::/47, apart from the shared
//! test network in 198.18.0.0/24):
//!
//! ```text
//!   scan (198.18.200.2, no default route) ── br0 in "sw" ── t10 t11 t12 t20 t50 (on-link targets)
//!                                               └──────── rtr 198.18.200.1 ── br1 ── far10, far11
//!                                                          (198.18.201.1; answers for all of
//!                                                           198.18.204.0/22 on its loopback)
//! ```
//!
//! Discovery runs inside `scan` through the `netscan-probe` binary (`ip netns exec`), because a
//! test process cannot enter a namespace without unsafe `setns`. The test needs root; it fails
//! without it unless `PICKET_SKIP_NETNS=1`.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces, processes and files of one test network; removed on drop, even after a failure.
struct Net {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
    netns_etc: Option<std::path::PathBuf>,
    tmp: std::path::PathBuf,
}

impl Net {
    fn ns(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    fn add_ns(&mut self, name: &str) -> String {
        let ns = self.ns(name);
        run(&["ip", "netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        // Link-local addresses would otherwise stay tentative for a second or two, during which
        // routed IPv6 silently fails; the test's addresses are unique by construction.
        for conf in ["all", "default"] {
            self.exec(
                &ns,
                &[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{conf}.accept_dad=0"),
                ],
            );
        }
        ns
    }

    fn exec(&self, ns: &str, args: &[&str]) {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend_from_slice(args);
        run(&v);
    }

    /// A veth from `ns` (named `dev`, with `mac`) to bridge `br` in `bridge_ns`.
    fn plug(&self, ns: &str, dev: &str, mac: &str, bridge_ns: &str, br: &str, port: &str) {
        run(&[
            "ip", "-n", ns, "link", "add", dev, "address", mac, "type", "veth", "peer", "name",
            port, "netns", bridge_ns,
        ]);
        run(&[
            "ip", "-n", bridge_ns, "link", "set", port, "master", br, "up",
        ]);
        run(&["ip", "-n", ns, "link", "set", dev, "up"]);
    }

    fn addr(&self, ns: &str, dev: &str, cidr: &str) {
        if cidr.contains(':') {
            run(&["ip", "-n", ns, "addr", "add", cidr, "dev", dev, "nodad"]);
        } else {
            run(&["ip", "-n", ns, "addr", "add", cidr, "dev", dev]);
        }
    }

    fn route(&self, ns: &str, args: &[&str]) {
        let mut v = vec!["ip", "-n", ns, "route", "add"];
        v.extend_from_slice(args);
        run(&v);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if let Some(d) = &self.netns_etc {
            let _ = std::fs::remove_dir_all(d);
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

const ON_LINK: [(&str, u8); 5] = [
    ("t10", 10),
    ("t11", 11),
    ("t12", 12),
    ("t20", 20),
    ("t50", 50),
];

fn build() -> Net {
    let prefix = format!("pkd{}-", std::process::id() % 100_000);
    let tmp = std::env::temp_dir().join(format!("{prefix}discovery"));
    std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("tmp dir: {e}"));
    let mut net = Net {
        prefix,
        namespaces: Vec::new(),
        children: Vec::new(),
        netns_etc: None,
        tmp,
    };
    let sw = net.add_ns("sw");
    run(&[
        "ip",
        "-n",
        &sw,
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "stp_state",
        "0",
        "mcast_snooping",
        "0",
    ]);
    run(&["ip", "-n", &sw, "link", "set", "br0", "up"]);

    let scan = net.add_ns("scan");
    net.plug(&scan, "s0", "02:00:00:00:c8:02", &sw, "br0", "p-scan");
    net.addr(&scan, "s0", "198.18.200.2/24");
    net.addr(&scan, "s0", "2001:db8:c8::2/64");
    net.route(&scan, &["198.18.201.0/24", "via", "198.18.200.1"]);
    net.route(&scan, &["198.18.204.0/22", "via", "198.18.200.1"]);
    net.route(&scan, &["2001:db8:c9::/64", "via", "2001:db8:c8::1"]);

    for (name, n) in ON_LINK {
        let ns = net.add_ns(name);
        net.plug(
            &ns,
            "e0",
            &format!("02:00:00:00:c8:{n:02x}"),
            &sw,
            "br0",
            &format!("p-{name}"),
        );
        net.addr(&ns, "e0", &format!("198.18.200.{n}/24"));
        net.addr(&ns, "e0", &format!("2001:db8:c8::{n}/64"));
    }
    // t11 ignores pings: ARP must find it anyway.
    net.exec(
        &net.ns("t11"),
        &["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"],
    );

    let rtr = net.add_ns("rtr");
    net.plug(&rtr, "r0", "02:00:00:00:c8:01", &sw, "br0", "p-rtr");
    net.addr(&rtr, "r0", "198.18.200.1/24");
    net.addr(&rtr, "r0", "2001:db8:c8::1/64");
    run(&[
        "ip",
        "-n",
        &rtr,
        "link",
        "add",
        "br1",
        "type",
        "bridge",
        "stp_state",
        "0",
        "mcast_snooping",
        "0",
    ]);
    run(&["ip", "-n", &rtr, "link", "set", "br1", "up"]);
    net.addr(&rtr, "br1", "198.18.201.1/24");
    net.addr(&rtr, "br1", "2001:db8:c9::1/64");
    net.exec(&rtr, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    net.exec(&rtr, &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    // 1,024 routed addresses that all answer: the router holds the whole /22 on its loopback.
    run(&[
        "ip",
        "-n",
        &rtr,
        "route",
        "add",
        "local",
        "198.18.204.0/22",
        "dev",
        "lo",
    ]);
    for (name, n) in [("far10", 10u8), ("far11", 11)] {
        let ns = net.add_ns(name);
        net.plug(
            &ns,
            "e0",
            &format!("02:00:00:00:c9:{n:02x}"),
            &rtr,
            "br1",
            &format!("p-{name}"),
        );
        net.addr(&ns, "e0", &format!("198.18.201.{n}/24"));
        net.addr(&ns, "e0", &format!("2001:db8:c9::{n}/64"));
        net.route(&ns, &["198.18.200.0/24", "via", "198.18.201.1"]);
        net.route(&ns, &["2001:db8:c8::/64", "via", "2001:db8:c9::1"]);
    }
    // far11 drops pings: only the timestamp and TCP probes can find it.
    net.exec(
        &net.ns("far11"),
        &["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"],
    );

    // DNS for the scanner: dnsmasq on the router serves A/AAAA and PTR from a hosts file, and the
    // scanner namespace's resolv.conf (bind-mounted by `ip netns exec`) points at it.
    let hosts = net.tmp.join("hosts");
    std::fs::write(
        &hosts,
        "198.18.200.10 alpha.picket.test\n2001:db8:c8::10 alpha.picket.test\n\
         198.18.200.11 bravo.picket.test\n198.18.201.10 far.picket.test\n",
    )
    .unwrap_or_else(|e| panic!("hosts file: {e}"));
    let etc = std::path::PathBuf::from("/etc/netns").join(&scan);
    std::fs::create_dir_all(&etc).unwrap_or_else(|e| panic!("{}: {e}", etc.display()));
    std::fs::write(etc.join("resolv.conf"), "nameserver 198.18.200.1\n")
        .unwrap_or_else(|e| panic!("resolv.conf: {e}"));
    net.netns_etc = Some(etc);
    let pid_file = net.tmp.join("dnsmasq.pid");
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &rtr,
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
        ])
        .arg("--no-resolv")
        .arg("--no-hosts")
        .arg(format!("--addn-hosts={}", hosts.display()))
        .arg(format!("--pid-file={}", pid_file.display()))
        .args([
            "--listen-address=198.18.200.1",
            "--bind-interfaces",
            "--user=root",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("dnsmasq: {e}"));
    net.children.push(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new("ip")
            .args(["netns", "exec", &rtr, "ss", "-Hlun", "sport", "=", ":53"])
            .output()
            .unwrap_or_else(|e| panic!("ss: {e}"));
        if !out.stdout.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "dnsmasq did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    net
}

/// What `netscan-probe` printed, reduced to what the assertions need.
#[derive(Debug)]
struct ProbeOut {
    wall: Duration,
    discovery_ms: u64,
    hosts: BTreeMap<String, serde_json::Value>,
    json: serde_json::Value,
}

fn probe(net: &Net, args: &[&str]) -> ProbeOut {
    let started = Instant::now();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.ns("scan"),
            env!("CARGO_BIN_EXE_netscan-probe"),
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("netscan-probe: {e}"));
    let wall = started.elapsed();
    assert!(
        out.status.success(),
        "netscan-probe {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("probe output {e}: {}", String::from_utf8_lossy(&out.stdout)));
    let hosts = json["hosts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| (h["addr"].as_str().unwrap_or("").to_string(), h.clone()))
                .collect()
        })
        .unwrap_or_default();
    ProbeOut {
        wall,
        discovery_ms: json["discovery_ms"].as_u64().unwrap_or(u64::MAX),
        hosts,
        json,
    }
}

fn nmap_sn(net: &Net, target: &str) -> (Duration, usize) {
    let started = Instant::now();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.ns("scan"),
            "nmap",
            "-sn",
            "-n",
            "-oG",
            "-",
            target,
        ])
        .output()
        .unwrap_or_else(|e| panic!("nmap: {e}"));
    let wall = started.elapsed();
    assert!(
        out.status.success(),
        "nmap: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let up = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("Status: Up"))
        .count();
    (wall, up)
}

/// 1% of all frames crossing the switch dropped, in both directions (the kernel has no netem here).
fn set_loss(net: &Net, pct: u8) {
    let sw = net.ns("sw");
    let _ = Command::new("ip")
        .args([
            "netns", "exec", &sw, "nft", "delete", "table", "bridge", "pkd_loss",
        ])
        .stderr(Stdio::null())
        .status();
    if pct > 0 {
        let rule = format!("add rule bridge pkd_loss forward numgen random mod 100 < {pct} drop");
        for cmd in [
            "add table bridge pkd_loss",
            "add chain bridge pkd_loss forward { type filter hook forward priority 0 ; }",
            rule.as_str(),
        ] {
            net.exec(&sw, &["nft", cmd]);
        }
    }
}

/// Packets counted by the named counter of table `bridge pkd_count` in the switch.
fn nft_counter(net: &Net, name: &str) -> u64 {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.ns("sw"),
            "nft",
            "list",
            "counter",
            "bridge",
            "pkd_count",
            name,
        ])
        .output()
        .unwrap_or_else(|e| panic!("nft: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "packets" {
            if let Some(n) = words.next().and_then(|n| n.parse().ok()) {
                return n;
            }
        }
    }
    panic!("no packet count in {text}");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn discovery_in_namespaces() {
    if !is_root() {
        if std::env::var("PICKET_SKIP_NETNS").as_deref() == Ok("1") {
            eprintln!("skipping: not root and PICKET_SKIP_NETNS=1");
            return;
        }
        panic!(
            "this test builds network namespaces and needs root (set PICKET_SKIP_NETNS=1 to skip)"
        );
    }
    let net = build();

    // --- Privileged: ARP, NDP, routed ICMP/TCP, 1,024 routed addresses.
    let r = probe(
        &net,
        &[
            "198.18.200.0/24",
            "2001:db8:c8::1-2001:db8:c8::ff",
            "198.18.201.0/28",
            "2001:db8:c9::10-2001:db8:c9::11",
            "198.18.204.0/22",
        ],
    );
    eprintln!(
        "privileged sweep: {} ms discovery, {:?} wall",
        r.discovery_ms, r.wall
    );
    let mut want_on_link: Vec<String> = vec!["198.18.200.1".into()];
    want_on_link.extend(ON_LINK.iter().map(|(_, n)| format!("198.18.200.{n}")));
    for a in &want_on_link {
        let h = &r
            .hosts
            .get(a)
            .unwrap_or_else(|| panic!("{a} not found: {:?}", r.json));
        assert_eq!(h["reason"], "arp-response", "{a}: {h}");
        let last: u8 = a
            .rsplit('.')
            .next()
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        assert_eq!(h["mac"], format!("02:00:00:00:c8:{last:02x}"), "{a}: {h}");
        assert!(h["rtt_us"].as_u64().is_some(), "{a}: {h}");
    }
    let mut want_v6: Vec<String> = vec!["2001:db8:c8::1".into()];
    want_v6.extend(ON_LINK.iter().map(|(_, n)| format!("2001:db8:c8::{n}")));
    for a in &want_v6 {
        let h = &r
            .hosts
            .get(a)
            .unwrap_or_else(|| panic!("{a} not found: {:?}", r.json));
        assert_eq!(h["reason"], "nd-response", "{a}: {h}");
        assert!(
            h["mac"]
                .as_str()
                .is_some_and(|m| m.starts_with("02:00:00:00:c8:")),
            "{h}"
        );
    }
    // Our own addresses answer through the local stack (whichever routed probe is first).
    for a in ["198.18.200.2", "2001:db8:c8::2"] {
        let reason = r
            .hosts
            .get(a)
            .map(|h| h["reason"].as_str().unwrap_or("").to_string());
        assert!(
            reason
                .as_deref()
                .is_some_and(|x| ["echo-reply", "timestamp-reply", "rst", "syn-ack"].contains(&x)),
            "{a}: {reason:?}"
        );
    }
    // Routed hosts: far10 answers pings (TTL 63: one hop), far11 drops them.
    let far10 = &r.hosts["198.18.201.10"];
    // Answers to the four probes race through two receiver threads; any of them proves it up.
    assert!(
        ["echo-reply", "timestamp-reply", "rst", "syn-ack"]
            .contains(&far10["reason"].as_str().unwrap_or("")),
        "{far10}"
    );
    assert_eq!(far10["ttl"], 63, "{far10}");
    assert!(far10["mac"].is_null());
    let far11 = r
        .hosts
        .get("198.18.201.11")
        .unwrap_or_else(|| panic!("far11 missed: {:?}", r.json));
    assert!(
        ["timestamp-reply", "rst", "syn-ack"].contains(&far11["reason"].as_str().unwrap_or("")),
        "{far11}"
    );
    assert!(r.hosts.contains_key("198.18.201.1"), "router's far side");
    assert!(
        r.hosts.contains_key("2001:db8:c9::10") && r.hosts.contains_key("2001:db8:c9::11"),
        "routed IPv6: {:?}",
        r.hosts
            .keys()
            .filter(|a| a.contains(':'))
            .collect::<Vec<_>>()
    );
    let routed_block = r
        .hosts
        .keys()
        .filter(|a| a.starts_with("198.18.20"))
        .filter(|a| {
            let o: Vec<u8> = a.split('.').filter_map(|x| x.parse().ok()).collect();
            o.len() == 4 && (204..=207).contains(&o[2])
        });
    assert_eq!(routed_block.count(), 1024, "all of 198.18.204.0/22");
    let expected = want_on_link.len() + want_v6.len() + 2 + 3 + 2 + 1024;
    assert_eq!(
        r.hosts.len(),
        expected,
        "no phantom hosts: {:?}",
        r.hosts.keys()
    );

    // --- The routed /22 alone: how fast 1,024 off-link hosts are found.
    let r22 = probe(&net, &["198.18.204.0/22"]);
    assert_eq!(r22.hosts.len(), 1024);
    eprintln!(
        "1,024 routed hosts: {} ms discovery, {:?} wall",
        r22.discovery_ms, r22.wall
    );
    assert!(r22.discovery_ms < 3_000, "{} ms", r22.discovery_ms);
    let (t22, up22) = nmap_sn(&net, "198.18.204.0/22");
    eprintln!("1,024 routed hosts: nmap -sn {t22:?} ({up22} up)");

    // --- Unprivileged: TCP connect (refused) proves the routed hosts up, and nothing else.
    let u = probe(
        &net,
        &[
            "--unprivileged",
            "--retries",
            "1",
            "198.18.201.0/28",
            "198.18.200.9-12",
        ],
    );
    eprintln!(
        "unprivileged sweep of 21 addresses: {} ms discovery",
        u.discovery_ms
    );
    let found: Vec<&String> = u.hosts.keys().collect();
    assert_eq!(
        found,
        [
            "198.18.200.10",
            "198.18.200.11",
            "198.18.200.12",
            "198.18.201.1",
            "198.18.201.10",
            "198.18.201.11"
        ],
        "{:?}",
        u.json
    );
    for (a, h) in &u.hosts {
        assert!(
            ["conn-refused", "echo-reply", "syn-ack"].contains(&h["reason"].as_str().unwrap_or("")),
            "{a}: {h}"
        );
    }

    // --- Unprivileged ICMP: with ping sockets allowed, a host that drops all TCP is found by echo.
    let far10 = net.ns("far10");
    net.exec(&far10, &["nft", "add table inet pkd_notcp"]);
    net.exec(
        &far10,
        &[
            "nft",
            "add chain inet pkd_notcp input { type filter hook input priority 0 ; }",
        ],
    );
    net.exec(
        &far10,
        &["nft", "add rule inet pkd_notcp input meta l4proto tcp drop"],
    );
    net.exec(
        &net.ns("scan"),
        &["sysctl", "-qw", "net.ipv4.ping_group_range=0 0"],
    );
    let e = probe(
        &net,
        &[
            "--unprivileged",
            "--retries",
            "1",
            "198.18.201.10",
            "2001:db8:c9::10",
        ],
    );
    for a in ["198.18.201.10", "2001:db8:c9::10"] {
        let h = e
            .hosts
            .get(a)
            .unwrap_or_else(|| panic!("{a} missed: {:?}", e.json));
        assert_eq!(h["reason"], "echo-reply", "{a}: {h}");
        assert!(h["rtt_us"].as_u64().is_some(), "{h}");
    }
    net.exec(&far10, &["nft", "delete table inet pkd_notcp"]);
    net.exec(
        &net.ns("scan"),
        &["sysctl", "-qw", "net.ipv4.ping_group_range=1 0"],
    );

    // --- Hostnames and reverse DNS through the namespace's resolver.
    let d = probe(
        &net,
        &[
            "--rdns",
            "alpha.picket.test",
            "198.18.200.11",
            "far.picket.test",
        ],
    );
    assert_eq!(
        d.json["hostnames"]["198.18.200.10"],
        serde_json::json!(["alpha.picket.test"]),
        "{:?}",
        d.json
    );
    assert_eq!(
        d.json["hostnames"]["2001:db8:c8::10"],
        serde_json::json!(["alpha.picket.test"])
    );
    assert_eq!(
        d.json["targets"], 4,
        "A and AAAA of alpha, bravo by address, far: {:?}",
        d.json
    );
    assert_eq!(
        d.json["ptr"]["198.18.200.11"],
        serde_json::json!(["bravo.picket.test"])
    );
    assert_eq!(
        d.json["ptr"]["198.18.201.10"],
        serde_json::json!(["far.picket.test"])
    );
    assert!(d.json["ptr"].get("198.18.200.12").is_none());
    let bad = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.ns("scan"),
            env!("CARGO_BIN_EXE_netscan-probe"),
        ])
        .arg("nonexistent.picket.test")
        .output()
        .unwrap_or_else(|e| panic!("netscan-probe: {e}"));
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nonexistent.picket.test"));

    // --- Politeness: exact retransmission counts (from switch counters) and the rate cap.
    let sw = net.ns("sw");
    for cmd in [
        "add table bridge pkd_count",
        "add counter bridge pkd_count ask99",
        "add counter bridge pkd_count ask10",
        "add chain bridge pkd_count pre { type filter hook prerouting priority 0 ; }",
        "add rule bridge pkd_count pre iifname \"p-scan\" arp operation request arp daddr ip 198.18.200.99 counter name \"ask99\"",
        "add rule bridge pkd_count pre iifname \"p-scan\" arp operation request arp daddr ip 198.18.200.10 counter name \"ask10\"",
    ] {
        net.exec(&sw, &["nft", cmd]);
    }
    let rate_started = Instant::now();
    let c = probe(
        &net,
        &["--retries", "2", "--rate", "1000", "198.18.200.0/24"],
    );
    let rate_wall = rate_started.elapsed();
    assert_eq!(
        c.hosts.len(),
        want_on_link.len() + 1,
        "{:?}",
        c.hosts.keys()
    );
    assert_eq!(
        nft_counter(&net, "ask99"),
        3,
        "a silent address is asked retries + 1 times"
    );
    assert_eq!(
        nft_counter(&net, "ask10"),
        1,
        "an answering host is asked once"
    );
    // 254 first-round requests plus 2 x 248 retransmissions, at most 1,000 per second.
    assert!(
        rate_wall >= Duration::from_millis(750),
        "--rate 1000 took only {rate_wall:?}"
    );
    eprintln!("--rate 1000 --retries 2 on the /24: {rate_wall:?}");
    net.exec(&sw, &["nft", "delete table bridge pkd_count"]);

    // --- The /24 against nmap -sn, without and with 1% loss. Every up host must be found.
    let want_24 = want_on_link.len() + 1; // the targets, the router and ourselves
    for pct in [0u8, 1] {
        set_loss(&net, pct);
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..3 {
            let p = probe(&net, &["198.18.200.0/24"]);
            assert_eq!(p.hosts.len(), want_24, "loss {pct}%: {:?}", p.hosts.keys());
            ours.push(p.wall);
            let (t, up) = nmap_sn(&net, "198.18.200.0/24");
            theirs.push(t);
            eprintln!(
                "loss {pct}%: picket {:?} ({} ms discovery), nmap -sn {t:?} ({up} up)",
                p.wall, p.discovery_ms
            );
        }
        ours.sort();
        theirs.sort();
        let (o, t) = (ours[1], theirs[1]);
        eprintln!(
            "loss {pct}%: median picket {o:?} vs nmap -sn {t:?} ({:.2}x)",
            o.as_secs_f64() / t.as_secs_f64()
        );
        assert!(
            o.as_secs_f64() <= 0.5 * t.as_secs_f64(),
            "loss {pct}%: picket {o:?} vs nmap {t:?}"
        );
    }
    set_loss(&net, 0);
}

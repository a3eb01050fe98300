//! End-to-end tests of `picket scan net` against the namespace test network
//! (`netscan/testnet/testnet.sh`): real Debian daemons, and a ground truth read back from what they
//! really listen on. Every assertion is exact: no missed host or port, no extra one.
//!
//! Needs root (network namespaces). The network is built on first use and torn down when this test
//! binary exits; set `PICKET_TESTNET=STATE_DIR` to use one that is already up, or
//! `PICKET_SKIP_NETNS=1` to skip these tests (otherwise a network that cannot be built fails them).

mod common;

use common::*;
use picket_model::{HostStatus, PortState, Protocol};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// Ports that cover every TCP listener of the /24 (21...11211) and many closed ones.
const LAN_PORTS: &str = "1-12000";
const SERVICE_PORTS: &str = "21,22,25,53,80,443,6379,8080,11211";

fn scanner_addrs(net: &TestNet) -> Vec<&str> {
    vec![
        net.truth.scanner.ipv4.as_str(),
        net.truth.scanner.ipv6.as_str(),
    ]
}

fn assert_no_differences(what: &str, diffs: &[String]) {
    assert!(
        diffs.is_empty(),
        "{what}: {} difference(s) from the ground truth:\n  {}",
        diffs.len(),
        diffs.join("\n  ")
    );
}

#[test]
fn ground_truth_describes_the_built_network() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let t = &net.truth;
    let ports = |name: &str| -> Vec<u16> {
        t.host(&t.v4_of(name))
            .map(|h| h.tcp.clone())
            .unwrap_or_default()
    };
    // Each daemon really came up and is seen by `ss`; a missing one would make every other test
    // compare against a poorer network than intended.
    assert_eq!(ports("ssh"), vec![22]);
    assert_eq!(ports("web"), vec![80, 443]);
    assert_eq!(ports("redis"), vec![6379]);
    assert_eq!(ports("memcached"), vec![11211]);
    assert_eq!(ports("ftp"), vec![21]);
    assert_eq!(ports("dns"), vec![53]);
    assert_eq!(ports("mail"), vec![25]);
    assert_eq!(ports("quiet"), Vec::<u16>::new());
    // sshd listens on the filtered host too, but only 8080 passes its nftables policy.
    assert_eq!(ports("filtered"), vec![8080]);
    assert_eq!(ports("hostile"), vec![7001, 7002, 7003, 7004]);
    assert_eq!(ports("wide"), vec![22, 80]);
    let udp = |name: &str| {
        t.host(&t.v4_of(name))
            .map(|h| h.udp.clone())
            .unwrap_or_default()
    };
    assert_eq!(udp("dns"), vec![53]);
    assert_eq!(udp("snmp"), vec![161]);
    let wide = t
        .hosts
        .iter()
        .filter(|h| h.host == "wide" && h.address.starts_with("198.18."))
        .count();
    assert_eq!(
        wide,
        1 + 1024,
        "the wide host answers on its /24 address and 1,024 more"
    );
    assert!(
        t.empty.contains(&"198.18.0.40".to_string())
            && t.empty.contains(&"198.18.0.60".to_string())
    );
    assert_eq!(t.loss_percent, 0);
}

#[test]
fn discovery_of_the_lan_matches_ground_truth() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let store = store();
    let (report, _) = net.scan_net(
        store.path(),
        &["198.18.0.0/24", "--ports", "none", "--no-rdns"],
        Duration::from_secs(120),
    );
    let want: BTreeSet<String> = net
        .truth
        .subnet_hosts()
        .iter()
        .map(|h| h.address.clone())
        .collect();
    let mut got = up_hosts(&report);
    got.remove(&net.truth.scanner.ipv4);
    assert_eq!(
        got,
        want,
        "up hosts differ: missing {:?}, extra {:?}",
        want.difference(&got).collect::<Vec<_>>(),
        got.difference(&want).collect::<Vec<_>>()
    );
    for h in &report.hosts {
        assert!(
            h.ports.is_empty(),
            "--ports none listed ports for {}",
            h.address
        );
    }
}

/// Scans TCP 1-12000 of the whole /24 and compares the open ports with the ground truth.
fn lan_ports_match_truth(net: &TestNet, label: &str, timeout: Duration) {
    let store = store();
    let (report, _) = net.scan_net(
        store.path(),
        &[
            "198.18.0.0/24",
            "--ports",
            LAN_PORTS,
            "--no-service",
            "--no-rdns",
        ],
        timeout,
    );
    let diffs = port_differences(&report, &net.truth.subnet_hosts(), &scanner_addrs(net));
    assert_no_differences(label, &diffs);
}

#[test]
fn tcp_ports_of_the_lan_match_ground_truth() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    lan_ports_match_truth(net, "198.18.0.0/24 tcp 1-12000", Duration::from_secs(300));
}

#[test]
fn tcp_ports_of_the_lan_match_ground_truth_with_one_percent_loss() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let _loss = net.loss(1);
    lan_ports_match_truth(
        net,
        "198.18.0.0/24 tcp 1-12000 with 1% loss",
        Duration::from_secs(400),
    );
}

#[test]
fn all_65535_ports_of_one_host() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let store = store();
    let web = net.truth.v4_of("web");
    let (report, _) = net.scan_net(
        store.path(),
        &[web.as_str(), "--ports", "all", "--no-service", "--no-rdns"],
        Duration::from_secs(180),
    );
    let host = net.truth.host(&web).map(|h| vec![h]).unwrap_or_default();
    assert_no_differences(
        "all ports of the web host",
        &port_differences(&report, &host, &[]),
    );
    let h = report.hosts.iter().find(|h| h.address == web);
    let summary = h.map(|h| h.port_summary).unwrap_or_default();
    assert_eq!(
        (summary.open, summary.closed, summary.filtered),
        (2, 65533, 0),
        "every port of a host without a firewall is open or closed"
    );
}

#[test]
fn the_host_answering_on_1024_addresses() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let wide = net
        .truth
        .wide
        .as_ref()
        .map(|w| w.cidr.clone())
        .unwrap_or_default();
    assert_eq!(wide, "198.18.4.0/22");
    let store = store();
    let (report, _) = net.scan_net(
        store.path(),
        &[
            wide.as_str(),
            "--ports",
            "1-1024",
            "--no-service",
            "--no-rdns",
        ],
        Duration::from_secs(600),
    );
    let expected: Vec<&TruthHost> = net
        .truth
        .hosts
        .iter()
        .filter(|h| {
            h.host == "wide"
                && h.address.starts_with("198.18.")
                && !h.address.starts_with("198.18.0.")
        })
        .collect();
    assert_eq!(expected.len(), 1024);
    assert_no_differences(
        "198.18.4.0/22 tcp 1-1024",
        &port_differences(&report, &expected, &[]),
    );
}

#[test]
fn ipv6_hosts_and_ports_match_ground_truth() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let expected: Vec<&TruthHost> = net
        .truth
        .hosts
        .iter()
        .filter(|h| h.address.contains(':'))
        .collect();
    let mut args: Vec<&str> = expected.iter().map(|h| h.address.as_str()).collect();
    args.extend_from_slice(&["--ports", LAN_PORTS, "--no-service", "--no-rdns"]);
    let store = store();
    let (report, _) = net.scan_net(store.path(), &args, Duration::from_secs(300));
    assert_no_differences(
        "IPv6 hosts, tcp 1-12000",
        &port_differences(&report, &expected, &[]),
    );
}

#[test]
fn udp_ports_of_dnsmasq_and_snmpd() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let targets = [
        net.truth.v4_of("dns"),
        net.truth.v4_of("snmp"),
        net.truth.v4_of("ssh"),
    ];
    let mut args: Vec<&str> = targets.iter().map(String::as_str).collect();
    args.extend_from_slice(&["--ports", "none", "--udp-ports", "53,123,161", "--no-rdns"]);
    let store = store();
    let (report, _) = net.scan_net(store.path(), &args, Duration::from_secs(120));
    let got = open_ports(&report, Protocol::Udp);
    let mut diffs = Vec::new();
    for addr in &targets {
        let Some(truth) = net.truth.host(addr) else {
            diffs.push(format!("{addr}: not in the ground truth"));
            continue;
        };
        let want: BTreeSet<u16> = truth
            .udp
            .iter()
            .copied()
            .filter(|p| [53, 123, 161].contains(p))
            .collect();
        let have = got.get(addr.as_str()).cloned().unwrap_or_default();
        if have != want {
            diffs.push(format!(
                "{addr} ({}): open udp {have:?}, expected {want:?}",
                truth.host
            ));
        }
        // Closed UDP ports answer with ICMP port unreachable on a clean network: nothing should be
        // left undecided.
        if let Some(h) = report.hosts.iter().find(|h| &h.address == addr) {
            for p in &h.ports {
                if p.protocol == Protocol::Udp && p.state == PortState::OpenFiltered {
                    diffs.push(format!("{addr}: udp/{} reported open|filtered", p.port));
                }
                if p.protocol == Protocol::Udp && p.state == PortState::Open {
                    let svc = p.service.as_ref().map(|s| s.name.as_str()).unwrap_or("");
                    let ok = match p.port {
                        53 => ["domain", "dns"].contains(&svc),
                        161 => svc == "snmp",
                        _ => true,
                    };
                    if !ok {
                        diffs.push(format!("{addr}: udp/{} identified as {svc:?}", p.port));
                    }
                }
            }
        }
    }
    assert_no_differences("UDP 53,123,161", &diffs);
}

fn name_matches(expected: &TruthService, got: &str) -> bool {
    let aliases: &[&str] = match expected.name.as_str() {
        "domain" => &["domain", "dns"],
        "memcached" => &["memcached", "memcache"],
        "http" if expected.tls => &["http", "https"],
        other => return got == other,
    };
    aliases.contains(&got)
}

/// Case-insensitive; a longer product naming the same thing (`Postfix smtpd`, `Redis key-value
/// store`) is accepted.
fn product_matches(expected: &str, got: &str) -> bool {
    let (e, g) = (expected.to_lowercase(), got.to_lowercase());
    g == e || g.starts_with(&format!("{e} "))
}

/// The announced version, possibly followed by a distribution suffix (`9.2p1 Debian-2+deb12u10`).
fn version_matches(expected: &str, got: &str) -> bool {
    got == expected
        || got.starts_with(&format!("{expected} "))
        || got.starts_with(&format!("{expected}-"))
}

#[test]
fn service_detection_names_products_and_versions() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let hosts = [
        "ssh",
        "web",
        "redis",
        "memcached",
        "ftp",
        "dns",
        "mail",
        "filtered",
        "wide",
    ];
    let addrs: Vec<String> = hosts.iter().map(|h| net.truth.v4_of(h)).collect();
    let mut args: Vec<&str> = addrs.iter().map(String::as_str).collect();
    args.extend_from_slice(&["--ports", SERVICE_PORTS, "--no-rdns"]);
    let store = store();
    let (report, _) = net.scan_net(store.path(), &args, Duration::from_secs(300));
    let mut diffs = Vec::new();
    let mut checked = 0;
    for addr in &addrs {
        let Some(truth) = net.truth.host(addr) else {
            continue;
        };
        for want in truth.services.iter().filter(|s| s.protocol == "tcp") {
            checked += 1;
            let at = format!("{addr}:{} ({})", want.port, truth.host);
            let port = report
                .hosts
                .iter()
                .find(|h| &h.address == addr)
                .and_then(|h| {
                    h.ports
                        .iter()
                        .find(|p| p.port == want.port && p.protocol == Protocol::Tcp)
                });
            let Some(port) = port else {
                diffs.push(format!("{at}: port not reported"));
                continue;
            };
            let Some(svc) = &port.service else {
                diffs.push(format!("{at}: no service, expected {}", want.name));
                continue;
            };
            if !name_matches(want, &svc.name) {
                diffs.push(format!(
                    "{at}: service name {:?}, expected {:?}",
                    svc.name, want.name
                ));
            }
            if let Some(p) = &want.product {
                if !svc
                    .product
                    .as_deref()
                    .is_some_and(|g| product_matches(p, g))
                {
                    diffs.push(format!("{at}: product {:?}, expected {p:?}", svc.product));
                }
            }
            if let Some(v) = &want.version {
                if !svc
                    .version
                    .as_deref()
                    .is_some_and(|g| version_matches(v, g))
                {
                    diffs.push(format!("{at}: version {:?}, expected {v:?}", svc.version));
                }
            }
            if want.tls {
                if !svc.tunnel_tls {
                    diffs.push(format!("{at}: TLS not recognised"));
                }
                match &port.tls {
                    None => diffs.push(format!("{at}: no certificate details")),
                    Some(tls) => {
                        if !tls.subject.contains("web.picket.test")
                            || !tls.sans.iter().any(|s| s.contains("web.picket.test"))
                        {
                            diffs.push(format!(
                                "{at}: certificate subject {:?} / SANs {:?}",
                                tls.subject, tls.sans
                            ));
                        }
                        if !tls.self_signed {
                            diffs.push(format!(
                                "{at}: the self-signed certificate is not reported as such"
                            ));
                        }
                    }
                }
            } else if svc.tunnel_tls {
                diffs.push(format!("{at}: plain-text service reported as TLS"));
            }
        }
    }
    assert!(
        checked >= 11,
        "only {checked} expected services in the ground truth"
    );
    assert_no_differences("service detection", &diffs);
}

#[test]
fn reverse_dns_names_and_macs_of_the_lan() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let store = store();
    let (report, _) = net.scan_net(
        store.path(),
        &["198.18.0.0/24", "--ports", "none"],
        Duration::from_secs(120),
    );
    let mut diffs = Vec::new();
    for want in net.truth.subnet_hosts() {
        let Some(got) = report.hosts.iter().find(|h| h.address == want.address) else {
            diffs.push(format!("{} ({}) not reported", want.address, want.host));
            continue;
        };
        if let Some(name) = &want.hostname {
            if !got
                .hostnames
                .iter()
                .any(|n| n.trim_end_matches('.') == name)
            {
                diffs.push(format!(
                    "{}: hostnames {:?}, expected {name}",
                    want.address, got.hostnames
                ));
            }
        }
        let mac = got.mac.as_deref().map(str::to_lowercase);
        if mac != want.mac {
            diffs.push(format!(
                "{}: mac {:?}, expected {:?}",
                want.address, got.mac, want.mac
            ));
        }
    }
    assert_no_differences("reverse DNS and MAC addresses", &diffs);
}

/// The tiny HTTP server behind the lab host's port 8000; `Server: PicketLab/<version>`.
const LAB_HTTP: &str = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def version_string(self):
        return "PicketLab/" + sys.argv[2]
    def do_GET(self):
        body = b"picket lab\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_HEAD(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", int(sys.argv[1])), H).serve_forever()
"#;

#[derive(Debug, Deserialize)]
struct Diff {
    new_hosts: Vec<serde_json::Value>,
    gone_hosts: Vec<serde_json::Value>,
    opened_ports: Vec<DiffPort>,
    closed_ports: Vec<DiffPort>,
    changed_services: Vec<DiffService>,
}

#[derive(Debug, Deserialize)]
struct DiffPort {
    address: String,
    port: u16,
    protocol: String,
    service: Option<DiffServiceId>,
}

#[derive(Debug, Deserialize)]
struct DiffService {
    address: String,
    port: u16,
    protocol: String,
    old: DiffServiceId,
    new: DiffServiceId,
}

#[derive(Debug, Deserialize)]
struct DiffServiceId {
    name: Option<String>,
    product: Option<String>,
    version: Option<String>,
}

#[test]
fn scans_diff_reports_an_opened_port_and_a_changed_version() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let lab_ns = net.ns_of("lab");
    let lab = net.truth.v4_of("lab");
    let store = store();
    let args = [lab.as_str(), "--ports", "8000-8010", "--no-rdns"];

    let v1 = Daemon::start(&lab_ns, &["python3", "-c", LAB_HTTP, "8000", "1.0"], 8000);
    let (first, _) = net.scan_net(store.path(), &args, Duration::from_secs(120));
    v1.stop();
    wait_closed(&lab_ns, 8000);
    let _v2 = Daemon::start(&lab_ns, &["python3", "-c", LAB_HTTP, "8000", "1.1"], 8000);
    let _memcached = Daemon::start(
        &lab_ns,
        &[
            "/usr/bin/memcached",
            "-u",
            "nobody",
            "-p",
            "8001",
            "-U",
            "0",
            "-m",
            "8",
        ],
        8001,
    );
    let (second, _) = net.scan_net(store.path(), &args, Duration::from_secs(120));
    assert_ne!(first.scan.id, second.scan.id, "two scans got the same id");

    let store_arg = store.path().to_string_lossy().into_owned();
    let cmd = [
        "--state-dir",
        store_arg.as_str(),
        "--format",
        "json",
        "scans",
        "diff",
        first.scan.id.as_str(),
        second.scan.id.as_str(),
    ];
    let run = net.picket(&cmd, Duration::from_secs(60));
    run.assert_success(&cmd);
    let diff: Diff = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "scans diff printed no valid diff ({e}): {}",
            clip(&run.stdout)
        )
    });

    assert!(
        diff.new_hosts.is_empty() && diff.gone_hosts.is_empty(),
        "hosts changed: {diff:?}"
    );
    assert!(
        diff.closed_ports.is_empty(),
        "ports closed: {:?}",
        diff.closed_ports
    );
    assert_eq!(
        diff.opened_ports.len(),
        1,
        "opened ports: {:?}",
        diff.opened_ports
    );
    let opened = &diff.opened_ports[0];
    assert_eq!(
        (
            opened.address.as_str(),
            opened.port,
            opened.protocol.as_str()
        ),
        (lab.as_str(), 8001, "tcp")
    );
    let mc = opened.service.as_ref();
    assert!(
        mc.and_then(|s| s.product.as_deref())
            .is_some_and(|p| product_matches("memcached", p)),
        "the new port's service is memcached: {mc:?}"
    );
    assert_eq!(
        diff.changed_services.len(),
        1,
        "changed services: {:?}",
        diff.changed_services
    );
    let changed = &diff.changed_services[0];
    assert_eq!(
        (
            changed.address.as_str(),
            changed.port,
            changed.protocol.as_str()
        ),
        (lab.as_str(), 8000, "tcp")
    );
    assert_eq!(
        changed.old.product.as_deref(),
        Some("PicketLab"),
        "old service {:?}",
        changed.old
    );
    assert_eq!(
        changed.new.product.as_deref(),
        Some("PicketLab"),
        "new service {:?}",
        changed.new
    );
    assert_eq!(changed.old.version.as_deref(), Some("1.0"));
    assert_eq!(changed.new.version.as_deref(), Some("1.1"));
    assert_eq!(changed.old.name, changed.new.name);
}

#[test]
fn hostile_services_end_in_bounded_time_and_memory_without_panic() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let hostile = net.truth.v4_of("hostile");
    let store = store();
    let rss_file = store.path().join("rss");
    let store_arg = store.path().join("db").to_string_lossy().into_owned();
    let rss_arg = rss_file.to_string_lossy().into_owned();
    let cmd = [
        "/usr/bin/time",
        "-f",
        "%M",
        "-o",
        rss_arg.as_str(),
        picket_bin(),
        "--state-dir",
        store_arg.as_str(),
        "--format",
        "json",
        "scan",
        "net",
        hostile.as_str(),
        "--ports",
        "7001-7004",
    ];
    let run = run_in_ns(&net.truth.scanner_ns, &cmd, Duration::from_secs(180));
    run.assert_success(&cmd);
    assert!(
        run.elapsed < Duration::from_secs(90),
        "scanning the hostile services took {:?} (the tarpit must not hold detection)",
        run.elapsed
    );
    let report: picket_model::NetReport = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("no valid report ({e}): {}", clip(&run.stdout)));
    let ports = open_ports(&report, Protocol::Tcp);
    assert_eq!(
        ports.get(&hostile).cloned().unwrap_or_default(),
        BTreeSet::from([7001, 7002, 7003, 7004]),
        "every hostile port accepts connections"
    );
    let rss_kib: u64 = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or_else(|| panic!("GNU time wrote no peak RSS to {}", rss_file.display()));
    eprintln!(
        "hostile services: {:?}, peak RSS {rss_kib} KiB",
        run.elapsed
    );
    assert!(
        rss_kib < 128 * 1024,
        "peak RSS {rss_kib} KiB: a 10 MB banner must not be buffered whole"
    );
}

#[test]
fn connect_scan_fallback_without_raw_socket_privilege() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let store = store();
    // The unprivileged user must be able to write its store.
    let db = store.path().join("db");
    std::fs::create_dir(&db).unwrap_or_else(|e| panic!("mkdir {}: {e}", db.display()));
    let chmod = std::process::Command::new("chmod")
        .args(["0777"])
        .arg(store.path())
        .arg(&db)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(chmod, "chmod of the store failed");
    let db_arg = db.to_string_lossy().into_owned();
    let (ssh, web) = (net.truth.v4_of("ssh"), net.truth.v4_of("web"));
    let cmd = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        picket_bin(),
        "--state-dir",
        db_arg.as_str(),
        "--format",
        "json",
        "scan",
        "net",
        ssh.as_str(),
        web.as_str(),
        "--ports",
        "1-1024",
        "--no-service",
        "--no-rdns",
    ];
    let run = run_in_ns(&net.truth.scanner_ns, &cmd, Duration::from_secs(180));
    run.assert_success(&cmd);
    let report: picket_model::NetReport = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("no valid report ({e}): {}", clip(&run.stdout)));
    assert_eq!(report.stats.technique, "connect");
    let expected: Vec<&TruthHost> = [&ssh, &web]
        .iter()
        .filter_map(|a| net.truth.host(a))
        .collect();
    assert_no_differences("connect scan", &port_differences(&report, &expected, &[]));
    let warnings = run
        .stderr
        .lines()
        .filter(|l| l.to_lowercase().contains("connect scan"))
        .count();
    assert_eq!(
        warnings, 1,
        "the fallback is announced exactly once on stderr:\n{}",
        run.stderr
    );
    let hosts_up: BTreeMap<&str, HostStatus> = report
        .hosts
        .iter()
        .map(|h| (h.address.as_str(), h.status))
        .collect();
    assert_eq!(hosts_up.len(), 2, "hosts: {hosts_up:?}");
}

#[test]
fn a_second_network_coexists_and_down_leaves_nothing_behind() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let dir = tempfile::Builder::new()
        .prefix("picket-testnet-second-")
        .tempdir()
        .unwrap_or_else(|e| panic!("tempdir: {e}"));
    let state = dir.path().join("net");
    let prefix = format!("pkx{}", std::process::id());
    let script = &net.script;
    let run = |args: &[&str]| {
        std::process::Command::new(script)
            .args(args)
            .env("PICKET_TESTNET_PREFIX", &prefix)
            .output()
            .unwrap_or_else(|e| panic!("cannot run testnet.sh: {e}"))
    };
    let state_arg = state.to_string_lossy().into_owned();
    let up = run(&["up", state_arg.as_str()]);
    assert!(
        up.status.success(),
        "second network: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let again = run(&["up", state_arg.as_str()]);
    assert!(
        !again.status.success(),
        "up on an up state directory must refuse"
    );
    let second = read_truth(script, &state).unwrap_or_else(|e| panic!("{e}"));
    let pids: Vec<u32> = std::fs::read_to_string(state.join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(pids.len() >= 10, "daemon PIDs recorded: {pids:?}");
    let hosts = |t: &Truth| -> BTreeMap<String, Vec<u16>> {
        t.hosts
            .iter()
            .map(|h| (h.address.clone(), h.tcp.clone()))
            .collect()
    };
    assert_eq!(
        hosts(&second),
        hosts(&net.truth),
        "both networks expose the same ground truth"
    );

    let down = run(&["down", state_arg.as_str()]);
    assert!(
        down.status.success(),
        "down: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let left: Vec<&str> = list
        .lines()
        .filter(|l| l.starts_with(&format!("{prefix}_")))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    assert!(
        !Path::new(&format!("/etc/netns/{prefix}_scan")).exists(),
        "/etc/netns/{prefix}_scan left behind"
    );
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Dead, or a zombie waiting for PID 1: either way it holds no socket or namespace.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next());
        assert!(
            matches!(state, None | Some("Z") | Some("X")),
            "daemon {pid} still running after down: {stat}"
        );
    }
    // The first network is untouched.
    assert!(
        listening(&net.ns_of("ssh"), "tcp", 22),
        "the first network lost its sshd"
    );
}

#[test]
fn hostnames_files_and_excludes_select_exactly_the_right_hosts() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let store = store();
    let file = store.path().join("targets.txt");
    std::fs::write(&file, "198.18.0.10-20\n")
        .unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    let at_file = format!("@{}", file.display());
    let (report, _) = net.scan_net(
        store.path(),
        &[
            "web.picket.test",
            at_file.as_str(),
            "--exclude",
            "198.18.0.12,198.18.0.13",
            "--ports",
            LAN_PORTS,
            "--no-service",
            "--no-rdns",
        ],
        Duration::from_secs(180),
    );
    let mut expected: Vec<&TruthHost> = ["ssh", "web", "ftp", "dns", "snmp", "mail", "quiet"]
        .iter()
        .filter_map(|h| net.truth.host(&net.truth.v4_of(h)))
        .collect();
    // The name has an A and an AAAA record (dnsmasq --host-record): both addresses are targets.
    expected.extend(net.truth.host("2001:db8:18::11"));
    assert_no_differences(
        "web.picket.test + @file 198.18.0.10-20 - 198.18.0.12,13",
        &port_differences(&report, &expected, &[]),
    );
    let web = net.truth.v4_of("web");
    let names = report
        .hosts
        .iter()
        .find(|h| h.address == web)
        .map(|h| h.hostnames.clone())
        .unwrap_or_default();
    assert!(
        names.iter().any(|n| n == "web.picket.test"),
        "the name the user gave is kept: {names:?}"
    );
}

/// Counts, on the target, the TCP SYNs the scanner sends, so the probe count picket reports and its
/// rate limit are checked against what really went over the wire.
#[test]
fn probe_count_and_rate_limit_are_what_the_target_sees() {
    let Some(net) = testnet() else { return };
    let _x = exclusive();
    let ssh_ns = net.ns_of("ssh");
    let ssh = net.truth.v4_of("ssh");
    let nft = |script: &str| {
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", ssh_ns.as_str(), "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("nft: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin
                .write_all(script.as_bytes())
                .unwrap_or_else(|e| panic!("nft stdin: {e}"));
        }
        let ok = child.wait().map(|s| s.success()).unwrap_or(false);
        assert!(ok, "nft failed: {script}");
    };
    let scanner = net.truth.scanner.ipv4.clone();
    nft(&format!(
        "table inet picket_count {{\n counter syns {{}}\n chain input {{\n  type filter hook input priority -450;\n  ip saddr {scanner} tcp flags & (syn | ack) == syn counter name syns\n }}\n}}\n"
    ));
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    self.0.as_str(),
                    "nft",
                    "delete",
                    "table",
                    "inet",
                    "picket_count",
                ])
                .status();
        }
    }
    let _cleanup = Cleanup(ssh_ns.clone());

    let store = store();
    let (report, run) = net.scan_net(
        store.path(),
        &[
            ssh.as_str(),
            "--ports",
            "1-3000",
            "--rate",
            "1000",
            "--no-ping",
            "--no-service",
            "--no-rdns",
        ],
        Duration::from_secs(120),
    );
    let host = net.truth.host(&ssh).map(|h| vec![h]).unwrap_or_default();
    assert_no_differences("rate-limited scan", &port_differences(&report, &host, &[]));
    let counted: u64 = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            ssh_ns.as_str(),
            "nft",
            "list",
            "counter",
            "inet",
            "picket_count",
            "syns",
        ])
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let after = text
                .split("packets ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .to_string();
            after.parse().ok()
        })
        .unwrap_or_else(|| panic!("cannot read the SYN counter"));
    assert_eq!(
        counted, report.stats.probes_sent,
        "SYNs seen by the target vs probes_sent reported (stats: {:?})",
        report.stats
    );
    assert!(
        counted >= 3000,
        "every port was probed at least once: {counted} SYNs"
    );
    // 3,000 probes at 1,000 per second take at least ~3 s; allow a small burst at the start.
    assert!(
        run.elapsed >= Duration::from_millis(2700),
        "--rate 1000 sent {counted} SYNs in {:?}",
        run.elapsed
    );
}

//! Service detection and UDP scanning against real daemons started by this test on 127.0.0.1,
//! plus hostile servers written here (10 MB banners, binary junk, one byte every two seconds).
//!
//! A missing daemon binary fails the test with the Debian package to install: these tests are
//! the proof that detection works on real software, so they must not silently pass without it.
//! The daemons are started with `std::process::Command` (no shell) and killed by PID on drop.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use picket_model::{PortState, Service, TlsInfo};
use picket_netscan::scan::NoProgress;
use picket_netscan::service::{self, detect::detect_one};
use picket_netscan::timing::RttEstimator;
use picket_netscan::udp::{udp_scan, UdpConfig};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "picket-svc-{tag}-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&p).expect("create scratch dir");
        // Daemons that drop privileges (memcached, vsftpd's nobody, postfix) must traverse it.
        set_mode(&p, 0o755);
        Scratch(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write scratch file");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

/// A daemon process, killed by PID when dropped.
struct Daemon {
    name: &'static str,
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM lets nginx/postfix masters take their workers with them; then make sure.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("{} needed SIGKILL", self.name);
    }
}

/// Fails with the package to install when a daemon binary is missing.
fn require(bin: &'static str, package: &str) -> &'static str {
    assert!(
        Path::new(bin).exists(),
        "{bin} is missing: install the Debian package `{package}` (apt-get install {package})"
    );
    bin
}

fn spawn(
    name: &'static str,
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    log: &Path,
) -> Daemon {
    let out = std::fs::File::create(log).expect("daemon log");
    let err = out.try_clone().expect("daemon log clone");
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({program}): {e}"));
    Daemon { name, child }
}

fn free_tcp_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

/// A port number free for both TCP and UDP on 127.0.0.1 (dnsmasq serves both on one number).
fn free_dual_port() -> u16 {
    // Bounded: almost every free TCP port is also free for UDP.
    for _ in 0..100 {
        let p = free_tcp_port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).is_ok() {
            return p;
        }
    }
    panic!("no port free for both TCP and UDP");
}

/// A random address in 127/8 other than 127.0.0.1: the whole block is local on Linux, so
/// daemons can listen on their well-known ports there without clashing with anything else on
/// the machine, or with another run of this test.
fn random_loopback() -> Ipv4Addr {
    let r = rand_suffix();
    Ipv4Addr::new(
        127,
        100 + (r % 100) as u8,
        (r >> 8) as u8,
        2 + ((r >> 16) % 250) as u8,
    )
}

fn wait_tcp(d: &mut Daemon, ip: Ipv4Addr, port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect((ip, port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = d.child.try_wait() {
            panic!(
                "{} exited ({status}) before listening on {port}: {}",
                d.name,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{} did not listen on {port} within 10 s: {}",
        d.name,
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn run(program: &str, args: &[&str]) {
    let st = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(st.success(), "{program} {args:?} failed: {st}");
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

// --- daemon set-ups ----------------------------------------------------------------------------

fn start_sshd(s: &Scratch, ip: Ipv4Addr, port: u16) -> Daemon {
    let sshd = require("/usr/sbin/sshd", "openssh-server");
    let keygen = require("/usr/bin/ssh-keygen", "openssh-client");
    let key = s.path("ssh_host_ed25519_key");
    run(
        keygen,
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            key.to_str().expect("utf8"),
        ],
    );
    // sshd insists on its compiled-in privilege-separation directory.
    std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
    let cfg = s.write(
        "sshd_config",
        &format!(
            "Port {port}\nListenAddress {ip}\nHostKey {}\nPidFile {}\nUsePAM no\nPermitRootLogin no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nAuthorizedKeysFile none\nMaxStartups 100:30:200\n",
            key.display(),
            s.path("sshd.pid").display()
        ),
    );
    let log = s.path("sshd.log");
    let mut d = spawn(
        "sshd",
        sshd,
        &["-D", "-e", "-f", cfg.to_str().expect("utf8")],
        &[],
        &log,
    );
    wait_tcp(&mut d, ip, port, &log);
    d
}

/// nginx with a plain server, a TLS server, and a TLS server that also accepts TLS 1.0/1.1.
fn start_nginx(s: &Scratch, ip: Ipv4Addr, http: u16, https: u16, legacy: u16) -> Daemon {
    let nginx = require("/usr/sbin/nginx", "nginx");
    let openssl = require("/usr/bin/openssl", "openssl");
    let (key, crt) = (s.path("web.key"), s.path("web.crt"));
    run(
        openssl,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=web.picket.test/O=Picket test",
            "-addext",
            &format!("subjectAltName=DNS:web.picket.test,IP:127.0.0.1,IP:{ip}"),
            "-keyout",
            key.to_str().expect("utf8"),
            "-out",
            crt.to_str().expect("utf8"),
        ],
    );
    std::fs::create_dir_all(s.path("nginx/logs")).expect("mkdir");
    std::fs::create_dir_all(s.path("nginx/tmp")).expect("mkdir");
    let tmp = s.path("nginx/tmp");
    let cfg = s.write(
        "nginx.conf",
        &format!(
            r#"daemon off;
user root;
worker_processes 1;
pid {pid};
error_log {dir}/nginx/logs/error.log;
events {{ worker_connections 256; }}
http {{
    default_type text/plain;
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{ listen {ip}:{http}; location / {{ return 200 "plain\n"; }} }}
    server {{
        listen {ip}:{https} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{ return 200 "tls\n"; }}
    }}
    server {{
        listen {ip}:{legacy} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_protocols TLSv1 TLSv1.1 TLSv1.2;
        ssl_ciphers DEFAULT:@SECLEVEL=0;
        location / {{ return 200 "legacy\n"; }}
    }}
}}
"#,
            pid = s.path("nginx.pid").display(),
            dir = s.0.display(),
            tmp = tmp.display(),
            crt = crt.display(),
            key = key.display(),
        ),
    );
    let log = s.path("nginx.log");
    let prefix = s.path("nginx");
    let mut d = spawn(
        "nginx",
        nginx,
        &[
            "-p",
            prefix.to_str().expect("utf8"),
            "-e",
            "stderr",
            "-c",
            cfg.to_str().expect("utf8"),
        ],
        &[],
        &log,
    );
    wait_tcp(&mut d, ip, http, &log);
    wait_tcp(&mut d, ip, https, &log);
    wait_tcp(&mut d, ip, legacy, &log);
    d
}

fn start_redis(s: &Scratch, ip: Ipv4Addr, port: u16, password: Option<&str>) -> Daemon {
    let redis = require("/usr/bin/redis-server", "redis-server");
    let ps = port.to_string();
    let ips = ip.to_string();
    let dir = s.0.to_str().expect("utf8").to_string();
    let mut args = vec![
        "--port",
        &ps,
        "--bind",
        &ips,
        "--protected-mode",
        "no",
        "--daemonize",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir,
    ];
    if let Some(pw) = password {
        args.extend(["--requirepass", pw]);
    }
    let log = s.path(&format!("redis-{port}.log"));
    let mut d = spawn("redis-server", redis, &args, &[], &log);
    wait_tcp(&mut d, ip, port, &log);
    d
}

fn start_memcached(s: &Scratch, ip: Ipv4Addr, port: u16) -> Daemon {
    let mc = require("/usr/bin/memcached", "memcached");
    let log = s.path("memcached.log");
    let mut d = spawn(
        "memcached",
        mc,
        &[
            "-l",
            &ip.to_string(),
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-u",
            "nobody",
            "-m",
            "16",
        ],
        &[],
        &log,
    );
    wait_tcp(&mut d, ip, port, &log);
    d
}

/// vsftpd; with `implicit_tls` it speaks FTP only inside TLS (FTPS, port 990 style), using the
/// certificate [`start_nginx`] made.
fn start_vsftpd(s: &Scratch, ip: Ipv4Addr, port: u16, implicit_tls: bool) -> Daemon {
    let vsftpd = require("/usr/sbin/vsftpd", "vsftpd");
    for dir in ["empty", "anon"] {
        std::fs::create_dir_all(s.path(dir)).expect("mkdir");
        set_mode(&s.path(dir), 0o755);
    }
    let tls = if implicit_tls {
        format!(
            "ssl_enable=YES\nimplicit_ssl=YES\nallow_anon_ssl=YES\nrsa_cert_file={}\nrsa_private_key_file={}\n",
            s.path("web.crt").display(),
            s.path("web.key").display()
        )
    } else {
        String::new()
    };
    let cfg = s.write(
        &format!("vsftpd-{port}.conf"),
        &format!(
            "{tls}listen=YES\nlisten_ipv6=NO\nlisten_address={ip}\nlisten_port={port}\nbackground=NO\n\
             anonymous_enable=YES\nanon_root={anon}\nftp_username=nobody\nno_anon_password=YES\nlocal_enable=NO\n\
             write_enable=NO\nsecure_chroot_dir={empty}\nxferlog_enable=NO\nvsftpd_log_file={log}\n",
            anon = s.path("anon").display(),
            empty = s.path("empty").display(),
            log = s.path("vsftpd-own.log").display(),
        ),
    );
    let log = s.path(&format!("vsftpd-{port}.log"));
    let mut d = spawn("vsftpd", vsftpd, &[cfg.to_str().expect("utf8")], &[], &log);
    wait_tcp(&mut d, ip, port, &log);
    d
}

/// dnsmasq on one port, TCP and UDP.
fn start_dnsmasq(s: &Scratch, ip: Ipv4Addr, port: u16) -> Daemon {
    let dnsmasq = require("/usr/sbin/dnsmasq", "dnsmasq-base");
    let log = s.path("dnsmasq.log");
    let mut d = spawn(
        "dnsmasq",
        dnsmasq,
        &[
            "--keep-in-foreground",
            "--user=root",
            "--group=root",
            "--conf-file=/dev/null",
            "--no-hosts",
            "--no-resolv",
            "--bind-interfaces",
            &format!("--listen-address={ip}"),
            &format!("--port={port}"),
            &format!("--pid-file={}", s.path("dnsmasq.pid").display()),
            "--log-facility=-",
        ],
        &[],
        &log,
    );
    wait_tcp(&mut d, ip, port, &log);
    d
}

fn start_snmpd(s: &Scratch, ip: Ipv4Addr, port: u16) -> Daemon {
    let snmpd = require("/usr/sbin/snmpd", "snmpd");
    std::fs::create_dir_all(s.path("persist")).expect("mkdir");
    let cfg = s.write(
        "snmpd.conf",
        "rocommunity public 127.0.0.0/8\nsysName snmp.picket.test\nsysLocation Picket test\n",
    );
    let log = s.path("snmpd.log");
    let persist = s.path("persist");
    let d = spawn(
        "snmpd",
        snmpd,
        &[
            "-f",
            "-C",
            "-c",
            cfg.to_str().expect("utf8"),
            "-Lf",
            log.to_str().expect("utf8"),
            "-p",
            s.path("snmpd.pid").to_str().expect("utf8"),
            &format!("udp:{ip}:{port}"),
        ],
        &[
            ("SNMP_PERSISTENT_DIR", persist.to_str().expect("utf8")),
            ("MIBS", ""),
        ],
        &s.path("snmpd.out"),
    );
    // snmpd has no TCP port to poll: wait until it answers a request.
    let probe = picket_netscan::service::snmp::probe("public", 1);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.connect((ip, port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        let _ = sock.send(&probe);
        if sock.recv(&mut buf).is_ok() {
            return d;
        }
    }
    panic!(
        "snmpd did not answer within 10 s: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

fn start_postfix(s: &Scratch, ip: Ipv4Addr, port: u16) -> Daemon {
    let master = require("/usr/lib/postfix/sbin/master", "postfix");
    let postfix = require("/usr/sbin/postfix", "postfix");
    let conf = s.path("postfix");
    let queue = s.path("pfqueue");
    let data = s.path("pfdata");
    for d in [&conf, &queue, &data] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    run("chown", &["postfix", data.to_str().expect("utf8")]);
    std::fs::write(
        conf.join("main.cf"),
        format!(
            "compatibility_level = 3.6\nmyhostname = mail.picket.test\nmydomain = picket.test\n\
             mydestination = localhost\nmynetworks = 127.0.0.0/8\ninet_interfaces = all\ninet_protocols = ipv4\n\
             queue_directory = {q}\ndata_directory = {d}\ncommand_directory = /usr/sbin\n\
             daemon_directory = /usr/lib/postfix/sbin\nmeta_directory = /etc/postfix\nshlib_directory = /usr/lib/postfix\n\
             mail_owner = postfix\nsetgid_group = postdrop\nsmtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)\n\
             biff = no\nalias_maps =\nalias_database =\nmaillog_file = /dev/stdout\n",
            q = queue.display(),
            d = data.display()
        ),
    )
    .expect("main.cf");
    // The services smtpd needs to greet, without chroot.
    std::fs::write(
        conf.join("master.cf"),
        format!(
            "{ip}:{port} inet n - n - - smtpd\n\
             pickup unix n - n 60 1 pickup\ncleanup unix n - n - 0 cleanup\nqmgr unix n - n 300 1 qmgr\n\
             tlsmgr unix - - n 1000? 1 tlsmgr\nrewrite unix - - n - - trivial-rewrite\nbounce unix - - n - 0 bounce\n\
             defer unix - - n - 0 bounce\ntrace unix - - n - 0 bounce\nverify unix - - n - 1 verify\n\
             flush unix n - n 1000? 0 flush\nproxymap unix - - n - - proxymap\nsmtp unix - - n - - smtp\n\
             relay unix - - n - - smtp\nshowq unix n - n - - showq\nerror unix - - n - - error\n\
             retry unix - - n - - error\ndiscard unix - - n - - discard\nlocal unix - n n - - local\n\
             lmtp unix - - n - - lmtp\nanvil unix - - n - 1 anvil\nscache unix - - n - 1 scache\n\
             postlog unix-dgram n - n - 1 postlogd\n"
        ),
    )
    .expect("master.cf");
    let c = conf.to_str().expect("utf8");
    run(postfix, &["-c", c, "check"]);
    let log = s.path("postfix.log");
    let mut d = spawn("postfix", master, &["-c", c, "-s"], &[], &log);
    wait_tcp(&mut d, ip, port, &log);
    d
}

// --- helpers -----------------------------------------------------------------------------------

/// An RTT estimate like the port scan leaves behind on loopback.
fn loopback_rtt() -> RttEstimator {
    let mut r = RttEstimator::new();
    for _ in 0..8 {
        r.observe(Duration::from_micros(80));
    }
    r
}

fn find(
    results: &[(SocketAddr, (Service, Option<TlsInfo>))],
    port: u16,
) -> (Service, Option<TlsInfo>) {
    results
        .iter()
        .find(|(a, _)| a.port() == port)
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| panic!("no service for port {port}: {results:#?}"))
}

fn product(s: &Service) -> (&str, Option<&str>, Option<&str>) {
    (s.name.as_str(), s.product.as_deref(), s.version.as_deref())
}

/// Where the daemons of one test listen.
struct Ports {
    ssh: u16,
    http: u16,
    https: u16,
    legacy_tls: u16,
    redis: u16,
    redis_pw: u16,
    memcached: u16,
    ftp: u16,
    ftps: u16,
    dns: u16,
    smtp: u16,
}

impl Ports {
    fn all(&self) -> Vec<u16> {
        vec![
            self.ssh,
            self.http,
            self.https,
            self.legacy_tls,
            self.redis,
            self.redis_pw,
            self.memcached,
            self.ftp,
            self.ftps,
            self.dns,
            self.smtp,
        ]
    }
}

/// Starts every TCP daemon; the guards stop them when dropped.
fn start_tcp_daemons(s: &Scratch, ip: Ipv4Addr, p: &Ports) -> Vec<Daemon> {
    vec![
        start_sshd(s, ip, p.ssh),
        start_nginx(s, ip, p.http, p.https, p.legacy_tls),
        start_redis(s, ip, p.redis, None),
        start_redis(s, ip, p.redis_pw, Some("sekrit")),
        start_memcached(s, ip, p.memcached),
        start_vsftpd(s, ip, p.ftp, false),
        start_vsftpd(s, ip, p.ftps, true),
        start_dnsmasq(s, ip, p.dns),
        start_postfix(s, ip, p.smtp),
    ]
}

/// What `detect_many` returns.
type Detected = Vec<(SocketAddr, (Service, Option<TlsInfo>))>;
/// A hostile server's per-connection behaviour.
type Behaviour = fn(tokio::net::TcpStream) -> tokio::task::JoinHandle<()>;

fn detect_all(ip: Ipv4Addr, ports: &[u16]) -> (Detected, Duration) {
    let jobs = ports
        .iter()
        .map(|&p| (SocketAddr::new(IpAddr::V4(ip), p), loopback_rtt()))
        .collect();
    let rt = rt();
    let started = Instant::now();
    let results = rt.block_on(service::detect_many(
        jobs,
        &HashMap::new(),
        64,
        Arc::new(NoProgress),
    ));
    let elapsed = started.elapsed();
    eprintln!("detected {} services on {ip} in {elapsed:?}", results.len());
    for (a, (svc, tls)) in &results {
        eprintln!("  {}: {svc:?} {tls:?}", a.port());
    }
    (results, elapsed)
}

/// What every daemon must be identified as, wherever it listens.
fn check_services(s: &Scratch, p: &Ports, results: &[(SocketAddr, (Service, Option<TlsInfo>))]) {
    let (svc, _) = find(results, p.ssh);
    assert_eq!(product(&svc), ("ssh", Some("OpenSSH"), Some("9.2p1")));
    assert!(
        svc.extra
            .as_deref()
            .is_some_and(|e| e.starts_with("Debian")),
        "{svc:?}"
    );
    assert_eq!(
        svc.cpe,
        vec!["cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*".to_string()]
    );
    assert!(svc
        .banner
        .as_deref()
        .is_some_and(|b| b.starts_with("SSH-2.0-OpenSSH_9.2p1")));

    let (svc, tls) = find(results, p.http);
    assert_eq!(product(&svc), ("http", Some("nginx"), Some("1.22.1")));
    assert_eq!(
        svc.cpe,
        vec!["cpe:2.3:a:f5:nginx:1.22.1:*:*:*:*:*:*:*".to_string()]
    );
    assert!(!svc.tunnel_tls);
    assert!(tls.is_none());

    let (svc, tls) = find(results, p.https);
    assert_eq!(product(&svc), ("https", Some("nginx"), Some("1.22.1")));
    assert!(svc.tunnel_tls);
    let tls = tls.expect("TLS details");
    assert!(tls.subject.contains("CN=web.picket.test"), "{tls:?}");
    assert_eq!(tls.subject, tls.issuer);
    assert!(tls.self_signed);
    assert!(tls.sans.contains(&"web.picket.test".to_string()), "{tls:?}");
    assert!(tls.sans.contains(&"127.0.0.1".to_string()), "{tls:?}");
    assert_eq!(
        tls.versions,
        vec!["TLSv1.2".to_string(), "TLSv1.3".to_string()]
    );
    assert!(
        tls.not_before.ends_with('Z') && tls.not_after > tls.not_before,
        "{tls:?}"
    );
    let pem = std::fs::read_to_string(s.path("web.crt")).expect("cert");
    assert_eq!(tls.sha256, sha256_of_pem(&pem));

    let (svc, tls) = find(results, p.legacy_tls);
    assert_eq!(svc.name, "https");
    let tls = tls.expect("TLS details");
    assert_eq!(
        tls.versions,
        vec![
            "TLSv1.0".to_string(),
            "TLSv1.1".to_string(),
            "TLSv1.2".to_string()
        ],
        "hand-built hellos must see the legacy versions"
    );

    let (svc, _) = find(results, p.redis);
    assert_eq!(product(&svc), ("redis", Some("Redis"), Some("7.0.15")));
    assert_eq!(
        svc.cpe,
        vec!["cpe:2.3:a:redis:redis:7.0.15:*:*:*:*:*:*:*".to_string()]
    );
    let (svc, _) = find(results, p.redis_pw);
    assert_eq!(product(&svc), ("redis", Some("Redis"), None));
    assert_eq!(svc.extra.as_deref(), Some("authentication required"));

    let (svc, _) = find(results, p.memcached);
    assert_eq!(
        product(&svc),
        ("memcached", Some("memcached"), Some("1.6.18"))
    );

    let (svc, _) = find(results, p.ftp);
    assert_eq!(product(&svc), ("ftp", Some("vsftpd"), Some("3.0.3")));
    assert_eq!(
        svc.cpe,
        vec!["cpe:2.3:a:beasts:vsftpd:3.0.3:*:*:*:*:*:*:*".to_string()]
    );

    // FTP inside TLS: the greeting is read after the handshake. vsftpd's default cipher list
    // (3DES only) leaves TLS 1.3 as the one version OpenSSL 3 will negotiate.
    let (svc, tls) = find(results, p.ftps);
    assert_eq!(product(&svc), ("ftps", Some("vsftpd"), Some("3.0.3")));
    assert!(svc.tunnel_tls);
    let tls = tls.expect("TLS details");
    assert_eq!(tls.versions, vec!["TLSv1.3".to_string()]);
    assert!(tls.subject.contains("CN=web.picket.test"), "{tls:?}");

    let (svc, _) = find(results, p.dns);
    assert_eq!(svc.name, "domain");
    assert_eq!(svc.product.as_deref(), Some("dnsmasq"));
    assert!(
        svc.version.as_deref().is_some_and(|v| v.starts_with("2.")),
        "{svc:?}"
    );

    let (svc, _) = find(results, p.smtp);
    assert_eq!(product(&svc), ("smtp", Some("Postfix"), None));
    assert_eq!(
        svc.cpe,
        vec!["cpe:2.3:a:postfix:postfix:*:*:*:*:*:*:*:*".to_string()]
    );
}

// --- tests -------------------------------------------------------------------------------------

/// Non-standard port numbers: only the answers can identify these services.
#[test]
fn real_daemons_on_unhinted_ports() {
    let s = Scratch::new("tcp");
    let ip = Ipv4Addr::LOCALHOST;
    let p = Ports {
        ssh: free_tcp_port(),
        http: free_tcp_port(),
        https: free_tcp_port(),
        legacy_tls: free_tcp_port(),
        redis: free_tcp_port(),
        redis_pw: free_tcp_port(),
        memcached: free_tcp_port(),
        ftp: free_tcp_port(),
        ftps: free_tcp_port(),
        dns: free_dual_port(),
        smtp: free_tcp_port(),
    };
    let _daemons = start_tcp_daemons(&s, ip, &p);
    let (results, elapsed) = detect_all(ip, &p.all());
    check_services(&s, &p, &results);
    // All of it in parallel, without port hints: each unhinted port costs a greeting wait and
    // a few probe round trips.
    assert!(
        elapsed < Duration::from_secs(6),
        "detection took {elapsed:?}"
    );
}

/// The well-known ports (on a random 127/8 address, so nothing else on the machine clashes),
/// as the benchmark against `nmap -sV` sees them: the port hint picks the right first probe.
#[test]
fn real_daemons_on_well_known_ports_are_fast() {
    let s = Scratch::new("wk");
    let ip = random_loopback();
    let p = Ports {
        ssh: 22,
        http: 80,
        https: 443,
        legacy_tls: 8443,
        redis: 6379,
        redis_pw: 6380,
        memcached: 11211,
        ftp: 21,
        ftps: 990,
        dns: 53,
        smtp: 25,
    };
    let _daemons = start_tcp_daemons(&s, ip, &p);
    let snmp_port = 161;
    let _snmpd = start_snmpd(&s, ip, snmp_port);
    let (results, elapsed) = detect_all(ip, &p.all());
    check_services(&s, &p, &results);
    assert!(
        elapsed < Duration::from_secs(2),
        "detection took {elapsed:?}"
    );

    // UDP with the real payloads: DNS version.bind, SNMP GetRequest; closed ports by ICMP.
    let closed: Vec<u16> = [
        7u16, 9, 13, 19, 37, 69, 111, 123, 137, 500, 514, 520, 1900, 5353,
    ]
    .into_iter()
    .filter(|&port| UdpSocket::bind((ip, port)).is_ok())
    .collect();
    let mut ports = vec![53, snmp_port];
    ports.extend(&closed);
    let rt = rt();
    let started = Instant::now();
    let res = rt
        .block_on(udp_scan(
            &[(IpAddr::V4(ip), loopback_rtt())],
            &ports,
            &UdpConfig {
                retries: 2,
                max_rate: None,
            },
            Arc::new(NoProgress),
        ))
        .expect("udp scan");
    let elapsed = started.elapsed();
    eprintln!(
        "udp scan of {} ports on {ip}: {elapsed:?}: {res:#?}",
        ports.len()
    );
    let (_, results) = &res[0];
    assert_eq!(results.len(), ports.len(), "every port is returned");
    let dns = results.iter().find(|r| r.port == 53).expect("53");
    assert_eq!(
        (dns.state, dns.reason.as_str()),
        (PortState::Open, "udp-response")
    );
    let svc = dns.service.as_ref().expect("dns service");
    assert_eq!(
        (svc.name.as_str(), svc.product.as_deref()),
        ("domain", Some("dnsmasq"))
    );
    let snmp = results.iter().find(|r| r.port == snmp_port).expect("161");
    assert_eq!(snmp.state, PortState::Open);
    let svc = snmp.service.as_ref().expect("snmp service");
    assert_eq!(product(svc), ("snmp", Some("Net-SNMP"), Some("5.9.3")));
    assert!(
        svc.extra.as_deref().is_some_and(|e| e.starts_with("Linux")),
        "{svc:?}"
    );
    assert_eq!(
        svc.cpe,
        vec!["cpe:2.3:a:net-snmp:net-snmp:5.9.3:*:*:*:*:*:*:*".to_string()]
    );
    for &port in &closed {
        let r = results
            .iter()
            .find(|r| r.port == port)
            .expect("closed port result");
        assert_eq!(r.state, PortState::Closed, "port {port}: {r:?}");
    }
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

fn sha256_of_pem(pem: &str) -> String {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64_decode(&b64);
    picket_netscan::service::cert::sha256_hex(&der)
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = A.iter().position(|&x| x == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn redis_on_an_unhinted_port_is_found_by_the_fallback_probes() {
    let s = Scratch::new("hint");
    let port = free_tcp_port();
    let _redis = start_redis(&s, Ipv4Addr::LOCALHOST, port, None);
    let rt = rt();
    let started = Instant::now();
    let r = rt.block_on(detect_one(sa(port), loopback_rtt(), None));
    let (svc, _) = r.expect("redis identified");
    assert_eq!(product(&svc), ("redis", Some("Redis"), Some("7.0.15")));
    eprintln!("redis on unhinted port {port}: {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(6));
}

fn sa(port: u16) -> SocketAddr {
    SocketAddr::new(LOCALHOST, port)
}

/// Payload-less ports: silence is open|filtered, ICMP unreachable is closed; many closed ports
/// at once still come out closed.
#[test]
fn udp_scan_without_payloads_classifies_silence_and_unreachables() {
    let s = Scratch::new("udp");
    let dns = free_dual_port();
    let snmp = free_udp_port();
    let _dns = start_dnsmasq(&s, Ipv4Addr::LOCALHOST, dns);
    let _snmp = start_snmpd(&s, Ipv4Addr::LOCALHOST, snmp);
    let closed: Vec<u16> = (0..40).map(|_| free_udp_port()).collect();
    let rt = rt();
    let started = Instant::now();
    let mut ports = vec![dns, snmp];
    ports.extend(&closed);
    let res = rt
        .block_on(udp_scan(
            &[(LOCALHOST, loopback_rtt())],
            &ports,
            &UdpConfig {
                retries: 2,
                max_rate: None,
            },
            Arc::new(NoProgress),
        ))
        .expect("udp scan");
    let elapsed = started.elapsed();
    eprintln!("udp scan of {} ports: {elapsed:?}", ports.len());
    assert_eq!(res.len(), 1);
    let (_, results) = &res[0];
    assert_eq!(results.len(), ports.len(), "every port is returned");
    for &p in &closed {
        let r = results
            .iter()
            .find(|r| r.port == p)
            .expect("closed port result");
        assert_eq!(r.state, PortState::Closed, "port {p}: {r:?}");
        assert_eq!(r.reason, "port-unreach");
    }
    // An empty datagram gets no answer from DNS or SNMP: open|filtered.
    for p in [dns, snmp] {
        let r = results.iter().find(|r| r.port == p).expect("result");
        assert_eq!(r.state, PortState::OpenFiltered, "port {p}: {r:?}");
        assert_eq!(r.reason, "no-response");
    }
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

// --- hostile servers ---------------------------------------------------------------------------

/// Serves every connection with `behaviour` until the test ends.
fn hostile_server(rt: &tokio::runtime::Runtime, behaviour: Behaviour) -> u16 {
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        tokio::spawn(async move {
            // Bounded: the runtime and this task end with the test.
            for _ in 0..200 {
                let Ok((s, _)) = l.accept().await else { return };
                behaviour(s);
            }
        });
        port
    })
}

fn ten_megabytes(mut s: tokio::net::TcpStream) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let chunk = vec![b'A'; 64 * 1024];
        for _ in 0..160 {
            if s.write_all(&chunk).await.is_err() {
                return;
            }
        }
    })
}

fn binary_junk(mut s: tokio::net::TcpStream) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let junk: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let _ = s.write_all(&junk).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
}

fn drip(mut s: tokio::net::TcpStream) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        for i in 0..30u8 {
            if s.write_all(&[b'a' + i % 26]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
}

fn silent(s: tokio::net::TcpStream) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    })
}

/// Counts progress units.
#[derive(Default)]
struct CountingProgress(std::sync::atomic::AtomicU64);

impl picket_netscan::Progress for CountingProgress {
    fn phase(&self, _name: &str, _total: u64) {}
    fn advance(&self, n: u64) {
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn hostile_servers_give_bounded_best_effort_results() {
    let rt = rt();
    let cases: [(&str, Behaviour); 4] = [
        ("10 MB", ten_megabytes),
        ("junk", binary_junk),
        ("drip", drip),
        ("silent", silent),
    ];
    let ports: Vec<(&str, u16)> = cases
        .iter()
        .map(|(n, f)| (*n, hostile_server(&rt, *f)))
        .collect();
    let started = Instant::now();
    let jobs = ports
        .iter()
        .map(|(_, p)| (sa(*p), loopback_rtt()))
        .collect();
    let progress = Arc::new(CountingProgress::default());
    let results = rt.block_on(service::detect_many(
        jobs,
        &HashMap::new(),
        8,
        progress.clone(),
    ));
    assert_eq!(
        progress.0.load(std::sync::atomic::Ordering::Relaxed),
        ports.len() as u64,
        "one progress unit per port"
    );
    let elapsed = started.elapsed();
    eprintln!("hostile servers: {elapsed:?}: {results:#?}");
    // Bounded by the per-port budget (12 s) plus slack, never a hang.
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    for (name, port) in &ports {
        let found = results.iter().find(|(a, _)| a.port() == *port);
        match *name {
            "silent" => assert!(found.is_none(), "a silent port has no service: {found:?}"),
            _ => {
                let (_, (svc, _)) = found.unwrap_or_else(|| panic!("{name}: no result"));
                assert_eq!(svc.name, "unknown", "{name}: {svc:?}");
                let banner = svc.banner.as_deref().unwrap_or_default();
                assert!(
                    !banner.is_empty() && banner.len() <= 170,
                    "{name}: {banner:?}"
                );
            }
        }
    }
    let (_, (svc, _)) = results
        .iter()
        .find(|(a, _)| a.port() == ports[0].1)
        .expect("10 MB");
    assert!(svc
        .banner
        .as_deref()
        .is_some_and(|b| b.starts_with("AAAA") && b.ends_with("...")));
}

/// The benchmark's comparison, on loopback: our detection of the test services on their
/// well-known ports against `nmap -sV` on the same ports. Ignored by default because it runs
/// nmap for several seconds; run with `cargo test -p picket-netscan --test service_loopback --
/// --ignored compare_with_nmap`.
#[test]
#[ignore]
fn compare_with_nmap_sv() {
    let nmap = require("/usr/bin/nmap", "nmap");
    let s = Scratch::new("nmap");
    let ip = random_loopback();
    let p = Ports {
        ssh: 22,
        http: 80,
        https: 443,
        legacy_tls: 8443,
        redis: 6379,
        redis_pw: 6380,
        memcached: 11211,
        ftp: 21,
        ftps: 990,
        dns: 53,
        smtp: 25,
    };
    let _daemons = start_tcp_daemons(&s, ip, &p);
    let (results, ours) = detect_all(ip, &p.all());
    check_services(&s, &p, &results);
    let list = p
        .all()
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let started = Instant::now();
    let out = Command::new(nmap)
        .args(["-sV", "-Pn", "-n", "-p", &list, &ip.to_string()])
        .output()
        .expect("run nmap");
    let theirs = started.elapsed();
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!(
        "picket: {ours:?}, nmap -sV: {theirs:?}, ratio {:.3}",
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
    assert!(out.status.success());
    assert!(
        ours.as_secs_f64() <= 0.25 * theirs.as_secs_f64(),
        "{ours:?} vs {theirs:?}"
    );
}

/// IPv6: detection over ::1 (a greeting server written here) and a UDP scan of closed ports
/// over ICMPv6.
#[test]
fn ipv6_detection_and_udp_unreachables() {
    let rt = rt();
    let port = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("[::1]:0")
            .await
            .expect("bind ::1");
        let port = l.local_addr().expect("addr").port();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            // Bounded: a handful of connections, then the task ends.
            for _ in 0..20 {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let _ = s
                    .write_all(b"SSH-2.0-OpenSSH_9.6 FreeBSD-20240104\r\n")
                    .await;
            }
        });
        port
    });
    let v6 = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
    let found = rt.block_on(detect_one(SocketAddr::new(v6, port), loopback_rtt(), None));
    let (svc, _) = found.expect("ssh over ::1");
    assert_eq!(product(&svc), ("ssh", Some("OpenSSH"), Some("9.6")));
    assert_eq!(svc.extra.as_deref(), Some("FreeBSD-20240104"));

    let closed: Vec<u16> = (0..5)
        .map(|_| {
            let s = UdpSocket::bind("[::1]:0").expect("bind");
            s.local_addr().expect("addr").port()
        })
        .collect();
    let res = rt
        .block_on(udp_scan(
            &[(v6, loopback_rtt())],
            &closed,
            &UdpConfig {
                retries: 1,
                max_rate: Some(500),
            },
            Arc::new(NoProgress),
        ))
        .expect("udp scan");
    for r in &res[0].1 {
        assert_eq!(r.state, PortState::Closed, "{r:?}");
    }
}

/// A network namespace joined to ours by a veth pair (198.19.0.0/16 test addresses), deleted on
/// drop. Its kernel rate-limits ICMP errors towards us as any Linux peer does (loopback is
/// exempt, which is why this needs a namespace).
struct Netns {
    name: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn netns_peer() -> Option<(Netns, Ipv4Addr)> {
    if std::env::var_os("PICKET_SKIP_NETNS").is_some_and(|v| v == "1") {
        return None;
    }
    let r = rand_suffix();
    let tag = format!("{:06x}", r & 0xff_ffff);
    let ns = Netns {
        name: format!("psvc{tag}"),
    };
    let (host_if, ns_if) = (format!("vh{tag}"), format!("vn{tag}"));
    // A random /30 in 198.19.0.0/16 (test addresses, RFC 2544), away from the 198.18.0.0/16 the
    // other test networks use: the host side of this link lives in the root namespace.
    let (third, fourth) = (((r >> 24) & 0xff) as u8, (((r >> 32) & 0x3f) as u8) * 4);
    let (ours, theirs) = (
        format!("198.19.{third}.{}/30", fourth + 1),
        Ipv4Addr::new(198, 19, third, fourth + 2),
    );
    let ip = |args: &[&str]| {
        let st = Command::new("ip").args(args).status().expect("run ip");
        assert!(
            st.success(),
            "ip {args:?} failed: this test needs root (CAP_NET_ADMIN) and iproute2; \
             set PICKET_SKIP_NETNS=1 where namespaces are unavailable"
        );
    };
    ip(&["netns", "add", &ns.name]);
    ip(&[
        "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
    ]);
    ip(&["link", "set", &ns_if, "netns", &ns.name]);
    ip(&["addr", "add", &ours, "dev", &host_if]);
    ip(&["link", "set", &host_if, "up"]);
    ip(&[
        "-n",
        &ns.name,
        "addr",
        "add",
        &format!("{theirs}/30"),
        "dev",
        &ns_if,
    ]);
    ip(&["-n", &ns.name, "link", "set", &ns_if, "up"]);
    ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
    Some((ns, theirs))
}

/// Linux sends one port-unreachable per second to a peer after a burst of six. Twelve closed
/// ports must all still come out closed (a scanner that trusted its first round, or retried on
/// a fixed short timer, would call half of them open|filtered), in bounded time.
#[test]
fn udp_closed_ports_survive_icmp_rate_limiting() {
    let Some((_ns, peer)) = netns_peer() else {
        eprintln!("PICKET_SKIP_NETNS=1: skipped");
        return;
    };
    let ports: Vec<u16> = (40000..40012).collect();
    let rt = rt();
    let mut rtt = RttEstimator::new();
    rtt.observe(Duration::from_micros(100));
    let started = Instant::now();
    let res = rt
        .block_on(udp_scan(
            &[(IpAddr::V4(peer), rtt)],
            &ports,
            &UdpConfig {
                retries: 3,
                max_rate: None,
            },
            Arc::new(NoProgress),
        ))
        .expect("udp scan");
    let elapsed = started.elapsed();
    eprintln!(
        "rate-limited peer, {} closed ports: {elapsed:?}",
        ports.len()
    );
    let results = &res[0].1;
    let closed = results
        .iter()
        .filter(|r| r.state == PortState::Closed)
        .count();
    assert_eq!(closed, ports.len(), "{results:#?}");
    // Six at once, then about one per second.
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");

    // Right away again: the peer's bucket is now empty, not full as a fresh peer's would be.
    let ports: Vec<u16> = (41000..41006).collect();
    let started = Instant::now();
    let res = rt
        .block_on(udp_scan(
            &[(IpAddr::V4(peer), rtt)],
            &ports,
            &UdpConfig {
                retries: 3,
                max_rate: None,
            },
            Arc::new(NoProgress),
        ))
        .expect("udp scan");
    let elapsed = started.elapsed();
    eprintln!("drained peer, {} closed ports: {elapsed:?}", ports.len());
    let results = &res[0].1;
    let closed = results
        .iter()
        .filter(|r| r.state == PortState::Closed)
        .count();
    assert_eq!(closed, ports.len(), "{results:#?}");
    assert!(elapsed < Duration::from_secs(12), "{elapsed:?}");
}

//! `picket console` driven the way the appliance's serial console and the QEMU tests drive it:
//! the real binary, its standard input a pipe (or, through util-linux `script`, a terminal),
//! its answers read back from standard output, its effects checked on disk.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROMPT: &str = "Choice [1-5]: ";
const HEADER: &str =
    "# Written by picket from the appliance settings; changes here are overwritten.\n";

fn picket() -> &'static str {
    env!("CARGO_BIN_EXE_picket")
}

struct Run {
    status: ExitStatus,
    out: String,
}

/// Runs `picket console` with `input` on a pipe, then end of input; bounded to 60 s.
fn console(state: &Path, etc: &Path, extra: &[&str], input: &str) -> Run {
    let mut child = Command::new(picket())
        .arg("--state-dir")
        .arg(state)
        .arg("console")
        .arg("--etc-dir")
        .arg(etc)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn picket: {e}"));
    let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    let input = input.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        // The console may exit before reading everything (that is fine).
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    Run { status, out }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap_or_else(|e| panic!("wait: {e}")) {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("picket console did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The first interface the console offers (it lists /sys/class/net without lo, sorted).
fn first_interface() -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n != "lo" && n.len() <= 15)
        .collect();
    names.sort();
    names.into_iter().next()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

#[test]
fn static_network_with_vlan_is_rendered_after_bad_answers_are_reprompted() {
    let Some(ifname) = first_interface() else {
        panic!("this test needs a network interface besides lo");
    };
    let (dir, etc) = (tmp(), tmp());
    let resolv = dir.path().join("resolv.conf");
    let input = format!(
        "1\n{ifname}\n2\n198.18.0.300/24\n198.18.0.10/24\n198.18.1.1\n198.18.0.1\n\
         198.18.0.53 198.18.1.53\n0\n120\ny\n"
    );
    let r = console(
        &dir.path().join("state"),
        etc.path(),
        &["--resolv-conf", resolv.to_str().unwrap_or_default()],
        &input,
    );
    assert!(r.status.success(), "{:?}\n{}", r.status, r.out);
    assert!(
        r.out
            .contains("  ! address \"198.18.0.300/24\": not an IP address\n"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("  ! gateway \"198.18.1.1\": not in the network of 198.18.0.10/24\n"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("  ! VLAN id \"0\": must be a number from 1 to 4094\n"),
        "{}",
        r.out
    );
    let vlan_if = if ifname.len() + 4 <= 15 {
        format!("{ifname}.120")
    } else {
        "vlan120".to_owned()
    };
    assert!(r.out.contains(&format!(
        "Interface {ifname}, VLAN 120 ({vlan_if}), static 198.18.0.10/24, gateway 198.18.0.1, \
         DNS 198.18.0.53 198.18.1.53\n"
    )));
    assert!(r
        .out
        .contains("is not read by systemd-networkd; nothing was reloaded."));
    let mut expected = vec![
        format!("10-picket-{ifname}.network"),
        format!("10-picket-{vlan_if}.netdev"),
        format!("10-picket-{vlan_if}.network"),
    ];
    expected.sort();
    assert_eq!(files_in(etc.path()), expected);
    assert_eq!(
        read(etc.path().join(format!("10-picket-{vlan_if}.network"))),
        format!(
            "{HEADER}\n[Match]\nName={vlan_if}\n\n[Network]\nAddress=198.18.0.10/24\n\
             Gateway=198.18.0.1\nDNS=198.18.0.53\nDNS=198.18.1.53\nIPv6AcceptRA=no\n"
        )
    );
    assert_eq!(
        read(etc.path().join(format!("10-picket-{vlan_if}.netdev"))),
        format!("{HEADER}\n[NetDev]\nName={vlan_if}\nKind=vlan\n\n[VLAN]\nId=120\n")
    );
    assert_eq!(
        read(etc.path().join(format!("10-picket-{ifname}.network"))),
        format!(
            "{HEADER}\n[Match]\nName={ifname}\n\n[Network]\nVLAN={vlan_if}\n\
             LinkLocalAddressing=no\nIPv6AcceptRA=no\n"
        )
    );
    assert_eq!(
        read(resolv),
        format!("{HEADER}nameserver 198.18.0.53\nnameserver 198.18.1.53\n")
    );

    // DHCP on the same interface afterwards: the VLAN files go, one .network remains.
    let r = console(&dir.path().join("state"), etc.path(), &[], "1\n1\n1\n\n\n");
    assert!(r.status.success(), "{}", r.out);
    assert_eq!(
        files_in(etc.path()),
        vec![format!("10-picket-{ifname}.network")]
    );
    assert_eq!(
        read(etc.path().join(format!("10-picket-{ifname}.network"))),
        format!("{HEADER}\n[Match]\nName={ifname}\n\n[Network]\nDHCP=yes\n")
    );
}

#[test]
fn three_bad_answers_return_to_the_menu_and_change_nothing() {
    let (dir, etc) = (tmp(), tmp());
    // Bad interface three times; then bad addresses three times.
    let Some(ifname) = first_interface() else {
        panic!("this test needs a network interface besides lo");
    };
    let input = format!("1\nnope0\n99\neth0\\n\n1\n{ifname}\n2\nx\n10.0.0.1\n10.0.0.0/24\n");
    let r = console(&dir.path().join("state"), etc.path(), &[], &input);
    assert!(r.status.success(), "{}", r.out);
    assert_eq!(
        r.out
            .matches("  ! 3 invalid answers; nothing was changed. Back to the menu.\n")
            .count(),
        2,
        "{}",
        r.out
    );
    // The menu came back after each screen gave up (initial + 2 redraws).
    assert_eq!(r.out.matches(PROMPT).count(), 3, "{}", r.out);
    assert_eq!(r.out.matches("Address/prefix").count(), 3, "{}", r.out);
    assert!(files_in(etc.path()).is_empty());
}

#[test]
fn end_of_input_anywhere_exits_0_without_writing() {
    let Some(ifname) = first_interface() else {
        panic!("this test needs a network interface besides lo");
    };
    let full = format!("\n5\n7\n1\n{ifname}\n2\n198.18.0.10/24\n198.18.0.1\n\n\n");
    let lines: Vec<&str> = full.split_inclusive('\n').collect();
    for cut in 0..=lines.len() {
        let (dir, etc) = (tmp(), tmp());
        let input: String = lines[..cut].concat();
        let r = console(&dir.path().join("state"), etc.path(), &[], &input);
        assert!(r.status.success(), "cut {cut}: {:?}\n{}", r.status, r.out);
        assert!(r.out.contains(PROMPT), "cut {cut}: {}", r.out);
        // The confirmation (the last line) was never answered, so nothing may be written.
        assert!(files_in(etc.path()).is_empty(), "cut {cut}");
    }
    // Menu choices that only redraw: empty line, 5, CR, CRLF; an invalid one is explained.
    let (dir, etc) = (tmp(), tmp());
    let r = console(&dir.path().join("state"), etc.path(), &[], "\n5\r\r\n7\n");
    assert_eq!(
        r.out.matches("Picket appliance setup").count(),
        4,
        "{}",
        r.out
    );
    assert_eq!(r.out.matches("  ! Type a number from 1 to 5.").count(), 1);
}

/// The status screen lists the same addresses as `ip -o addr` (lo excluded).
#[test]
fn status_lists_the_interface_addresses() {
    let (dir, etc) = (tmp(), tmp());
    let r = console(&dir.path().join("state"), etc.path(), &[], "4\n");
    assert!(r.status.success(), "{}", r.out);
    let ip = Command::new("ip")
        .args(["-o", "addr", "show"])
        .output()
        .unwrap_or_else(|e| panic!("ip: {e}"));
    let text = String::from_utf8_lossy(&ip.stdout);
    let mut expected = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(name), Some(addr)) = (f.get(1), f.get(3)) else {
            continue;
        };
        if *name == "lo" {
            continue;
        }
        expected += 1;
        let want = format!("  {name:<16} {addr}\n");
        assert!(r.out.contains(&want), "missing {want:?} in\n{}", r.out);
    }
    let status = r
        .out
        .split("-- Status --")
        .nth(1)
        .unwrap_or_else(|| panic!("no status screen: {}", r.out));
    let listed = status
        .lines()
        .skip_while(|l| !l.starts_with("Addresses:"))
        .skip(1)
        .take_while(|l| l.starts_with("  ") && !l.contains("(none)"))
        .count();
    assert_eq!(listed, expected, "{}", r.out);
}

/// The console on a real terminal (a pty from util-linux `script`): typed characters are echoed
/// by the console with backspace editing, Ctrl-C is a key that cancels (not a signal that ends
/// the program), and the end of input still ends it with status 0.
#[test]
fn on_a_terminal_ctrl_c_cancels_and_does_not_kill() {
    let (dir, etc) = (tmp(), tmp());
    let cmd = format!(
        "{} --state-dir {} console --etc-dir {}",
        picket(),
        dir.path().join("state").display(),
        etc.path().display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn script (util-linux): {e}"));
    let out = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let sink = Arc::clone(&out);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut o) = sink.lock() {
                o.extend_from_slice(&buf[..n]);
            }
        }
    });
    let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    let mut seen = 0;
    // Waits until `text` appears after what earlier expectations consumed.
    let mut expect = |text: &str| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            let o = out.lock().map(|o| o.clone()).unwrap_or_default();
            let s = String::from_utf8_lossy(&o).into_owned();
            if let Some(i) = s.get(seen..).and_then(|rest| rest.find(text)) {
                seen += i + text.len();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let o = out.lock().map(|o| o.clone()).unwrap_or_default();
        panic!(
            "{text:?} not seen; output:\n{}",
            String::from_utf8_lossy(&o)
        );
    };
    let mut send = |bytes: &[u8]| {
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("write: {e}"));
    };
    expect(PROMPT);
    // Echo with editing: "9", backspace (DEL), "5", CR -> the menu is redrawn.
    send(b"9\x7f5\r");
    expect("9\x08 \x085\r\n");
    expect(PROMPT);
    // Ctrl-C inside a screen: back to the menu, the program alive.
    send(b"1\r");
    expect("Interface [");
    send(b"\x03");
    expect("^C\r\n");
    expect(PROMPT);
    // Ctrl-C at the menu prompt: a fresh prompt.
    send(b"\x03");
    expect("^C\r\n");
    expect(PROMPT);
    send(b"4\r");
    expect("-- Status --");
    expect(PROMPT);
    // A secret is not echoed on a terminal (the other answers are).
    send(b"2\r");
    expect("Proxy URL");
    send(b"http://127.0.0.1:3128\r");
    expect("http://127.0.0.1:3128\r\n");
    expect("Username");
    send(b"ops\r");
    expect("ops\r\n");
    expect("Password (not shown): ");
    send(b"s3cr3t-pw\r");
    expect("Save? [Y/n]: ");
    send(b"n\r");
    expect("Nothing was changed.");
    expect(PROMPT);
    drop(stdin);
    let status = wait_bounded(&mut child, Duration::from_secs(20));
    let _ = reader.join();
    assert!(status.success(), "{status:?}");
    assert!(files_in(etc.path()).is_empty());
    let all = out.lock().map(|o| o.clone()).unwrap_or_default();
    let all = String::from_utf8_lossy(&all);
    assert!(!all.contains("s3cr3t"), "the password was echoed:\n{all}");
}

/// The reference platform, in this process, on a free loopback port (the same server code as
/// `picket-platform serve`).
struct Platform {
    addr: std::net::SocketAddr,
    shared: picket_platform::server::Shared,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Platform {
    async fn start() -> Platform {
        let dir = tmp();
        let config = picket_platform::config::Config {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            server_names: vec!["localhost".into(), "127.0.0.1".into()],
            cache_bytes: 8 * 1024 * 1024,
            ..picket_platform::config::Config::default()
        };
        let shared = Arc::new(
            picket_platform::server::Platform::open(config, dir.path())
                .unwrap_or_else(|e| panic!("platform open: {e}")),
        );
        let server = picket_platform::server::Server::bind(shared.clone())
            .await
            .unwrap_or_else(|e| panic!("platform bind: {e}"));
        let addr = server.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = server
                .run(async {
                    let _ = rx.await;
                })
                .await;
        });
        Platform {
            addr,
            shared,
            _dir: dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    fn code(&self) -> String {
        let req = picket_model::api::CreateCode {
            ttl_secs: None,
            label: Some("console test".into()),
        };
        picket_platform::operator::create_code(&self.shared, &req)
            .unwrap_or_else(|e| panic!("create code: {e}"))
            .code
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

async fn console_async(state: PathBuf, etc: PathBuf, input: String) -> Run {
    tokio::task::spawn_blocking(move || console(&state, &etc, &[], &input))
        .await
        .unwrap_or_else(|e| panic!("join: {e}"))
}

/// Enrollment typed at the console against the platform over real TLS: the CA pinned by its
/// fingerprint, the code typed as a person would (lower case, no dashes). A wrong fingerprint is
/// refused before the code is spent; a used code is refused by the platform; both say so plainly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_through_the_console() {
    let platform = Platform::start().await;
    let fp = platform.shared.ca.fingerprint();
    let code = platform.code();
    let typed: String = code.replace('-', "").to_ascii_lowercase();
    let (dir, etc) = (tmp(), tmp());
    let state = dir.path().join("state");

    // A wrong CA fingerprint: the TLS handshake is refused, the code is not spent.
    let wrong = "00".repeat(32);
    let r = console_async(
        state.clone(),
        etc.path().to_path_buf(),
        format!(
            "3\nhttp://127.0.0.1:1\n{}\n{typed}\n{wrong}\n",
            platform.url()
        ),
    )
    .await;
    assert!(r.status.success(), "{}", r.out);
    assert!(r.out.contains("must be https://"), "{}", r.out);
    assert!(r.out.contains("  ! Enrollment failed: "), "{}", r.out);
    assert!(r.out.contains("  Platform: not enrolled\n"), "{}", r.out);

    // The right fingerprint (a failed enrollment saved nothing, so the URL is typed again).
    let r = console_async(
        state.clone(),
        etc.path().to_path_buf(),
        format!("3\n{}\n{typed}\n{fp}\n", platform.url()),
    )
    .await;
    assert!(r.status.success(), "{}", r.out);
    let id_line = r
        .out
        .lines()
        .find_map(|l| l.strip_prefix("Enrolled as appliance "))
        .unwrap_or_else(|| panic!("not enrolled:\n{}", r.out));
    let id = id_line.trim_end_matches('.').to_owned();
    // The menu wraps long lines under their label.
    let unwrapped = r.out.replace(&format!("\n{}", " ".repeat(12)), " ");
    assert!(
        unwrapped.contains(&format!(
            "  Platform: enrolled as {id} with {}\n",
            platform.url()
        )),
        "{}",
        r.out
    );
    let fp_hex: String = fp.replace(':', "").to_ascii_lowercase();
    assert!(
        r.out
            .to_ascii_lowercase()
            .replace(':', "")
            .contains(&fp_hex),
        "pinned CA not shown:\n{}",
        r.out
    );

    // The same code again, from another appliance: refused by the platform. Enter keeps the
    // saved URL and fingerprint only where they were saved, so they are typed here.
    let other = tmp();
    let r = console_async(
        other.path().join("state"),
        etc.path().to_path_buf(),
        format!("3\n{}\n{code}\n{fp}\n", platform.url()),
    )
    .await;
    assert!(
        r.out
            .contains("  ! Enrollment failed: enrollment refused by the platform: code"),
        "{}",
        r.out
    );

    // The enrolled appliance remembers the platform: Enter takes the saved URL and fingerprint.
    let code2 = platform.code();
    let r = console_async(
        state.clone(),
        etc.path().to_path_buf(),
        format!("3\n\n3\ny\n\n{code2}\n\n"),
    )
    .await;
    assert!(
        r.out.contains(&format!("Enter = {}", platform.url())),
        "{}",
        r.out
    );
    // Enrolling an enrolled appliance again asks first; Enter means no.
    assert!(r.out.contains("Enroll again? [y/N]: "), "{}", r.out);
    assert_eq!(
        r.out.matches("Nothing was changed.").count(),
        1,
        "{}",
        r.out
    );
    assert_eq!(
        r.out.matches("Enrolled as appliance ").count(),
        1,
        "{}",
        r.out
    );
    let id = r
        .out
        .lines()
        .find_map(|l| l.strip_prefix("Enrolled as appliance "))
        .map(|l| l.trim_end_matches('.').to_owned())
        .unwrap_or_default();

    // Status: the identity, and every step of the check passing against the live platform.
    let r = console_async(state.clone(), etc.path().to_path_buf(), "4\n".into()).await;
    assert!(
        r.out
            .contains(&format!("Enrolled    : yes, appliance {id}\n")),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains(&format!("Platform    : {}\n", platform.url())),
        "{}",
        r.out
    );
    for step in ["dns", "tcp", "tls", "api"] {
        assert!(
            r.out.contains(&format!("  {step:<6}ok    ")),
            "{step}:\n{}",
            r.out
        );
    }
    assert!(
        r.out.contains("Check passed: the platform is reachable.\n"),
        "{}",
        r.out
    );

    // A proxy that is not there (a port nobody listens on): set through the console, the check
    // then names the proxy step; "none" removes it again.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let r = console_async(
        state.clone(),
        etc.path().to_path_buf(),
        format!("2\nhttp://127.0.0.1:{closed}\nops\npr0xy-pw\n\n4\n"),
    )
    .await;
    assert!(
        !r.out.contains("pr0xy-pw"),
        "the password was echoed:\n{}",
        r.out
    );
    assert!(
        r.out.contains(&format!(
            "  Proxy   : http://127.0.0.1:{closed} as user ops (password set)\n"
        )),
        "{}",
        r.out
    );
    assert!(r.out.contains("  proxy FAIL  "), "{}", r.out);
    assert!(r.out.contains("Check FAILED at step: proxy\n"), "{}", r.out);
    let r = console_async(
        state.clone(),
        etc.path().to_path_buf(),
        "2\nnone\ny\n".into(),
    )
    .await;
    assert!(
        r.out.contains("  Proxy   : none (direct connection)\n"),
        "{}",
        r.out
    );

    // The platform gone: the check names the TCP step.
    platform.stop().await;
    let r = console_async(state.clone(), etc.path().to_path_buf(), "4\n".into()).await;
    assert!(r.out.contains("  dns   ok    "), "{}", r.out);
    assert!(r.out.contains("Check FAILED at step: tcp\n"), "{}", r.out);
}

/// Boot-time rendering: `--apply-stored` writes exactly what the console wrote when the settings
/// were saved, from the store alone; with nothing stored it writes nothing and succeeds.
#[test]
fn apply_stored_renders_the_saved_settings() {
    let Some(ifname) = first_interface() else {
        panic!("this test needs a network interface besides lo");
    };
    let (dir, etc, boot) = (tmp(), tmp(), tmp());
    let state = dir.path().join("state");
    let apply = |etc: &Path| {
        Command::new(picket())
            .arg("--state-dir")
            .arg(&state)
            .args(["console", "--apply-stored", "--etc-dir"])
            .arg(etc)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let out = apply(boot.path());
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no network settings stored yet"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(files_in(boot.path()).is_empty());

    let r = console(
        &state,
        etc.path(),
        &[],
        &format!("1\n{ifname}\n2\n198.18.0.10/24\n198.18.0.1\n198.18.0.53\n33\ny\n"),
    );
    assert!(r.status.success(), "{}", r.out);
    let out = apply(boot.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = files_in(etc.path());
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(files_in(boot.path()), names);
    for n in &names {
        assert_eq!(read(boot.path().join(n)), read(etc.path().join(n)), "{n}");
    }
}

/// Runs inside `unshare -n -m` (its own network and mount namespaces, so nothing of this
/// machine's network or /etc changes): a veth pair `pk0`/`pk1` with 198.18.5.1/24 on `pk1`,
/// /sys remounted (this namespace's interfaces; read-only, so networkd does not wait for udev),
/// /run/systemd a tmpfs, a temporary directory bound over /etc/systemd/network. `picket console`
/// configures pk0 there; the real systemd-networkd then applies what it wrote. Prints `OK`,
/// `TIMEOUT` and `SKIP` lines for the test to check. $1: picket, $2: a work directory.
const NETWORKD_SCRIPT: &str = r#"
set -u
PICKET=$1; W=$2
mount --make-rprivate /
mount -t sysfs -o ro none /sys
mount -t tmpfs none /run/systemd
mkdir -p /run/systemd/netif && chown systemd-network:systemd-network /run/systemd/netif
mkdir -p "$W/network" && mount --bind "$W/network" /etc/systemd/network
ip link set lo up
ip link add pk0 type veth peer name pk1
ip addr add 198.18.5.1/24 dev pk1
ip link set pk1 up
netd() { /lib/systemd/systemd-networkd >>"$W/networkd.log" 2>&1 & echo $!; }
wait_for() {  # up to 15 s
    local what=$1; shift
    for _ in $(seq 150); do "$@" >/dev/null 2>&1 && { echo "OK $what"; return 0; }; sleep 0.1; done
    echo "TIMEOUT $what"; return 1
}
printf '1\npk0\n2\n198.18.5.10/24\n198.18.5.1\n198.18.5.53\n\ny\n' |
    "$PICKET" --state-dir "$W/state" console --etc-dir /etc/systemd/network >"$W/static.out"
echo "CONSOLE static rc=$?"
N=$(netd)
wait_for static-address sh -c 'ip -4 -br addr show pk0 | grep -q " 198.18.5.10/24"'
wait_for static-route sh -c 'ip -4 route show default | grep -q "^default via 198.18.5.1 dev pk0"'
wait_for static-dns sh -c 'grep -qs "^DNS=198.18.5.53$" /run/systemd/netif/links/*'
kill $N; wait $N 2>/dev/null
ip addr flush dev pk0
dnsmasq --no-daemon --conf-file=/dev/null --interface=pk1 --bind-interfaces --port=0 --no-resolv \
    --no-hosts --dhcp-range=198.18.5.100,198.18.5.150,255.255.255.0,1h \
    --dhcp-leasefile="$W/leases" >"$W/dnsmasq.log" 2>&1 &
D=$!
printf '1\n\n1\n\ny\n' |
    "$PICKET" --state-dir "$W/state" console --etc-dir /etc/systemd/network >"$W/dhcp.out"
echo "CONSOLE dhcp rc=$?"
N=$(netd)
wait_for dhcp-address sh -c 'ip -4 -br addr show pk0 | grep -Eq " 198\.18\.5\.(1[0-4][0-9]|150)/24"'
kill $N $D; wait $N $D 2>/dev/null
if ip link add link pk0 name pkprobe type vlan id 5 2>/dev/null; then
    ip link del pkprobe
    ip addr flush dev pk0
    printf '1\npk0\n2\n198.18.6.10/24\n\n\n120\ny\n' |
        "$PICKET" --state-dir "$W/state" console --etc-dir /etc/systemd/network >"$W/vlan.out"
    echo "CONSOLE vlan rc=$?"
    N=$(netd)
    wait_for vlan-link sh -c 'ip -d link show pk0.120 | grep -q "vlan protocol 802.1Q id 120"'
    wait_for vlan-address sh -c 'ip -4 -br addr show pk0.120 | grep -q " 198.18.6.10/24"'
    kill $N; wait $N 2>/dev/null
else
    echo "SKIP vlan: this kernel has no 802.1Q support"
fi
"#;

/// What `picket console` writes is what systemd-networkd applies: static address, default route
/// and DNS, then DHCP from dnsmasq, then (when the kernel has 802.1Q) a tagged VLAN, each typed at
/// the console and brought up by the real networkd in a namespace of its own. Needs root; skipped
/// with `PICKET_SKIP_NETNS=1`.
#[test]
fn systemd_networkd_applies_what_the_console_writes() {
    if std::env::var("PICKET_SKIP_NETNS").as_deref() == Ok("1") {
        eprintln!("PICKET_SKIP_NETNS=1: skipping the systemd-networkd namespace test");
        return;
    }
    let work = tmp();
    let out = Command::new("timeout")
        .args([
            "120",
            "unshare",
            "-n",
            "-m",
            "bash",
            "-c",
            NETWORKD_SCRIPT,
            "networkd-test",
        ])
        .arg(picket())
        .arg(work.path())
        .output()
        .unwrap_or_else(|e| panic!("unshare: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = std::fs::read_to_string(work.path().join("networkd.log")).unwrap_or_default();
    let report = format!(
        "{text}\nstderr: {}\nnetworkd log (tail):\n{}",
        String::from_utf8_lossy(&out.stderr),
        log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    assert!(out.status.success(), "{report}");
    for line in [
        "CONSOLE static rc=0",
        "OK static-address",
        "OK static-route",
        "OK static-dns",
        "CONSOLE dhcp rc=0",
        "OK dhcp-address",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?}\n{report}"
        );
    }
    if text.contains("SKIP vlan") {
        eprintln!("802.1Q unavailable in this kernel: the VLAN part was not run");
    } else {
        for line in ["CONSOLE vlan rc=0", "OK vlan-link", "OK vlan-address"] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?}\n{report}"
            );
        }
    }
    assert!(!text.contains("TIMEOUT"), "{report}");
    let static_out = read(work.path().join("static.out"));
    assert!(
        static_out
            .contains("systemd-networkd is not running; the settings take effect when it starts."),
        "{static_out}"
    );
}

/// On the appliance the daemon runs all the time and holds the store: the console then reads
/// and saves settings, enrolls and checks through the daemon's control socket. Same screens, same
/// answers, and the daemon starts using what the console set (its status shows the enrollment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_works_through_the_running_daemon() {
    let platform = Platform::start().await;
    let fp = platform.shared.ca.fingerprint();
    let code = platform.code();
    let (dir, etc) = (tmp(), tmp());
    let state = dir.path().join("state");
    let config = dir.path().join("picket.toml");
    std::fs::write(
        &config,
        "[scan]\nscope = [\"127.0.0.0/8\"]\n[daemon]\npoll_wait_secs = 5\nheartbeat_secs = 2\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let log =
        std::fs::File::create(dir.path().join("daemon.log")).unwrap_or_else(|e| panic!("{e}"));
    let mut daemon = Command::new(picket())
        .arg("--state-dir")
        .arg(&state)
        .arg("daemon")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start the daemon: {e}"));
    let sock = state.join("daemon.sock");
    let start = Instant::now();
    while !sock.exists() && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let daemon_log = || std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    assert!(
        sock.exists(),
        "no control socket; daemon log:\n{}",
        daemon_log()
    );

    let run = |input: String| {
        let (state, etc, config) = (state.clone(), etc.path().to_path_buf(), config.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                console(
                    &state,
                    &etc,
                    &["--config", config.to_str().unwrap_or_default()],
                    &input,
                )
            })
            .await
            .unwrap_or_else(|e| panic!("join: {e}"))
        }
    };
    // Proxy set and removed, enrollment, status: all while the daemon holds the store.
    let r = run(format!(
        "2\nhttp://127.0.0.1:3128\n\n\n2\nnone\n\n3\n{}\n{code}\n{fp}\n4\n",
        platform.url()
    ))
    .await;
    assert!(
        r.status.success(),
        "{}\ndaemon log:\n{}",
        r.out,
        daemon_log()
    );
    assert!(
        r.out.contains("  Proxy   : http://127.0.0.1:3128\n"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("  Proxy   : none (direct connection)\n"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("Enrolled as appliance "),
        "{}\ndaemon log:\n{}",
        r.out,
        daemon_log()
    );
    assert!(r.out.contains("Daemon      : running\n"), "{}", r.out);
    assert!(r.out.contains("Enrolled    : yes, appliance "), "{}", r.out);
    assert!(
        r.out.contains("Check passed: the platform is reachable.\n"),
        "{}\ndaemon log:\n{}",
        r.out,
        daemon_log()
    );
    assert!(!r.out.contains("cannot be read"), "{}", r.out);
    common::terminate(&mut daemon);
    platform.stop().await;
}

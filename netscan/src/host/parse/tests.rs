//! Parser tests over captured output (fixtures/ holds real output of this Debian 12 machine and
//! captured-style output of Rocky 9 and Alpine 3.20).

use super::*;
use proptest::prelude::*;

const DPKG: &[u8] = include_bytes!("../fixtures/dpkg-query.txt");
const RPM: &[u8] = include_bytes!("../fixtures/rpm-qa-rocky9.txt");
const APK: &[u8] = include_bytes!("../fixtures/apk-installed-alpine320.txt");
const SS: &[u8] = include_bytes!("../fixtures/ss-Hltnup.txt");
const SSHD_T: &[u8] = include_bytes!("../fixtures/sshd-T-debian12.txt");
const SSHD_FILES: &[u8] = include_bytes!("../fixtures/sshd-config-grep.txt");

fn pkg<'a>(list: &'a [Package], name: &str) -> &'a Package {
    match list.iter().find(|p| p.name == name) {
        Some(p) => p,
        None => panic!("{name} missing from {list:?}"),
    }
}

#[test]
fn os_release_of_four_distributions() {
    let deb = os_release(include_bytes!("../fixtures/os-release-debian12.txt"));
    assert_eq!(
        deb,
        Ok(OsRelease {
            id: "debian".into(),
            version_id: "12".into(),
            name: "Debian GNU/Linux 12 (bookworm)".into(),
            id_like: vec![],
            codename: Some("bookworm".into()),
        })
    );
    let rocky = os_release(include_bytes!("../fixtures/os-release-rocky9.txt"));
    assert_eq!(
        rocky
            .as_ref()
            .map(|o| (&o.id[..], &o.version_id[..], o.id_like.clone())),
        Ok((
            "rocky",
            "9.4",
            vec!["rhel".to_owned(), "centos".into(), "fedora".into()]
        ))
    );
    let alpine = os_release(include_bytes!("../fixtures/os-release-alpine320.txt"));
    assert_eq!(
        alpine
            .as_ref()
            .map(|o| (&o.id[..], &o.version_id[..], &o.name[..])),
        Ok(("alpine", "3.20.3", "Alpine Linux v3.20"))
    );
    let ubuntu = os_release(include_bytes!("../fixtures/os-release-ubuntu2204.txt"));
    assert_eq!(
        ubuntu.map(|o| (o.id, o.id_like, o.codename)),
        Ok(("ubuntu".into(), vec!["debian".into()], Some("jammy".into())))
    );
}

#[test]
fn os_release_quoting_and_refusals() {
    let o =
        os_release(b"ID='my os'\nNAME=\"A \\\"quoted\\\" \\$name\"\n#ID=x\nnot an assignment\n");
    assert_eq!(
        o.map(|o| (o.id, o.name)),
        Ok(("my os".into(), "A \"quoted\" $name".into()))
    );
    assert_eq!(
        os_release(b"NAME=Thing\n").map(|o| o.id),
        Ok("linux".into())
    );
    assert!(matches!(
        os_release(b"hello world\n"),
        Err(OutputError::Missing { .. })
    ));
    assert_eq!(
        os_release(b"ID=deb\xffian\n"),
        Err(OutputError::NotUtf8 { offset: 6 })
    );
}

#[test]
fn dpkg_real_output() {
    let p = dpkg_packages(DPKG).unwrap_or_default();
    assert_eq!(
        p.len(),
        29,
        "the rc (config-files) package is not installed"
    );
    assert!(p.iter().all(|p| p.name != "oldpkg"));
    let bash = pkg(&p, "bash");
    assert_eq!(
        (
            &bash.version[..],
            &bash.source_name[..],
            &bash.source_version[..]
        ),
        ("5.2.15-2+b8", "bash", "5.2.15-2"),
        "binNMU: the source version differs"
    );
    let libc = pkg(&p, "libc6");
    assert_eq!((&libc.source_name[..], &libc.arch[..]), ("glibc", "amd64"));
    assert_eq!(pkg(&p, "openssh-server").version, "1:9.2p1-2+deb12u10");
    assert!(p.iter().all(|p| p.ecosystem.is_empty()));
}

#[test]
fn dpkg_status_letters() {
    for (s, want) in [
        ("ii ", true),
        ("hi ", true),
        ("iU ", true),
        ("iF ", true),
        ("it ", true),
        ("rc ", false),
        ("un ", false),
        ("pn ", false),
        ("i", false),
    ] {
        assert_eq!(dpkg_status_installed(s), want, "{s:?}");
    }
}

#[test]
fn dpkg_refuses_malformed_lines() {
    assert_eq!(
        dpkg_packages(b"bash\t5.2\tamd64\n"),
        Err(OutputError::BadLine {
            line: 1,
            reason: "expected 6 tab-separated fields"
        })
    );
    assert!(dpkg_packages(b"\x89PNG\r\n\x1a\n\0\0").is_err());
    assert_eq!(dpkg_packages(b"\n\n"), Ok(vec![]));
}

#[test]
fn rpm_versions_and_sources() {
    let p = rpm_packages(RPM).unwrap_or_default();
    assert_eq!(p.len(), 8, "gpg-pubkey is dropped");
    let ssl = pkg(&p, "openssl-libs");
    assert_eq!(
        (
            &ssl.version[..],
            &ssl.source_name[..],
            &ssl.source_version[..]
        ),
        ("1:3.0.7-27.el9", "openssl", "1:3.0.7-27.el9")
    );
    let k = pkg(&p, "kernel-core");
    assert_eq!(
        (&k.version[..], &k.source_name[..]),
        ("5.14.0-427.13.1.el9_4", "kernel")
    );
    assert_eq!(
        pkg(&p, "python3-dnf-plugins-core").source_name,
        "dnf-plugins-core"
    );
    assert_eq!(
        split_source_rpm("rocky-release-9.4-1.7.el9.src.rpm"),
        Some(("rocky-release", "9.4", "1.7.el9"))
    );
    assert_eq!(split_source_rpm("(none)"), None);
    assert!(rpm_packages(b"bash\tx\t5\t1\tx86_64\tbash-5-1.src.rpm\n").is_err());
}

#[test]
fn apk_installed_db() {
    let p = apk_packages(APK).unwrap_or_default();
    assert_eq!(p.len(), 3);
    let c = pkg(&p, "libcrypto3");
    assert_eq!(
        (
            &c.version[..],
            &c.arch[..],
            &c.source_name[..],
            &c.source_version[..]
        ),
        ("3.3.2-r1", "x86_64", "openssl", "3.3.2-r1")
    );
    assert!(matches!(
        apk_packages(b"P:foo\nA:x86_64\n\n"),
        Err(OutputError::BadLine { .. })
    ));
    assert!(apk_packages(b"garbage line\n").is_err());
}

#[test]
fn ss_listening_sockets() {
    let s = ss_listening(SS).unwrap_or_default();
    let find = |proto, addr: &str, port| {
        s.iter()
            .find(|x| x.protocol == proto && x.address == addr && x.port == port)
    };
    assert_eq!(
        find(Protocol::Tcp, "0.0.0.0", 22).and_then(|x| x.process.clone()),
        Some("sshd".into())
    );
    assert!(find(Protocol::Tcp, "::", 22).is_some());
    assert!(find(Protocol::Tcp, "127.0.0.53", 53).is_some());
    assert!(find(Protocol::Udp, "*", 123).is_some());
    assert!(find(Protocol::Udp, "0.0.0.0", 68).is_some());
    assert_eq!(
        find(Protocol::Tcp, "*", 80).and_then(|x| x.process.clone()),
        Some("nginx".into())
    );
    assert_eq!(
        find(Protocol::Tcp, "::ffff:127.0.0.1", 8080).map(|x| x.process.clone()),
        Some(None)
    );
    assert_eq!(s.len(), 9);
    assert!(ss_listening(b"tcp LISTEN 0 128 0.0.0.0 0.0.0.0:*\n").is_err());
    assert!(ss_listening(b"Netid State\n").is_err());
}

#[test]
fn netstat_fallback() {
    // busybox netstat -ltnu on Alpine.
    let out = b"Active Internet connections (only servers)\n\
Proto Recv-Q Send-Q Local Address           Foreign Address         State       \n\
tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN      \n\
tcp        0      0 :::22                   :::*                    LISTEN      \n\
tcp        0      0 127.0.0.1:25            0.0.0.0:*               LISTEN      \n\
udp        0      0 0.0.0.0:68              0.0.0.0:*                           \n";
    let s = netstat_listening(out).unwrap_or_default();
    let got: Vec<(Protocol, &str, u16)> = s
        .iter()
        .map(|x| (x.protocol, x.address.as_str(), x.port))
        .collect();
    assert_eq!(
        got,
        vec![
            (Protocol::Tcp, "0.0.0.0", 22),
            (Protocol::Tcp, "127.0.0.1", 25),
            (Protocol::Tcp, "::", 22),
            (Protocol::Udp, "0.0.0.0", 68),
        ]
    );
    assert!(netstat_listening(b"tcp 0 0\n").is_err());
}

#[test]
fn sshd_effective_config() {
    let st = sshd_effective(SSHD_T).unwrap_or_default();
    assert!(st.effective);
    assert_eq!(st.permit_root_login.as_deref(), Some("without-password"));
    assert_eq!(st.password_authentication.as_deref(), Some("yes"));
    assert!(sshd_effective(b"").is_err());
    assert!(sshd_effective(b"PermitRootLogin yes\n").is_err());
}

#[test]
fn sshd_config_files_follow_include_order() {
    let st = sshd_config_files(SSHD_FILES).unwrap_or_default();
    assert!(!st.effective);
    // 50-cloud-init.conf comes first and wins PasswordAuthentication; 60-later.conf sets
    // PermitRootLogin; README does not match *.conf.
    assert_eq!(st.password_authentication.as_deref(), Some("no"));
    assert_eq!(st.permit_root_login.as_deref(), Some("yes"));
}

#[test]
fn sshd_config_match_blocks_and_equals() {
    let out = b"/etc/ssh/sshd_config\0PermitRootLogin=No\n\
/etc/ssh/sshd_config\0Match User backup\n\
/etc/ssh/sshd_config\0  PasswordAuthentication yes\n";
    let st = sshd_config_files(out).unwrap_or_default();
    assert_eq!(st.permit_root_login.as_deref(), Some("no"));
    assert_eq!(st.password_authentication, None);
    assert!(sshd_config_files(b"no nul here\n").is_err());
}

#[test]
fn include_loops_terminate() {
    let out = b"/etc/ssh/sshd_config\0Include /etc/ssh/sshd_config\n\
/etc/ssh/sshd_config\0PermitRootLogin yes\n";
    let st = sshd_config_files(out).unwrap_or_default();
    assert_eq!(st.permit_root_login.as_deref(), Some("yes"));
}

#[test]
fn include_fan_out_is_bounded() {
    // 12 files that each include all 12, eight levels deep, would be 12^8 file visits.
    let mut out = String::from("/etc/ssh/sshd_config\0Include /etc/ssh/sshd_config.d/*\n");
    for i in 0..12 {
        out.push_str(&format!(
            "/etc/ssh/sshd_config.d/f{i:02}\0Include /etc/ssh/sshd_config.d/*\n"
        ));
    }
    out.push_str("/etc/ssh/sshd_config.d/f11\0PermitRootLogin yes\n");
    let started = std::time::Instant::now();
    let st = sshd_config_files(out.as_bytes());
    assert!(st.is_ok());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn globs() {
    assert!(glob_match(
        "/etc/ssh/sshd_config.d/*.conf",
        "/etc/ssh/sshd_config.d/50-cloud-init.conf"
    ));
    assert!(!glob_match(
        "/etc/ssh/sshd_config.d/*.conf",
        "/etc/ssh/sshd_config.d/sub/x.conf"
    ));
    assert!(!glob_match(
        "/etc/ssh/sshd_config.d/*.conf",
        "/etc/ssh/sshd_config"
    ));
    assert!(glob_match("a?c", "abc"));
    assert!(glob_match("*", "abc"));
    assert!(!glob_match("a*d", "abc"));
}

#[test]
fn stat_of_shadow() {
    assert_eq!(
        stat_line(b"640 root shadow\n"),
        Ok(FileStat {
            mode: 0o640,
            owner: "root".into(),
            group: "shadow".into()
        })
    );
    assert_eq!(stat_line(b"0 root root\n").map(|s| s.mode), Ok(0));
    for bad in [
        &b"rw-r----- root shadow"[..],
        b"640 root",
        b"640 root shadow\nx",
        b"99999 a b",
    ] {
        assert!(stat_line(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn nul_separated_paths() {
    let (kept, n) = nul_paths(b"/etc/a\0/etc/b\xff\0/etc/c\0", 2);
    assert_eq!(n, 3);
    assert_eq!(kept, vec!["/etc/a".to_owned(), "/etc/b\u{fffd}".to_owned()]);
    assert_eq!(nul_paths(b"", 20), (vec![], 0));
}

#[test]
fn update_settings() {
    assert_eq!(
        apt_unattended_upgrade(b"APT::Periodic::Unattended-Upgrade \"1\";\n"),
        Ok(Some("1".into()))
    );
    assert_eq!(apt_unattended_upgrade(b""), Ok(None));
    assert!(apt_unattended_upgrade(b"APT::Periodic::Unattended-Upgrade 1\n").is_err());
    assert_eq!(systemctl_any_enabled(b"disabled\nenabled\n"), Ok(true));
    assert_eq!(systemctl_any_enabled(b"disabled\n"), Ok(false));
}

proptest! {
    #[test]
    fn dpkg_round_trip(pkgs in proptest::collection::vec(
        ("[a-z0-9][a-z0-9+.-]{1,20}", "[0-9]{1,2}:[0-9][0-9a-z.+~]{0,10}-[0-9a-z.+~]{1,6}", "amd64|all|arm64"), 0..30)) {
        let mut text = String::new();
        for (n, v, a) in &pkgs {
            text.push_str(&format!("{n}\t{v}\t{a}\t{n}-src\t{v}\tii \n"));
        }
        let parsed = dpkg_packages(text.as_bytes());
        prop_assert!(parsed.is_ok());
        let parsed = parsed.unwrap_or_default();
        prop_assert_eq!(parsed.len(), pkgs.len());
        for (p, (n, v, a)) in parsed.iter().zip(&pkgs) {
            prop_assert_eq!(&p.name, n);
            prop_assert_eq!(&p.version, v);
            prop_assert_eq!(&p.arch, a);
            prop_assert_eq!(&p.source_name, &format!("{n}-src"));
        }
    }

    #[test]
    fn rpm_round_trip(name in "[a-z][a-z0-9-]{0,15}[a-z]", epoch in 0u32..5, ver in "[0-9][0-9a-z.]{0,8}", rel in "[0-9][0-9a-z._]{0,8}") {
        let line = format!("{name}\t{epoch}\t{ver}\t{rel}\tx86_64\t{name}-{ver}-{rel}.src.rpm\n");
        let p = rpm_packages(line.as_bytes());
        prop_assert!(p.is_ok(), "{line}: {p:?}");
        let p = p.unwrap_or_default();
        let want = if epoch == 0 { format!("{ver}-{rel}") } else { format!("{epoch}:{ver}-{rel}") };
        prop_assert_eq!(&p[0].version, &want);
        prop_assert_eq!(&p[0].source_name, &name);
        prop_assert_eq!(&p[0].source_version, &want);
    }

    #[test]
    fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = os_release(&data);
        let _ = dpkg_packages(&data);
        let _ = rpm_packages(&data);
        let _ = apk_packages(&data);
        let _ = ss_listening(&data);
        let _ = netstat_listening(&data);
        let _ = sshd_effective(&data);
        let _ = sshd_config_files(&data);
        let _ = stat_line(&data);
        let _ = nul_paths(&data, 20);
        let _ = apt_unattended_upgrade(&data);
        let _ = systemctl_any_enabled(&data);
    }

    #[test]
    fn text_parsers_never_panic(s in "\\PC{0,300}") {
        let b = s.as_bytes();
        let _ = os_release(b);
        let _ = dpkg_packages(b);
        let _ = apk_packages(b);
        let _ = ss_listening(b);
        let _ = sshd_config_files(b);
    }

    #[test]
    fn glob_matches_itself(s in "[a-z./-]{0,30}") {
        prop_assert!(glob_match(&s, &s));
        prop_assert_eq!(glob_match("*", &s), !s.contains('/'));
    }
}

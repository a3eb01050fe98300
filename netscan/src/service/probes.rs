//! The probe table: what we send, how long a service may think before answering, when an answer
//! is complete, which probes a port number suggests, and which matchers read an answer.
//!
//! Why: this is the policy of service detection kept free of I/O, so that "which probe first on
//! port 6379" and "is this reply complete" are unit-tested without sockets. The probes and match
//! rules are our own (written from the protocol specifications), not nmap's probe database.

use super::{
    banner, dns, ftp, http, ldap, mail, memcached, mysql, postgres, rdp, redis, smb, ssh, tls,
};
use picket_model::Service;
use std::time::Duration;

/// One thing we can say to a TCP service (or nothing, for server-first greetings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    /// Say nothing; wait for a greeting.
    Banner,
    Http,
    Redis,
    Memcached,
    DnsTcp,
    Postgres,
    Rdp,
    Smb,
    Ldap,
}

/// Probes tried on a port whose hint failed, after HTTP, all at once on separate connections.
pub const PARALLEL_FALLBACK: &[Probe] = &[
    Probe::Redis,
    Probe::Memcached,
    Probe::DnsTcp,
    Probe::Postgres,
    Probe::Rdp,
    Probe::Smb,
    Probe::Ldap,
];

/// DNS message id of the TCP version.bind probe (TCP needs no unpredictability: the connection
/// already ties the answer to us).
const DNS_TCP_ID: u16 = 0x7069;

impl Probe {
    /// The bytes to send; `host` is the Host header / name to present.
    pub fn payload(self, host: &str) -> Vec<u8> {
        match self {
            Probe::Banner => Vec::new(),
            Probe::Http => format!(
                "GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 (compatible; picket)\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            )
            .into_bytes(),
            Probe::Redis => redis::PROBE.to_vec(),
            Probe::Memcached => memcached::PROBE.to_vec(),
            Probe::DnsTcp => dns::version_bind_query_tcp(DNS_TCP_ID),
            Probe::Postgres => postgres::probe(),
            Probe::Rdp => rdp::PROBE.to_vec(),
            Probe::Smb => smb::probe(),
            Probe::Ldap => ldap::probe(),
        }
    }

    /// How long a live service of this kind may take before its first byte, beyond the network
    /// round trip. Only a silent port ever waits this long.
    pub fn think(self) -> Duration {
        Duration::from_millis(match self {
            Probe::Banner => 250,
            Probe::Http => 1500,
            // Longer than Linux's 200 ms minimum TCP retransmission timeout, so one lost
            // segment does not turn a live service into "no answer".
            Probe::Redis | Probe::Memcached => 800,
            Probe::DnsTcp | Probe::Postgres | Probe::Rdp | Probe::Smb | Probe::Ldap => 800,
        })
    }

    /// True when `data` holds a whole answer, so reading can stop before the idle timeout.
    pub fn complete(self, data: &[u8]) -> bool {
        match self {
            Probe::Banner => banner_complete(data),
            Probe::Http => http::response_complete(data),
            Probe::Redis => redis::reply_complete(data),
            Probe::Memcached => data.contains(&b'\n'),
            Probe::DnsTcp => dns::unframe_tcp(data).is_some(),
            Probe::Postgres => postgres::message_complete(data),
            Probe::Rdp => rdp::tpkt_complete(data),
            Probe::Smb => smb::message_complete(data),
            Probe::Ldap => ldap::message_complete(data),
        }
    }
}

/// A greeting is complete at the end of a line that is not a continuation (`220-`), or when a
/// MySQL packet or VNC greeting is whole.
fn banner_complete(data: &[u8]) -> bool {
    if mysql::packet_complete(data) && data.get(4) == Some(&0x0a) {
        return true;
    }
    if data.starts_with(b"RFB ") {
        return data.len() >= 12;
    }
    if data.first() == Some(&0xff) {
        return data.len() >= 3; // telnet negotiation
    }
    if !data.ends_with(b"\n") {
        return false;
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let last = body.rsplit(|&b| b == b'\n').next().unwrap_or(body);
    // Multi-line replies (`220-...`) end with a line whose code is followed by a space.
    !(last.len() >= 4 && last[..3].iter().all(u8::is_ascii_digit) && last[3] == b'-')
}

/// Whether the service on a port is expected to talk first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// Expected to greet (ssh, ftp, smtp, ...): wait for it patiently.
    Expected,
    /// Expected to wait for the client: send the hinted probe at once.
    NotExpected,
    /// Unknown port: wait briefly.
    Unknown,
}

/// What the port number suggests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Try TLS before anything in the clear.
    pub tls_first: bool,
    pub greeting: Greeting,
    /// Probes to try first, in order.
    pub probes: Vec<Probe>,
}

/// The plan for a port.
pub fn plan_for(port: u16) -> Plan {
    use Greeting::*;
    let (tls_first, greeting, probes) = match port {
        21 | 22 | 23 | 25 | 110 | 143 | 587 | 2121 | 2222 | 2525 | 3306 | 5900..=5903 => {
            (false, Expected, vec![])
        }
        465 | 990 | 993 | 995 => (true, Expected, vec![]),
        443 | 4443 | 8443 | 9443 | 10443 => (true, NotExpected, vec![Probe::Http]),
        636 => (true, NotExpected, vec![Probe::Ldap]),
        53 => (false, NotExpected, vec![Probe::DnsTcp]),
        80 | 81 | 591 | 3000 | 5000 | 8000 | 8008 | 8080 | 8081 | 8088 | 8888 | 9000 | 9090 => {
            (false, NotExpected, vec![Probe::Http])
        }
        389 | 3268 => (false, NotExpected, vec![Probe::Ldap]),
        139 | 445 => (false, NotExpected, vec![Probe::Smb]),
        3389 => (false, NotExpected, vec![Probe::Rdp]),
        5432 => (false, NotExpected, vec![Probe::Postgres]),
        6379 | 6380 => (false, NotExpected, vec![Probe::Redis]),
        11211 => (false, NotExpected, vec![Probe::Memcached]),
        _ => (false, Unknown, vec![]),
    };
    Plan {
        tls_first,
        greeting,
        probes,
    }
}

/// Ports where a bare `220` greeting means FTP.
fn ftp_port(port: u16) -> bool {
    matches!(port, 21 | 990 | 2121)
}

/// Ports where a bare `220` greeting means SMTP.
fn smtp_port(port: u16) -> bool {
    matches!(port, 25 | 465 | 587 | 2525)
}

/// Identifies the service from what it sent in answer to `probe` on `port`.
///
/// The probe's own matcher goes first; greetings of server-first protocols are recognised after
/// any probe, because such servers send them whatever we said; a few other answers are so
/// distinctive (an HTTP status line, `VERSION n`) that they are accepted after any probe too.
pub fn identify(probe: Probe, port: u16, data: &[u8]) -> Option<Service> {
    if data.is_empty() {
        return None;
    }
    let own = match probe {
        Probe::Banner => None,
        Probe::Http => http::identify(data),
        Probe::Redis => redis::identify(data),
        Probe::Memcached => memcached::identify(data),
        Probe::DnsTcp => {
            dns::unframe_tcp(data).and_then(|m| dns::identify(m, "domain", Some(DNS_TCP_ID)))
        }
        Probe::Postgres => postgres::identify(data),
        Probe::Rdp => rdp::identify(data),
        Probe::Smb => smb::identify(data),
        Probe::Ldap => ldap::identify(data),
    };
    own.or_else(|| greeting(port, data))
        .or_else(|| http::identify(data))
        .or_else(|| memcached::identify(data))
        .or_else(|| redis::identify(data))
}

/// The probe that would tell more about a service recognised from its answer to another
/// probe: Redis answers an HTTP GET with an error that names no version, `INFO` gives it.
pub fn better_probe(found: &Service, asked: Probe) -> Option<Probe> {
    let own = match found.name.as_str() {
        "redis" => Probe::Redis,
        "memcached" => Probe::Memcached,
        "http" => Probe::Http,
        _ => return None,
    };
    (own != asked && found.version.is_none()).then_some(own)
}

/// Matchers of server-first greetings.
fn greeting(port: u16, data: &[u8]) -> Option<Service> {
    ssh::identify(data)
        .or_else(|| mysql::identify(data))
        .or_else(|| ftp::identify(data, ftp_port(port)))
        .or_else(|| mail::identify_smtp(data, smtp_port(port)))
        .or_else(|| mail::identify_pop3(data))
        .or_else(|| mail::identify_imap(data))
        .or_else(|| banner::identify_vnc(data))
        .or_else(|| banner::identify_telnet(data))
}

/// True when a clear-text answer says "speak TLS to me": a TLS record, or a web server's page
/// complaining about plain HTTP on a TLS port.
pub fn wants_tls(data: &[u8]) -> bool {
    tls::looks_like_tls(data)
        || http::says_tls_required(data)
        // Servers that pass OpenSSL's complaint about a non-TLS first record on to the client,
        // e.g. vsftpd with implicit TLS: `500 OOPS: error:0A00009C:SSL routines::http request`.
        || super::text::contains_ci(data, b"SSL routines")
}

/// The name of a service found inside TLS (`http` in TLS is `https`).
pub fn tls_name(inner: &str) -> String {
    match inner {
        "http" => "https",
        "smtp" => "smtps",
        "imap" => "imaps",
        "pop3" => "pop3s",
        "ftp" => "ftps",
        "ldap" => "ldaps",
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hints() {
        assert_eq!(plan_for(22).greeting, Greeting::Expected);
        assert_eq!(plan_for(6379).probes, vec![Probe::Redis]);
        assert!(plan_for(443).tls_first);
        assert_eq!(plan_for(31337).greeting, Greeting::Unknown);
    }

    #[test]
    fn greeting_after_any_probe() {
        // sshd on port 80 still sends its identification string after our GET.
        let s = identify(
            Probe::Http,
            80,
            b"SSH-2.0-OpenSSH_9.2p1\r\nInvalid SSH identification string.\r\n",
        )
        .expect("ssh");
        assert_eq!(s.name, "ssh");
    }

    #[test]
    fn bare_220_uses_port() {
        assert_eq!(
            identify(Probe::Banner, 21, b"220 hi\r\n").map(|s| s.name),
            Some("ftp".into())
        );
        assert_eq!(
            identify(Probe::Banner, 25, b"220 hi\r\n").map(|s| s.name),
            Some("smtp".into())
        );
        assert_eq!(identify(Probe::Banner, 9999, b"220 hi\r\n"), None);
    }

    #[test]
    fn weak_matches_ask_for_the_own_probe() {
        let s = identify(
            Probe::Http,
            7000,
            b"-ERR wrong number of arguments for 'get' command\r\n",
        )
        .expect("redis");
        assert_eq!(better_probe(&s, Probe::Http), Some(Probe::Redis));
        let s =
            identify(Probe::Redis, 6379, b"-NOAUTH Authentication required.\r\n").expect("redis");
        assert_eq!(better_probe(&s, Probe::Redis), None);
        let s = identify(Probe::Banner, 22, b"SSH-2.0-OpenSSH_9.2p1\r\n").expect("ssh");
        assert_eq!(better_probe(&s, Probe::Banner), None);
    }

    #[test]
    fn banner_completeness() {
        assert!(banner_complete(b"SSH-2.0-x\r\n"));
        assert!(!banner_complete(b"SSH-2.0-x"));
        assert!(!banner_complete(b"220-Welcome\r\n"));
        assert!(banner_complete(b"220-Welcome\r\n220 ready\r\n"));
        assert!(banner_complete(b"RFB 003.008\n"));
    }

    #[test]
    fn tls_signals() {
        assert!(wants_tls(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46]));
        assert!(!wants_tls(b"HTTP/1.1 200 OK\r\n\r\n"));
        assert!(wants_tls(
            b"500 OOPS: error:0A00009C:SSL routines::http request\r\n"
        ));
        assert_eq!(tls_name("http"), "https");
        assert_eq!(tls_name("redis"), "redis");
    }

    #[test]
    fn payloads_are_distinct_and_framed() {
        for p in PARALLEL_FALLBACK {
            let payload = p.payload("example");
            assert!(!payload.is_empty(), "{p:?}");
            assert!(
                identify(*p, 1, &payload).is_none(),
                "our own {p:?} request must not match"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_answers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048), port: u16) {
            for p in [Probe::Banner, Probe::Http, Probe::Redis, Probe::Memcached, Probe::DnsTcp,
                      Probe::Postgres, Probe::Rdp, Probe::Smb, Probe::Ldap] {
                let _ = identify(p, port, &data);
                let _ = p.complete(&data);
            }
            let _ = wants_tls(&data);
        }
    }
}

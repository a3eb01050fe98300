//! A hand-built TLS ClientHello for a chosen legacy version, and a parser of the server's first
//! flight (ServerHello, Certificate, alerts).
//!
//! Why: rustls speaks only TLS 1.2 and 1.3, but we must report whether a server still accepts
//! TLS 1.0 or 1.1. Up to TLS 1.2 the server's first flight is plaintext, so one ClientHello per
//! version and a look at the answer tells what was accepted, and even yields the certificate
//! from servers rustls cannot talk to at all.

/// Record content types.
const HANDSHAKE: u8 = 22;
const ALERT: u8 = 21;

/// Wire versions.
pub const TLS10: u16 = 0x0301;
pub const TLS11: u16 = 0x0302;
pub const TLS12: u16 = 0x0303;
pub const TLS13: u16 = 0x0304;

/// The report's name of a wire version.
pub fn version_name(v: u16) -> Option<&'static str> {
    Some(match v {
        0x0300 => "SSLv3",
        TLS10 => "TLSv1.0",
        TLS11 => "TLSv1.1",
        TLS12 => "TLSv1.2",
        TLS13 => "TLSv1.3",
        _ => return None,
    })
}

/// Cipher suites offered: what TLS 1.0-1.2 servers of the last twenty years enable, so that a
/// refusal means the version, not the suite, was refused.
const SUITES: &[u16] = &[
    0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, // ECDHE AEAD
    0xc009, 0xc013, 0xc00a, 0xc014, // ECDHE CBC-SHA
    0x009e, 0x009f, 0x0033, 0x0039, // DHE
    0x009c, 0x009d, 0x002f, 0x0035, // RSA
    0x000a, // 3DES, for very old servers
    0x00ff, // renegotiation SCSV
];

/// A ClientHello offering exactly `version` (no supported_versions extension, so TLS 1.3
/// servers negotiate at most this version). `sni` is sent when given and DNS-shaped.
pub fn client_hello(version: u16, sni: Option<&str>, random: [u8; 32]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&random);
    body.push(0); // session id
    body.extend_from_slice(&((SUITES.len() * 2) as u16).to_be_bytes());
    for s in SUITES {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null

    let mut ext = Vec::new();
    if let Some(name) = sni.filter(|n| valid_sni(n)) {
        let n = name.as_bytes();
        let mut sn = Vec::new();
        sn.extend_from_slice(&((n.len() + 3) as u16).to_be_bytes());
        sn.push(0); // host_name
        sn.extend_from_slice(&(n.len() as u16).to_be_bytes());
        sn.extend_from_slice(n);
        push_ext(&mut ext, 0x0000, &sn);
    }
    // supported_groups: x25519, secp256r1, secp384r1, secp521r1
    push_ext(
        &mut ext,
        0x000a,
        &[0, 8, 0, 0x1d, 0, 0x17, 0, 0x18, 0, 0x19],
    );
    // ec_point_formats: uncompressed
    push_ext(&mut ext, 0x000b, &[1, 0]);
    // signature_algorithms (ignored below TLS 1.2): ecdsa/rsa-pss/rsa with SHA-2, then SHA-1
    let algs: &[u16] = &[
        0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0201, 0x0203,
    ];
    let mut sa = ((algs.len() * 2) as u16).to_be_bytes().to_vec();
    for a in algs {
        sa.extend_from_slice(&a.to_be_bytes());
    }
    push_ext(&mut ext, 0x000d, &sa);
    // renegotiation_info (empty)
    push_ext(&mut ext, 0xff01, &[0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);

    let mut hs = vec![1]; // client_hello
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    // The record layer version stays at TLS 1.0 for compatibility, as browsers do.
    let mut rec = vec![HANDSHAKE, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

fn push_ext(out: &mut Vec<u8>, typ: u16, data: &[u8]) {
    out.extend_from_slice(&typ.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

fn valid_sni(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.parse::<std::net::IpAddr>().is_err()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// What the server's first flight said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerFlight {
    /// The version the ServerHello selected (honouring supported_versions).
    pub version: Option<u16>,
    pub cipher_suite: Option<u16>,
    /// An alert the server sent: (level, description).
    pub alert: Option<(u8, u8)>,
    /// DER certificates of the Certificate message (TLS <= 1.2), leaf first.
    pub certificates: Vec<Vec<u8>>,
    /// True once nothing more is expected: ServerHelloDone, an alert, or a TLS 1.3 ServerHello.
    pub complete: bool,
}

/// Parse failures; a well-formed but unfinished flight is not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsParseError {
    /// The first byte is not a TLS record of type handshake or alert.
    NotTls,
    /// A record or handshake message is malformed.
    Malformed(&'static str),
}

/// Most certificates we keep from a chain.
const MAX_CERTS: usize = 10;
/// Largest handshake message we reassemble.
const MAX_HANDSHAKE: usize = 128 * 1024;

/// True when `data` starts like a TLS record (handshake or alert, SSLv3..TLS 1.3 versions).
pub fn looks_like_tls(data: &[u8]) -> bool {
    matches!(data, [t, 3, v, ..] if (*t == HANDSHAKE || *t == ALERT) && *v <= 4)
}

/// Parses the records in `data`. Returns `Err(NotTls)` when the bytes are not TLS at all.
pub fn parse_server_flight(data: &[u8]) -> Result<ServerFlight, TlsParseError> {
    if data.len() >= 3 && !looks_like_tls(data) {
        return Err(TlsParseError::NotTls);
    }
    let mut flight = ServerFlight::default();
    let mut hs_buf: Vec<u8> = Vec::new();
    let mut pos = 0usize;
    // Every iteration consumes at least the 5-byte header, so this is bounded by data.len().
    while let Some(h) = data.get(pos..pos + 5) {
        let typ = h[0];
        let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        if h[1] != 3 || len > 16384 + 2048 {
            return Err(TlsParseError::Malformed("record header"));
        }
        let Some(frag) = data.get(pos + 5..pos + 5 + len) else {
            break; // record not complete yet
        };
        pos += 5 + len;
        match typ {
            ALERT => {
                if let [level, desc, ..] = frag {
                    flight.alert = Some((*level, *desc));
                }
                flight.complete = true;
                return Ok(flight);
            }
            HANDSHAKE => {
                if hs_buf.len() + frag.len() > MAX_HANDSHAKE {
                    return Err(TlsParseError::Malformed("handshake too large"));
                }
                hs_buf.extend_from_slice(frag);
                if parse_handshakes(&mut hs_buf, &mut flight)? {
                    flight.complete = true;
                    return Ok(flight);
                }
            }
            // ChangeCipherSpec (TLS 1.3 middlebox compatibility) or application data: after a
            // ServerHello the rest is encrypted and we have what we need.
            20 | 23 => {
                if flight.version.is_some() {
                    flight.complete = true;
                    return Ok(flight);
                }
                return Err(TlsParseError::Malformed(
                    "unexpected record before ServerHello",
                ));
            }
            _ => return Err(TlsParseError::Malformed("record type")),
        }
    }
    Ok(flight)
}

/// Consumes whole handshake messages from `buf`; returns true when the flight is over.
fn parse_handshakes(buf: &mut Vec<u8>, flight: &mut ServerFlight) -> Result<bool, TlsParseError> {
    let mut consumed = 0;
    let mut done = false;
    while let Some(h) = buf.get(consumed..consumed + 4) {
        let typ = h[0];
        let len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
        if len > MAX_HANDSHAKE {
            return Err(TlsParseError::Malformed("handshake length"));
        }
        let Some(body) = buf.get(consumed + 4..consumed + 4 + len) else {
            break;
        };
        match typ {
            2 => {
                let (version, suite) = parse_server_hello(body)?;
                flight.version = Some(version);
                flight.cipher_suite = Some(suite);
                if version == TLS13 {
                    done = true; // the rest is encrypted
                }
            }
            11 => flight.certificates = parse_certificate(body)?,
            14 => done = true, // ServerHelloDone
            _ => {}
        }
        consumed += 4 + len;
        if done {
            break;
        }
    }
    buf.drain(..consumed);
    Ok(done)
}

fn parse_server_hello(b: &[u8]) -> Result<(u16, u16), TlsParseError> {
    let bad = TlsParseError::Malformed("ServerHello");
    let legacy = u16::from_be_bytes([
        *b.first().ok_or(bad.clone())?,
        *b.get(1).ok_or(bad.clone())?,
    ]);
    let sid_len = usize::from(*b.get(34).ok_or(bad.clone())?);
    let p = 35 + sid_len;
    let suite = b.get(p..p + 2).ok_or(bad.clone())?;
    let suite = u16::from_be_bytes([suite[0], suite[1]]);
    let mut version = legacy;
    // Extensions after compression method: look for supported_versions (43).
    if let Some(el) = b.get(p + 3..p + 5) {
        let ext_len = usize::from(u16::from_be_bytes([el[0], el[1]]));
        let exts = b.get(p + 5..p + 5 + ext_len).ok_or(bad.clone())?;
        let mut i = 0;
        while let Some(eh) = exts.get(i..i + 4) {
            let typ = u16::from_be_bytes([eh[0], eh[1]]);
            let len = usize::from(u16::from_be_bytes([eh[2], eh[3]]));
            let data = exts.get(i + 4..i + 4 + len).ok_or(bad.clone())?;
            if typ == 43 {
                if let [a, b2] = data {
                    version = u16::from_be_bytes([*a, *b2]);
                }
            }
            i += 4 + len;
        }
    }
    if !(0x0300..=0x0304).contains(&version) {
        return Err(bad);
    }
    Ok((version, suite))
}

fn parse_certificate(b: &[u8]) -> Result<Vec<Vec<u8>>, TlsParseError> {
    let bad = TlsParseError::Malformed("Certificate");
    let h = b.get(..3).ok_or(bad.clone())?;
    let total = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
    let list = b.get(3..3 + total).ok_or(bad.clone())?;
    let mut certs = Vec::new();
    let mut i = 0;
    while let Some(l) = list.get(i..i + 3) {
        let len = usize::from(l[0]) << 16 | usize::from(l[1]) << 8 | usize::from(l[2]);
        let der = list.get(i + 3..i + 3 + len).ok_or(bad.clone())?;
        if certs.len() < MAX_CERTS {
            certs.push(der.to_vec());
        }
        i += 3 + len;
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(typ: u8, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![typ, 3, 3];
        r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        r.extend_from_slice(payload);
        r
    }

    fn hs(typ: u8, body: &[u8]) -> Vec<u8> {
        let mut h = vec![typ];
        h.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        h.extend_from_slice(body);
        h
    }

    fn server_hello(version: u16, supported: Option<u16>) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&[0x11; 32]);
        b.push(0);
        b.extend_from_slice(&[0xc0, 0x2f, 0]);
        if let Some(v) = supported {
            let mut e = vec![0, 43, 0, 2];
            e.extend_from_slice(&v.to_be_bytes());
            b.extend_from_slice(&(e.len() as u16).to_be_bytes());
            b.extend_from_slice(&e);
        }
        hs(2, &b)
    }

    #[test]
    fn client_hello_shape() {
        let ch = client_hello(TLS10, Some("example.org"), [7; 32]);
        assert!(looks_like_tls(&ch));
        assert_eq!(
            usize::from(u16::from_be_bytes([ch[3], ch[4]])),
            ch.len() - 5
        );
        assert_eq!(&ch[9..11], &[3, 1]);
        assert!(ch.windows(11).any(|w| w == b"example.org"));
        let no_sni = client_hello(TLS12, Some("10.0.0.1"), [7; 32]);
        assert!(!no_sni.windows(8).any(|w| w == b"10.0.0.1"));
    }

    #[test]
    fn full_tls12_flight_fragmented() {
        let cert_body = {
            let der = vec![0x30, 0x03, 1, 2, 3];
            let mut entry = (der.len() as u32).to_be_bytes()[1..].to_vec();
            entry.extend_from_slice(&der);
            let mut b = (entry.len() as u32).to_be_bytes()[1..].to_vec();
            b.extend_from_slice(&entry);
            b
        };
        let mut hsbytes = server_hello(TLS12, None);
        hsbytes.extend(hs(11, &cert_body));
        hsbytes.extend(hs(14, &[]));
        // Split the handshake stream over two records, mid-message.
        let (a, b) = hsbytes.split_at(20);
        let mut data = record(HANDSHAKE, a);
        data.extend(record(HANDSHAKE, b));
        let f = parse_server_flight(&data).expect("parse");
        assert_eq!(f.version, Some(TLS12));
        assert_eq!(f.cipher_suite, Some(0xc02f));
        assert_eq!(f.certificates, vec![vec![0x30, 0x03, 1, 2, 3]]);
        assert!(f.complete);
        // Every truncation parses without panicking and is never complete early.
        for cut in 0..data.len() {
            if let Ok(f) = parse_server_flight(&data[..cut]) {
                assert!(!f.complete, "complete at {cut}");
            }
        }
    }

    /// What `openssl s_server` (OpenSSL 3.0, certificate testdata/selfsigned-ec.der) sent to a
    /// client capped at TLS 1.2: ServerHello, Certificate, ServerKeyExchange, ServerHelloDone.
    const OPENSSL_TLS12: &[u8] = include_bytes!("testdata/openssl-tls12-flight.bin");
    /// The same server to a TLS 1.3 client: ServerHello, then encrypted records.
    const OPENSSL_TLS13: &[u8] = include_bytes!("testdata/openssl-tls13-flight.bin");

    #[test]
    fn captured_openssl_flights() {
        let f = parse_server_flight(OPENSSL_TLS12).expect("parse");
        assert_eq!(f.version, Some(TLS12));
        assert!(f.complete);
        assert_eq!(
            f.certificates,
            vec![include_bytes!("testdata/selfsigned-ec.der").to_vec()]
        );
        let f = parse_server_flight(OPENSSL_TLS13).expect("parse");
        assert_eq!(f.version, Some(TLS13));
        assert!(f.complete);
        assert!(
            f.certificates.is_empty(),
            "TLS 1.3 certificates are encrypted"
        );
        for cut in 0..OPENSSL_TLS12.len() {
            let _ = parse_server_flight(&OPENSSL_TLS12[..cut]);
        }
    }

    #[test]
    fn protocol_version_alert() {
        let data = record(ALERT, &[2, 70]);
        let f = parse_server_flight(&data).expect("parse");
        assert_eq!(f.alert, Some((2, 70)));
        assert_eq!(f.version, None);
        assert!(f.complete);
    }

    #[test]
    fn tls13_supported_versions() {
        let data = record(HANDSHAKE, &server_hello(TLS12, Some(TLS13)));
        let f = parse_server_flight(&data).expect("parse");
        assert_eq!(f.version, Some(TLS13));
        assert!(f.complete);
    }

    #[test]
    fn not_tls() {
        assert_eq!(
            parse_server_flight(b"HTTP/1.1 400"),
            Err(TlsParseError::NotTls)
        );
        assert_eq!(
            parse_server_flight(b"SSH-2.0-x"),
            Err(TlsParseError::NotTls)
        );
        assert!(parse_server_flight(&[22, 3, 3, 0xff, 0xff]).is_err());
        assert_eq!(version_name(TLS11), Some("TLSv1.1"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_server_flight(&data);
            let mut d = vec![22, 3, 3];
            d.extend_from_slice(&data);
            let _ = parse_server_flight(&d);
        }
        #[test]
        fn arbitrary_handshake_bodies_never_panic(typ in 0u8..20, body in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_server_flight(&record(HANDSHAKE, &hs(typ, &body)));
        }
    }
}

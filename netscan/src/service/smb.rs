//! SMB: answers to a multi-dialect SMB1 NEGOTIATE that also offers SMB 2.x, and NetBIOS session
//! service replies (port 139).
//!
//! Why: every SMB server, from Samba with SMB1 disabled to current Windows, answers this request,
//! either with an SMB1 negotiate response or by switching to SMB2 (MS-SMB2 3.3.5.3.1).

use super::{named, Service};

/// NetBIOS-framed SMB1 NEGOTIATE offering `NT LM 0.12`, `SMB 2.002` and `SMB 2.???`.
pub fn probe() -> Vec<u8> {
    let dialects: &[&[u8]] = &[b"NT LM 0.12", b"SMB 2.002", b"SMB 2.???"];
    let mut body = Vec::new();
    for d in dialects {
        body.push(0x02);
        body.extend_from_slice(d);
        body.push(0);
    }
    let mut smb = vec![0xff, b'S', b'M', b'B', 0x72]; // SMB_COM_NEGOTIATE
    smb.extend_from_slice(&[0, 0, 0, 0]); // status
    smb.push(0x18); // flags: canonical paths, case-insensitive
    smb.extend_from_slice(&[0x01, 0xc8]); // flags2: unicode, NT status, long names, extended security
    smb.extend_from_slice(&[0; 12]); // pid high, signature, reserved
    smb.extend_from_slice(&[0xff, 0xff]); // tid
    smb.extend_from_slice(&[0x2f, 0x4b]); // pid
    smb.extend_from_slice(&[0, 0]); // uid
    smb.extend_from_slice(&[0, 0]); // mid
    smb.push(0); // word count
    smb.extend_from_slice(&(body.len() as u16).to_le_bytes());
    smb.extend_from_slice(&body);
    let mut msg = vec![0x00, 0x00];
    msg.extend_from_slice(&(smb.len() as u16).to_be_bytes());
    msg.extend_from_slice(&smb);
    msg
}

/// True when the whole NetBIOS session message is in `data`.
pub fn message_complete(data: &[u8]) -> bool {
    match data.get(..4) {
        Some(h) => {
            let len = usize::from(h[1] & 1) << 16 | usize::from(u16::from_be_bytes([h[2], h[3]]));
            data.len() >= 4 + len
        }
        None => false,
    }
}

/// Identifies SMB (`microsoft-ds`) or a NetBIOS session service (`netbios-ssn`).
pub fn identify(data: &[u8]) -> Option<Service> {
    let h = data.get(..4)?;
    match h[0] {
        0x00 => {
            let smb = data.get(4..)?;
            match smb.get(..4)? {
                [0xfe, b'S', b'M', b'B'] => {
                    // Flags (offset 16) must carry SMB2_FLAGS_SERVER_TO_REDIR: an answer.
                    if smb.get(16)? & 0x01 == 0 {
                        return None;
                    }
                    let mut s = named("microsoft-ds");
                    // SMB2 header is 64 bytes; NEGOTIATE response body: size(2) mode(2) dialect(2).
                    if let Some(d) = smb.get(68..70) {
                        s.extra = dialect_name(u16::from_le_bytes([d[0], d[1]]));
                    }
                    Some(s)
                }
                [0xff, b'S', b'M', b'B'] => {
                    // Flags (offset 9) must carry SMB_FLAGS_REPLY.
                    if smb.get(9)? & 0x80 == 0 {
                        return None;
                    }
                    let mut s = named("microsoft-ds");
                    s.extra = Some("SMBv1".into());
                    Some(s)
                }
                _ => None,
            }
        }
        // Positive/negative session responses and retarget: a NetBIOS session service that wants
        // a session request first (port 139).
        0x82..=0x84 if h[1] == 0 => Some(named("netbios-ssn")),
        _ => None,
    }
}

fn dialect_name(d: u16) -> Option<String> {
    Some(
        match d {
            0x0202 => "SMB 2.0.2",
            0x0210 => "SMB 2.1",
            0x02ff => "SMB 2.x+",
            0x0300 => "SMB 3.0",
            0x0302 => "SMB 3.0.2",
            0x0311 => "SMB 3.1.1",
            _ => return None,
        }
        .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn probe_framing() {
        let p = probe();
        assert!(message_complete(&p));
        assert_eq!(&p[4..8], &[0xff, b'S', b'M', b'B']);
        assert!(identify(&p).is_none(), "a request is not an answer");
    }

    #[test]
    fn smb2_wildcard_answer() {
        let mut smb2 = vec![0xfe, b'S', b'M', b'B', 64, 0];
        smb2.resize(64, 0);
        smb2[16] = 0x01;
        smb2.extend_from_slice(&[65, 0, 1, 0, 0xff, 0x02]);
        smb2.resize(64 + 65, 0);
        let mut data = vec![0, 0];
        data.extend_from_slice(&(smb2.len() as u16).to_be_bytes());
        data.extend_from_slice(&smb2);
        assert!(message_complete(&data));
        let s = identify(&data).expect("smb");
        assert_eq!(s.name, "microsoft-ds");
        assert_eq!(s.extra.as_deref(), Some("SMB 2.x+"));
    }

    #[test]
    fn netbios_negative() {
        let s = identify(&[0x83, 0, 0, 1, 0x80]).expect("nbss");
        assert_eq!(s.name, "netbios-ssn");
    }

    #[test]
    fn hostile() {
        assert!(identify(&[0, 0, 0, 4, 1, 2, 3, 4]).is_none());
        assert!(identify(b"SSH-2.0").is_none());
        assert!(!message_complete(&[0, 1, 0xff, 0xff]));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = identify(&data);
            let _ = message_complete(&data);
        }
    }
}

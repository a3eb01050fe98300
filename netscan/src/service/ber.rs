//! A minimal BER reader and writer, enough for SNMP and LDAP probes and their answers.
//!
//! Why: both protocols wrap everything in ASN.1 BER; we need to build two fixed requests and walk
//! untrusted answers without a general ASN.1 library. Only definite lengths are accepted, and
//! every length is checked against the bytes actually present.

/// One TLV: its tag byte and its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
}

/// Reads one TLV from the front of `data`, returning it and the rest.
pub fn read_tlv(data: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *data.first()?;
    // Multi-byte tags never occur in the messages we parse.
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = *data.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        // 0x80 is the indefinite form; more than 4 length bytes is never legitimate here.
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = data.get(2..2 + n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let value = data.get(header..end)?;
    Some((Tlv { tag, value }, data.get(end..)?))
}

/// How many bytes the first TLV of `data` needs in total, once its header is readable.
pub fn tlv_total_len(data: &[u8]) -> Option<usize> {
    let first = *data.get(1)?;
    if first < 0x80 {
        return Some(2 + usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let bytes = data.get(2..2 + n)?;
    let len = bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Some(2 + n + len)
}

/// Iterates the TLVs in a constructed value, stopping at the first malformed one.
pub fn children(mut data: &[u8]) -> impl Iterator<Item = Tlv<'_>> {
    std::iter::from_fn(move || {
        let (t, rest) = read_tlv(data)?;
        data = rest;
        Some(t)
    })
}

/// A non-negative INTEGER of up to 8 bytes.
pub fn read_uint(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 9 || (v.len() == 9 && v[0] != 0) {
        return None;
    }
    Some(v.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Dotted text of an OBJECT IDENTIFIER's content octets.
pub fn oid_to_string(v: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    let mut in_arc = false;
    for &b in v {
        if acc > (u64::MAX >> 7) {
            return None;
        }
        acc = (acc << 7) | u64::from(b & 0x7f);
        in_arc = b & 0x80 != 0;
        if !in_arc {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
            if arcs.len() > 64 {
                return None;
            }
        }
    }
    if in_arc || arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// Encodes a TLV (definite length).
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(value);
    out
}

/// Encodes an OBJECT IDENTIFIER from its arcs (the first two combined as BER requires).
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut push = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        body.extend_from_slice(&tmp);
    };
    if let [a, b, rest @ ..] = arcs {
        push(a * 40 + b);
        for &r in rest {
            push(r);
        }
    }
    tlv(0x06, &body)
}

/// Encodes a small non-negative INTEGER.
pub fn int(v: u32) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|&&b| b == 0).count();
    let mut body = bytes[skip..].to_vec();
    if body.first().is_some_and(|b| b & 0x80 != 0) {
        body.insert(0, 0);
    }
    tlv(0x02, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips() {
        let o = oid(&[1, 3, 6, 1, 4, 1, 8072, 3, 2, 10]);
        let (t, rest) = read_tlv(&o).expect("tlv");
        assert!(rest.is_empty());
        assert_eq!(t.tag, 0x06);
        assert_eq!(
            oid_to_string(t.value).as_deref(),
            Some("1.3.6.1.4.1.8072.3.2.10")
        );
        for v in [0u32, 1, 127, 128, 255, 256, 0x7fff_ffff, u32::MAX] {
            let e = int(v);
            let (t, _) = read_tlv(&e).expect("int");
            assert_eq!(read_uint(t.value), Some(u64::from(v)));
        }
        let long = tlv(0x04, &[7u8; 300]);
        assert_eq!(tlv_total_len(&long), Some(long.len()));
        assert_eq!(read_tlv(&long).map(|(t, _)| t.value.len()), Some(300));
    }

    #[test]
    fn rejects_bad_lengths() {
        assert!(read_tlv(&[0x30, 0x05, 1, 2]).is_none());
        assert!(read_tlv(&[0x30, 0x80, 0, 0]).is_none());
        assert!(read_tlv(&[0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(oid_to_string(&[0x81]).is_none());
        assert!(oid_to_string(&[0xff; 20]).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_tlv(&data);
            let _ = tlv_total_len(&data);
            let _ = children(&data).count();
            let _ = oid_to_string(&data);
            let _ = read_uint(&data);
        }

        #[test]
        fn oid_round_trip(arcs in proptest::collection::vec(0u64..100_000, 0..20)) {
            let mut full = vec![1u64, 3];
            full.extend(arcs);
            let enc = oid(&full);
            let (t, _) = read_tlv(&enc).expect("tlv");
            let text = full.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(".");
            prop_assert_eq!(oid_to_string(t.value), Some(text));
        }
    }
}

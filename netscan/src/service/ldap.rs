//! LDAP: an anonymous root-DSE search and its answer (RFC 4511 §4.5, RFC 4512 §5.1).
//!
//! Why: directory servers answer a base-scope search of the empty DN without binding, and some
//! name themselves there (`vendorName`/`vendorVersion`, or OpenLDAP's `OpenLDAProotDSE` class).

use super::ber::{self, children, read_tlv};
use super::text::{clean_bytes, split_product_version};
use super::{named, with_product, Service};

/// A searchRequest (message id 1) for the root DSE's identifying attributes.
pub fn probe() -> Vec<u8> {
    let mut req = Vec::new();
    req.extend(ber::tlv(0x04, b"")); // baseObject ""
    req.extend(ber::tlv(0x0a, &[0])); // scope baseObject
    req.extend(ber::tlv(0x0a, &[0])); // derefAliases never
    req.extend(ber::int(0)); // sizeLimit
    req.extend(ber::int(0)); // timeLimit
    req.extend(ber::tlv(0x01, &[0])); // typesOnly FALSE
    req.extend(ber::tlv(0x87, b"objectClass")); // filter: present
    let mut attrs = Vec::new();
    for a in [
        "objectClass",
        "vendorName",
        "vendorVersion",
        "supportedLDAPVersion",
    ] {
        attrs.extend(ber::tlv(0x04, a.as_bytes()));
    }
    req.extend(ber::tlv(0x30, &attrs));
    let mut msg = ber::int(1);
    msg.extend(ber::tlv(0x63, &req));
    ber::tlv(0x30, &msg)
}

/// True when the first LDAPMessage is complete.
pub fn message_complete(data: &[u8]) -> bool {
    ber::tlv_total_len(data).is_none_or(|n| data.len() >= n)
}

/// Identifies an LDAP server from its first LDAPMessage.
pub fn identify(data: &[u8]) -> Option<Service> {
    let (msg, _) = read_tlv(data)?;
    if msg.tag != 0x30 {
        return None;
    }
    let mut parts = children(msg.value);
    let id = parts.next()?;
    if id.tag != 0x02 || ber::read_uint(id.value)? > 0x7fff_ffff {
        return None;
    }
    let op = parts.next()?;
    // bindResponse, searchResEntry, searchResDone, extendedResponse (notice of disconnection).
    if !matches!(op.tag, 0x61 | 0x64 | 0x65 | 0x78) {
        return None;
    }
    let s = named("ldap");
    if op.tag != 0x64 {
        return Some(s);
    }
    let mut vendor = None;
    let mut vendor_version = None;
    let mut openldap = false;
    let mut entry = children(op.value);
    let _dn = entry.next()?;
    if let Some(attrs) = entry.next() {
        for attr in children(attrs.value).take(64) {
            let mut a = children(attr.value);
            let (Some(name), Some(vals)) = (a.next(), a.next()) else {
                continue;
            };
            let first_val = children(vals.value)
                .next()
                .and_then(|v| clean_bytes(v.value));
            if name.value.eq_ignore_ascii_case(b"vendorName") {
                vendor = first_val;
            } else if name.value.eq_ignore_ascii_case(b"vendorVersion") {
                vendor_version = first_val;
            } else if name.value.eq_ignore_ascii_case(b"objectClass") {
                openldap |= children(vals.value)
                    .take(32)
                    .any(|v| v.value.eq_ignore_ascii_case(b"OpenLDAProotDSE"));
            }
        }
    }
    if openldap {
        return Some(with_product(s, "OpenLDAP", None));
    }
    if let Some(vv) = vendor_version {
        // e.g. "389-Directory/2.3.1 B2023.080.0000"
        let token = vv.split(' ').next().unwrap_or_default();
        let (name, version) = split_product_version(token);
        let product = if name.starts_with("389-Directory") {
            "389 Directory Server".to_string()
        } else {
            name
        };
        let mut s = with_product(s, &product, version.as_deref());
        s.extra = vendor;
        return Some(s);
    }
    if let Some(v) = vendor {
        let mut s = s;
        s.extra = Some(v);
        return Some(s);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(attrs: &[(&str, &[&str])]) -> Vec<u8> {
        let mut list = Vec::new();
        for (name, vals) in attrs {
            let mut set = Vec::new();
            for v in *vals {
                set.extend(ber::tlv(0x04, v.as_bytes()));
            }
            let mut a = ber::tlv(0x04, name.as_bytes());
            a.extend(ber::tlv(0x31, &set));
            list.extend(ber::tlv(0x30, &a));
        }
        let mut e = ber::tlv(0x04, b"");
        e.extend(ber::tlv(0x30, &list));
        let mut msg = ber::int(1);
        msg.extend(ber::tlv(0x64, &e));
        ber::tlv(0x30, &msg)
    }

    #[test]
    fn probe_parses_as_ber() {
        let p = probe();
        assert!(message_complete(&p));
        let (t, rest) = read_tlv(&p).expect("tlv");
        assert_eq!(t.tag, 0x30);
        assert!(rest.is_empty());
    }

    #[test]
    fn openldap_root_dse() {
        let data = entry(&[
            ("objectClass", &["top", "OpenLDAProotDSE"]),
            ("supportedLDAPVersion", &["3"]),
        ]);
        assert!(message_complete(&data));
        let s = identify(&data).expect("ldap");
        assert_eq!(s.name, "ldap");
        assert_eq!(s.product.as_deref(), Some("OpenLDAP"));
    }

    #[test]
    fn vendor_version() {
        let data = entry(&[
            ("vendorName", &["389 Project"]),
            ("vendorVersion", &["389-Directory/2.3.1 B2023.080.0000"]),
        ]);
        let s = identify(&data).expect("ldap");
        assert_eq!(s.product.as_deref(), Some("389 Directory Server"));
        assert_eq!(s.version.as_deref(), Some("2.3.1"));
    }

    #[test]
    fn search_done_only() {
        // searchResDone: operationsError, no DN, no message.
        let mut done = ber::tlv(0x0a, &[1]);
        done.extend(ber::tlv(0x04, b""));
        done.extend(ber::tlv(0x04, b""));
        let mut msg = ber::int(1);
        msg.extend(ber::tlv(0x65, &done));
        let s = identify(&ber::tlv(0x30, &msg)).expect("ldap");
        assert_eq!(s.product, None);
    }

    #[test]
    fn hostile() {
        assert!(identify(&probe()).is_none(), "a request is not an answer");
        assert!(identify(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(identify(b"\x30\x03\x02\x01\x01").is_none());
        assert!(!message_complete(&[0x30, 0x84, 0, 1, 0, 0]));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = identify(&data);
            let _ = message_complete(&data);
        }
    }
}

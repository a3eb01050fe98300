//! SNMP v2c: a GetRequest for `sysDescr.0`, `sysObjectID.0` and Net-SNMP's `versionTag.0`, and
//! the GetResponse that answers it.
//!
//! Why: SNMP agents answer only a well-formed request with a community they accept; `public` is
//! the common default, and `sysObjectID` names the agent's vendor (enterprise 8072 is Net-SNMP).

use super::ber::{self, children, oid_to_string, read_tlv};
use super::text::clean_bytes;
use super::{named, with_product, Service};

const SYS_DESCR: &[u64] = &[1, 3, 6, 1, 2, 1, 1, 1, 0];
const SYS_OBJECT_ID: &[u64] = &[1, 3, 6, 1, 2, 1, 1, 2, 0];
/// UCD-SNMP-MIB::versionTag.0, answered by Net-SNMP agents whose view includes it.
const UCD_VERSION: &[u64] = &[1, 3, 6, 1, 4, 1, 2021, 100, 2, 0];

/// GetRequest, SNMP v2c, community `community`.
pub fn probe(community: &str, request_id: u32) -> Vec<u8> {
    let mut vbs = Vec::new();
    for o in [SYS_DESCR, SYS_OBJECT_ID, UCD_VERSION] {
        let mut vb = ber::oid(o);
        vb.extend_from_slice(&[0x05, 0x00]);
        vbs.extend(ber::tlv(0x30, &vb));
    }
    let mut pdu = ber::int(request_id);
    pdu.extend(ber::int(0));
    pdu.extend(ber::int(0));
    pdu.extend(ber::tlv(0x30, &vbs));
    let mut msg = ber::int(1); // version: 1 means v2c
    msg.extend(ber::tlv(0x04, community.as_bytes()));
    msg.extend(ber::tlv(0xa0, &pdu));
    ber::tlv(0x30, &msg)
}

/// The values of a GetResponse we care about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnmpAnswer {
    pub request_id: u64,
    pub sys_descr: Option<String>,
    pub sys_object_id: Option<String>,
    pub version_tag: Option<String>,
}

/// Parses a GetResponse (v1 or v2c).
pub fn parse_response(data: &[u8]) -> Option<SnmpAnswer> {
    let (msg, _) = read_tlv(data)?;
    if msg.tag != 0x30 {
        return None;
    }
    let mut parts = children(msg.value);
    let version = parts.next()?;
    if version.tag != 0x02 || ber::read_uint(version.value)? > 3 {
        return None;
    }
    let community = parts.next()?;
    if community.tag != 0x04 {
        return None;
    }
    let pdu = parts.next()?;
    if pdu.tag != 0xa2 {
        return None;
    }
    let mut p = children(pdu.value);
    let rid = p.next()?;
    if rid.tag != 0x02 {
        return None;
    }
    let mut answer = SnmpAnswer {
        request_id: ber::read_uint(rid.value)?,
        ..Default::default()
    };
    let _status = p.next()?;
    let _index = p.next()?;
    let vbs = p.next()?;
    if vbs.tag != 0x30 {
        return None;
    }
    let descr = dotted(SYS_DESCR);
    let objid = dotted(SYS_OBJECT_ID);
    let vtag = dotted(UCD_VERSION);
    for vb in children(vbs.value).take(16) {
        let mut f = children(vb.value);
        let (Some(name), Some(value)) = (f.next(), f.next()) else {
            continue;
        };
        let Some(name) = (name.tag == 0x06)
            .then(|| oid_to_string(name.value))
            .flatten()
        else {
            continue;
        };
        if name == descr && value.tag == 0x04 {
            answer.sys_descr = clean_bytes(value.value);
        } else if name == objid && value.tag == 0x06 {
            answer.sys_object_id = oid_to_string(value.value);
        } else if name == vtag && value.tag == 0x04 {
            answer.version_tag = clean_bytes(value.value);
        }
    }
    Some(answer)
}

fn dotted(arcs: &[u64]) -> String {
    arcs.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// Identifies the SNMP agent from a GetResponse.
pub fn identify(data: &[u8]) -> Option<Service> {
    let a = parse_response(data)?;
    let s = named("snmp");
    let enterprise = a
        .sys_object_id
        .as_deref()
        .and_then(|o| o.strip_prefix("1.3.6.1.4.1."))
        .and_then(|rest| rest.split('.').next())
        .and_then(|e| e.parse::<u32>().ok());
    let mut s = match enterprise {
        Some(8072) | Some(2021) => with_product(s, "Net-SNMP", a.version_tag.as_deref()),
        Some(311) => with_product(s, "Microsoft Windows SNMP", None),
        Some(9) => with_product(s, "Cisco SNMP", None),
        _ => s,
    };
    s.extra = a.sys_descr;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A GetResponse as Net-SNMP 5.9 sends it for [`probe`], built field by field.
    fn response(descr: &str, objid: &[u64], version: Option<&str>) -> Vec<u8> {
        let mut vbs = Vec::new();
        let mut vb = ber::oid(SYS_DESCR);
        vb.extend(ber::tlv(0x04, descr.as_bytes()));
        vbs.extend(ber::tlv(0x30, &vb));
        let mut vb = ber::oid(SYS_OBJECT_ID);
        vb.extend(ber::oid(objid));
        vbs.extend(ber::tlv(0x30, &vb));
        let mut vb = ber::oid(UCD_VERSION);
        match version {
            Some(v) => vb.extend(ber::tlv(0x04, v.as_bytes())),
            None => vb.extend_from_slice(&[0x80, 0x00]), // noSuchObject
        }
        vbs.extend(ber::tlv(0x30, &vb));
        let mut pdu = ber::int(4242);
        pdu.extend(ber::int(0));
        pdu.extend(ber::int(0));
        pdu.extend(ber::tlv(0x30, &vbs));
        let mut msg = ber::int(1);
        msg.extend(ber::tlv(0x04, b"public"));
        msg.extend(ber::tlv(0xa2, &pdu));
        ber::tlv(0x30, &msg)
    }

    #[test]
    fn probe_is_get_request() {
        let p = probe("public", 7);
        let (t, rest) = read_tlv(&p).expect("tlv");
        assert_eq!(t.tag, 0x30);
        assert!(rest.is_empty());
        assert!(parse_response(&p).is_none(), "a request is not a response");
    }

    #[test]
    fn net_snmp() {
        let data = response(
            "Linux box 6.1.0-25-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.106-3 x86_64",
            &[1, 3, 6, 1, 4, 1, 8072, 3, 2, 10],
            Some("5.9.3"),
        );
        let a = parse_response(&data).expect("answer");
        assert_eq!(a.request_id, 4242);
        let s = identify(&data).expect("snmp");
        assert_eq!(s.name, "snmp");
        assert_eq!(s.product.as_deref(), Some("Net-SNMP"));
        assert_eq!(s.version.as_deref(), Some("5.9.3"));
        assert!(s
            .extra
            .as_deref()
            .is_some_and(|e| e.starts_with("Linux box")));
        assert_eq!(
            s.cpe,
            vec!["cpe:2.3:a:net-snmp:net-snmp:5.9.3:*:*:*:*:*:*:*".to_string()]
        );
    }

    #[test]
    fn no_such_object_version() {
        let data = response("x", &[1, 3, 6, 1, 4, 1, 8072, 3, 2, 10], None);
        let s = identify(&data).expect("snmp");
        assert_eq!(s.product.as_deref(), Some("Net-SNMP"));
        assert_eq!(s.version, None);
    }

    #[test]
    fn hostile() {
        let data = response("x", &[1, 3, 6, 1, 4, 1, 9, 1, 1], None);
        for cut in 0..data.len() {
            let _ = identify(&data[..cut]);
        }
        assert!(identify(&[0x30, 0x82, 0xff, 0xff]).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = identify(&data);
        }
        #[test]
        fn arbitrary_descr_round_trips(d in "[ -~]{0,60}") {
            let s = identify(&response(&d, &[1, 3, 6, 1, 4, 1, 8072, 3], None)).expect("snmp");
            prop_assert_eq!(s.extra, crate::service::text::clean_field(&d));
        }
    }
}

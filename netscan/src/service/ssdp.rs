//! SSDP (UPnP discovery): a unicast M-SEARCH and the HTTP-formatted answer.
//!
//! Why: UPnP devices answer M-SEARCH with a `SERVER: OS/ver UPnP/1.x product/ver` header, the
//! only place they name their UPnP stack.

use super::http::parse_head;
use super::text::split_product_version;
use super::{named, with_product, Service};

/// M-SEARCH for all devices.
pub const PROBE: &[u8] = b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n";

/// Identifies a UPnP responder from its answer.
pub fn identify(data: &[u8]) -> Option<Service> {
    let head = parse_head(data)?;
    if head.status != 200 {
        return None;
    }
    let s = named("upnp");
    let Some(server) = head.header("server") else {
        return Some(s);
    };
    // The product is the last token that is not the OS or the UPnP version.
    let token = server
        .split_whitespace()
        .rev()
        .find(|t| !t.to_ascii_lowercase().starts_with("upnp/"))
        .unwrap_or_default();
    let (name, version) = split_product_version(token);
    let mut s = match name.to_ascii_lowercase().as_str() {
        "miniupnpd" => with_product(s, "MiniUPnPd", version.as_deref()),
        _ => s,
    };
    s.extra = super::text::clean_field(server);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn miniupnpd() {
        let data = b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: upnp:rootdevice\r\nUSN: uuid:x::upnp:rootdevice\r\nEXT:\r\nSERVER: OpenWRT/21.02 UPnP/1.1 MiniUPnPd/2.3.3\r\nLOCATION: http://192.0.2.1:5000/rootDesc.xml\r\n\r\n";
        let s = identify(data).expect("upnp");
        assert_eq!(s.name, "upnp");
        assert_eq!(s.product.as_deref(), Some("MiniUPnPd"));
        assert_eq!(s.version.as_deref(), Some("2.3.3"));
    }

    #[test]
    fn others() {
        assert!(identify(PROBE).is_none());
        let s = identify(b"HTTP/1.1 200 OK\r\nST: x\r\n\r\n").expect("upnp");
        assert_eq!(s.product, None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = identify(&data);
            let mut d = b"HTTP/1.1 200 OK\r\nSERVER: ".to_vec();
            d.extend_from_slice(&data);
            let _ = identify(&d);
        }
    }
}

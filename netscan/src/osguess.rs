//! Operating-system family guess from a SYN-ACK's TTL, window and TCP options.
//!
//! Why only a family: a single SYN-ACK cannot tell kernel versions apart reliably, and a wrong
//! precise answer is worse than a right coarse one. The rules below are our own, from the stack
//! defaults each system documents or ships:
//! - initial TTL: Linux, BSD and macOS start at 64, Windows at 128, many network devices at 255;
//!   the observed TTL is rounded up to the nearest of these (hops only decrease it);
//! - option layout: Linux answers `MSTNW` (MSS, SACK-permitted, timestamps, NOP, window scale),
//!   Windows omits timestamps by default (`MNWNNS`-like, no `T`), and the BSD family (FreeBSD,
//!   macOS, which share a stack lineage) put MSS, NOP and window scale first, then timestamps and
//!   SACK. One SYN-ACK cannot tell FreeBSD from macOS, so they share the family `bsd`.

use picket_model::OsGuess;

/// Traits of a host's TCP/IP stack seen in a SYN-ACK.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackFingerprint {
    /// Observed IPv4 TTL (0 when unknown, as on IPv6 raw sockets).
    pub ttl: u8,
    pub window: u16,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    /// Option kinds in order, as letters: M(SS) S(ACK) T(imestamp) N(OP) W(scale) E(OL) ?(other).
    pub options: String,
    pub df: bool,
}

fn initial_ttl(ttl: u8) -> Option<u8> {
    match ttl {
        0 => None,
        1..=64 => Some(64),
        65..=128 => Some(128),
        _ => Some(255),
    }
}

/// Guesses the OS family; `unknown` with confidence 0 when the traits match no rule.
pub fn guess(fp: &StackFingerprint) -> OsGuess {
    let evidence = format!(
        "ttl={} window={} options={} mss={} wscale={} df={}",
        fp.ttl,
        fp.window,
        if fp.options.is_empty() {
            "-"
        } else {
            &fp.options
        },
        fp.mss.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
        fp.wscale
            .map(|m| m.to_string())
            .unwrap_or_else(|| "-".into()),
        fp.df
    );
    let opts = fp.options.as_str();
    let (family, confidence) = match (initial_ttl(fp.ttl), opts) {
        (Some(64), "MSTNW") => ("linux", 85),
        (None, "MSTNW") => ("linux", 70),
        (Some(64), o) if o.starts_with("MNW") && o.contains('T') => ("bsd", 70),
        (Some(128), o) if !o.contains('T') => ("windows", 80),
        (Some(128), _) => ("windows", 65),
        (Some(255), _) => ("network-device", 50),
        (Some(64), _) => ("linux", 40),
        _ => ("unknown", 0),
    };
    OsGuess {
        family: family.into(),
        confidence,
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(ttl: u8, options: &str) -> StackFingerprint {
        StackFingerprint {
            ttl,
            window: 65160,
            mss: Some(1460),
            wscale: Some(7),
            options: options.into(),
            df: true,
        }
    }

    #[test]
    fn families() {
        assert_eq!(guess(&fp(64, "MSTNW")).family, "linux");
        assert_eq!(guess(&fp(63, "MSTNW")).family, "linux");
        assert_eq!(guess(&fp(128, "MNWNNS")).family, "windows");
        assert_eq!(guess(&fp(255, "M")).family, "network-device");
        assert_eq!(guess(&fp(64, "MNWNNTSE")).family, "bsd");
        let unknown = guess(&fp(0, ""));
        assert_eq!(
            (unknown.family.as_str(), unknown.confidence),
            ("unknown", 0)
        );
        assert!(guess(&fp(64, "MSTNW")).evidence.contains("ttl=64"));
    }
}

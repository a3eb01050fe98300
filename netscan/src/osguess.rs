//! OS-family guess from TCP/IP stack traits. OWNER: lead.
use picket_model::OsGuess;

/// Traits of a host's TCP/IP stack seen in a SYN-ACK.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackFingerprint {
    pub ttl: u8,
    pub window: u16,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    /// Option kinds in order, as letters: M(SS) S(ACK) T(imestamp) N(OP) W(scale) E(OL).
    pub options: String,
    pub df: bool,
}

pub fn guess(fp: &StackFingerprint) -> OsGuess {
    OsGuess {
        family: "unknown".into(),
        confidence: 0,
        evidence: format!("ttl={} window={} options={}", fp.ttl, fp.window, fp.options),
    }
}

//! Port specifications and our own top-port lists. OWNER: targets/discovery helper. (skeleton)
use crate::error::Result;

/// Parses `22,80,443`, `1-1024`, `top100`, `top1000`, `all`, `none` into sorted unique ports.
pub fn parse_port_spec(spec: &str) -> Result<Vec<u16>> {
    let _ = spec;
    Ok(Vec::new())
}

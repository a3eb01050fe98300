//! Target parsing and expansion. OWNER: targets/discovery helper. (skeleton: signatures fixed)
use crate::error::Result;
use std::collections::HashMap;
use std::net::IpAddr;

/// Expanded targets: every address to scan, and the hostnames the user gave for them.
#[derive(Debug, Clone, Default)]
pub struct TargetSet {
    /// Unique addresses, in the order first given.
    pub addrs: Vec<IpAddr>,
    /// Hostnames that resolved to each address (from hostname targets).
    pub hostnames: HashMap<IpAddr, Vec<String>>,
}

/// Expands address, CIDR, range, hostname and `@file` targets, minus `exclude`.
pub async fn resolve_targets(specs: &[String], exclude: &[String]) -> Result<TargetSet> {
    let _ = (specs, exclude);
    Ok(TargetSet::default())
}

//! Host discovery. OWNER: targets/discovery helper. (skeleton: signatures fixed)
use crate::error::Result;
use crate::scan::Progress;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Raw sockets (ARP/NDP/ICMP/TCP probes) are available.
    pub privileged: bool,
    pub max_rate: Option<u32>,
    pub retries: u8,
}

/// A host found up, and why.
#[derive(Debug, Clone)]
pub struct UpHost {
    pub addr: IpAddr,
    /// `arp-response`, `nd-response`, `echo-reply`, `timestamp-reply`, `syn-ack`, `rst`, `conn-refused`, `user-set`.
    pub reason: String,
    pub mac: Option<String>,
    pub rtt: Option<Duration>,
    pub ttl: Option<u8>,
}

pub async fn discover(
    targets: &[IpAddr],
    cfg: &DiscoveryConfig,
    progress: Arc<dyn Progress>,
) -> Result<Vec<UpHost>> {
    let _ = (targets, cfg, progress);
    Ok(Vec::new())
}

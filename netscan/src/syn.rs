//! Raw-socket TCP SYN scan. OWNER: lead.
use crate::error::Result;
use crate::scan::{HostPorts, HostTarget, PortScanConfig, PortScanStats, Progress};

pub fn raw_sockets_available() -> bool {
    false
}

pub fn syn_scan(
    hosts: &[HostTarget],
    ports: &[u16],
    cfg: &PortScanConfig,
    progress: &dyn Progress,
) -> Result<(Vec<HostPorts>, PortScanStats)> {
    let _ = (hosts, ports, cfg, progress);
    Ok((Vec::new(), PortScanStats::default()))
}

//! UDP scanning. OWNER: service helper. (skeleton: signatures fixed)
use crate::error::Result;
use crate::scan::Progress;
use crate::timing::RttEstimator;
use picket_model::PortResult;
use std::net::IpAddr;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct UdpConfig {
    pub retries: u8,
    pub max_rate: Option<u32>,
}

/// Every scanned UDP port of every host, with its state (and service when a payload got an answer).
pub async fn udp_scan(
    hosts: &[(IpAddr, RttEstimator)],
    ports: &[u16],
    cfg: &UdpConfig,
    progress: Arc<dyn Progress>,
) -> Result<Vec<(IpAddr, Vec<PortResult>)>> {
    let _ = (hosts, ports, cfg, progress);
    Ok(Vec::new())
}

//! Reverse DNS. OWNER: targets/discovery helper. (skeleton: signatures fixed)
use std::collections::HashMap;
use std::net::IpAddr;

/// PTR names of each address that has any; bounded in time.
pub async fn reverse_names(addrs: &[IpAddr]) -> HashMap<IpAddr, Vec<String>> {
    let _ = addrs;
    HashMap::new()
}

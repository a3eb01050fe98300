//! The `picket` binary. OWNER: appliance helper. (skeleton)
#![forbid(unsafe_code)]
fn main() {}

//! Test helper: runs target expansion, host discovery and reverse DNS and prints the result as one
//! JSON object, so integration tests can run discovery inside a network namespace with
//! `ip netns exec NS netscan-probe ...` (a test binary cannot switch namespaces without unsafe
//! `setns`). Not installed on the appliance; `picket scan net` is the user-facing command.
//!
//! Usage: `netscan-probe [--unprivileged] [--retries N] [--rate PPS] [--rdns] [--exclude T]... TARGET...`
#![forbid(unsafe_code)]

use picket_netscan::discovery::{discover, DiscoveryConfig};
use picket_netscan::scan::NoProgress;
use picket_netscan::{rdns, targets};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut privileged = true;
    let mut retries = 3u8;
    let mut rate = None;
    let mut want_rdns = false;
    let mut specs = Vec::new();
    let mut exclude = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--unprivileged" => privileged = false,
            "--rdns" => want_rdns = true,
            "--retries" => retries = args.next().ok_or("--retries needs a value")?.parse()?,
            "--rate" => rate = Some(args.next().ok_or("--rate needs a value")?.parse()?),
            "--exclude" => exclude.push(args.next().ok_or("--exclude needs a value")?),
            _ => specs.push(a),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let started = Instant::now();
        let set = targets::resolve_targets(&specs, &exclude).await?;
        let resolved_ms = started.elapsed().as_millis();
        let cfg = DiscoveryConfig {
            privileged,
            max_rate: rate,
            retries,
        };
        let d_started = Instant::now();
        let up = discover(&set.addrs, &cfg, Arc::new(NoProgress)).await?;
        let discovery_ms = d_started.elapsed().as_millis();
        let names = if want_rdns {
            let addrs: Vec<_> = up.iter().map(|h| h.addr).collect();
            rdns::reverse_names(&addrs).await
        } else {
            Default::default()
        };
        let mut out = format!(
            "{{\"targets\":{},\"resolve_ms\":{resolved_ms},\"discovery_ms\":{discovery_ms},\"hosts\":[",
            set.addrs.len()
        );
        for (i, h) in up.iter().enumerate() {
            let opt = |v: Option<String>| v.unwrap_or_else(|| "null".into());
            let _ = write!(
                out,
                "{}{{\"addr\":{},\"reason\":{},\"mac\":{},\"rtt_us\":{},\"ttl\":{}}}",
                if i > 0 { "," } else { "" },
                json_str(&h.addr.to_string()),
                json_str(&h.reason),
                opt(h.mac.as_deref().map(json_str)),
                opt(h.rtt.map(|d| d.as_micros().to_string())),
                opt(h.ttl.map(|t| t.to_string())),
            );
        }
        out.push_str("],\"hostnames\":{");
        let mut given: Vec<_> = set.hostnames.iter().collect();
        given.sort();
        for (i, (a, n)) in given.iter().enumerate() {
            let list: Vec<String> = n.iter().map(|s| json_str(s)).collect();
            let _ = write!(
                out,
                "{}{}:[{}]",
                if i > 0 { "," } else { "" },
                json_str(&a.to_string()),
                list.join(",")
            );
        }
        out.push_str("},\"ptr\":{");
        let mut ptr: Vec<_> = names.iter().collect();
        ptr.sort();
        for (i, (a, n)) in ptr.iter().enumerate() {
            let list: Vec<String> = n.iter().map(|s| json_str(s)).collect();
            let _ = write!(
                out,
                "{}{}:[{}]",
                if i > 0 { "," } else { "" },
                json_str(&a.to_string()),
                list.join(",")
            );
        }
        out.push_str("}}");
        println!("{out}");
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

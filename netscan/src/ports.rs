//! Port specifications (`22,80,443`, `1-1024`, `top100`, `all`, `none`, ...) and Picket's own
//! top-port lists.
//!
//! Why our own lists: nmap's `nmap-services` frequency table may not be redistributed under our
//! licence, so the rankings here are curated by hand from the IANA service registry and from the
//! services an enterprise network commonly exposes (directory, databases, remote administration,
//! container and message-queue control planes). `top100` is the short list scanned by default for
//! a quick look; `top1000` adds the low well-known range and common high service ports.

use crate::error::{NetscanError, Result};

/// The hundred TCP ports we consider most worth probing first, roughly in order of how often an
/// enterprise network exposes them (ranking within the list does not affect scan order).
pub const TOP100: [u16; 100] = [
    // Remote access and file transfer.
    22, 23, 21, 20, 3389, 5900, 5985, 5986, 2222, 990, 989, 873, 1194, 1723, 513, 514,
    // Web.
    80, 443, 8080, 8443, 8000, 8008, 8081, 8888, 3000, 5000, 9000, 9090, 9443, 81, 8088,
    // Mail.
    25, 110, 143, 465, 587, 993, 995, // Name, directory and authentication services.
    53, 88, 389, 636, 464, 3268, 3269, 113, // Windows and file sharing.
    135, 139, 445, 2049, 111, 548, 49152, // Databases and caches.
    1433, 1521, 3306, 5432, 6379, 11211, 27017, 9200, 5984, 7000, 9042,
    // Message queues and streaming.
    5672, 15672, 9092, 1883, 8883, 61616,
    // Containers, orchestration and management planes.
    2375, 2376, 2379, 6443, 10250, 8500, 10000, 902, 8009, 7001, 8089,
    // Printing, telephony, media and industrial.
    515, 631, 9100, 5060, 5061, 554, 502, 102, 1080, 3128,
    // Other services commonly left listening.
    79, 119, 179, 427, 5222, 6000, 5601, 9418, 3260,
];

/// Well-known ports above the contiguous low block that `top1000` still wants (RPC endpoint
/// mapper over HTTP, IKE, r-services, Kerberos administration, NNTP over TLS, common alternates).
const TOP1000_NOTABLE_LOW: &[u16] = &[
    497, 500, 512, 524, 541, 543, 544, 555, 563, 593, 616, 617, 625, 646, 666, 711, 714, 749, 777,
    783, 787, 800, 801, 808, 843, 880, 888, 898, 900, 911, 981, 987, 992, 999, 1000, 1001, 1002,
    1007, 1009, 1010, 1011, 1021, 1022, 1023, 1024,
];

/// High ports (above 1024) added to `top1000` beyond those in [`TOP100`]: registered IANA service
/// ports and common application defaults.
const TOP1000_HIGH: &[u16] = &[
    1025, 1026, 1027, 1028, 1029, 1030, 1099, 1110, 1158, 1241, 1311, 1352, 1434, 1494, 1500, 1501,
    1503, 1583, 1604, 1645, 1646, 1701, 1720, 1755, 1801, 1812, 1813, 1900, 1935, 1978, 2000, 2001,
    2003, 2010, 2030, 2080, 2082, 2083, 2086, 2087, 2095, 2096, 2100, 2121, 2181, 2200, 2301, 2380,
    2381, 2401, 2404, 2427, 2483, 2484, 2601, 2602, 2604, 2638, 2809, 2947, 3001, 3005, 3050, 3052,
    3071, 3260, 3283, 3299, 3300, 3301, 3310, 3333, 3351, 3478, 3493, 3632, 3690, 3702, 3780, 3790,
    4000, 4001, 4022, 4040, 4045, 4063, 4064, 4100, 4111, 4125, 4200, 4369, 4443, 4444, 4445, 4567,
    4662, 4711, 4712, 4786, 4840, 4848, 4899, 5001, 5002, 5003, 5004, 5005, 5006, 5007, 5008, 5009,
    5010, 5038, 5050, 5051, 5080, 5101, 5190, 5353, 5355, 5357, 5400, 5405, 5431, 5433, 5434, 5500,
    5555, 5556, 5631, 5632, 5666, 5667, 5673, 5683, 5800, 5801, 5802, 5901, 5902, 5903, 5938, 5999,
    6001, 6002, 6080, 6100, 6101, 6346, 6363, 6380, 6389, 6502, 6514, 6543, 6566, 6567, 6580, 6646,
    6660, 6665, 6666, 6667, 6668, 6669, 6697, 6783, 6881, 6969, 7002, 7003, 7004, 7070, 7071, 7077,
    7080, 7100, 7180, 7199, 7272, 7443, 7474, 7547, 7687, 7777, 7778, 7800, 7878, 8001, 8002, 8003,
    8005, 8006, 8010, 8014, 8020, 8021, 8022, 8031, 8042, 8060, 8069, 8082, 8083, 8084, 8085, 8086,
    8087, 8090, 8091, 8093, 8096, 8118, 8123, 8139, 8140, 8161, 8180, 8181, 8200, 8222, 8243, 8280,
    8281, 8300, 8333, 8383, 8400, 8402, 8444, 8445, 8480, 8484, 8530, 8531, 8554, 8600, 8649, 8686,
    8765, 8800, 8834, 8873, 8880, 8881, 8899, 8983, 8999, 9001, 9002, 9003, 9009, 9010, 9011, 9043,
    9050, 9060, 9080, 9081, 9091, 9093, 9094, 9095, 9099, 9101, 9102, 9103, 9160, 9191, 9201, 9229,
    9300, 9301, 9389, 9390, 9391, 9392, 9393, 9440, 9444, 9500, 9502, 9503, 9535, 9595, 9600, 9800,
    9876, 9877, 9898, 9943, 9944, 9981, 9999, 10001, 10002, 10003, 10010, 10050, 10051, 10080,
    10082, 10180, 10215, 10243, 10255, 10256, 10443, 10616, 10617, 10621, 10626, 10628, 10629,
    11000, 11110, 11111, 11967, 12000, 12174, 12265, 12345, 13456, 13722, 13782, 13783, 14000,
    14238, 14441, 14442, 15000, 15002, 15003, 15004, 15660, 15742, 16000, 16001, 16012, 16016,
    16018, 16080, 16113, 16992, 16993, 17877, 17988, 18040, 18101, 18988, 19101, 19283, 19315,
    19350, 19780, 19801, 19842, 20000, 20005, 20031, 20221, 20222, 20828, 21571, 22939, 23502,
    24444, 24800, 25734, 25735, 26214, 27000, 27018, 27019, 27352, 27353, 27355, 27356, 27715,
    28017, 28201, 30000, 30718, 30951, 31038, 31337, 32768, 32769, 32770, 32771, 32772, 32773,
    32774, 32775, 32776, 32777, 32778, 32779, 32780, 32781, 32782, 32783, 32784, 33354, 33899,
    34571, 34572, 34573, 35500, 38292, 40193, 40911, 41511, 42510, 44176, 44442, 44443, 44501,
    45100, 48080, 49153, 49154, 49155, 49156, 49157, 49158, 49159, 49160, 49161, 49163, 49165,
    49167, 49175, 49176, 49400, 49999, 50000, 50001, 50002, 50003, 50006, 50070, 50075, 50300,
    50389, 50500, 50636, 50800, 51103, 51493, 52673, 52822, 52848, 52869, 54045, 54328, 55055,
    55056, 55555, 55600, 56737, 56738, 57294, 57797, 58080, 60020, 60443, 61532, 61900, 62078,
    63331, 64623, 64680, 65000, 65129, 65389,
];

/// Number of ports in `top1000`.
pub const TOP1000_LEN: usize = 1000;

/// The `top100` list, sorted and deduplicated.
pub fn top100() -> Vec<u16> {
    let mut v = TOP100.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// The `top1000` list, sorted: [`TOP100`], notable low ports, the high service ports above, and then
/// the well-known range from port 1 upwards until the list holds exactly 1000 ports. (All of 1-1024
/// alone would already be 1024 ports, so the contiguous block stops at about 420; the notable low
/// ports above it are listed explicitly.)
pub fn top1000() -> Vec<u16> {
    let mut set = std::collections::BTreeSet::new();
    set.extend(TOP100.iter().copied());
    set.extend(TOP1000_NOTABLE_LOW.iter().copied());
    for &p in TOP1000_HIGH {
        if set.len() >= TOP1000_LEN {
            break;
        }
        set.insert(p);
    }
    let mut low = 1u16;
    while set.len() < TOP1000_LEN && low <= 1024 {
        set.insert(low);
        low += 1;
    }
    set.into_iter().collect()
}

/// Parses `22,80,443`, `1-1024`, `top100`, `top1000`, `all`, `none` into sorted unique ports.
///
/// Items are comma separated and may be combined (`top100,8080-8090`). As in nmap, `-` alone means
/// all ports, `-1024` means 1-1024 and `60000-` means 60000-65535. `none` contributes no ports (a
/// spec of only `none` yields an empty list: discovery only). Port 0 is refused: nothing listens
/// there and probing it only confuses middleboxes.
pub fn parse_port_spec(spec: &str) -> Result<Vec<u16>> {
    let bad = |reason: String| NetscanError::BadPorts {
        spec: spec.to_string(),
        reason,
    };
    if spec.len() > 64 * 1024 {
        return Err(bad("specification is longer than 64 KiB".into()));
    }
    if spec.trim().is_empty() {
        return Err(bad("empty port specification".into()));
    }
    // A 65536-bit set keeps combinations cheap however many items overlap.
    let mut set = vec![false; 65536];
    for raw in spec.split(',') {
        let item = raw.trim();
        match item.to_ascii_lowercase().as_str() {
            "" => return Err(bad("empty item between commas".into())),
            "none" => {}
            "all" | "-" => set[1..].iter_mut().for_each(|b| *b = true),
            "top100" => TOP100.iter().for_each(|&p| set[usize::from(p)] = true),
            "top1000" => top1000().iter().for_each(|&p| set[usize::from(p)] = true),
            _ => {
                let (lo, hi) = parse_port_item(item).map_err(bad)?;
                set[usize::from(lo)..=usize::from(hi)]
                    .iter_mut()
                    .for_each(|b| *b = true);
            }
        }
    }
    Ok(set
        .iter()
        .enumerate()
        .filter(|(_, &b)| b)
        .filter_map(|(p, _)| u16::try_from(p).ok())
        .collect())
}

/// One `N`, `N-M`, `-M` or `N-` item as an inclusive range.
fn parse_port_item(item: &str) -> std::result::Result<(u16, u16), String> {
    let (lo, hi) = match item.split_once('-') {
        None => {
            let p = parse_port(item)?;
            (p, p)
        }
        Some((a, b)) => {
            let lo = if a.trim().is_empty() {
                1
            } else {
                parse_port(a)?
            };
            let hi = if b.trim().is_empty() {
                65535
            } else {
                parse_port(b)?
            };
            (lo, hi)
        }
    };
    if lo > hi {
        return Err(format!("range {item:?} ends before it starts"));
    }
    Ok((lo, hi))
}

fn parse_port(s: &str) -> std::result::Result<u16, String> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{s:?} is not a port number, range, top100, top1000, all or none"
        ));
    }
    match s.parse::<u32>() {
        Ok(0) => Err("port 0 cannot be scanned".into()),
        Ok(p) => u16::try_from(p).map_err(|_| format!("port {p} is above 65535")),
        Err(_) => Err(format!("port {s:?} is above 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Services the shared test network runs; the quick default list must see all of them.
    const TEST_NET_SERVICES: [u16; 16] = [
        21, 22, 25, 53, 80, 110, 143, 443, 445, 389, 3306, 3389, 5432, 6379, 11211, 8080,
    ];

    #[test]
    fn top100_has_exactly_100_unique_ports_including_test_services() {
        let t = top100();
        assert_eq!(t.len(), 100, "top100 has {} unique ports", t.len());
        for p in TEST_NET_SERVICES {
            assert!(t.contains(&p), "top100 lacks {p}");
        }
    }

    #[test]
    fn top1000_is_exactly_1000_and_contains_top100_and_high_services() {
        let t = top1000();
        assert_eq!(t.len(), 1000);
        assert!(t.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        for p in top100() {
            assert!(t.contains(&p), "top1000 lacks top100 port {p}");
        }
        for p in [
            1433, 2049, 2375, 5672, 5986, 6443, 9200, 10250, 15672, 27017, 50000,
        ] {
            assert!(t.contains(&p), "top1000 lacks {p}");
        }
        assert!(!t.contains(&0));
    }

    #[test]
    fn parses_lists_ranges_and_keywords() {
        assert_eq!(parse_port_spec("22,80,443").ok(), Some(vec![22, 80, 443]));
        assert_eq!(
            parse_port_spec("443, 22 ,80,22").ok(),
            Some(vec![22, 80, 443])
        );
        assert_eq!(parse_port_spec("1-1024").map(|v| v.len()).ok(), Some(1024));
        assert_eq!(parse_port_spec("all").map(|v| v.len()).ok(), Some(65535));
        assert_eq!(parse_port_spec("-").map(|v| v.len()).ok(), Some(65535));
        assert_eq!(parse_port_spec("-10").ok(), Some((1..=10).collect()));
        assert_eq!(
            parse_port_spec("65530-").ok(),
            Some((65530..=65535).collect())
        );
        assert_eq!(parse_port_spec("none").ok(), Some(vec![]));
        assert_eq!(parse_port_spec("TOP100").map(|v| v.len()).ok(), Some(100));
        assert_eq!(parse_port_spec("top1000").map(|v| v.len()).ok(), Some(1000));
        let combo = parse_port_spec("top100,60000-60002").unwrap_or_default();
        assert_eq!(combo.len(), 103);
        assert!(combo.contains(&60001) && combo.contains(&22));
        assert_eq!(parse_port_spec("none,22").ok(), Some(vec![22]));
    }

    #[test]
    fn errors_name_the_spec() {
        for bad in [
            "",
            " ",
            "0",
            "65536",
            "22,",
            ",22",
            "80-22",
            "http",
            "1-2-3",
            "top10",
            "22;80",
            "99999999999999999999",
            "+22",
            "1 2",
        ] {
            match parse_port_spec(bad) {
                Err(NetscanError::BadPorts { spec, .. }) => assert_eq!(spec, bad),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        let msg = parse_port_spec("22,abc").err().map(|e| e.to_string());
        assert!(msg.is_some_and(|m| m.contains("22,abc") && m.contains("abc")));
    }

    proptest! {
        #[test]
        fn never_panics_and_output_is_sorted_unique(s in "\\PC{0,40}") {
            if let Ok(v) = parse_port_spec(&s) {
                prop_assert!(v.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(!v.contains(&0));
            }
        }

        #[test]
        fn rendered_lists_round_trip(mut ports in proptest::collection::vec(1u16..=65535, 1..50)) {
            let spec = ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",");
            ports.sort_unstable();
            ports.dedup();
            prop_assert_eq!(parse_port_spec(&spec).ok(), Some(ports));
        }

        #[test]
        fn ranges_have_their_size(a in 1u16..=65535, b in 1u16..=65535) {
            let (lo, hi) = (a.min(b), a.max(b));
            let v = parse_port_spec(&format!("{lo}-{hi}")).unwrap_or_default();
            prop_assert_eq!(v.len(), usize::from(hi - lo) + 1);
        }
    }
}

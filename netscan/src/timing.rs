//! Round-trip-time estimation (RFC 6298) shared by port scanning, UDP probing and service detection.
//!
//! Why: probe timeouts must follow the network, not constants. A scan of hosts on the same bridge
//! (RTT ~100 µs) should wait milliseconds, while a scan across a WAN needs hundreds of milliseconds.

use std::time::Duration;

/// Smallest retransmission timeout we ever use: below this, scheduler jitter of a busy 2-core box
/// dominates and we would retransmit answers that are merely late.
pub const MIN_RTO: Duration = Duration::from_millis(25);
/// Largest retransmission timeout.
pub const MAX_RTO: Duration = Duration::from_secs(3);
/// Timeout used before any sample exists.
pub const INITIAL_RTO: Duration = Duration::from_millis(500);

/// Smoothed RTT and variance, as TCP computes them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RttEstimator {
    srtt_us: Option<f64>,
    rttvar_us: f64,
    samples: u64,
}

impl RttEstimator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Seeds the estimator with an RTT measured elsewhere (e.g. by discovery).
    pub fn with_sample(rtt: Duration) -> Self {
        let mut e = Self::new();
        e.observe(rtt);
        e
    }

    /// Feeds one measured round trip.
    pub fn observe(&mut self, rtt: Duration) {
        let r = rtt.as_secs_f64() * 1e6;
        match self.srtt_us {
            None => {
                self.srtt_us = Some(r);
                self.rttvar_us = r / 2.0;
            }
            Some(srtt) => {
                self.rttvar_us = 0.75 * self.rttvar_us + 0.25 * (srtt - r).abs();
                self.srtt_us = Some(0.875 * srtt + 0.125 * r);
            }
        }
        self.samples += 1;
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The smoothed RTT, if any sample was seen.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt_us.map(|us| Duration::from_micros(us as u64))
    }

    /// Retransmission timeout: srtt + 4·rttvar, clamped to [`MIN_RTO`, `MAX_RTO`].
    pub fn rto(&self) -> Duration {
        match self.srtt_us {
            None => INITIAL_RTO,
            Some(srtt) => {
                let us = srtt + 4.0 * self.rttvar_us;
                Duration::from_micros(us as u64).clamp(MIN_RTO, MAX_RTO)
            }
        }
    }

    /// How long to wait for an application-level answer (a banner, a probe reply): a multiple of the
    /// network RTO plus `server_think`, the time a service may spend before it answers.
    pub fn app_timeout(&self, server_think: Duration) -> Duration {
        (self.rto() * 2 + server_think).min(MAX_RTO * 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_and_clamps() {
        let mut e = RttEstimator::new();
        assert_eq!(e.rto(), INITIAL_RTO);
        for _ in 0..50 {
            e.observe(Duration::from_micros(100));
        }
        assert_eq!(e.rto(), MIN_RTO);
        let mut slow = RttEstimator::with_sample(Duration::from_secs(10));
        slow.observe(Duration::from_secs(10));
        assert_eq!(slow.rto(), MAX_RTO);
    }

    #[test]
    fn variance_raises_rto() {
        let mut e = RttEstimator::new();
        for i in 0..20 {
            e.observe(Duration::from_millis(if i % 2 == 0 { 10 } else { 60 }));
        }
        assert!(e.rto() > Duration::from_millis(60));
    }
}

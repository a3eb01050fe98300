//! The progress bar of long scans, drawn on standard error.
//!
//! Why a module: the scanner reports progress through `picket_netscan::Progress` and must not
//! know about terminals; this adapter draws it with indicatif. The caller creates it only when
//! standard error is a terminal and `-q` was not given, so scripts and JSON on standard output
//! never see it.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use picket_netscan::Progress;

/// An indicatif bar that shows the scan's current phase.
#[derive(Debug, Clone)]
pub struct BarProgress {
    bar: ProgressBar,
}

impl BarProgress {
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let style =
            ProgressStyle::with_template("{spinner} {msg:<12} [{bar:30}] {pos}/{len} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Self { bar }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Default for BarProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for BarProgress {
    fn phase(&self, name: &str, total: u64) {
        self.bar.set_position(0);
        self.bar.set_length(total);
        self.bar.set_message(name.to_owned());
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }
}

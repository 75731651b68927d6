//! `pcap-init`: PID 1 of the sidecar image.
//!
//! Today it validates the configuration (`--check-config`). Discovery, the process graph in
//! `supervisor/`, the ordered start and the ordered shutdown come with their own issue; until
//! then running it without `--check-config` says so and exits non-zero.

#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod discovery;
pub mod graph;
pub mod supervisor;

use serde::Serialize;
use sidecar_core::config::Config;
use sidecar_core::log::{self, Severity};

#[derive(Serialize)]
struct EffectiveConfig<'a> {
    config: &'a std::collections::BTreeMap<&'static str, serde_json::Value>,
    capture_dir: &'a std::path::Path,
}

/// Logs the effective configuration as one INFO line (configuration values only: never
/// the environment, never credentials).
pub fn report_effective_config(config: &Config) {
    let effective = config.effective();
    log::event(
        Severity::Info,
        "effective configuration",
        &EffectiveConfig {
            config: &effective,
            capture_dir: &config.capture_dir(),
        },
    );
}

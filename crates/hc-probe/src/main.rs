//! `hc-probe` binary: see the library for what it does.

use anyhow::Context;
use sidecar_core::{daemon, exit};

fn main() {
    daemon::run(
        "hc-probe",
        hc_probe::command(),
        |config, _| Ok(hc_probe::ProbeSettings::from_config(&config)),
        |settings, shutdown| {
            hc_probe::run(&settings, shutdown).context("hc-probe failed")?;
            Ok(exit::OK)
        },
    )
}

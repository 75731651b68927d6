//! `pcap-init` binary: see the library for what it does.

use anyhow::Context;
use sidecar_core::{daemon, exit};

fn main() {
    daemon::run(
        "pcap-init",
        pcap_init::command(),
        |config, matches| Ok(pcap_init::Settings::from_cli(config, matches)),
        |settings, shutdown| {
            if settings.check_config {
                pcap_init::report_effective_config(&settings.config);
                return Ok(exit::OK);
            }
            let summary =
                pcap_init::run(&settings.config, shutdown).context("pcap-init stopped")?;
            Ok(pcap_init::report_shutdown(&summary))
        },
    )
}

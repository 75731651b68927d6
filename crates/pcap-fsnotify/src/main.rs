//! `pcap-fsnotify` binary: reads the configuration, picks the destination
//! ([`pcap_fsnotify::cli`]), and runs the exporter; exit 0 only when every file was exported.

use anyhow::Context;
use pcap_fsnotify::cli::{self, Mode};
use sidecar_core::daemon::{self, Failure};
use sidecar_core::exit;

fn main() {
    daemon::run(
        "pcap-fsnotify",
        cli::command(),
        |config, matches| {
            Mode::from_cli(config, matches).map_err(|error| Failure::new(error.exit_code(), error))
        },
        |mode, shutdown| match mode {
            Mode::Verify(dir) => Ok(cli::verify(&dir)),
            Mode::Export { settings, config } => {
                let destination = cli::destination(&config)?;
                let summary = pcap_fsnotify::run(&settings, destination, shutdown)
                    .context("pcap-fsnotify failed")?;
                Ok(if summary.is_complete() {
                    exit::OK
                } else {
                    exit::FAILURE
                })
            }
        },
    )
}

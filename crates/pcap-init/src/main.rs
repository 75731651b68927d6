//! `pcap-init` binary: see the library for what it does.

use clap::{Arg, ArgAction, Command};
use sidecar_core::log::{self, Severity};
use sidecar_core::{daemon, exit, shutdown::Shutdown};

fn main() {
    let command = Command::new("pcap-init")
        .about("PID 1 of the pcap sidecar: discovery, process graph, ordered start and shutdown")
        .arg(
            Arg::new("check-config")
                .long("check-config")
                .action(ArgAction::SetTrue)
                .help(
                    "Validate the configuration, log it as one line and exit (0 valid, 2 invalid)",
                ),
        );
    let (config, matches) = daemon::start("pcap-init", command);
    if matches.get_flag("check-config") {
        pcap_init::report_effective_config(&config);
        std::process::exit(exit::OK);
    }
    let shutdown = match Shutdown::install() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            log::critical(&format!("cannot handle signals: {error}"));
            std::process::exit(exit::FAILURE);
        }
    };
    let code = match pcap_init::run(&config, &shutdown) {
        Ok(summary) => {
            let severity = if summary.clean {
                Severity::Notice
            } else {
                Severity::Error
            };
            let files = match &summary.files {
                Some(f) if f.not_exported.is_empty() && f.dropped.is_empty() => {
                    format!("{} files exported, none lost", f.exported)
                }
                Some(f) => format!(
                    "{} files exported, {} not exported, {} dropped",
                    f.exported,
                    f.not_exported.len(),
                    f.dropped.len()
                ),
                None => "no export report".to_string(),
            };
            log::event(
                severity,
                &format!("shutdown complete in {} ms: {files}", summary.total_ms),
                &summary,
            );
            if summary.clean {
                exit::OK
            } else {
                exit::FAILURE
            }
        }
        Err(error) => {
            log::critical(&format!("pcap-init stopped: {error}"));
            exit::FAILURE
        }
    };
    std::process::exit(code);
}

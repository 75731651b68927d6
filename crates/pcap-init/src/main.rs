//! `pcap-init` binary: see the library for what it does.

use clap::{Arg, ArgAction, Command};
use sidecar_core::{daemon, exit, log};

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
    log::critical("the process supervisor is not implemented yet: only --check-config works");
    std::process::exit(exit::FAILURE);
}

//! `tcpdumpw` binary: see the library for what it does.

use clap::{Arg, ArgAction, Command};
use sidecar_core::{daemon, exit, log};

fn main() {
    let command = Command::new("tcpdumpw")
        .about("Capture orchestrator: builds the BPF filter, runs tcpdump and pcapd per interface")
        .arg(
            Arg::new("print-filter")
                .long("print-filter")
                .action(ArgAction::SetTrue)
                .help("Build and validate the capture filter, log it as one JSON line and exit"),
        );
    let (config, matches) = daemon::start("tcpdumpw", command);
    if matches.get_flag("print-filter") {
        std::process::exit(tcpdumpw::print_filter(&config));
    }
    // Said plainly rather than pretending to capture.
    log::critical("capture is not implemented yet in tcpdumpw; only --print-filter works");
    std::process::exit(exit::FAILURE);
}

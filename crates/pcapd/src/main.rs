//! `pcapd` binary. Not implemented yet: it validates the configuration and says so.

use clap::Command;
use sidecar_core::{daemon, exit, log};

fn main() {
    let _ = daemon::start("pcapd", Command::new("pcapd"));
    log::critical("pcapd is not implemented yet");
    std::process::exit(exit::FAILURE);
}

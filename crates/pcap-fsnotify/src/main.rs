//! `pcap-fsnotify` binary. Not implemented yet: it validates the configuration and says so.

use clap::Command;
use sidecar_core::{daemon, exit, log};

fn main() {
    let _ = daemon::start("pcap-fsnotify", Command::new("pcap-fsnotify"));
    log::critical("pcap-fsnotify is not implemented yet");
    std::process::exit(exit::FAILURE);
}

//! `hc-probe` binary: see the library for what it does.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Command;
use sidecar_core::{daemon, exit, log, shutdown::Shutdown};

fn main() {
    let command = Command::new("hc-probe")
        .about("TCP startup probe: listens on PCAP_HC_PORT only while capture is ready");
    let (config, _) = daemon::start("hc-probe", command);
    let settings = hc_probe::ProbeSettings {
        listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.hc_port)),
        run_dir: config.run_dir.clone(),
        check_every: Duration::from_millis(100),
    };
    let code = match Shutdown::install().and_then(|shutdown| hc_probe::run(&settings, &shutdown)) {
        Ok(_) => exit::OK,
        Err(error) => {
            log::critical(&format!("hc-probe failed: {error}"));
            exit::FAILURE
        }
    };
    std::process::exit(code);
}

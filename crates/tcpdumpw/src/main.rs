//! `tcpdumpw` binary: flags and configuration, then [`tcpdumpw::run`] until SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use clap::{value_parser, Arg, ArgAction, Command};
use sidecar_core::shutdown::Shutdown;
use sidecar_core::{daemon, exit, log};
use tcpdumpw::RunOptions;

fn seconds(name: &'static str, default: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("SECS")
        .default_value(default)
        .value_parser(value_parser!(u64).range(1..=86_400))
        .help(help)
}

fn main() {
    let command = Command::new("tcpdumpw")
        .about("Capture orchestrator: builds the BPF filter, runs tcpdump and pcapd per interface")
        .arg(
            Arg::new("print-filter")
                .long("print-filter")
                .action(ArgAction::SetTrue)
                .help("Build and validate the capture filter, log it as one JSON line and exit"),
        )
        .arg(seconds(
            "rescan-secs",
            "5",
            "How often interfaces are listed again (new ones get a capture)",
        ))
        .arg(seconds(
            "hosts-refresh-secs",
            "60",
            "How often PCAP_HOSTS names are resolved again",
        ))
        .arg(seconds(
            "iface-wait-secs",
            "10",
            "How long start-up waits for an interface matching PCAP_IFACE",
        ))
        .arg(
            Arg::new("buffer-kib")
                .long("buffer-kib")
                .value_name("KIB")
                .default_value("4096")
                .value_parser(value_parser!(u32).range(64..=1_048_576))
                .help("Kernel capture buffer of each tcpdump (-B), KiB"),
        )
        .arg(
            Arg::new("pcapd")
                .long("pcapd")
                .value_name("PATH")
                .value_parser(value_parser!(PathBuf))
                .help("The pcapd program (default: next to tcpdumpw)"),
        );
    let (config, matches) = daemon::start("tcpdumpw", command);
    if matches.get_flag("print-filter") {
        std::process::exit(tcpdumpw::print_filter(&config));
    }
    let secs = |name: &str| Duration::from_secs(matches.get_one::<u64>(name).copied().unwrap_or(1));
    let mut options = RunOptions {
        rescan_every: secs("rescan-secs"),
        hosts_refresh_every: secs("hosts-refresh-secs"),
        iface_wait: secs("iface-wait-secs"),
        ..RunOptions::default()
    };
    if let Some(kib) = matches.get_one::<u32>("buffer-kib") {
        options.buffer_kib = *kib;
    }
    if let Some(pcapd) = matches.get_one::<PathBuf>("pcapd") {
        options.pcapd = pcapd.clone();
    }
    let shutdown = match Shutdown::install() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            log::critical(&format!("cannot install the signal handlers: {error}"));
            std::process::exit(exit::FAILURE);
        }
    };
    match tcpdumpw::run_with(&config, &shutdown, options) {
        Ok(_) => std::process::exit(exit::OK),
        Err(error) => {
            if let tcpdumpw::Error::Filter(filter) = &error {
                std::process::exit(tcpdumpw::report_filter_error(filter));
            }
            log::critical(&error.to_string());
            std::process::exit(error.exit_code());
        }
    }
}

//! `tcpdumpw`'s command line: its own flags besides the configuration's, and the typed
//! [`Settings`] they become.

use std::path::PathBuf;
use std::time::Duration;

use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};
use sidecar_core::config::Config;

use crate::RunOptions;

/// What `tcpdumpw` was started to do.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The validated configuration.
    pub config: Config,
    /// `--print-filter`: log the capture filter and exit.
    pub print_filter: bool,
    /// The flags that tune [`crate::run_with`].
    pub options: RunOptions,
}

impl Settings {
    /// From the configuration and [`command`]'s flags (clap has checked their ranges).
    pub fn from_cli(config: Config, matches: &ArgMatches) -> Self {
        let secs =
            |name: &str| Duration::from_secs(matches.get_one::<u64>(name).copied().unwrap_or(1));
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
        Settings {
            config,
            print_filter: matches.get_flag("print-filter"),
            options,
        }
    }
}

fn seconds(name: &'static str, default: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("SECS")
        .default_value(default)
        .value_parser(value_parser!(u64).range(1..=86_400))
        .help(help)
}

/// The command with `tcpdumpw`'s own flags (the configuration's are added by
/// `sidecar_core::daemon::start`).
pub fn command() -> Command {
    Command::new("tcpdumpw")
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
        )
}

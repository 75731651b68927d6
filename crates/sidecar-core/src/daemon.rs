//! The start of every daemon's `main`: flags and environment → [`Config`], logging set up,
//! and a bad configuration reported (one line per variable) with exit code 2 before anything
//! runs.

use clap::{ArgMatches, Command};
use serde::Serialize;

use crate::config::{self, Config};
use crate::exit;
use crate::log::{self, Severity};

#[derive(Serialize)]
struct ConfigWarning<'a> {
    warning: &'a str,
}

/// Parses the command line (with every configuration flag added to `command`), reads the
/// configuration and starts logging under `module`. Exits with code 2 on a bad
/// configuration, after one ERROR line per invalid variable; `--help` prints and exits 0.
pub fn start(module: &'static str, command: Command) -> (Config, ArgMatches) {
    // Capture files carry full payloads: everything this daemon and its children (tcpdump)
    // create is private (see `private`).
    crate::private::restrict_umask();
    let matches = command.args(config::args()).get_matches();
    match config::from_matches(&matches) {
        Ok(config) => {
            log::init(module, config.debug);
            for warning in config.warnings() {
                log::event(
                    Severity::Warning,
                    "configuration",
                    &ConfigWarning { warning: &warning },
                );
            }
            (config, matches)
        }
        Err(errors) => {
            log::init(module, false);
            exit::report_config_errors(&errors);
            std::process::exit(exit::BAD_CONFIG);
        }
    }
}

//! `pcapd` binary: configuration → [`pcapd::run`] → exit code (0 clean, 2 bad configuration
//! or a filter libpcap rejects, 1 runtime failure).

use sidecar_core::log::Severity;
use sidecar_core::shutdown::Shutdown;
use sidecar_core::{daemon, exit};

fn main() {
    let (config, matches) = daemon::start("pcapd", pcapd::settings::command());
    let settings = match pcapd::settings::from_config(&config, &matches) {
        Ok(settings) => settings,
        Err(error) => {
            sidecar_core::log::event(Severity::Error, &error.to_string(), &());
            std::process::exit(error.exit_code());
        }
    };
    let logs = settings.logs;
    let shutdown = match Shutdown::install() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            logs.event(
                Severity::Critical,
                &format!("cannot handle signals: {error}"),
                &(),
            );
            std::process::exit(exit::FAILURE);
        }
    };
    let code = match pcapd::run(&settings, &shutdown) {
        Ok(summary) if summary.capture_error.is_none() => exit::OK,
        Ok(_) => exit::FAILURE,
        Err(error) => {
            logs.event(Severity::Critical, &error.to_string(), &());
            error.exit_code()
        }
    };
    std::process::exit(code);
}

//! `pcapd` binary: configuration → [`pcapd::run`] → exit code (0 clean, 2 bad configuration
//! or a filter libpcap rejects, 1 runtime failure).

use sidecar_core::daemon::{self, Failure};
use sidecar_core::{exit, log};

fn main() {
    daemon::run(
        "pcapd",
        pcapd::settings::command(),
        |config, matches| {
            let settings = pcapd::settings::from_config(&config, matches)
                .map_err(|error| Failure::new(error.exit_code(), error))?;
            if settings.logs == pcapd::LogTarget::Stderr {
                log::to_stderr();
            }
            Ok(settings)
        },
        |settings, shutdown| match pcapd::run(&settings, shutdown) {
            Ok(summary) if summary.capture_error.is_none() => Ok(exit::OK),
            Ok(_) => Ok(exit::FAILURE),
            Err(error) => Err(Failure::new(error.exit_code(), error)),
        },
    )
}

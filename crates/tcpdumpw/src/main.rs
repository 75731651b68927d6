//! `tcpdumpw` binary: flags and configuration ([`tcpdumpw::cli`]), then [`tcpdumpw::run_with`]
//! until SIGTERM.

use sidecar_core::daemon::{self, Failure};
use sidecar_core::exit;

fn main() {
    daemon::run(
        "tcpdumpw",
        tcpdumpw::cli::command(),
        |config, matches| Ok(tcpdumpw::cli::Settings::from_cli(config, matches)),
        |settings, shutdown| {
            if settings.print_filter {
                return Ok(tcpdumpw::print_filter(&settings.config));
            }
            match tcpdumpw::run_with(&settings.config, shutdown, settings.options) {
                Ok(_) => Ok(exit::OK),
                // The filter's own line names the variable and its value.
                Err(tcpdumpw::Error::Filter(filter)) => {
                    Err(Failure::reported(tcpdumpw::report_filter_error(&filter)))
                }
                Err(error) => Err(Failure::new(error.exit_code(), error)),
            }
        },
    )
}

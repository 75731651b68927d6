//! `tcpdumpw`, the capture orchestrator. So far it builds and validates the capture filter
//! (`--print-filter`); running tcpdump and pcapd per interface comes next.

#![deny(clippy::unwrap_used, clippy::expect_used)]

use bpf_filter::{FilterError, FilterPlan, Resolver};
use serde::Serialize;
use sidecar_core::config::Config;
use sidecar_core::exit;
use sidecar_core::log::{self, Severity};

/// Message of the line that reports the capture filter.
pub const FILTER_MESSAGE: &str = "effective capture filter";

/// Builds the capture filter for `config`, excluding the sidecar's own endpoints read from
/// `env` (`GCE_METADATA_HOST`, `STORAGE_EMULATOR_HOST`), and has libpcap compile it.
pub fn capture_filter(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    resolver: &dyn Resolver,
) -> Result<FilterPlan, FilterError> {
    let endpoints = bpf_filter::self_endpoints(config, env)?;
    bpf_filter::build(config, &endpoints, resolver)
}

#[derive(Serialize)]
struct FilterFailure<'a> {
    variable: String,
    value: &'a str,
}

/// Logs why the filter could not be built (one ERROR line naming the variable) and returns
/// the exit code: [`exit::BAD_CONFIG`] for the user's settings, [`exit::FAILURE`] otherwise.
pub fn report_filter_error(error: &FilterError) -> i32 {
    log::event(
        Severity::Error,
        &error.to_string(),
        &FilterFailure {
            variable: error.variable(),
            value: error.value(),
        },
    );
    if error.is_config() {
        exit::BAD_CONFIG
    } else {
        exit::FAILURE
    }
}

/// `--print-filter`: one NOTICE line with the filter (`filter`, `source`, `variables`,
/// `excluded`, `resolved_hosts`) and [`exit::OK`], or one ERROR line and a non-zero code.
pub fn print_filter(config: &Config) -> i32 {
    match capture_filter(
        config,
        &|name| std::env::var(name).ok(),
        &bpf_filter::SystemResolver,
    ) {
        Ok(plan) => {
            log::event(Severity::Notice, FILTER_MESSAGE, &plan);
            exit::OK
        }
        Err(error) => report_filter_error(&error),
    }
}

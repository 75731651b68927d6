//! Exit codes shared by the daemons, and the report of a bad configuration.

use serde::Serialize;

use crate::config::ConfigErrors;
use crate::log::{self, Severity};

/// Clean exit.
pub const OK: i32 = 0;
/// A runtime failure.
pub const FAILURE: i32 = 1;
/// Invalid configuration; nothing was started.
pub const BAD_CONFIG: i32 = 2;

#[derive(Serialize)]
struct InvalidVariable<'a> {
    variable: &'a str,
    value: &'a str,
    accepted: &'a str,
}

/// Logs one ERROR line per invalid variable (name, bad value, accepted form).
pub fn report_config_errors(errors: &ConfigErrors) {
    for error in &errors.0 {
        log::event(
            Severity::Error,
            &error.to_string(),
            &InvalidVariable {
                variable: error.var,
                value: &error.value,
                accepted: error.accepted,
            },
        );
    }
}

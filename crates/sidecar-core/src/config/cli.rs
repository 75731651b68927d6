//! Every configuration variable as a command-line flag.
//!
//! A flag wins over its environment variable. Flags are plain strings to clap; the strict
//! parsing (and the report of every bad value at once) stays in [`super::Config`]. Help text
//! names the variable but never shows its current value, which could be a secret.

use clap::{Arg, ArgAction, ArgMatches};

use super::{Config, ConfigErrors, VARS};

/// The flags of every configuration variable, for a daemon's `clap::Command`.
pub fn args() -> Vec<Arg> {
    VARS.iter()
        .map(|var| {
            let default = var.default.unwrap_or("unset");
            let arg = Arg::new(var.name)
                .long(var.flag)
                .action(ArgAction::Set)
                .help_heading("Configuration (each flag also reads its environment variable)")
                .help(format!(
                    "{} [env: {}] [default: {}]",
                    var.help, var.name, default
                ));
            if var.boolean {
                arg.value_name("BOOL")
                    .num_args(0..=1)
                    .default_missing_value("true")
            } else {
                arg.value_name("VALUE")
            }
        })
        .collect()
}

/// Builds the configuration from parsed flags, falling back to the environment.
pub fn from_matches(matches: &ArgMatches) -> Result<Config, ConfigErrors> {
    Config::from_lookup(&|name| {
        matches
            .get_one::<String>(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    })
}

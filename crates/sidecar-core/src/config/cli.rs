//! Configuration variables as command-line flags.
//!
//! A flag wins over its environment variable; clap reads the variable itself (`Arg::env`).
//! Flags are plain strings to clap; the strict parsing (and the report of every bad value at
//! once) stays in [`super::Config`]. Help never shows a variable's current value, which
//! could be a secret.

use clap::{Arg, ArgAction, ArgMatches};

use super::vars::Daemon;
use super::{Config, ConfigErrors, Var, VARS};

fn arg(var: &Var) -> Arg {
    let default = var.default.unwrap_or("unset");
    let arg = Arg::new(var.name)
        .long(var.flag)
        .env(var.name)
        .hide_env_values(true)
        .action(ArgAction::Set)
        .help_heading(var.group.heading())
        .help(format!("{} [default: {}]", var.help, default));
    if var.boolean {
        arg.value_name("BOOL")
            .num_args(0..=1)
            .default_missing_value("true")
    } else {
        arg.value_name("VALUE")
    }
}

/// The flags of every configuration variable.
pub fn args() -> Vec<Arg> {
    VARS.iter().map(arg).collect()
}

/// The flags of the variables `daemon` reads, grouped for `--help`.
pub fn args_for(daemon: Daemon) -> Vec<Arg> {
    VARS.iter()
        .filter(|var| var.read_by(daemon))
        .map(arg)
        .collect()
}

/// Builds the configuration from parsed flags and their environment variables. Variables
/// without a flag in `matches` (read by other daemons) keep their defaults.
pub fn from_matches(matches: &ArgMatches) -> Result<Config, ConfigErrors> {
    Config::from_lookup(&|name| matches.try_get_one::<String>(name).ok().flatten().cloned())
}

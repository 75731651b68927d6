//! Every daemon's `main` in one function, [`run`]: flags and environment → [`Config`],
//! logging set up, a bad configuration reported (one line per variable) with exit code 2
//! before anything runs, then the daemon's typed settings, shutdown handling, its run, and
//! the exit code (0 clean, 2 bad configuration, 1 runtime failure).

use clap::{ArgMatches, Command};
use serde::Serialize;

use crate::config::{self, Config, Daemon, VARS};
use crate::exit;
use crate::log::{self, Severity};
use crate::shutdown::Shutdown;
use crate::version;

/// Why a daemon stops with a non-zero exit code.
#[derive(Debug)]
pub struct Failure {
    /// The exit code ([`exit::FAILURE`] unless the error says otherwise).
    pub code: i32,
    /// What went wrong, with its context; `None` when the daemon has already logged it (an
    /// event line with fields of its own).
    pub error: Option<anyhow::Error>,
}

impl Failure {
    /// `error` ends the daemon with `code`.
    pub fn new(code: i32, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code,
            error: Some(error.into()),
        }
    }

    /// Ends the daemon with `code` after its own report line.
    pub fn reported(code: i32) -> Self {
        Failure { code, error: None }
    }
}

/// Any error is a runtime failure (exit 1) unless built with [`Failure::new`].
impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::new(exit::FAILURE, error)
    }
}

#[derive(Serialize)]
struct FailureLine {
    /// Each cause, outermost first.
    error_chain: Vec<String>,
    exit_code: i32,
}

/// A daemon's whole `main`: [`start`], then `settings` from the configuration and the
/// daemon's own flags, SIGTERM/SIGINT handling, `body`, and the process exits with the code
/// `body` returns, or with a failure's code after one line carrying the error chain: ERROR
/// for settings (like a bad variable), CRITICAL for a failed run.
pub fn run<S>(
    module: &'static str,
    command: Command,
    settings: impl FnOnce(Config, &ArgMatches) -> Result<S, Failure>,
    body: impl FnOnce(S, &Shutdown) -> Result<i32, Failure>,
) -> ! {
    let (config, matches) = start(module, command);
    let code = match settings(config, &matches) {
        Err(failure) => report(Severity::Error, failure),
        Ok(settings) => {
            let outcome = Shutdown::install()
                .map_err(|e| Failure::from(anyhow::Error::new(e).context("cannot handle signals")))
                .and_then(|shutdown| body(settings, &shutdown));
            match outcome {
                Ok(code) => code,
                Err(failure) => report(Severity::Critical, failure),
            }
        }
    };
    std::process::exit(code)
}

/// Logs `failure` (unless already reported) and returns its exit code.
fn report(severity: Severity, failure: Failure) -> i32 {
    if let Some(error) = &failure.error {
        log::event(
            severity,
            &chain_message(error),
            &FailureLine {
                error_chain: error.chain().map(ToString::to_string).collect(),
                exit_code: failure.code,
            },
        );
    }
    failure.code
}

/// The error and its causes joined with ": ", outermost first. A cause whose text its outer
/// error already quotes (a `thiserror` message with `{source}` in it) is not repeated.
fn chain_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// Set by pcap-init in its children's environment: it has already warned about unknown
/// variables, so the children (which inherit the same environment) stay quiet.
pub const ENV_CHECKED: &str = "PCAP_SIDECAR_ENV_CHECKED_BY";

/// `PCAP_*` variables that are not configuration variables but are read all the same: the
/// environment of pcapd's own flags (its tests check this list) and the build's revision.
pub const OTHER_KNOWN: &[&str] = &[
    "PCAP_OUTPUT_DIR",
    "PCAP_WORKERS",
    "PCAP_QUEUE_MIB",
    "PCAP_BUFFER_MIB",
    "PCAP_PROMISC",
    "PCAP_IMMEDIATE",
    "PCAP_STATS_SECS",
    "PCAP_DRAIN_MS",
    "PCAP_RUN_ID",
    "PCAP_SIDECAR_REVISION",
    ENV_CHECKED,
];

#[derive(Serialize)]
struct ConfigWarning<'a> {
    warning: &'a str,
}

#[derive(Serialize)]
struct UnknownVariable<'a> {
    variable: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    did_you_mean: Option<&'a str>,
}

/// Parses the command line (with the flags of the variables this daemon reads added to
/// `command`, and `--version`), reads the configuration and starts logging under `module`.
/// Exits with code 2 on a bad configuration, after one ERROR line per invalid variable;
/// `--help` and `--version` print and exit 0.
pub fn start(module: &'static str, command: Command) -> (Config, ArgMatches) {
    // Capture files carry full payloads: everything this daemon and its children (tcpdump)
    // create is private (see `private`).
    crate::private::restrict_umask();
    let args = match Daemon::from_name(module) {
        Some(daemon) => config::args_for(daemon),
        None => config::args(),
    };
    let matches = command.version(version::long()).args(args).get_matches();
    match config::from_matches(&matches) {
        Ok(config) => {
            log::init(module, config.debug);
            if std::env::var_os(ENV_CHECKED).is_none() {
                let names = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok());
                for (variable, closest) in unknown_variables(names) {
                    let message = match closest {
                        Some(known) => {
                            format!("{variable} is not a variable; did you mean {known}?")
                        }
                        None => format!("{variable} is not a variable; it is ignored"),
                    };
                    log::event(
                        Severity::Warning,
                        &message,
                        &UnknownVariable {
                            variable: &variable,
                            did_you_mean: closest,
                        },
                    );
                }
            }
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

/// The `PCAP_*` names that are not configuration variables, each with the closest variable
/// when one is close enough to be a likely typo (the original ignored unknown variables
/// silently, so a typo like `PCAP_ORDER` went unnoticed).
pub fn unknown_variables(
    names: impl IntoIterator<Item = String>,
) -> Vec<(String, Option<&'static str>)> {
    let mut unknown: Vec<(String, Option<&'static str>)> = names
        .into_iter()
        .filter(|name| name.starts_with("PCAP_") && !OTHER_KNOWN.contains(&name.as_str()))
        .filter(|name| config::vars::find(name).is_none())
        .map(|name| {
            let closest = VARS
                .iter()
                .map(|var| (strsim::damerau_levenshtein(&name, var.name), var.name))
                .min()
                // A third of the name may differ: PCAP_ORDER → PCAP_ORDERED, not
                // PCAP_XYZ → PCAP_GAE.
                .filter(|(distance, _)| *distance * 3 <= name.len())
                .map(|(_, known)| known);
            (name, closest)
        })
        .collect();
    unknown.sort();
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(names: &[&str]) -> Vec<(String, Option<&'static str>)> {
        unknown_variables(names.iter().map(|n| n.to_string()))
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct Quoting {
        path: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn a_failure_line_names_every_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = anyhow::Error::new(Quoting {
            path: "/x",
            source: io,
        })
        .context("init stopped");
        assert_eq!(
            chain_message(&error),
            "init stopped: cannot read /x: no such file"
        );
        let plain = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(chain_message(&plain), "outer: middle: inner");
    }

    #[test]
    fn typos_name_the_closest_variable() {
        assert_eq!(
            check(&["PCAP_ORDER", "PCAP_ORDERED", "PATH", "GCS_MOUNT"]),
            [("PCAP_ORDER".to_string(), Some("PCAP_ORDERED"))]
        );
        assert_eq!(
            check(&["PCAP_COMPRES", "PCAP_TIMEZONE"]),
            [("PCAP_COMPRES".to_string(), Some("PCAP_COMPRESS"))]
        );
        assert_eq!(
            check(&["PCAP_HC_PROT"]),
            [("PCAP_HC_PROT".to_string(), Some("PCAP_HC_PORT"))]
        );
        // Nothing close: named, without a guess.
        assert_eq!(
            check(&["PCAP_SOMETHING_ELSE_ENTIRELY"]),
            [("PCAP_SOMETHING_ELSE_ENTIRELY".to_string(), None)]
        );
        assert!(check(&[ENV_CHECKED, "PCAP_WORKERS"]).is_empty());
    }
}

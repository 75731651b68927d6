//! `pcap-init`: PID 1 of the sidecar image.
//!
//! [`run`] is the whole life of the sidecar: discovery ([`discovery`]) gives the bucket path,
//! the process graph ([`graph`], `supervisor/processes.toml`) says what to start, and the
//! [`lifecycle`] starts it in order with real readiness waits, watches it, and stops it in
//! order within the shutdown budget. `--check-config` only validates the configuration.

pub mod discovery;
pub mod graph;
pub mod lifecycle;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde::Serialize;
use sidecar_core::config::Config;
use sidecar_core::exit;
use sidecar_core::log::{self, Severity};
use sidecar_core::shutdown::Shutdown;

use discovery::{Discovered, MetadataClient};
use graph::{GraphError, ProcessGraph, DEFAULT_GRAPH};
use lifecycle::{LifecycleError, LifecycleSettings, ShutdownSummary};

/// The command line: `--check-config` besides the configuration's flags.
pub fn command() -> Command {
    Command::new("pcap-init")
        .about("PID 1 of the pcap sidecar: discovery, process graph, ordered start and shutdown")
        .arg(
            Arg::new("check-config")
                .long("check-config")
                .action(ArgAction::SetTrue)
                .help(
                    "Validate the configuration, log it as one line and exit (0 valid, 2 invalid)",
                ),
        )
}

/// What `pcap-init` was started to do.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The validated configuration.
    pub config: Config,
    /// `--check-config`: log the configuration and exit.
    pub check_config: bool,
}

impl Settings {
    /// From the configuration and [`command`]'s flags.
    pub fn from_cli(config: Config, matches: &ArgMatches) -> Self {
        Settings {
            config,
            check_config: matches.get_flag("check-config"),
        }
    }
}

/// Logs the shutdown summary as one line (NOTICE when clean, ERROR otherwise) and returns the
/// exit code: 0 only when every program stopped cleanly and no file was lost.
pub fn report_shutdown(summary: &ShutdownSummary) -> i32 {
    let severity = if summary.clean {
        Severity::Notice
    } else {
        Severity::Error
    };
    let files = match &summary.files {
        Some(f) if f.not_exported.is_empty() && f.dropped.is_empty() => {
            format!("{} files exported, none lost", f.exported)
        }
        Some(f) => format!(
            "{} files exported, {} not exported, {} dropped",
            f.exported,
            f.not_exported.len(),
            f.dropped.len()
        ),
        None => "no export report".to_string(),
    };
    log::event(
        severity,
        &format!("shutdown complete in {} ms: {files}", summary.total_ms),
        summary,
    );
    if summary.clean {
        exit::OK
    } else {
        exit::FAILURE
    }
}

#[derive(Serialize)]
struct EffectiveConfig<'a> {
    config: &'a BTreeMap<&'static str, serde_json::Value>,
    capture_dir: &'a std::path::Path,
}

/// Logs the effective configuration as one INFO line (configuration values only: never
/// the environment, never credentials).
pub fn report_effective_config(config: &Config) {
    let effective = config.effective();
    log::event(
        Severity::Info,
        "effective configuration",
        &EffectiveConfig {
            config: &effective,
            capture_dir: &config.capture_dir(),
        },
    );
}

/// Why `pcap-init` stopped before a clean shutdown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// The process graph file could not be read.
    #[error("cannot read the process graph {path}: {source}")]
    GraphFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The process graph is invalid.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Start-up or supervision failed.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
}

#[derive(Serialize)]
struct Where<'a> {
    destination: &'a str,
    bucket_path: &'a str,
    discovered: &'a Discovered,
}

/// Reads the process graph: `PCAP_SUPERVISOR_FILE` or the built-in one.
pub fn load_graph(config: &Config) -> Result<ProcessGraph, InitError> {
    let text = match &config.supervisor_file {
        Some(path) => std::fs::read_to_string(path).map_err(|source| InitError::GraphFile {
            path: path.clone(),
            source,
        })?,
        None => DEFAULT_GRAPH.to_string(),
    };
    Ok(ProcessGraph::parse(&text)?)
}

/// Whether the bucket is mounted with a FUSE mounter (rather than uploaded to, or absent).
pub fn uses_fuse(config: &Config) -> bool {
    config.gcs_bucket.is_some() && config.gcs_fuse
}

/// Builds the lifecycle's settings: `${…}` values, children's environment, directories.
pub fn supervisor_settings(
    config: &Config,
    discovered: &Discovered,
    graph: ProcessGraph,
) -> LifecycleSettings {
    let bucket_path = discovered.bucket_path(config.gcs_prefix.as_deref());
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin"));
    let mut env: Vec<(String, String)> = config
        .to_env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    // pcap-init has warned about unknown PCAP_* variables; the children inherit the same
    // environment and must not repeat the warning.
    env.push((sidecar_core::daemon::ENV_CHECKED.into(), "pcap-init".into()));
    // pcapd's trace links need the project; it reads GOOGLE_CLOUD_PROJECT first.
    if let Some(project) = &discovered.project {
        env.push(("GOOGLE_CLOUD_PROJECT".into(), project.clone()));
    }
    let mut vars: BTreeMap<String, String> = env.iter().cloned().collect();
    let export_dir = config.gcs_mount.join(bucket_path.as_str());
    vars.insert("BIN_DIR".into(), bin_dir.display().to_string());
    vars.insert(
        "CAPTURE_DIR".into(),
        config.capture_dir().display().to_string(),
    );
    vars.insert("BUCKET_PATH".into(), bucket_path.to_string());
    vars.insert("EXPORT_DIR".into(), export_dir.display().to_string());
    let uploads = config.gcs_bucket.is_some() && !config.gcs_fuse;
    LifecycleSettings {
        graph,
        vars,
        env,
        run_dir: config.run_dir.clone(),
        fuse: uses_fuse(config),
        directories: vec![
            config.run_dir.clone(),
            config.capture_dir(),
            config.gcs_mount.clone(),
        ],
        // Files are moved into this directory unless they are uploaded through the API.
        export_dir: (!uploads).then_some(export_dir),
        shutdown_budget: Duration::from_secs(config.shutdown_secs),
        reap_orphans: std::process::id() == 1,
        gate: Some("hc-probe".into()),
    }
}

/// The whole life of the sidecar, until `shutdown` and the ordered stop.
pub fn run(config: &Config, shutdown: &Shutdown) -> Result<ShutdownSummary, InitError> {
    let graph = load_graph(config)?;
    let env = |name: &str| std::env::var(name).ok();
    let metadata = MetadataClient::from_env(&env);
    let discovered = if config.gae {
        discovery::discover_app_engine(&env, &metadata, &discovery::docker_socket(&env))
    } else {
        discovery::discover(&env, &metadata)
    };
    let settings = supervisor_settings(config, &discovered, graph);
    let bucket_path = discovered.bucket_path(config.gcs_prefix.as_deref());
    let destination = match &config.gcs_bucket {
        Some(bucket) => bucket_path.gs_url(bucket),
        None => config
            .gcs_mount
            .join(bucket_path.as_str())
            .display()
            .to_string(),
    };
    log::event(
        Severity::Notice,
        &format!("PCAP files available at: {destination}"),
        &Where {
            destination: &destination,
            bucket_path: bucket_path.as_str(),
            discovered: &discovered,
        },
    );
    Ok(lifecycle::run(&settings, shutdown)?)
}

//! `pcap-fsnotify`'s command line and start-up policy: its flags, the object path when
//! pcap-init passed none, and which destination a configuration picks
//! (`docs/pcap-fsnotify.md`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Arg, ArgMatches, Command};
use export::{Compression, Destination, DirectoryDestination, ExportError};
use sidecar_core::bucket::{BucketPath, PathParts};
use sidecar_core::config::Config;
use sidecar_core::exit;
use sidecar_core::log::{self, Severity};

use crate::Settings;

/// What `pcap-fsnotify` was started to do.
#[derive(Debug)]
pub enum Mode {
    /// `--verify DIR`: check a downloaded instance folder and exit.
    Verify(PathBuf),
    /// Export the capture directory until shutdown.
    Export {
        /// The exporter's settings.
        settings: Settings,
        /// The configuration the destination is chosen from ([`destination`]).
        config: Box<Config>,
    },
}

/// Why the exporter cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// `--bucket-path` is not a valid object name prefix.
    #[error("invalid --bucket-path {path:?}")]
    BucketPath {
        /// The path given.
        path: String,
        /// Why it is invalid.
        source: ExportError,
    },
    /// The destination cannot be set up.
    #[error("pcap-fsnotify cannot start")]
    Destination(#[source] ExportError),
}

impl StartError {
    /// 2 for a bad flag, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::BucketPath { .. } => exit::BAD_CONFIG,
            StartError::Destination(_) => exit::FAILURE,
        }
    }
}

/// The command with `pcap-fsnotify`'s own flags (the configuration's are added by
/// `sidecar_core::daemon::start`).
pub fn command() -> Command {
    Command::new("pcap-fsnotify")
        .about("Exports completed capture files from GCS_MOUNT-tmp to the bucket or directory")
        .arg(
            Arg::new("bucket-path")
                .long("bucket-path")
                .value_name("PATH")
                .help(
                    "Object path put before every file name (pcap-init passes \
                     PROJECT/SERVICE/REGION/REVISION/TIMESTAMP/INSTANCE). Default: built from \
                     PCAP_GCS_PREFIX, GOOGLE_CLOUD_PROJECT or PROJECT_ID, K_SERVICE, K_REVISION, \
                     the start time, and placeholders for what is unknown; '' for none.",
                ),
        )
        .arg(Arg::new("verify").long("verify").value_name("DIR").help(
            "Check a downloaded instance folder against its MANIFEST*.jsonl (every \
                     exported file present with its size and CRC32C, nothing unlisted, no \
                     temporary object), print one line and exit: 0 intact, 1 not.",
        ))
}

impl Mode {
    /// From the configuration and [`command`]'s flags.
    pub fn from_cli(config: Config, matches: &ArgMatches) -> Result<Mode, StartError> {
        if let Some(dir) = matches.get_one::<String>("verify") {
            return Ok(Mode::Verify(PathBuf::from(dir)));
        }
        let bucket_path = match matches.get_one::<String>("bucket-path") {
            Some(given) => given.trim_matches('/').to_string(),
            None => default_bucket_path(&config),
        };
        if !bucket_path.is_empty() {
            export::check_object_name(&bucket_path).map_err(|source| StartError::BucketPath {
                path: bucket_path.clone(),
                source,
            })?;
        }
        let mut settings = Settings::new(config.capture_dir(), bucket_path);
        settings.compression = if config.compress {
            Compression::Gzip {
                level: config.compress_level,
            }
        } else {
            Compression::None
        };
        settings.budget_bytes = config.backlog_mb.saturating_mul(1024 * 1024);
        settings.policy = config.backlog_policy;
        settings.shutdown_budget = Duration::from_secs(config.shutdown_secs);
        settings.run_dir = Some(config.run_dir.clone());
        settings.manifest_every = Duration::from_secs(config.manifest_secs);
        Ok(Mode::Export {
            settings,
            config: Box::new(config),
        })
    }
}

/// `--verify DIR`: one line with what was found; exit 0 when the folder is intact.
pub fn verify(dir: &Path) -> i32 {
    match crate::manifest::verify(dir) {
        Ok(found) if found.is_intact() => {
            log::event(
                Severity::Notice,
                &format!(
                    "bucket folder intact: {} exported files verified, {} not exported (named in the manifest)",
                    found.verified,
                    found.not_exported.len()
                ),
                &found,
            );
            exit::OK
        }
        Ok(found) => {
            log::event(
                Severity::Error,
                &format!(
                    "bucket folder NOT intact: {} missing, {} corrupted, {} unlisted, {} temporary, {} manifests",
                    found.missing.len(),
                    found.corrupted.len(),
                    found.unlisted.len(),
                    found.temporary.len(),
                    found.manifests.len()
                ),
                &found,
            );
            exit::FAILURE
        }
        Err(error) => {
            log::critical(&format!("cannot verify {}: {error}", dir.display()));
            exit::FAILURE
        }
    }
}

/// No bucket, or a bucket mounted with gcsfuse: the directory GCS_MOUNT. A bucket with
/// PCAP_GCS_FUSE=false: the JSON API.
pub fn destination(config: &Config) -> Result<Arc<dyn Destination>, StartError> {
    match &config.gcs_bucket {
        Some(bucket) if !config.gcs_fuse => {
            let settings = export::GcsApiSettings::from_env(bucket);
            let api = export::GcsApiDestination::new(settings).map_err(StartError::Destination)?;
            // Which identity the uploads use, so a wrong one is visible at once; never a token.
            log::event(
                Severity::Notice,
                &format!("Cloud Storage API credentials: {}", api.credentials()),
                &(),
            );
            Ok(Arc::new(api))
        }
        // With a bucket the directory is the gcsfuse mount: while it is not mounted, files
        // wait (and are reported) instead of landing in the container's own filesystem.
        Some(_) => Ok(Arc::new(DirectoryDestination::mounted_bucket(
            config.gcs_mount.clone(),
        ))),
        None => Ok(Arc::new(DirectoryDestination::new(
            config.gcs_mount.clone(),
        ))),
    }
}

/// The path when pcap-init did not pass one: what the environment tells, placeholders for the
/// rest (discovery from the metadata server is pcap-init's job).
pub fn default_bucket_path(config: &Config) -> String {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    BucketPath::new(&PathParts {
        prefix: config.gcs_prefix.clone(),
        project: env("GOOGLE_CLOUD_PROJECT").or_else(|| env("PROJECT_ID")),
        service: env("K_SERVICE"),
        region: None,
        revision: env("K_REVISION"),
        startup: chrono::Utc::now(),
        instance: None,
    })
    .as_str()
    .to_string()
}

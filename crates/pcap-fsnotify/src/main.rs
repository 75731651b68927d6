//! `pcap-fsnotify` binary: reads the configuration, picks the destination
//! (docs/pcap-fsnotify.md), and runs the exporter; exit 0 only when every file was exported.

use std::sync::Arc;
use std::time::Duration;

use clap::{Arg, Command};
use export::{Compression, Destination, DirectoryDestination};
use serde::Serialize;
use sidecar_core::bucket::{BucketPath, PathParts};
use sidecar_core::config::Config;
use sidecar_core::{daemon, exit, log, shutdown::Shutdown};

#[derive(Serialize)]
struct BadPath<'a> {
    bucket_path: &'a str,
    error: String,
}

fn main() {
    let command = Command::new("pcap-fsnotify")
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
        ));
    let (config, matches) = daemon::start("pcap-fsnotify", command);
    if let Some(dir) = matches.get_one::<String>("verify") {
        std::process::exit(verify(std::path::Path::new(dir)));
    }
    let bucket_path = match matches.get_one::<String>("bucket-path") {
        Some(given) => given.trim_matches('/').to_string(),
        None => default_bucket_path(&config),
    };
    if !bucket_path.is_empty() {
        if let Err(error) = export::check_object_name(&bucket_path) {
            log::event(
                log::Severity::Error,
                "invalid --bucket-path",
                &BadPath {
                    bucket_path: &bucket_path,
                    error: error.to_string(),
                },
            );
            std::process::exit(exit::BAD_CONFIG);
        }
    }
    let destination = match destination(&config) {
        Ok(destination) => destination,
        Err(error) => {
            log::critical(&format!("pcap-fsnotify cannot start: {error}"));
            std::process::exit(exit::FAILURE);
        }
    };
    let mut settings = pcap_fsnotify::Settings::new(config.capture_dir(), bucket_path);
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
    let code = match Shutdown::install()
        .map_err(|e| e.to_string())
        .and_then(|shutdown| {
            pcap_fsnotify::run(&settings, destination, &shutdown).map_err(|e| e.to_string())
        }) {
        Ok(summary) if summary.is_complete() => exit::OK,
        Ok(_) => exit::FAILURE,
        Err(error) => {
            log::critical(&format!("pcap-fsnotify failed: {error}"));
            exit::FAILURE
        }
    };
    std::process::exit(code);
}

/// `--verify DIR`: one line with what was found; exit 0 when the folder is intact.
fn verify(dir: &std::path::Path) -> i32 {
    match pcap_fsnotify::manifest::verify(dir) {
        Ok(found) if found.is_intact() => {
            log::event(
                log::Severity::Notice,
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
                log::Severity::Error,
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
fn destination(config: &Config) -> Result<Arc<dyn Destination>, String> {
    match &config.gcs_bucket {
        Some(bucket) if !config.gcs_fuse => {
            let settings = export::GcsApiSettings::from_env(bucket);
            let api = export::GcsApiDestination::new(settings).map_err(|e| e.to_string())?;
            // Which identity the uploads use, so a wrong one is visible at once; never a token.
            log::event(
                log::Severity::Notice,
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
fn default_bucket_path(config: &Config) -> String {
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

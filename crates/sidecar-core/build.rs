//! Stamps the git revision and the build date into the daemons (`--version`, the `version`
//! label of every log line).
//!
//! The revision comes from `PCAP_SIDECAR_REVISION` when set (scripts/docker_build passes the
//! revision it puts on the image label, so both agree), else from `git rev-parse`; a source
//! tree without `.git` (a tarball, a build context) says `unknown`. The date is the build's
//! UTC day, or `SOURCE_DATE_EPOCH`'s for reproducible builds.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && !text.is_empty()).then_some(text)
}

/// Whether git's work tree is this workspace (a tarball unpacked inside another repository
/// must not take that repository's revision).
fn in_own_repository() -> bool {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match (
        git(&["rev-parse", "--show-toplevel"]),
        workspace.canonicalize(),
    ) {
        (Some(top), Ok(workspace)) => Path::new(&top).canonicalize().ok() == Some(workspace),
        _ => false,
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=PCAP_SIDECAR_REVISION");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let given = std::env::var("PCAP_SIDECAR_REVISION")
        .ok()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    let revision = match given {
        Some(revision) => revision,
        None if !in_own_repository() => "unknown".to_string(),
        None => {
            // Rebuild when HEAD moves: HEAD itself and the branch it points to.
            let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                watched.push(branch);
            }
            for name in watched {
                if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
                    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
                    // A path that does not exist would make cargo rerun this on every build.
                    if path.exists() {
                        println!("cargo:rerun-if-changed={}", path.display());
                    }
                }
            }
            git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_string())
        }
    };
    let date = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or_else(chrono::Utc::now)
        .format("%Y-%m-%d");
    println!("cargo:rustc-env=PCAP_SIDECAR_REVISION={revision}");
    println!("cargo:rustc-env=PCAP_SIDECAR_BUILD_DATE={date}");
}

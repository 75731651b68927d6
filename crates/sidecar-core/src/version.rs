//! What build this is: the workspace version (every daemon crate shares it), the git revision
//! and the build date, stamped by `build.rs`.

/// The workspace version, e.g. `0.1.0`.
pub const CRATE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision (12 hex digits) the binaries were built from, or `unknown` (a source
/// tree without `.git`).
pub const REVISION: &str = env!("PCAP_SIDECAR_REVISION");
/// The UTC day of the build, `YYYY-MM-DD`.
pub const BUILD_DATE: &str = env!("PCAP_SIDECAR_BUILD_DATE");
/// The `version` label of every log line: `0.1.0+<revision>`.
pub const LABEL: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "+",
    env!("PCAP_SIDECAR_REVISION")
);

/// What `--version` prints after the program name: `0.1.0 (revision abc…, built 2026-12-05)`.
pub fn long() -> String {
    format!("{CRATE_VERSION} (revision {REVISION}, built {BUILD_DATE})")
}

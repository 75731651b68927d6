//! What every pcap-sidecar daemon shares.
//!
//! - [`config`]: environment and flags → one validated [`config::Config`].
//! - [`log`]: Cloud Logging structured lines on stdout.
//! - [`schedule`]: crontab expressions (5 or 6 fields) with crontab's day numbering.
//! - [`naming`]: capture file names (`<iface>_part_<YYYYMMDDTHHMMSS>Z.<ext>`);
//!   [`rotating`]: the rotating capture-file core that allocates them, opens, rotates and
//!   closes files.
//! - [`bucket`]: the object path `PREFIX/PROJECT/SERVICE/REGION/REVISION/TIMESTAMP/INSTANCE`.
//! - [`readiness`]: the capture-ready signal `tcpdumpw` raises and `hc-probe` reads.
//! - [`shutdown`]: SIGTERM/SIGINT as a value threads can wait on; [`deadline`]: the one
//!   shutdown deadline pcap-init hands down to every daemon.
//! - [`exit`]: exit codes every daemon uses; [`daemon`]: the common start of a `main`.
//! - [`version`]: version, git revision and build date stamped at build time.
//! - [`drops`]: the drop journal that gives each capture file's drops to the manifest.
//! - [`private`]: capture files 0600, their directories 0700 (umask 077).

pub mod bucket;
pub mod config;
pub mod daemon;
pub mod deadline;
pub mod drops;
pub mod exit;
pub mod log;
pub mod manual_trigger;
pub mod naming;
pub mod private;
pub mod readiness;
pub mod rotating;
pub mod schedule;
pub mod shutdown;
pub mod version;

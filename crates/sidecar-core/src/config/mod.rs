//! Environment (and command-line flags) → one validated, typed [`Config`] shared by every
//! daemon.
//!
//! Parsing is strict and friendly: values are trimmed, an empty value counts as unset,
//! booleans accept `true/false/1/0/yes/no`, sentinels (`ALL`, `ANY`, `DISABLED`) ignore case,
//! list items are trimmed. Every bad variable is reported — not just the first — as a
//! [`VarError`] naming the variable, the bad value and the accepted form.

mod cli;
pub mod trigger;
pub mod values;
pub mod vars;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde_json::{json, Value};

pub use cli::{args, args_for, from_matches};
use values::{
    is_sentinel, parse_bool, parse_bucket, parse_header_name, parse_hostname, parse_object_prefix,
    parse_selection, parse_u64_in, Family, IpNet, L3Proto, L4Proto, PortRange, Selection, TcpFlag,
};
pub use vars::{Daemon, Group, Var, VARS};

use crate::schedule::CronSchedule;

pub use cloud_logging::Verbosity;

/// What export gives up when the capture directory exceeds its budget
/// (`PCAP_BACKLOG_POLICY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BacklogPolicy {
    /// Delete the oldest completed files first (keep recent traffic).
    DropOldest,
    /// Delete the newest completed files first (keep the oldest).
    DropNewest,
}

impl BacklogPolicy {
    /// The variable's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BacklogPolicy::DropOldest => "drop-oldest",
            BacklogPolicy::DropNewest => "drop-newest",
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `PCAP_IFACE`: interface prefix, or `any`.
    pub iface: String,
    /// `PCAP_LOOPBACK`: also capture on `lo`.
    pub loopback: bool,
    /// `PCAP_GCS_BUCKET`.
    pub gcs_bucket: Option<String>,
    /// `PCAP_GCS_FUSE`.
    pub gcs_fuse: bool,
    /// `PCAP_GCS_PREFIX`, without leading or trailing slashes.
    pub gcs_prefix: Option<String>,
    /// `GCS_MOUNT`.
    pub gcs_mount: PathBuf,
    /// `PCAP_L3_PROTOS`.
    pub l3_protos: Selection<L3Proto>,
    /// `PCAP_L4_PROTOS`.
    pub l4_protos: Selection<L4Proto>,
    /// `PCAP_IPV4`.
    pub ipv4: Selection<IpNet>,
    /// `PCAP_IPV6`.
    pub ipv6: Selection<IpNet>,
    /// `PCAP_HOSTS`, lowercased.
    pub hosts: Selection<String>,
    /// `PCAP_PORTS`.
    pub ports: Selection<PortRange>,
    /// `PCAP_TCP_FLAGS`.
    pub tcp_flags: Selection<TcpFlag>,
    /// `PCAP_FILTER`; `None` when `DISABLED`.
    pub filter: Option<String>,
    /// `PCAP_EXCLUDE_SELF`: leave the sidecar's own traffic (metadata server, uploads) out of
    /// the capture filter.
    pub exclude_self: bool,
    /// `PCAP_SNAPSHOT_LENGTH`, with 0 already turned into 262144.
    pub snaplen: u32,
    /// `PCAP_ROTATE_SECS`; 0 means no rotation.
    pub rotate_secs: u64,
    /// `PCAP_FILE_EXT`.
    pub file_ext: String,
    /// `PCAP_COMPRESS`.
    pub compress: bool,
    /// `PCAP_COMPRESS_LEVEL`: gzip level 1..=9.
    pub compress_level: u32,
    /// `PCAP_BACKLOG_MB`: byte budget of the capture directory in MiB; 0 means no limit.
    pub backlog_mb: u64,
    /// `PCAP_BACKLOG_POLICY`.
    pub backlog_policy: BacklogPolicy,
    /// `PCAP_MANIFEST_SECS`: seconds between manifest parts written into the bucket.
    pub manifest_secs: u64,
    /// `PCAP_TCPDUMP`.
    pub tcpdump: bool,
    /// `PCAP_JSON`.
    pub json: bool,
    /// `PCAP_JSON_LOG`.
    pub json_log: bool,
    /// `PCAP_ORDERED`.
    pub ordered: bool,
    /// `PCAP_CONNTRACK`.
    pub conntrack: bool,
    /// `PCAP_HC_PORT`.
    pub hc_port: u16,
    /// `PCAP_USE_CRON`.
    pub use_cron: bool,
    /// `PCAP_CRON_EXP`.
    pub cron: Option<CronSchedule>,
    /// `PCAP_TIMEZONE`.
    pub timezone: chrono_tz::Tz,
    /// `PCAP_TIMEOUT_SECS`; 0 means no limit.
    pub timeout_secs: u64,
    /// `PCAP_PACKET_COUNT`: packets per interface and run; 0 means no limit.
    pub packet_count: u64,
    /// `PCAP_TRIGGER` and the flight recorder's bounds; `None`: no recorder.
    pub recorder: Option<RecorderConfig>,
    /// `PCAP_RING_SECS` … `PCAP_TRIGGER_PORT` as given (also without `PCAP_TRIGGER`).
    pub recorder_bounds: RecorderConfig,
    /// `PCAP_COMPAT`.
    pub compat: bool,
    /// `PCAP_GAE`.
    pub gae: bool,
    /// `PCAP_DEBUG`.
    pub debug: bool,
    /// `PCAP_VERBOSITY`.
    pub verbosity: Verbosity,
    /// `PCAP_SHUTDOWN_SECS`.
    pub shutdown_secs: u64,
    /// `PCAP_REDACT_HEADERS` (lowercased), added to the always-redacted headers.
    pub redact_headers: Vec<String>,
    /// `PCAP_MAX_ENTRY_BYTES`: largest packet JSON entry.
    pub max_entry_bytes: usize,
    /// `PCAP_STATE_MIB`: byte budget of pcapd's analysis state, MiB.
    pub state_mib: u64,
    /// `PCAP_RUN_DIR`.
    pub run_dir: PathBuf,
    /// `PCAP_SUPERVISOR_FILE`.
    pub supervisor_file: Option<PathBuf>,
}

/// The flight recorder's settings (`PCAP_TRIGGER`, `PCAP_RING_*`, `PCAP_TRIGGER_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderConfig {
    /// What fires.
    pub triggers: Vec<trigger::Trigger>,
    /// `PCAP_RING_SECS`.
    pub ring_secs: u64,
    /// `PCAP_RING_MB` (MiB).
    pub ring_mb: u64,
    /// `PCAP_TRIGGER_BEFORE_SECS`.
    pub before_secs: u64,
    /// `PCAP_TRIGGER_AFTER_SECS`.
    pub after_secs: u64,
    /// `PCAP_TRIGGER_COOLDOWN_SECS`.
    pub cooldown_secs: u64,
    /// `PCAP_TRIGGER_MAX_PER_HOUR`.
    pub max_per_hour: u64,
    /// `PCAP_TRIGGER_ON_EXIT`.
    pub on_exit: bool,
    /// `PCAP_TRIGGER_PORT`.
    pub port: u16,
}

/// Snaplen used when `PCAP_SNAPSHOT_LENGTH=0` (tcpdump's own default).
pub const MAX_SNAPLEN: u32 = 262_144;

/// Headers whose values are always redacted.
pub const ALWAYS_REDACTED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// One invalid variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarError {
    /// The variable's name.
    pub var: &'static str,
    /// The value as given (trimmed).
    pub value: String,
    /// What was wrong.
    pub problem: String,
    /// The accepted form.
    pub accepted: &'static str,
}

impl fmt::Display for VarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={:?}: {}; expected {}",
            self.var, self.value, self.problem, self.accepted
        )
    }
}

/// Every invalid variable found, in table order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<VarError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects values and errors while parsing.
struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<VarError>,
}

impl Reader<'_> {
    /// The trimmed value, or the default; `None` when unset without default.
    #[allow(
        clippy::panic,
        reason = "every name passed here is a literal from VARS; a missing one is a build-time mistake the config tests catch"
    )]
    fn raw(&self, name: &'static str) -> (Option<String>, &'static Var) {
        let var = vars::find(name).unwrap_or_else(|| panic!("{name} is missing from VARS"));
        let given = (self.lookup)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        (given.or_else(|| var.default.map(str::to_string)), var)
    }

    fn get<T>(
        &mut self,
        name: &'static str,
        fallback: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        let (raw, var) = self.raw(name);
        let Some(raw) = raw else { return fallback };
        match parse(&raw) {
            Ok(value) => value,
            Err(problem) => {
                self.errors.push(VarError {
                    var: name,
                    value: raw,
                    problem,
                    accepted: var.accepted,
                });
                fallback
            }
        }
    }

    fn optional<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        self.get(name, None, |raw| parse(raw).map(Some))
    }

    fn boolean(&mut self, name: &'static str) -> bool {
        self.get(name, false, parse_bool)
    }

    fn error(&mut self, name: &'static str, value: &str, problem: impl Into<String>) {
        let accepted = vars::find(name).map_or("", |v| v.accepted);
        self.errors.push(VarError {
            var: name,
            value: value.to_string(),
            problem: problem.into(),
            accepted,
        });
    }
}

fn parse_absolute_dir(raw: &str) -> Result<PathBuf, String> {
    let trimmed = raw.trim_end_matches('/');
    if !raw.starts_with('/') {
        return Err("not an absolute path".into());
    }
    if trimmed.is_empty() {
        return Err("'/' itself cannot be used".into());
    }
    if trimmed.split('/').any(|s| s == "..") {
        return Err("'..' is not allowed".into());
    }
    Ok(PathBuf::from(trimmed))
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigErrors> {
        Config::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Reads the configuration from any source of variables (flags, a map in tests …).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
        let mut r = Reader {
            lookup,
            errors: Vec::new(),
        };
        let iface = r.get("PCAP_IFACE", "eth".to_string(), |raw| {
            if raw.eq_ignore_ascii_case("any") {
                Ok("any".to_string())
            } else if raw.len() <= 15
                && raw
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                Ok(raw.to_string())
            } else {
                Err("not an interface name prefix".into())
            }
        });
        let loopback = r.boolean("PCAP_LOOPBACK");
        let gcs_bucket = r.optional("PCAP_GCS_BUCKET", parse_bucket);
        let gcs_fuse = r.boolean("PCAP_GCS_FUSE");
        let gcs_prefix = r.optional("PCAP_GCS_PREFIX", parse_object_prefix);
        let gcs_mount = r.get("GCS_MOUNT", PathBuf::from("/pcap"), parse_absolute_dir);
        let l3_protos = r.get("PCAP_L3_PROTOS", Selection::All, |raw| {
            parse_selection(raw, &["ALL", "ANY"], L3Proto::from_str)
        });
        let l4_protos = r.get("PCAP_L4_PROTOS", Selection::All, |raw| {
            parse_selection(raw, &["ALL", "ANY"], L4Proto::from_str)
        });
        let ip_sentinels = &["ALL", "ANY", "DISABLED"];
        let ipv4 = r.get("PCAP_IPV4", Selection::All, |raw| {
            parse_selection(raw, ip_sentinels, |t| IpNet::parse(t, Family::V4))
        });
        let ipv6 = r.get("PCAP_IPV6", Selection::All, |raw| {
            parse_selection(raw, ip_sentinels, |t| IpNet::parse(t, Family::V6))
        });
        let hosts = r.get("PCAP_HOSTS", Selection::All, |raw| {
            parse_selection(raw, ip_sentinels, parse_hostname)
        });
        let ports = r.get("PCAP_PORTS", Selection::All, |raw| {
            parse_selection(raw, &["ALL", "ANY"], PortRange::from_str)
        });
        let tcp_flags = r.get("PCAP_TCP_FLAGS", Selection::All, |raw| {
            parse_selection(raw, &["ALL", "ANY"], TcpFlag::from_str)
        });
        let filter = r.get("PCAP_FILTER", None, |raw| {
            if is_sentinel(raw, &["DISABLED"]) {
                Ok(None)
            } else if raw.contains('\0') {
                Err("contains a NUL byte".into())
            } else {
                Ok(Some(raw.to_string()))
            }
        });
        let exclude_self = r.boolean("PCAP_EXCLUDE_SELF");
        let snaplen = r.get("PCAP_SNAPSHOT_LENGTH", 65_536, |raw| {
            parse_u64_in(raw, 0, u64::from(MAX_SNAPLEN)).map(|n| {
                if n == 0 {
                    MAX_SNAPLEN
                } else {
                    n as u32
                }
            })
        });
        let rotate_secs = r.get("PCAP_ROTATE_SECS", 60, |raw| parse_u64_in(raw, 0, 86_400));
        let file_ext = r.get("PCAP_FILE_EXT", "pcap".to_string(), |raw| {
            let ext = raw.strip_prefix('.').unwrap_or(raw);
            let ok = !ext.is_empty()
                && ext.len() <= 16
                && ext
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            match ext {
                "json" | "gz" => Err(format!("'{ext}' is reserved")),
                _ if ok => Ok(ext.to_string()),
                _ => Err("not a file extension".into()),
            }
        });
        let compress = r.boolean("PCAP_COMPRESS");
        let compress_level = r.get("PCAP_COMPRESS_LEVEL", 1, |raw| {
            parse_u64_in(raw, 1, 9).map(|n| n as u32)
        });
        let backlog_mb = r.get("PCAP_BACKLOG_MB", 256, |raw| {
            parse_u64_in(raw, 0, 1_048_576)
        });
        let backlog_policy = r.get(
            "PCAP_BACKLOG_POLICY",
            BacklogPolicy::DropOldest,
            |raw| match raw.to_ascii_lowercase().as_str() {
                "drop-oldest" => Ok(BacklogPolicy::DropOldest),
                "drop-newest" => Ok(BacklogPolicy::DropNewest),
                _ => Err("unknown policy".into()),
            },
        );
        let manifest_secs = r.get("PCAP_MANIFEST_SECS", 60, |raw| parse_u64_in(raw, 1, 86_400));
        let tcpdump = r.boolean("PCAP_TCPDUMP");
        let json = r.boolean("PCAP_JSON");
        let json_log = r.boolean("PCAP_JSON_LOG");
        let ordered = r.boolean("PCAP_ORDERED");
        let conntrack = r.boolean("PCAP_CONNTRACK");
        let hc_port = r.get("PCAP_HC_PORT", 12345, |raw| {
            parse_u64_in(raw, 1, 65_535).map(|n| n as u16)
        });
        let use_cron = r.boolean("PCAP_USE_CRON");
        let cron = r.optional("PCAP_CRON_EXP", CronSchedule::parse);
        let timezone = r.get("PCAP_TIMEZONE", chrono_tz::UTC, |raw| {
            raw.parse::<chrono_tz::Tz>()
                .map_err(|_| "unknown time zone".to_string())
        });
        let timeout_secs = r.get("PCAP_TIMEOUT_SECS", 0, |raw| {
            parse_u64_in(raw, 0, 31_536_000)
        });
        let packet_count = r.get("PCAP_PACKET_COUNT", 0, |raw| {
            parse_u64_in(raw, 0, 1_000_000_000)
        });
        let triggers = r.optional("PCAP_TRIGGER", trigger::parse_triggers);
        let ring_secs = r.get("PCAP_RING_SECS", 60, |raw| parse_u64_in(raw, 1, 3_600));
        let ring_mb = r.get("PCAP_RING_MB", 64, |raw| parse_u64_in(raw, 1, 4_096));
        let before_secs = r.get("PCAP_TRIGGER_BEFORE_SECS", 30, |raw| {
            parse_u64_in(raw, 0, 3_600)
        });
        let after_secs = r.get("PCAP_TRIGGER_AFTER_SECS", 30, |raw| {
            parse_u64_in(raw, 0, 3_600)
        });
        let cooldown_secs = r.get("PCAP_TRIGGER_COOLDOWN_SECS", 60, |raw| {
            parse_u64_in(raw, 0, 86_400)
        });
        let max_per_hour = r.get("PCAP_TRIGGER_MAX_PER_HOUR", 10, |raw| {
            parse_u64_in(raw, 1, 3_600)
        });
        let on_exit = r.boolean("PCAP_TRIGGER_ON_EXIT");
        let trigger_port = r.get("PCAP_TRIGGER_PORT", 12_346, |raw| {
            parse_u64_in(raw, 1, 65_535).map(|n| n as u16)
        });
        if before_secs > ring_secs {
            let given = r.raw("PCAP_TRIGGER_BEFORE_SECS").0.unwrap_or_default();
            r.error(
                "PCAP_TRIGGER_BEFORE_SECS",
                &given,
                format!("the ring keeps only PCAP_RING_SECS={ring_secs} seconds"),
            );
        }
        let recorder_bounds = RecorderConfig {
            triggers: triggers.clone().unwrap_or_default(),
            ring_secs,
            ring_mb,
            before_secs,
            after_secs,
            cooldown_secs,
            max_per_hour,
            on_exit,
            port: trigger_port,
        };
        let recorder = triggers.map(|_| recorder_bounds.clone());
        let manual = recorder
            .as_ref()
            .is_some_and(|r| r.triggers.contains(&trigger::Trigger::Manual));
        if manual && trigger_port == hc_port {
            let given = r.raw("PCAP_TRIGGER_PORT").0.unwrap_or_default();
            r.error(
                "PCAP_TRIGGER_PORT",
                &given,
                format!("the startup probe listens on PCAP_HC_PORT={hc_port}"),
            );
        }
        let compat = r.boolean("PCAP_COMPAT");
        let gae = r.boolean("PCAP_GAE");
        let debug = r.boolean("PCAP_DEBUG");
        let verbosity = r.get("PCAP_VERBOSITY", Verbosity::Debug, |raw| {
            match raw.to_ascii_uppercase().as_str() {
                "INFO" => Ok(Verbosity::Info),
                "DEBUG" => Ok(Verbosity::Debug),
                "SUMMARY" => Ok(Verbosity::Summary),
                _ => Err("unknown verbosity".into()),
            }
        });
        let shutdown_secs = r.get("PCAP_SHUTDOWN_SECS", 9, |raw| parse_u64_in(raw, 1, 3_600));
        let redact_headers = r.get(
            "PCAP_REDACT_HEADERS",
            Vec::new(),
            |raw| match parse_selection(raw, &[], parse_header_name)? {
                Selection::Only(names) => Ok(names),
                Selection::All => Ok(Vec::new()),
            },
        );
        let max_entry_bytes = r.get("PCAP_MAX_ENTRY_BYTES", 204_800, |raw| {
            parse_u64_in(raw, 4_096, 262_144)
        }) as usize;
        let state_mib = r.get("PCAP_STATE_MIB", 32, |raw| parse_u64_in(raw, 4, 4_096));
        let run_dir = r.get(
            "PCAP_RUN_DIR",
            PathBuf::from("/run/pcap-sidecar"),
            parse_absolute_dir,
        );
        let supervisor_file = r.optional("PCAP_SUPERVISOR_FILE", |raw| {
            if raw.ends_with('/') {
                Err("not a file path".to_string())
            } else {
                parse_absolute_dir(raw)
            }
        });

        // Rules that involve more than one variable.
        let outputs_valid = !r
            .errors
            .iter()
            .any(|e| matches!(e.var, "PCAP_TCPDUMP" | "PCAP_JSON" | "PCAP_JSON_LOG"));
        if outputs_valid && !tcpdump && !json && !json_log {
            r.error(
                "PCAP_TCPDUMP",
                "false",
                "nothing would be captured: PCAP_TCPDUMP, PCAP_JSON and PCAP_JSON_LOG are all false",
            );
        }
        if compat && snaplen >= MAX_SNAPLEN {
            let given = r.raw("PCAP_SNAPSHOT_LENGTH").0.unwrap_or_default();
            r.error(
                "PCAP_SNAPSHOT_LENGTH",
                &given,
                format!(
                    "0 (= {MAX_SNAPLEN}, unlimited) is not supported with PCAP_COMPAT=true: the \
                     ring-less capture path needs a fixed buffer per packet; set 1..={}",
                    MAX_SNAPLEN - 1
                ),
            );
        }
        if use_cron && cron.is_none() && !r.errors.iter().any(|e| e.var == "PCAP_CRON_EXP") {
            r.error("PCAP_CRON_EXP", "", "required when PCAP_USE_CRON=true");
        }
        if gcs_mount == run_dir {
            r.error(
                "PCAP_RUN_DIR",
                &run_dir.display().to_string(),
                "must differ from GCS_MOUNT",
            );
        }

        if !r.errors.is_empty() {
            return Err(ConfigErrors(r.errors));
        }
        Ok(Config {
            iface,
            loopback,
            gcs_bucket,
            gcs_fuse,
            gcs_prefix,
            gcs_mount,
            l3_protos,
            l4_protos,
            ipv4,
            ipv6,
            hosts,
            ports,
            tcp_flags,
            filter,
            exclude_self,
            snaplen,
            rotate_secs,
            file_ext,
            compress,
            compress_level,
            backlog_mb,
            backlog_policy,
            manifest_secs,
            tcpdump,
            json,
            json_log,
            ordered,
            conntrack,
            hc_port,
            use_cron,
            cron,
            timezone,
            timeout_secs,
            packet_count,
            recorder,
            recorder_bounds,
            compat,
            gae,
            debug,
            verbosity,
            shutdown_secs,
            max_entry_bytes,
            state_mib,
            redact_headers,
            run_dir,
            supervisor_file,
        })
    }

    /// Where capture files are written before export: `GCS_MOUNT` + `-tmp`.
    pub fn capture_dir(&self) -> PathBuf {
        let mut dir = self.gcs_mount.clone().into_os_string();
        dir.push("-tmp");
        PathBuf::from(dir)
    }

    /// Notes about settings that are valid but probably not what the user meant.
    pub fn warnings(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.filter.is_some() {
            let simple = [
                (
                    "PCAP_L3_PROTOS",
                    self.l3_protos != Selection::Only(vec![L3Proto::Ipv4, L3Proto::Ipv6]),
                ),
                (
                    "PCAP_L4_PROTOS",
                    self.l4_protos != Selection::Only(vec![L4Proto::Tcp, L4Proto::Udp]),
                ),
                ("PCAP_IPV4", self.ipv4 != Selection::All),
                ("PCAP_IPV6", self.ipv6 != Selection::All),
                ("PCAP_HOSTS", self.hosts != Selection::All),
                ("PCAP_PORTS", self.ports != Selection::All),
                ("PCAP_TCP_FLAGS", self.tcp_flags != Selection::All),
            ];
            for (name, set) in simple {
                if set {
                    notes.push(format!("{name} is ignored because PCAP_FILTER is set"));
                }
            }
        }
        if self.gcs_bucket.is_none() && !self.gcs_fuse {
            notes.push("PCAP_GCS_FUSE=false has no effect without PCAP_GCS_BUCKET".into());
        }
        if self.cron.is_some() && !self.use_cron {
            notes.push("PCAP_CRON_EXP is ignored because PCAP_USE_CRON is false".into());
        }
        if self.ordered && self.conntrack {
            notes.push("PCAP_CONNTRACK implies ordered output; PCAP_ORDERED is redundant".into());
        }
        notes
    }

    /// The configuration as environment variables, for child daemons: parsing them gives this
    /// configuration back (flags given to the parent reach its children this way). Unset
    /// values are left out.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        self.effective()
            .into_iter()
            .filter_map(|(name, value)| {
                let text = match value {
                    Value::Null => return None,
                    Value::String(s) => s,
                    Value::Array(items) => items
                        .iter()
                        .map(|item| match item {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                Some((name, text))
            })
            .collect()
    }

    /// The effective configuration keyed by variable name, for the start-up log line.
    /// It holds only configuration values: never the environment, never credentials.
    pub fn effective(&self) -> BTreeMap<&'static str, Value> {
        let text = |s: &Option<String>| s.as_ref().map_or(Value::Null, |s| Value::from(s.as_str()));
        let mut m = BTreeMap::new();
        m.insert("PCAP_IFACE", json!(self.iface));
        m.insert("PCAP_LOOPBACK", json!(self.loopback));
        m.insert("PCAP_GCS_BUCKET", text(&self.gcs_bucket));
        m.insert("PCAP_GCS_FUSE", json!(self.gcs_fuse));
        m.insert("PCAP_GCS_PREFIX", text(&self.gcs_prefix));
        m.insert("GCS_MOUNT", json!(self.gcs_mount));
        m.insert("PCAP_L3_PROTOS", json!(self.l3_protos.to_string()));
        m.insert("PCAP_L4_PROTOS", json!(self.l4_protos.to_string()));
        m.insert("PCAP_IPV4", json!(self.ipv4.to_string()));
        m.insert("PCAP_IPV6", json!(self.ipv6.to_string()));
        m.insert("PCAP_HOSTS", json!(self.hosts.to_string()));
        m.insert("PCAP_PORTS", json!(self.ports.to_string()));
        m.insert("PCAP_TCP_FLAGS", json!(self.tcp_flags.to_string()));
        m.insert("PCAP_FILTER", text(&self.filter));
        m.insert("PCAP_EXCLUDE_SELF", json!(self.exclude_self));
        m.insert("PCAP_SNAPSHOT_LENGTH", json!(self.snaplen));
        m.insert("PCAP_ROTATE_SECS", json!(self.rotate_secs));
        m.insert("PCAP_FILE_EXT", json!(self.file_ext));
        m.insert("PCAP_COMPRESS", json!(self.compress));
        m.insert("PCAP_COMPRESS_LEVEL", json!(self.compress_level));
        m.insert("PCAP_BACKLOG_MB", json!(self.backlog_mb));
        m.insert("PCAP_BACKLOG_POLICY", json!(self.backlog_policy.as_str()));
        m.insert("PCAP_MANIFEST_SECS", json!(self.manifest_secs));
        m.insert("PCAP_TCPDUMP", json!(self.tcpdump));
        m.insert("PCAP_JSON", json!(self.json));
        m.insert("PCAP_JSON_LOG", json!(self.json_log));
        m.insert("PCAP_ORDERED", json!(self.ordered));
        m.insert("PCAP_CONNTRACK", json!(self.conntrack));
        m.insert("PCAP_HC_PORT", json!(self.hc_port));
        m.insert("PCAP_USE_CRON", json!(self.use_cron));
        m.insert(
            "PCAP_CRON_EXP",
            self.cron
                .as_ref()
                .map_or(Value::Null, |c| json!(c.expression())),
        );
        m.insert("PCAP_TIMEZONE", json!(self.timezone.name()));
        m.insert("PCAP_TIMEOUT_SECS", json!(self.timeout_secs));
        m.insert("PCAP_PACKET_COUNT", json!(self.packet_count));
        let b = &self.recorder_bounds;
        m.insert(
            "PCAP_TRIGGER",
            match &self.recorder {
                Some(r) => json!(r
                    .triggers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")),
                None => Value::Null,
            },
        );
        m.insert("PCAP_RING_SECS", json!(b.ring_secs));
        m.insert("PCAP_RING_MB", json!(b.ring_mb));
        m.insert("PCAP_TRIGGER_BEFORE_SECS", json!(b.before_secs));
        m.insert("PCAP_TRIGGER_AFTER_SECS", json!(b.after_secs));
        m.insert("PCAP_TRIGGER_COOLDOWN_SECS", json!(b.cooldown_secs));
        m.insert("PCAP_TRIGGER_MAX_PER_HOUR", json!(b.max_per_hour));
        m.insert("PCAP_TRIGGER_ON_EXIT", json!(b.on_exit));
        m.insert("PCAP_TRIGGER_PORT", json!(b.port));
        m.insert("PCAP_COMPAT", json!(self.compat));
        m.insert("PCAP_GAE", json!(self.gae));
        m.insert("PCAP_DEBUG", json!(self.debug));
        m.insert(
            "PCAP_VERBOSITY",
            json!(match self.verbosity {
                Verbosity::Info => "INFO",
                Verbosity::Debug => "DEBUG",
                Verbosity::Summary => "SUMMARY",
            }),
        );
        m.insert("PCAP_SHUTDOWN_SECS", json!(self.shutdown_secs));
        m.insert("PCAP_REDACT_HEADERS", json!(self.redact_headers));
        m.insert("PCAP_MAX_ENTRY_BYTES", json!(self.max_entry_bytes));
        m.insert("PCAP_STATE_MIB", json!(self.state_mib));
        m.insert("PCAP_RUN_DIR", json!(self.run_dir));
        m.insert(
            "PCAP_SUPERVISOR_FILE",
            self.supervisor_file
                .as_ref()
                .map_or(Value::Null, |p| json!(p)),
        );
        m
    }
}

#[cfg(test)]
mod tests;

//! `pcapd`'s settings: the shared configuration (`PCAP_IFACE`, `PCAP_FILTER`, `PCAP_JSON`,
//! `PCAP_JSON_LOG`, `PCAP_ORDERED`, `PCAP_CONNTRACK`, `PCAP_ROTATE_SECS`, …) plus a few
//! flags of its own ([`command`]), each also read from its environment variable and parsed
//! as strictly as the shared ones.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};
use sidecar_core::config::values::{parse_bool, parse_u64_in};
use sidecar_core::config::{Config, ALWAYS_REDACTED_HEADERS};

use packet_socket::{CapturePath, Detection};

use crate::pcap_files::PcapSettings;
use crate::recorder::RecorderSettings;
use crate::source::{LiveSettings, SourceSettings};
use crate::{Error, LogTarget};

/// Where `.json` files go and how often they rotate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSettings {
    /// The capture directory (`GCS_MOUNT-tmp` by default).
    pub dir: PathBuf,
    /// Rotation period; `None` keeps one file until exit.
    pub rotate: Option<Duration>,
}

/// Everything [`crate::run`] needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Live interface or file.
    pub source: SourceSettings,
    /// BPF filter handed to libpcap (compiled before capture starts).
    pub filter: Option<String>,
    /// Write lines to stdout.
    pub stdout: bool,
    /// Write rotating `.json` files.
    pub files: Option<FileSettings>,
    /// Translation workers.
    pub workers: usize,
    /// Exact capture order in every output.
    pub ordered: bool,
    /// Cap of the capture → translation queue, in bytes.
    pub queue_bytes: usize,
    /// How often the stats line is logged.
    pub stats_every: Duration,
    /// Drain budget after a stop request.
    pub drain: Duration,
    /// Stop after this long (live capture).
    pub duration: Option<Duration>,
    /// Raise the capture-ready signal in this directory once capturing.
    pub ready_dir: Option<PathBuf>,
    /// Journal drops in `<dir>/drops/` (`PCAP_RUN_DIR`, when run by tcpdumpw: with a
    /// readiness directory), for the manifest's per-file drops.
    pub drops_dir: Option<PathBuf>,
    /// Where `pcapd`'s own log lines go.
    pub logs: LogTarget,
    /// Interface name used for a file source (its JSON `iface` and file names).
    pub label: Option<String>,
    /// How packets are translated.
    pub translator: render::TranslatorSettings,
    /// The capture path of a live source and why (logged at start); `None` for files.
    pub capture_path: Option<Detection>,
    /// Write `.pcap` files too (`--write-pcap`: the ring-less path, instead of tcpdump).
    pub pcap: Option<PcapSettings>,
    /// The flight recorder (`PCAP_TRIGGER`): packets go to a ring, and only the windows
    /// around triggers to `.pcap` files; no other output.
    pub recorder: Option<RecorderSettings>,
    /// Stop after this many packets (`PCAP_PACKET_COUNT`, like `tcpdump -c`).
    pub packet_count: Option<u64>,
}

/// Default number of translation workers: suits the 2-core machines this runs on (capture
/// and the writer need some CPU too).
pub const DEFAULT_WORKERS: usize = 2;
/// Default queue cap, MiB.
pub const DEFAULT_QUEUE_MIB: u64 = 8;
/// Default kernel capture buffer, MiB.
pub const DEFAULT_BUFFER_MIB: u64 = 4;
/// Most bytes pcapd keeps of a live packet, whatever `PCAP_SNAPSHOT_LENGTH` says (the `.pcap`
/// files keep the configured length). libpcap gives each packet a ring frame of snaplen plus
/// ~80 bytes of headers, rounded up to a power-of-two block: at the default 65,536 that is a
/// 128 KiB block per 64 KiB packet, so a 4 MiB buffer maps 8 MiB. The JSON needs headers,
/// not the last bytes of a 64 KiB segment; this cap keeps a frame within 64 KiB blocks.
pub const RING_SNAPLEN_CAP: u32 = 65_400;

impl Settings {
    /// Defaults for a live capture on `iface` writing to stdout.
    pub fn live(iface: &str) -> Self {
        Settings {
            source: SourceSettings::Live(LiveSettings {
                iface: iface.to_string(),
                ..LiveSettings::default()
            }),
            filter: None,
            stdout: true,
            files: None,
            workers: DEFAULT_WORKERS,
            ordered: false,
            queue_bytes: (DEFAULT_QUEUE_MIB as usize) << 20,
            stats_every: Duration::from_secs(60),
            drain: Duration::from_secs(2),
            duration: None,
            ready_dir: None,
            drops_dir: None,
            logs: LogTarget::Stdout,
            label: None,
            translator: render::TranslatorSettings::default(),
            capture_path: None,
            pcap: None,
            recorder: None,
            packet_count: None,
        }
    }

    /// Defaults for translating a file to stdout (logs on stderr).
    pub fn read(path: impl Into<PathBuf>) -> Self {
        Settings {
            source: SourceSettings::File(path.into()),
            logs: LogTarget::Stderr,
            ..Settings::live("any")
        }
    }

    /// The interface name of a file source.
    pub fn file_label(&self) -> String {
        self.label.clone().unwrap_or_else(|| "file".to_string())
    }

    /// Names of the configured outputs.
    pub fn output_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.stdout {
            names.push("stdout");
        }
        if self.files.is_some() {
            names.push("files");
        }
        names
    }
}

/// How one of pcapd's own flags is spelled and explained.
struct Spec {
    long: &'static str,
    /// The environment variable clap reads when the flag is not given.
    env: Option<&'static str>,
    value: &'static str,
    help: &'static str,
}

/// Declares pcapd's own flags from one list: the [`Flag`] variants, their help order
/// ([`Flag::ALL`], which [`command`] registers) and their [`Spec`]s. A flag is read by its
/// variant, so reading one that is not registered cannot be written.
macro_rules! own_flags {
    ($($variant:ident { long: $long:literal, env: $env:expr, value: $value:literal, help: $help:literal $(,)? },)+) => {
        /// One of pcapd's own flags.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Flag {
            $($variant,)+
        }

        impl Flag {
            /// Every flag, in help order.
            const ALL: &'static [Flag] = &[$(Flag::$variant,)+];

            const fn spec(self) -> Spec {
                match self {
                    $(Flag::$variant => Spec { long: $long, env: $env, value: $value, help: $help },)+
                }
            }
        }
    };
}

own_flags! {
    Read {
        long: "read",
        env: None,
        value: "FILE",
        help: "Translate a pcap/pcapng file (gzip too; '-' is stdin) to JSON lines on stdout and exit; logs go to stderr.",
    },
    OutputDir {
        long: "output-dir",
        env: Some("PCAP_OUTPUT_DIR"),
        value: "DIR",
        help: "Directory of the .json files (default: GCS_MOUNT-tmp, the capture directory).",
    },
    Workers {
        long: "workers",
        env: Some("PCAP_WORKERS"),
        value: "N",
        help: "Translation worker threads, 1..=64 (default 2; PCAP_CONNTRACK forces 1).",
    },
    QueueMib {
        long: "queue-mib",
        env: Some("PCAP_QUEUE_MIB"),
        value: "MIB",
        help: "Cap of the capture → translation queue in MiB, 1..=1024 (default 8); when full, new packets are dropped and counted.",
    },
    BufferMib {
        long: "buffer-mib",
        env: Some("PCAP_BUFFER_MIB"),
        value: "MIB",
        help: "Kernel capture buffer in MiB, 1..=1024 (default 4).",
    },
    Promisc {
        long: "promisc",
        env: Some("PCAP_PROMISC"),
        value: "BOOL",
        help: "Promiscuous mode (default true).",
    },
    Immediate {
        long: "immediate",
        env: Some("PCAP_IMMEDIATE"),
        value: "BOOL",
        help: "Deliver packets as they arrive instead of in kernel blocks (default true).",
    },
    ReadyDir {
        long: "ready-dir",
        env: None,
        value: "DIR",
        help: "Raise the capture-ready signal (capture.ready) in DIR once the capture handle is open.",
    },
    StatsSecs {
        long: "stats-secs",
        env: Some("PCAP_STATS_SECS"),
        value: "SECS",
        help: "Seconds between stats lines, 1..=86400 (default 60); one more at exit.",
    },
    DrainMs {
        long: "drain-ms",
        env: Some("PCAP_DRAIN_MS"),
        value: "MS",
        help: "Budget to translate and write what is queued after SIGTERM, 10..=60000 ms (default 2000); live capture only: --read translates every packet it read.",
    },
    Label {
        long: "label",
        env: None,
        value: "NAME",
        help: "Interface name given to a --read file's packets and .json files (default: file).",
    },
    RunId {
        long: "run-id",
        env: Some("PCAP_RUN_ID"),
        value: "ID",
        help: "Run identity stamped on every packet line (pcap.id); default: a new random one.",
    },
    CapturePath {
        long: "capture-path",
        env: None,
        value: "PATH",
        help: "detect (default: PCAP_COMPAT=true forces ring-less, otherwise a packet-ring probe decides), ring (libpcap) or ring-less (AF_PACKET + recvmmsg, for gVisor).",
    },
    WritePcap {
        long: "write-pcap",
        env: None,
        value: "BOOL",
        help: "Also write the .pcap files (names, rotation, snap length and format of tcpdump's) into the output directory; what tcpdumpw asks for on the ring-less path (default false).",
    },
    TriggerEndpoint {
        long: "trigger-endpoint",
        env: None,
        value: "BOOL",
        help: "With PCAP_TRIGGER=...,manual: serve the manual trigger's loopback endpoint on PCAP_TRIGGER_PORT (default true; under tcpdumpw false: tcpdumpw serves it and hands each trigger to every interface's pcapd with SIGUSR2).",
    },
}

impl Flag {
    /// The clap argument; its id is the long name.
    fn arg(self) -> Arg {
        let spec = self.spec();
        let arg = Arg::new(spec.long)
            .long(spec.long)
            .value_name(spec.value)
            .action(ArgAction::Set)
            .help(spec.help);
        // clap reads the variable (a flag wins) and shows its name, never its value.
        match spec.env {
            Some(env) => arg.env(env).hide_env_values(true),
            None => arg,
        }
    }

    /// The flag or its environment variable (clap's `Arg::env`); trimmed, empty = unset.
    fn raw(self, matches: &ArgMatches) -> Option<String> {
        matches
            .get_one::<String>(self.spec().long)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// `invalid --workers (PCAP_WORKERS)="0": …; expected …`.
    fn invalid(self, value: &str, problem: &str, accepted: &str) -> Error {
        let spec = self.spec();
        let name = match spec.env {
            Some(env) => format!("--{} ({env})", spec.long),
            None => format!("--{}", spec.long),
        };
        Error::Settings(format!(
            "invalid {name}={value:?}: {problem}; expected {accepted}"
        ))
    }

    fn path(self, matches: &ArgMatches) -> Option<PathBuf> {
        self.raw(matches).map(PathBuf::from)
    }

    fn number(self, matches: &ArgMatches, default: u64, min: u64, max: u64) -> Result<u64, Error> {
        match self.raw(matches) {
            None => Ok(default),
            Some(value) => parse_u64_in(&value, min, max).map_err(|problem| {
                self.invalid(&value, &problem, &format!("a whole number {min}..={max}"))
            }),
        }
    }

    fn boolean(self, matches: &ArgMatches, default: bool) -> Result<bool, Error> {
        match self.raw(matches) {
            None => Ok(default),
            Some(value) => parse_bool(&value)
                .map_err(|problem| self.invalid(&value, &problem, "true/false/1/0/yes/no")),
        }
    }
}

/// `pcapd`'s command with its own flags (the shared configuration flags are added by
/// `sidecar_core::daemon::start`).
pub fn command() -> Command {
    Command::new("pcapd")
        .about(
            "Captures packets with libpcap, or without packet rings on gVisor (or reads a capture file), and writes them as Cloud Logging JSON lines (and, with --write-pcap, .pcap files)",
        )
        .args(Flag::ALL.iter().map(|flag| flag.arg()))
}

/// `--capture-path`: detect at start, or the path tcpdumpw decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CapturePathChoice {
    /// [`packet_socket::detect`] with `PCAP_COMPAT` (the default).
    Detect,
    /// `ring` / `ring-less`, chosen by tcpdumpw.
    Chosen(CapturePath),
}

/// `pcapd`'s own flags, typed and checked (defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
struct OwnFlags {
    read: Option<PathBuf>,
    /// `None`: the configuration's capture directory.
    output_dir: Option<PathBuf>,
    workers: usize,
    queue_mib: u64,
    buffer_mib: u64,
    promisc: bool,
    immediate: bool,
    ready_dir: Option<PathBuf>,
    stats_secs: u64,
    drain_ms: u64,
    label: Option<String>,
    /// `None`: a new random one.
    run_id: Option<String>,
    capture_path: CapturePathChoice,
    write_pcap: bool,
    trigger_endpoint: bool,
}

impl OwnFlags {
    /// From [`command`]'s matches; the first bad value is the error, named with its flag
    /// and variable.
    fn from_matches(matches: &ArgMatches) -> Result<OwnFlags, Error> {
        let capture_path = match Flag::CapturePath.raw(matches).as_deref() {
            None | Some("detect") => CapturePathChoice::Detect,
            Some("ring") => CapturePathChoice::Chosen(CapturePath::Ring),
            Some("ring-less") => CapturePathChoice::Chosen(CapturePath::RingLess),
            Some(other) => {
                return Err(Flag::CapturePath.invalid(
                    other,
                    "unknown capture path",
                    "detect, ring or ring-less",
                ))
            }
        };
        Ok(OwnFlags {
            read: Flag::Read.path(matches),
            output_dir: Flag::OutputDir.path(matches),
            workers: Flag::Workers.number(matches, DEFAULT_WORKERS as u64, 1, 64)? as usize,
            queue_mib: Flag::QueueMib.number(matches, DEFAULT_QUEUE_MIB, 1, 1024)?,
            buffer_mib: Flag::BufferMib.number(matches, DEFAULT_BUFFER_MIB, 1, 1024)?,
            promisc: Flag::Promisc.boolean(matches, true)?,
            immediate: Flag::Immediate.boolean(matches, true)?,
            ready_dir: Flag::ReadyDir.path(matches),
            stats_secs: Flag::StatsSecs.number(matches, 60, 1, 86_400)?,
            drain_ms: Flag::DrainMs.number(matches, 2_000, 10, 60_000)?,
            label: Flag::Label.raw(matches),
            run_id: Flag::RunId.raw(matches),
            capture_path,
            write_pcap: Flag::WritePcap.boolean(matches, false)?,
            trigger_endpoint: Flag::TriggerEndpoint.boolean(matches, true)?,
        })
    }
}

/// Builds the settings from the validated configuration and `pcapd`'s own flags.
pub fn from_config(config: &Config, matches: &ArgMatches) -> Result<Settings, Error> {
    let OwnFlags {
        read,
        output_dir,
        workers,
        queue_mib,
        buffer_mib,
        promisc,
        immediate,
        ready_dir,
        stats_secs,
        drain_ms,
        label,
        run_id,
        capture_path: chosen_path,
        write_pcap,
        trigger_endpoint,
    } = OwnFlags::from_matches(matches)?;
    let output_dir = output_dir.unwrap_or_else(|| config.capture_dir());
    let run_id = run_id.unwrap_or_else(new_run_id);
    // A file has no capture path (and must not run the probe).
    let capture_path = read.is_none().then(|| capture_path(config, chosen_path));
    let ring_less = capture_path
        .as_ref()
        .is_some_and(|d| d.path == CapturePath::RingLess);
    if ring_less && config.snaplen >= packet_socket::MAX_SNAPLEN {
        return Err(Error::Settings(
            packet_socket::Error::Snaplen(config.snaplen).to_string(),
        ));
    }
    let pcap = (write_pcap && read.is_none()).then(|| PcapSettings {
        dir: output_dir.clone(),
        ext: config.file_ext.clone(),
        rotate: (config.rotate_secs > 0).then(|| Duration::from_secs(config.rotate_secs)),
        snaplen: config.snaplen,
    });

    // The recorder is the only output in its mode: nothing else is written or logged.
    let project_id = ["GOOGLE_CLOUD_PROJECT", "PROJECT_ID"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty());
    let recorder = config.recorder.as_ref().map(|r| RecorderSettings {
        triggers: r.triggers.clone(),
        ring_secs: r.ring_secs,
        ring_bytes: usize::try_from(r.ring_mb << 20).unwrap_or(usize::MAX),
        before_secs: r.before_secs,
        after_secs: r.after_secs,
        cooldown_secs: r.cooldown_secs,
        max_per_hour: r.max_per_hour,
        on_exit: r.on_exit,
        port: r
            .triggers
            .contains(&sidecar_core::config::trigger::Trigger::Manual)
            .then_some(r.port)
            .filter(|_| read.is_none() && trigger_endpoint),
        dir: output_dir.clone(),
        run_dir: config.run_dir.clone(),
        ext: config.file_ext.clone(),
        project_id: project_id.clone(),
        snaplen: config.snaplen,
        json: config.json,
        live: read.is_none(),
    });
    let pcap = pcap.filter(|_| recorder.is_none());
    let files = (config.json && recorder.is_none()).then(|| FileSettings {
        dir: output_dir,
        rotate: (config.rotate_secs > 0).then(|| Duration::from_secs(config.rotate_secs)),
    });
    let (source, stdout, logs, duration) = match read {
        Some(path) => (
            SourceSettings::File(path),
            recorder.is_none(),
            LogTarget::Stderr,
            None,
        ),
        None => (
            {
                let live = LiveSettings {
                    iface: config.iface.clone(),
                    snaplen: config.snaplen,
                    buffer_bytes: u32::try_from(buffer_mib << 20).unwrap_or(u32::MAX),
                    promisc,
                    immediate,
                    ..LiveSettings::default()
                };
                if ring_less {
                    // pcapd writes the `.pcap` files itself here: keep the configured length.
                    SourceSettings::RingLess(live)
                } else {
                    SourceSettings::Live(LiveSettings {
                        snaplen: live.snaplen.min(RING_SNAPLEN_CAP),
                        ..live
                    })
                }
            },
            config.json_log && recorder.is_none(),
            LogTarget::Stdout,
            (config.timeout_secs > 0).then(|| Duration::from_secs(config.timeout_secs)),
        ),
    };
    let mut redact_headers: Vec<String> = ALWAYS_REDACTED_HEADERS
        .iter()
        .map(|h| h.to_string())
        .collect();
    for header in &config.redact_headers {
        if !redact_headers.contains(header) {
            redact_headers.push(header.clone());
        }
    }
    let defaults = render::TranslatorSettings::default();
    let log_name = match &project_id {
        Some(project) => format!("projects/{project}/pcap/{run_id}"),
        None => format!("pcap/{run_id}"),
    };
    let translator = render::TranslatorSettings {
        run_id,
        log_name,
        project_id,
        verbosity: config.verbosity,
        ephemeral_ports: ephemeral_ports().unwrap_or(defaults.ephemeral_ports),
        redact_headers,
        max_entry_bytes: config.max_entry_bytes,
        state_bytes: usize::try_from(config.state_mib << 20).unwrap_or(usize::MAX),
        ..defaults
    };
    Ok(Settings {
        source,
        filter: config.filter.clone(),
        stdout,
        files,
        workers: if config.conntrack { 1 } else { workers },
        ordered: config.ordered || config.conntrack,
        queue_bytes: (queue_mib as usize) << 20,
        stats_every: Duration::from_secs(stats_secs),
        drain: Duration::from_millis(drain_ms),
        duration,
        drops_dir: ready_dir.as_ref().map(|_| config.run_dir.clone()),
        ready_dir,
        logs,
        label,
        translator,
        capture_path,
        pcap,
        recorder,
        packet_count: (config.packet_count > 0).then_some(config.packet_count),
    })
}

/// `--capture-path`: `detect` (the default) runs [`packet_socket::detect`] with
/// `PCAP_COMPAT`; `ring` / `ring-less` are tcpdumpw's decision, passed on.
fn capture_path(config: &Config, choice: CapturePathChoice) -> Detection {
    match choice {
        CapturePathChoice::Detect => packet_socket::detect(config.compat),
        CapturePathChoice::Chosen(path) => Detection {
            path,
            reason: format!("chosen by tcpdumpw (--capture-path={path})"),
            forced: config.compat,
            probe_error: None,
            gvisor_hint: packet_socket::gvisor_hint(),
        },
    }
}

/// The kernel's ephemeral port range, used to tell clients from servers.
fn ephemeral_ports() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut parts = text.split_whitespace().map(|p| p.parse::<u16>());
    match (parts.next(), parts.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => Some((low, high)),
        _ => None,
    }
}

/// `pcapd/<uuid>` from the kernel's random UUID source (no extra dependency).
fn new_run_id() -> String {
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|u| u.trim().to_string())
        .unwrap_or_else(|_| {
            format!(
                "{}-{}",
                std::process::id(),
                chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
            )
        });
    format!("pcapd/{uuid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, Error> {
        let matches = command()
            .args(sidecar_core::config::args())
            .try_get_matches_from(std::iter::once("pcapd").chain(args.iter().copied()))
            .unwrap();
        let config = sidecar_core::config::from_matches(&matches).unwrap();
        from_config(&config, &matches)
    }

    /// pcap-init must not call pcapd's variables unknown.
    #[test]
    fn every_flag_variable_is_known_to_the_unknown_variable_check() {
        for flag in Flag::ALL {
            if let Some(env) = flag.spec().env {
                assert!(sidecar_core::daemon::OTHER_KNOWN.contains(&env), "{env}");
            }
        }
    }

    /// clap reads a flag's variable; the flag wins over it.
    #[test]
    fn flag_variables_are_read_by_clap() {
        let command = command().args(sidecar_core::config::args());
        let matches = command
            .clone()
            .try_get_matches_from(["pcapd", "--workers", "3"])
            .unwrap();
        assert_eq!(Flag::Workers.raw(&matches).as_deref(), Some("3"));
        let help = command.clone().render_help().to_string();
        assert!(help.contains("[env: PCAP_WORKERS]"), "{help}");
    }

    /// Every flag is registered once, beside the configuration's flags (clap's own checks:
    /// no id or long name twice).
    #[test]
    fn own_flags_and_configuration_flags_do_not_collide() {
        command().args(sidecar_core::config::args()).debug_assert();
        let longs: Vec<&str> = Flag::ALL.iter().map(|flag| flag.spec().long).collect();
        let help = command().render_help().to_string();
        for long in &longs {
            assert!(help.contains(&format!("--{long} <")), "{long}: {help}");
        }
    }

    /// The README's "Daemon flags" table lists pcapd's flags as `--help` does: each one, in
    /// help order, with its value name and variable.
    #[test]
    fn readme_lists_every_own_flag() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("\n## Daemon flags")
            .nth(1)
            .expect("a '## Daemon flags' section");
        let documented: Vec<&str> = section
            .lines()
            .filter_map(|line| line.strip_prefix("| `pcapd` | "))
            .filter_map(|rest| rest.split(" | ").next())
            .collect();
        let expected: Vec<String> = Flag::ALL
            .iter()
            .map(|flag| {
                let spec = flag.spec();
                match spec.env {
                    Some(env) => format!("`--{} {}` (`{env}`)", spec.long, spec.value),
                    None => format!("`--{} {}`", spec.long, spec.value),
                }
            })
            .collect();
        assert_eq!(documented, expected);
    }

    /// Nothing given: the documented defaults.
    #[test]
    fn own_flags_default_to_what_help_says() {
        let matches = command().try_get_matches_from(["pcapd"]).unwrap();
        // Unless the test's own environment sets one of the variables.
        if Flag::ALL
            .iter()
            .filter_map(|flag| flag.spec().env)
            .any(|env| std::env::var_os(env).is_some())
        {
            return;
        }
        assert_eq!(
            OwnFlags::from_matches(&matches).unwrap(),
            OwnFlags {
                read: None,
                output_dir: None,
                workers: 2,
                queue_mib: 8,
                buffer_mib: 4,
                promisc: true,
                immediate: true,
                ready_dir: None,
                stats_secs: 60,
                drain_ms: 2_000,
                label: None,
                run_id: None,
                capture_path: CapturePathChoice::Detect,
                write_pcap: false,
                trigger_endpoint: true,
            }
        );
    }

    /// Every value is typed: numbers in range, booleans in any accepted spelling, the
    /// capture path one of three; blanks are unset.
    #[test]
    fn own_flags_are_typed() {
        let matches = command()
            .try_get_matches_from([
                "pcapd",
                "--read",
                " /tmp/x.pcap ",
                "--workers",
                "64",
                "--queue-mib",
                "1024",
                "--buffer-mib",
                "1",
                "--promisc",
                "no",
                "--immediate",
                "0",
                "--stats-secs",
                "86400",
                "--drain-ms",
                "10",
                "--label",
                "eth9",
                "--run-id",
                "   ",
                "--capture-path",
                "ring",
                "--write-pcap",
                "YES",
                "--trigger-endpoint",
                "false",
                "--output-dir",
                "/o",
                "--ready-dir",
                "/r",
            ])
            .unwrap();
        assert_eq!(
            OwnFlags::from_matches(&matches).unwrap(),
            OwnFlags {
                read: Some("/tmp/x.pcap".into()),
                output_dir: Some("/o".into()),
                workers: 64,
                queue_mib: 1024,
                buffer_mib: 1,
                promisc: false,
                immediate: false,
                ready_dir: Some("/r".into()),
                stats_secs: 86_400,
                drain_ms: 10,
                label: Some("eth9".into()),
                run_id: None,
                capture_path: CapturePathChoice::Chosen(CapturePath::Ring),
                write_pcap: true,
                trigger_endpoint: false,
            }
        );
    }

    #[test]
    fn read_mode_writes_stdout_and_logs_to_stderr() {
        let s = parse(&["--read", "/tmp/x.pcap"]).unwrap();
        assert_eq!(s.source, SourceSettings::File("/tmp/x.pcap".into()));
        assert!(s.stdout && s.files.is_none());
        assert_eq!(s.logs, LogTarget::Stderr);
        assert_eq!(s.workers, DEFAULT_WORKERS);
    }

    #[test]
    fn live_mode_follows_the_shared_configuration() {
        let s = parse(&[
            "--iface",
            "eth0",
            "--json",
            "--rotate-secs",
            "5",
            "--conntrack",
            "--filter",
            "icmp",
            "--output-dir",
            "/tmp/out",
            "--buffer-mib",
            "8",
        ])
        .unwrap();
        let SourceSettings::Live(live) = &s.source else {
            panic!("live")
        };
        assert_eq!((live.iface.as_str(), live.buffer_bytes), ("eth0", 8 << 20));
        assert!(!s.stdout);
        assert_eq!(
            s.files,
            Some(FileSettings {
                dir: "/tmp/out".into(),
                rotate: Some(Duration::from_secs(5))
            })
        );
        assert_eq!(
            (s.workers, s.ordered),
            (1, true),
            "conntrack: one worker, ordered"
        );
        assert_eq!(s.filter.as_deref(), Some("icmp"));
    }

    #[test]
    fn ring_less_path_writes_pcap_and_refuses_unlimited_snaplen() {
        let s = parse(&[
            "--iface",
            "eth0",
            "--capture-path",
            "ring-less",
            "--write-pcap",
            "true",
            "--rotate-secs",
            "7",
            "--output-dir",
            "/tmp/out",
        ])
        .unwrap();
        assert!(matches!(&s.source, SourceSettings::RingLess(live) if live.iface == "eth0"));
        let pcap = s.pcap.unwrap();
        assert_eq!(
            (pcap.dir, pcap.ext.as_str(), pcap.rotate, pcap.snaplen),
            (
                PathBuf::from("/tmp/out"),
                "pcap",
                Some(Duration::from_secs(7)),
                65536
            )
        );
        let path = s.capture_path.unwrap();
        assert!(path.reason.contains("tcpdumpw"), "{path:?}");

        let forced = parse(&["--compat", "--snapshot-length", "1500"]).unwrap();
        assert!(matches!(forced.source, SourceSettings::RingLess(_)));
        assert!(forced
            .capture_path
            .unwrap()
            .reason
            .contains("PCAP_COMPAT=true"));

        let error = parse(&["--capture-path", "ring-less", "--snapshot-length", "0"]).unwrap_err();
        assert_eq!(error.exit_code(), sidecar_core::exit::BAD_CONFIG);
        assert!(
            error.to_string().contains("PCAP_SNAPSHOT_LENGTH=0"),
            "{error}"
        );
        // The ring path keeps "unlimited".
        assert!(parse(&["--capture-path", "ring", "--snapshot-length", "0"]).is_ok());

        let error = parse(&["--capture-path", "rings"]).unwrap_err().to_string();
        assert!(
            error.contains("--capture-path") && error.contains("ring-less"),
            "{error}"
        );
    }

    #[test]
    fn bad_values_name_the_flag_and_the_accepted_form() {
        let error = parse(&["--workers", "0"]).unwrap_err().to_string();
        assert!(
            error.contains("--workers (PCAP_WORKERS)") && error.contains("1..=64"),
            "{error}"
        );
        let error = parse(&["--promisc", "maybe"]).unwrap_err();
        assert_eq!(error.exit_code(), sidecar_core::exit::BAD_CONFIG);
        let cases: [(&[&str], &str); 4] = [
            (
                &["--workers", "0"],
                r#"invalid --workers (PCAP_WORKERS)="0": 0 is outside 1..=64; expected a whole number 1..=64"#,
            ),
            (
                &["--drain-ms", "ten"],
                r#"invalid --drain-ms (PCAP_DRAIN_MS)="ten": not a whole number; expected a whole number 10..=60000"#,
            ),
            (
                &["--trigger-endpoint", "maybe"],
                r#"invalid --trigger-endpoint="maybe": not a boolean; expected true/false/1/0/yes/no"#,
            ),
            // A file has no capture path, but a misspelt one is still refused.
            (
                &["--read", "/tmp/x.pcap", "--capture-path", "rings"],
                r#"invalid --capture-path="rings": unknown capture path; expected detect, ring or ring-less"#,
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(parse(args).unwrap_err().to_string(), expected, "{args:?}");
        }
    }
}

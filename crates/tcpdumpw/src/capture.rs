//! The capture children of one interface: their command lines and their file names.
//!
//! - [`tcpdump_spec`]: `tcpdump -n -Z root -i IFACE -s SNAPLEN -B KIB --immediate-mode -U -w
//!   FILE [-G SECS] [FILTER]` with `TZ=UTC`. `-U` (packet-buffered) and `--immediate-mode`
//!   make every packet reach the file before SIGTERM ends tcpdump (with TPACKET_V3 and no
//!   immediate mode, the last second of packets never arrives); `-Z root` keeps the rotated
//!   files writable (Debian's tcpdump drops to user `tcpdump` otherwise).
//! - [`pcapd_spec`]: `pcapd --iface IFACE --filter=FILTER --ready-dir DIR --capture-path=PATH
//!   --write-pcap=BOOL` for the JSON outputs, with the same interface and final filter; it
//!   signals an open handle by raising the readiness file in its own DIR. On the ring-less
//!   path (gVisor, `docs/capture-paths.md`) no tcpdump runs: this one pcapd also writes the
//!   `.pcap` files (`--write-pcap=true`), with tcpdump's names, rotation and format.
//! - [`NameGuard`]: a file name is never reused. tcpdump opens its file with truncation, and
//!   its name has one-second resolution, so a capture of an interface is only (re)started in
//!   a second later than the one its previous tcpdump ended in, and whose name is free. It is
//!   the name rule of `sidecar_core::rotating::RotatingFile` (remember the last name, never
//!   take one in the directory) for files whose names tcpdump picks itself, where no `-n`
//!   suffix can be added.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use child_process::{ChildSpec, StreamHandling};
use chrono::{DateTime, SubsecRound, Utc};
use nix::sys::signal::Signal;
use sidecar_core::naming::{tcpdump_template, CaptureFileName};

/// Variables pcapd must not apply itself: tcpdumpw hands it the final filter (`--filter`),
/// and schedules and stops it (its own `PCAP_TIMEOUT_SECS` would end it, and the exit would
/// look like a crash). They are set empty (= default) or neutral in pcapd's environment, so
/// that neither tcpdumpw's own environment nor its flags reach pcapd for these.
const PCAPD_NEUTRAL_ENV: &[(&str, &str)] = &[
    ("PCAP_L3_PROTOS", ""),
    ("PCAP_L4_PROTOS", ""),
    ("PCAP_IPV4", ""),
    ("PCAP_IPV6", ""),
    ("PCAP_HOSTS", ""),
    ("PCAP_PORTS", ""),
    ("PCAP_TCP_FLAGS", ""),
    ("PCAP_FILTER", ""),
    ("PCAP_USE_CRON", "false"),
    ("PCAP_CRON_EXP", ""),
    ("PCAP_TIMEOUT_SECS", "0"),
];

/// What every capture child of a run shares.
#[derive(Debug, Clone)]
pub struct CaptureSettings {
    /// The capture directory (`GCS_MOUNT-tmp`).
    pub dir: PathBuf,
    /// File extension of packet files.
    pub ext: String,
    /// Bytes kept per packet.
    pub snaplen: u32,
    /// `-G`; 0 means one file per tcpdump run.
    pub rotate_secs: u64,
    /// Kernel capture buffer (`-B`), KiB.
    pub buffer_kib: u32,
    /// The BPF filter text; empty captures every packet.
    pub filter: String,
    /// The tcpdump program.
    pub tcpdump: PathBuf,
    /// The pcapd program.
    pub pcapd: PathBuf,
    /// `PCAP_RUN_DIR`: pcapd raises its own readiness signal in a directory below it.
    pub run_dir: PathBuf,
    /// The configuration as variables, passed to pcapd so flags given to tcpdumpw reach it.
    pub config_env: Vec<(&'static str, String)>,
    /// The ring-less capture path: pcapd captures alone and writes the `.pcap` files.
    pub ring_less: bool,
    /// Whether `.pcap` files are wanted (`PCAP_TCPDUMP`).
    pub pcap_files: bool,
    /// The flight recorder (`PCAP_TRIGGER`): pcapd captures alone and writes the trigger
    /// windows; no tcpdump runs, on either path.
    pub recorder: bool,
    /// `-c` of each tcpdump (`PCAP_PACKET_COUNT`); 0: no limit. pcapd reads the variable.
    pub packet_count: u64,
}

/// Child name of an interface's tcpdump (`tcpdump[eth0]`).
pub fn tcpdump_name(iface: &str) -> String {
    format!("tcpdump[{iface}]")
}

/// Child name of an interface's pcapd (`pcapd[eth0]`).
pub fn pcapd_name(iface: &str) -> String {
    format!("pcapd[{iface}]")
}

/// Where tcpdump writes: the strftime template with rotation, otherwise one fixed name that
/// is a valid capture file name not used in the directory yet.
pub fn tcpdump_target(settings: &CaptureSettings, iface: &str, now: DateTime<Utc>) -> PathBuf {
    if settings.rotate_secs > 0 {
        settings.dir.join(tcpdump_template(iface, &settings.ext))
    } else {
        let name = CaptureFileName::new(iface, now.trunc_subsecs(0), &settings.ext)
            .unused_in(&settings.dir);
        settings.dir.join(name.to_string())
    }
}

/// tcpdump's arguments for `iface`, writing to `target`.
pub fn tcpdump_args(settings: &CaptureSettings, iface: &str, target: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "-n",
        "-Z",
        "root",
        "-i",
        iface,
        "-s",
        &settings.snaplen.to_string(),
        "-B",
        &settings.buffer_kib.to_string(),
        "--immediate-mode",
        "-U",
        "-w",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(target.as_os_str().to_owned());
    if settings.packet_count > 0 {
        args.push("-c".into());
        args.push(settings.packet_count.to_string().into());
    }
    if settings.rotate_secs > 0 {
        args.push("-G".into());
        args.push(settings.rotate_secs.to_string().into());
    }
    if !settings.filter.is_empty() {
        // One argv element: tcpdump joins the rest of its arguments into the expression.
        args.push(settings.filter.clone().into());
    }
    args
}

/// The tcpdump child of `iface`.
pub fn tcpdump_spec(settings: &CaptureSettings, iface: &str, now: DateTime<Utc>) -> ChildSpec {
    let target = tcpdump_target(settings, iface, now);
    let mut spec = ChildSpec::new(tcpdump_name(iface), &settings.tcpdump)
        .args(tcpdump_args(settings, iface, &target))
        // strftime in the file name expands in local time: make that UTC like every name.
        .env("TZ", "UTC")
        // A killed tcpdumpw must not leave a tcpdump writing a file: SIGTERM
        // makes it close the file whole.
        .on_parent_death(Signal::SIGTERM)
        // Its answers to the counters polls are read, not logged (one line a second).
        .quiet_lines(is_counters_answer);
    if settings.packet_count > 0 {
        spec = spec.done_on_success();
    }
    spec
}

/// Where the pcapd of `iface` raises its readiness signal (its capture handle is open):
/// a directory of its own, so it never raises the sidecar's `capture.ready` itself.
pub fn pcapd_ready_dir(settings: &CaptureSettings, iface: &str) -> PathBuf {
    settings.run_dir.join(format!("pcapd-{iface}"))
}

/// The pcapd child of `iface`: the configuration through the environment (filters, cron and
/// timeout neutralised, see [`PCAPD_NEUTRAL_ENV`]), the interface and the final filter as
/// flags, and a readiness directory of its own. Its stdout is inherited: packet JSON lines
/// are already Cloud Logging lines, and wrapping them would cost a parse per packet.
///
/// With the recorder, no pcapd serves the manual trigger's endpoint: tcpdumpw does, and
/// passes each trigger to every pcapd (SIGUSR2 and the reason file).
pub fn pcapd_spec(settings: &CaptureSettings, iface: &str) -> ChildSpec {
    let ready_dir = pcapd_ready_dir(settings, iface);
    let mut spec = ChildSpec::new(pcapd_name(iface), &settings.pcapd)
        .on_parent_death(Signal::SIGTERM)
        .args(["--iface", iface])
        // `=`: a filter is one value even if it starts with '-'.
        .args([format!("--filter={}", settings.filter)])
        .args([OsString::from("--ready-dir"), ready_dir.into_os_string()])
        .args([
            format!(
                "--capture-path={}",
                if settings.ring_less {
                    "ring-less"
                } else {
                    "ring"
                }
            ),
            format!("--write-pcap={}", settings.ring_less && settings.pcap_files),
        ]);
    if settings.recorder {
        spec = spec.args(["--trigger-endpoint=false"]);
    }
    if settings.ring_less || settings.recorder {
        // This pcapd replaces tcpdump: it gets tcpdump's buffer.
        spec = spec.args([format!(
            "--buffer-mib={}",
            (settings.buffer_kib / 1024).max(1)
        )]);
    }
    for (name, value) in &settings.config_env {
        if !PCAPD_NEUTRAL_ENV.iter().any(|(neutral, _)| neutral == name) {
            spec = spec.env(*name, value);
        }
    }
    for (name, value) in PCAPD_NEUTRAL_ENV {
        spec = spec.env(*name, *value);
    }
    spec.stdout = StreamHandling::Inherit;
    spec.stderr = StreamHandling::Wrap;
    spec.done_on_success = settings.packet_count > 0;
    spec
}

/// Whether a tcpdump line is its answer to SIGUSR1 (`tcpdump: 5 packets captured, 9 packets
/// received by filter, 0 packets dropped by kernel`), which tcpdumpw asks for every second.
pub fn is_counters_answer(text: &str) -> bool {
    text.starts_with("tcpdump: ") && text.contains(" packets captured, ")
}

/// The kernel drops in a tcpdump counters line: its answer to SIGUSR1, or its last words
/// (`0 packets dropped by kernel`).
pub fn kernel_drops(text: &str) -> Option<u64> {
    let before = text.split(" packets dropped by kernel").next()?;
    if before.len() == text.len() {
        return None;
    }
    before.rsplit([' ', ',']).next()?.parse().ok()
}

/// Whether a tcpdump output line says its capture handle is open (`listening on eth0,
/// link-type …`).
pub fn says_listening(text: &str) -> bool {
    text.contains("listening on ")
}

/// Milliseconds after a second boundary during which no capture starts (see
/// [`NameGuard::may_start`]); the coarse clock lags by at most one kernel tick (≤ 10 ms).
pub const COARSE_CLOCK_MARGIN_MS: u32 = 30;

/// Remembers, per interface, the last second in which one of its captures ran, so that a new
/// capture never gets a file name an earlier one had (see the module docs).
#[derive(Debug, Default)]
pub struct NameGuard {
    last_second: HashMap<String, i64>,
}

impl NameGuard {
    /// Notes that a capture of `iface` was running at `at`.
    pub fn note(&mut self, iface: &str, at: DateTime<Utc>) {
        let second = at.timestamp();
        let entry = self.last_second.entry(iface.to_string()).or_insert(second);
        *entry = (*entry).max(second);
    }

    /// May a capture of `iface` start at `now`? Only in a later second than the last one
    /// noted, and (with rotation, where tcpdump picks the name) when no file of that second
    /// exists in the directory (a previous tcpdumpw process's file).
    pub fn may_start(&self, settings: &CaptureSettings, iface: &str, now: DateTime<Utc>) -> bool {
        // tcpdump names its file with time(2), which reads the kernel's coarse clock: in the
        // first milliseconds of a second it still says the previous one. Starting then
        // could give a name one second older than `now`.
        if now.timestamp_subsec_millis() < COARSE_CLOCK_MARGIN_MS {
            return false;
        }
        if self
            .last_second
            .get(iface)
            .is_some_and(|last| now.timestamp() <= *last)
        {
            return false;
        }
        if settings.rotate_secs == 0 {
            // The fixed name gets a `-<n>` suffix when taken: no need to wait.
            return true;
        }
        !CaptureFileName::new(iface, now.trunc_subsecs(0), &settings.ext).is_taken_in(&settings.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn settings(dir: &Path, rotate_secs: u64, filter: &str) -> CaptureSettings {
        CaptureSettings {
            dir: dir.to_path_buf(),
            ext: "pcap".into(),
            snaplen: 65536,
            rotate_secs,
            buffer_kib: 4096,
            filter: filter.into(),
            tcpdump: "tcpdump".into(),
            pcapd: "/usr/local/bin/pcapd".into(),
            run_dir: "/run/pcap-sidecar".into(),
            config_env: vec![
                ("PCAP_JSON", "true".into()),
                ("PCAP_PORTS", "443".into()),
                ("PCAP_TIMEOUT_SECS", "60".into()),
            ],
            ring_less: false,
            recorder: false,
            packet_count: 0,
            pcap_files: true,
        }
    }

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 7, 8, second).unwrap()
            + chrono::Duration::milliseconds(500)
    }

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_packet_count_is_tcpdumps_c_and_ends_both_children_for_good() {
        let mut s = settings(Path::new("/pcap-tmp"), 60, "");
        assert!(!strings(&tcpdump_spec(&s, "eth0", at(9)).args).contains(&"-c".to_string()));
        s.packet_count = 25;
        let tcpdump = tcpdump_spec(&s, "eth0", at(9));
        let args = strings(&tcpdump.args);
        let c = args.iter().position(|a| a == "-c").unwrap();
        assert_eq!(args[c + 1], "25");
        assert!(tcpdump.done_on_success && pcapd_spec(&s, "eth0").done_on_success);
    }

    #[test]
    fn tcpdump_command_line_with_rotation() {
        let s = settings(Path::new("/pcap-tmp"), 60, "(ip) and (tcp)");
        let spec = tcpdump_spec(&s, "eth0", at(9));
        assert_eq!(spec.name, "tcpdump[eth0]");
        assert_eq!(
            strings(&spec.args),
            [
                "-n",
                "-Z",
                "root",
                "-i",
                "eth0",
                "-s",
                "65536",
                "-B",
                "4096",
                "--immediate-mode",
                "-U",
                "-w",
                "/pcap-tmp/eth0_part_%Y%m%dT%H%M%SZ.pcap",
                "-G",
                "60",
                "(ip) and (tcp)"
            ]
        );
        assert!(spec.env.contains(&("TZ".into(), "UTC".into())));
    }

    #[test]
    fn without_rotation_the_name_is_fixed_valid_and_unused() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), 0, "");
        let args = strings(&tcpdump_spec(&s, "eth0", at(9)).args);
        assert!(!args.contains(&"-G".to_string()), "{args:?}");
        // No filter: no expression argument, the file name is last.
        let target = PathBuf::from(args.last().unwrap());
        let name = target.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "eth0_part_20261126T070809Z.pcap");
        assert!(CaptureFileName::parse(name).is_some());
        std::fs::write(&target, b"earlier").unwrap();
        let again = strings(&tcpdump_spec(&s, "eth0", at(9)).args);
        assert!(
            again
                .last()
                .unwrap()
                .ends_with("eth0_part_20261126T070809Z-1.pcap"),
            "{again:?}"
        );
    }

    #[test]
    fn pcapd_gets_interface_filter_and_configuration() {
        let s = settings(Path::new("/pcap-tmp"), 60, "(udp)");
        let spec = pcapd_spec(&s, "eth0");
        assert_eq!(spec.name, "pcapd[eth0]");
        assert_eq!(spec.program, PathBuf::from("/usr/local/bin/pcapd"));
        assert_eq!(
            strings(&spec.args),
            [
                "--iface",
                "eth0",
                "--filter=(udp)",
                "--ready-dir",
                "/run/pcap-sidecar/pcapd-eth0",
                "--capture-path=ring",
                "--write-pcap=false"
            ]
        );
        let env = |name: &str| {
            spec.env
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(env("PCAP_JSON").as_deref(), Some("true"));
        // The final filter replaces the simple filters; tcpdumpw times the runs.
        assert_eq!(env("PCAP_PORTS").as_deref(), Some(""));
        assert_eq!(env("PCAP_TIMEOUT_SECS").as_deref(), Some("0"));
        assert_eq!(env("PCAP_USE_CRON").as_deref(), Some("false"));
        assert_eq!(spec.stdout, StreamHandling::Inherit);
        assert_eq!(spec.stderr, StreamHandling::Wrap);
    }

    #[test]
    fn the_recorder_pcapd_gets_the_buffer_and_no_endpoint() {
        let mut s = settings(Path::new("/pcap-tmp"), 60, "(udp)");
        s.recorder = true;
        for iface in ["eth0", "eth1"] {
            let args = strings(&pcapd_spec(&s, iface).args);
            assert!(
                args.ends_with(&[
                    "--trigger-endpoint=false".to_string(),
                    "--buffer-mib=4".to_string()
                ]),
                "{args:?}"
            );
        }
    }

    #[test]
    fn ring_less_pcapd_writes_the_pcap_files() {
        let mut s = settings(Path::new("/pcap-tmp"), 60, "(udp)");
        s.ring_less = true;
        let args = strings(&pcapd_spec(&s, "eth0").args);
        assert!(args.ends_with(&[
            "--capture-path=ring-less".to_string(),
            "--write-pcap=true".to_string(),
            "--buffer-mib=4".to_string()
        ]));
        s.pcap_files = false;
        let args = strings(&pcapd_spec(&s, "eth0").args);
        assert!(args.contains(&"--write-pcap=false".to_string()), "{args:?}");
    }

    #[test]
    fn listening_lines() {
        assert!(says_listening(
            "tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 65536 bytes"
        ));
        assert!(!says_listening("tcpdump: eth9: No such device exists"));
    }

    #[test]
    fn a_name_is_never_reused_within_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), 60, "");
        let mut guard = NameGuard::default();
        assert!(guard.may_start(&s, "eth0", at(9)));
        // Not in the first milliseconds of a second: tcpdump's clock may still say the last.
        let boundary = at(9) - chrono::Duration::milliseconds(495);
        assert!(!guard.may_start(&s, "eth0", boundary));
        guard.note("eth0", at(9));
        assert!(!guard.may_start(&s, "eth0", at(9)));
        assert!(guard.may_start(&s, "eth1", at(9)), "per interface");
        assert!(guard.may_start(&s, "eth0", at(10)));
        // A file of that second already exists (another process wrote it): wait.
        std::fs::write(dir.path().join("eth0_part_20261126T070811Z.pcap.gz"), b"x").unwrap();
        assert!(!guard.may_start(&s, "eth0", at(11)));
        assert!(guard.may_start(&s, "eth0", at(12)));
    }
}

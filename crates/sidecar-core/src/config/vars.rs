//! The table of configuration variables: name, command-line flag, default, accepted form.
//!
//! This table is the single source for `--help`, error messages and the README's
//! configuration table (a test checks the README lists exactly these variables).

/// One configuration variable.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    /// Environment variable name.
    pub name: &'static str,
    /// Long command-line flag (without `--`).
    pub flag: &'static str,
    /// Default as text; `None` when unset by default.
    pub default: Option<&'static str>,
    /// What values are accepted, as shown in error messages.
    pub accepted: &'static str,
    /// What it does.
    pub help: &'static str,
    /// Boolean variables may be given as a bare flag (`--compress` = `--compress=true`).
    pub boolean: bool,
    /// Where `--help` lists it.
    pub group: Group,
    /// The daemons that read it (bits of [`Daemon`]): only they offer its flag and read its
    /// environment variable. A daemon that passes the configuration on to another (pcap-init
    /// to all, tcpdumpw to pcapd) reads what it passes.
    pub readers: u8,
}

/// The daemons, as bits of [`Var::readers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    /// PID 1: reads everything, passes it to its children.
    PcapInit = 1,
    /// Capture orchestrator; passes pcapd's variables on to pcapd.
    Tcpdumpw = 2,
    /// Capturer/translator.
    Pcapd = 4,
    /// Exporter.
    PcapFsnotify = 8,
    /// Startup probe.
    HcProbe = 16,
}

impl Daemon {
    /// Every daemon.
    pub const ALL: [Daemon; 5] = [
        Daemon::PcapInit,
        Daemon::Tcpdumpw,
        Daemon::Pcapd,
        Daemon::PcapFsnotify,
        Daemon::HcProbe,
    ];

    /// The daemon of a binary (and log module) name.
    pub fn from_name(name: &str) -> Option<Daemon> {
        Daemon::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The binary's name.
    pub fn name(self) -> &'static str {
        match self {
            Daemon::PcapInit => "pcap-init",
            Daemon::Tcpdumpw => "tcpdumpw",
            Daemon::Pcapd => "pcapd",
            Daemon::PcapFsnotify => "pcap-fsnotify",
            Daemon::HcProbe => "hc-probe",
        }
    }
}

/// Bit masks of [`Var::readers`].
const INIT: u8 = Daemon::PcapInit as u8;
const PCAPD: u8 = INIT | Daemon::Pcapd as u8 | Daemon::Tcpdumpw as u8;
const TCPDUMPW: u8 = INIT | Daemon::Tcpdumpw as u8;
const FSNOTIFY: u8 = INIT | Daemon::PcapFsnotify as u8;
const HC_PROBE: u8 = INIT | Daemon::HcProbe as u8;
const EVERY: u8 = 0b1_1111;

/// The `--help` sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Interfaces and how packets are read.
    Capture,
    /// What is captured.
    Filters,
    /// Outputs and packet translation.
    Output,
    /// Files, buckets and export.
    Export,
    /// When captures run.
    Schedule,
    /// Probe, logs, shutdown, process graph.
    Runtime,
    /// Not yet sorted into a group.
    Other,
}

impl Group {
    /// The heading in `--help`.
    pub fn heading(self) -> &'static str {
        match self {
            Group::Capture => "Capture",
            Group::Filters => "Filters",
            Group::Output => "Outputs and translation",
            Group::Export => "Files and export",
            Group::Schedule => "Schedule",
            Group::Runtime => "Runtime",
            Group::Other => "Configuration",
        }
    }
}

impl Var {
    /// Sets the help group and the daemons that read the variable.
    const fn used_by(self, group: Group, readers: u8) -> Var {
        Var {
            group,
            readers,
            ..self
        }
    }

    /// Whether `daemon` reads this variable.
    pub fn read_by(&self, daemon: Daemon) -> bool {
        self.readers & daemon as u8 != 0
    }
}

const fn var(
    name: &'static str,
    flag: &'static str,
    default: Option<&'static str>,
    accepted: &'static str,
    help: &'static str,
) -> Var {
    Var {
        name,
        flag,
        default,
        accepted,
        help,
        boolean: false,
        group: Group::Other,
        readers: EVERY,
    }
}

const fn boolean(name: &'static str, flag: &'static str, default: bool, help: &'static str) -> Var {
    Var {
        name,
        flag,
        default: Some(if default { "true" } else { "false" }),
        accepted: "true/false/1/0/yes/no (any case)",
        help,
        boolean: true,
        group: Group::Other,
        readers: EVERY,
    }
}

/// Every variable, in README order.
pub const VARS: &[Var] = &[
    var("PCAP_IFACE", "iface", Some("eth"),
        "an interface name prefix (e.g. eth, ens) or 'any'",
        "Prefix of the interfaces to capture on: eth captures eth0, eth1, ipvlan-eth0 …; 'any' captures all interfaces through the Linux cooked header.")
        .used_by(Group::Capture, PCAPD),
    boolean("PCAP_LOOPBACK", "loopback", false,
        "Also capture on the loopback interface lo (traffic between containers of the instance); with PCAP_IFACE=any the pseudo-device sees loopback traffic whatever this says.")
        .used_by(Group::Capture, TCPDUMPW),
    var("PCAP_GCS_BUCKET", "gcs-bucket", None,
        "a Cloud Storage bucket name, without gs://",
        "Bucket that receives the files. Unset: files are exported into the plain directory GCS_MOUNT (a Cloud Run volume mount, a Kubernetes volume, a local directory).")
        .used_by(Group::Export, FSNOTIFY | TCPDUMPW),
    boolean("PCAP_GCS_FUSE", "gcs-fuse", true,
        "With a bucket: true mounts it at GCS_MOUNT with gcsfuse; false uploads through the Cloud Storage JSON API.")
        .used_by(Group::Export, FSNOTIFY),
    var("PCAP_GCS_PREFIX", "gcs-prefix", None,
        "'/'-separated path segments (no empty, '.' or '..' segments)",
        "Prefix put before the PROJECT/SERVICE/REGION/REVISION/TIMESTAMP/INSTANCE path of every object.")
        .used_by(Group::Export, FSNOTIFY),
    var("GCS_MOUNT", "gcs-mount", Some("/pcap"),
        "an absolute directory path other than /",
        "Where the bucket is mounted (or the export directory without a bucket). Capture files are written to GCS_MOUNT-tmp first.")
        .used_by(Group::Export, PCAPD | FSNOTIFY),
    var("PCAP_L3_PROTOS", "l3-protos", Some("ipv4,ipv6"),
        "comma list of ipv4, ipv6, arp (also ip, ip4, ip6, 4, 41, 0x0806 …), or ALL",
        "Network-layer protocols to capture.")
        .used_by(Group::Filters, TCPDUMPW),
    var("PCAP_L4_PROTOS", "l4-protos", Some("tcp,udp"),
        "comma list of tcp, udp, icmp, icmp6 (also 6, 17, 1, 58 …), or ALL",
        "Transport-layer protocols to capture (ICMP is only captured when listed).")
        .used_by(Group::Filters, TCPDUMPW),
    var("PCAP_IPV4", "ipv4", Some("DISABLED"),
        "comma list of IPv4 addresses or CIDR networks without host bits, or DISABLED/ALL",
        "Capture only traffic to/from these IPv4 addresses or networks.")
        .used_by(Group::Filters, TCPDUMPW),
    var("PCAP_IPV6", "ipv6", Some("DISABLED"),
        "comma list of IPv6 addresses or CIDR networks without host bits, or DISABLED/ALL",
        "Capture only traffic to/from these IPv6 addresses or networks.")
        .used_by(Group::Filters, TCPDUMPW),
    var("PCAP_HOSTS", "hosts", Some("ALL"),
        "comma list of host names (FQDNs), or ALL",
        "Capture only traffic to/from the addresses these names resolve to (re-resolved periodically).")
        .used_by(Group::Filters, TCPDUMPW),
    var("PCAP_PORTS", "ports", Some("ALL"),
        "comma list of ports 1-65535, ranges like 8000-8080, or service names (http, https, dns …), or ALL",
        "Capture only TCP/UDP traffic to/from these ports.")
        .used_by(Group::Filters, TCPDUMPW),
    var("PCAP_TCP_FLAGS", "tcp-flags", Some("ANY"),
        "comma list of fin, syn, rst, psh, ack, urg, ece, cwr, or ANY",
        "Capture only TCP segments that carry at least one of these flags.")
        .used_by(Group::Filters, TCPDUMPW),
    var("PCAP_FILTER", "filter", Some("DISABLED"),
        "a libpcap (tcpdump) filter expression, or DISABLED",
        "Free BPF filter; when set it replaces all the simple filters above.")
        .used_by(Group::Filters, PCAPD),
    boolean("PCAP_EXCLUDE_SELF", "exclude-self", true,
        "Leave the sidecar's own traffic out of the capture, also with PCAP_FILTER: the metadata server's HTTP service (TCP 80 of 169.254.169.254, and GCE_METADATA_HOST when set; DNS on 169.254.169.254 stays visible) and, with PCAP_GCS_BUCKET, TCP 443 to/from the resolved Cloud Storage API addresses (this hides the application's own metadata and Cloud Storage calls too).")
        .used_by(Group::Filters, TCPDUMPW),
    var("PCAP_SNAPSHOT_LENGTH", "snapshot-length", Some("65536"),
        "a whole number 0..=262144 (0 means 262144)",
        "Bytes captured from each packet.")
        .used_by(Group::Capture, PCAPD),
    var("PCAP_ROTATE_SECS", "rotate-secs", Some("60"),
        "a whole number of seconds 0..=86400 (0: no rotation, files are exported at stop)",
        "How often capture files are closed and handed to export.")
        .used_by(Group::Export, PCAPD),
    var("PCAP_FILE_EXT", "file-ext", Some("pcap"),
        "1-16 lowercase letters or digits, not json or gz",
        "Extension of packet capture files.")
        .used_by(Group::Export, PCAPD),
    boolean("PCAP_COMPRESS", "compress", true,
        "gzip files on export (adds .gz).")
        .used_by(Group::Export, FSNOTIFY),
    var("PCAP_COMPRESS_LEVEL", "compress-level", Some("1"),
        "a whole number 1..=9",
        "gzip level of exported files: 1 is fastest, 9 smallest. At SIGTERM, files are compressed only while the shutdown budget allows.")
        .used_by(Group::Export, FSNOTIFY),
    var("PCAP_BACKLOG_MB", "backlog-mb", Some("256"),
        "a whole number of MiB 0..=1048576 (0: no limit)",
        "Byte budget of the capture directory GCS_MOUNT-tmp (memory on Cloud Run). When exports fall behind and completed files exceed it, PCAP_BACKLOG_POLICY decides which completed files are deleted unexported; each is logged by name and listed in MANIFEST.jsonl. The last waiting file is never deleted, so exports can resume.")
        .used_by(Group::Export, FSNOTIFY),
    var("PCAP_BACKLOG_POLICY", "backlog-policy", Some("drop-oldest"),
        "drop-oldest or drop-newest",
        "What is given up when PCAP_BACKLOG_MB is exceeded: drop-oldest deletes the oldest completed files (keeps recent traffic), drop-newest deletes the newest completed files (keeps the start of an incident).")
        .used_by(Group::Export, FSNOTIFY),
    var("PCAP_MANIFEST_SECS", "manifest-secs", Some("60"),
        "a whole number of seconds 1..=86400",
        "How often newly recorded outcomes are written into the bucket as the next manifest part (MANIFEST.jsonl, then MANIFEST-1.jsonl, …), so that an instance stopped without a drain still leaves a manifest of what it exported; the drain writes the last part.")
        .used_by(Group::Export, FSNOTIFY),
    boolean("PCAP_TCPDUMP", "tcpdump", true,
        "Write .pcap files with tcpdump.")
        .used_by(Group::Output, TCPDUMPW),
    boolean("PCAP_JSON", "json", false,
        "Write packets translated to JSON into rotating .json files that are exported with the .pcap files.")
        .used_by(Group::Output, PCAPD),
    boolean("PCAP_JSON_LOG", "json-log", false,
        "Write packets translated to JSON on stdout (Cloud Logging).")
        .used_by(Group::Output, PCAPD),
    boolean("PCAP_ORDERED", "ordered", false,
        "Write JSON translations in capture order (translation still runs in parallel).")
        .used_by(Group::Output, PCAPD),
    boolean("PCAP_CONNTRACK", "conntrack", false,
        "Translate with connection tracking: one translation worker, strictly in capture order.")
        .used_by(Group::Output, PCAPD),
    var("PCAP_HC_PORT", "hc-port", Some("12345"),
        "a TCP port 1..=65535",
        "Port of the TCP startup probe; it accepts connections only while capture is ready.")
        .used_by(Group::Runtime, HC_PROBE),
    boolean("PCAP_USE_CRON", "use-cron", false,
        "Run captures on the PCAP_CRON_EXP schedule instead of continuously.")
        .used_by(Group::Schedule, TCPDUMPW),
    var("PCAP_CRON_EXP", "cron-exp", None,
        "a cron expression of 5 fields (crontab) or 6 fields (seconds first), a descriptor (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @every 10m), optionally after CRON_TZ=<zone> or TZ=<zone>",
        "When captures start (required with PCAP_USE_CRON=true). As in the original (robfig/cron): day-of-month and day-of-week combine with OR when both are restricted (crontab(5)); a CRON_TZ=/TZ= prefix overrides PCAP_TIMEZONE.")
        .used_by(Group::Schedule, TCPDUMPW),
    var("PCAP_TIMEZONE", "timezone", Some("UTC"),
        "an IANA time zone name, e.g. America/Los_Angeles",
        "Time zone of PCAP_CRON_EXP unless the expression starts with CRON_TZ=/TZ=. File names are always UTC.")
        .used_by(Group::Schedule, TCPDUMPW),
    var("PCAP_TIMEOUT_SECS", "timeout-secs", Some("0"),
        "a whole number of seconds 0..=31536000 (0: no limit)",
        "How long each capture runs; without cron a timeout makes a one-shot capture.")
        .used_by(Group::Schedule, PCAPD),
    var("PCAP_PACKET_COUNT", "packet-count", Some("0"),
        "a whole number of packets 0..=1000000000 (0: no limit)",
        "Stop capturing after this many packets, like tcpdump -c: per interface (each interface's tcpdump gets -c, each pcapd stops there), per run with cron; the run ends when every interface has reached it (tcpdumpw then stays up until the next run or SIGTERM).")
        .used_by(Group::Schedule, PCAPD),
    var("PCAP_TRIGGER", "trigger", None,
        super::trigger::ACCEPTED,
        "Flight recorder: capture continuously into an in-memory ring (PCAP_RING_SECS, PCAP_RING_MB) and export nothing, log no packet JSON, until one of these fires; then the window around it (PCAP_TRIGGER_BEFORE_SECS, PCAP_TRIGGER_AFTER_SECS) is written as <iface>_part_<trigger time>Z_<kind>.pcap (and .json with PCAP_JSON=true) and exported, with one log line naming the trigger, its trace and flow and the files (docs/flight-recorder.md). pcapd captures and writes the .pcap in this mode; tcpdump is not run.")
        .used_by(Group::Schedule, PCAPD),
    var("PCAP_RING_SECS", "ring-secs", Some("60"),
        "a whole number of seconds 1..=3600",
        "Flight recorder: the ring keeps the packets of the last this-many seconds (less when PCAP_RING_MB is reached first).")
        .used_by(Group::Schedule, PCAPD),
    var("PCAP_RING_MB", "ring-mb", Some("64"),
        "a whole number of MiB 1..=4096",
        "Flight recorder: most memory the ring of recent packets may hold, packet bytes plus bookkeeping; over it the oldest packets are dropped and counted.")
        .used_by(Group::Schedule, PCAPD),
    var("PCAP_TRIGGER_BEFORE_SECS", "trigger-before-secs", Some("30"),
        "a whole number of seconds 0..=3600, at most PCAP_RING_SECS",
        "Flight recorder: seconds of traffic before the trigger that its window holds.")
        .used_by(Group::Schedule, PCAPD),
    var("PCAP_TRIGGER_AFTER_SECS", "trigger-after-secs", Some("30"),
        "a whole number of seconds 0..=3600",
        "Flight recorder: seconds of traffic after the trigger that its window holds; a trigger inside an open window extends it (windows merge).")
        .used_by(Group::Schedule, PCAPD),
    var("PCAP_TRIGGER_COOLDOWN_SECS", "trigger-cooldown-secs", Some("60"),
        "a whole number of seconds 0..=86400",
        "Flight recorder: after a window closes, triggers in this many seconds open no new window (they are counted and logged).")
        .used_by(Group::Schedule, PCAPD),
    var("PCAP_TRIGGER_MAX_PER_HOUR", "trigger-max-per-hour", Some("10"),
        "a whole number 1..=3600",
        "Flight recorder: most windows opened in any 60 minutes; triggers over the cap are counted and logged.")
        .used_by(Group::Schedule, PCAPD),
    boolean("PCAP_TRIGGER_ON_EXIT", "trigger-on-exit", false,
        "Flight recorder: at SIGTERM also write the whole ring as a window of kind exit (a window in progress is always closed and exported).")
        .used_by(Group::Schedule, PCAPD),
    var("PCAP_TRIGGER_PORT", "trigger-port", Some("12346"),
        "a whole number 1..=65535, not PCAP_HC_PORT",
        "Flight recorder with the manual trigger: port of the endpoint `POST /trigger?reason=...` on 127.0.0.1 and ::1 (loopback only; the app container shares it on Cloud Run).")
        .used_by(Group::Schedule, PCAPD),
    boolean("PCAP_COMPAT", "compat", false,
        "true forces the ring-less capture path of Cloud Run gen1 (gVisor): AF_PACKET sockets read with recvmmsg, the same libpcap filter run in user space, pcapd writing the .pcap files instead of tcpdump (PCAP_SNAPSHOT_LENGTH=0 is refused there). false detects at start: the ring-less path is used when the kernel refuses packet rings (setsockopt PACKET_VERSION); the log says which path and why (docs/capture-paths.md).")
        .used_by(Group::Capture, PCAPD),
    boolean("PCAP_GAE", "gae", false,
        "App Engine Flex mode: service, version, instance and project come from the app container (gaeapp) read through the Docker socket, the region from the VM's zone.")
        .used_by(Group::Runtime, INIT),
    boolean("PCAP_DEBUG", "debug", false,
        "Write DEBUG log lines.")
        .used_by(Group::Runtime, EVERY),
    var("PCAP_VERBOSITY", "verbosity", Some("DEBUG"),
        "INFO, DEBUG or SUMMARY (any case)",
        "Packet JSON detail: INFO gives compact entries (lower Cloud Logging cost), DEBUG the full analysis, SUMMARY one entry per closed TCP connection and per HTTP exchange, gRPC call and DNS pair, plus the packets with an anomaly (retransmission, loss, zero window, reset…).")
        .used_by(Group::Output, PCAPD),
    var("PCAP_SHUTDOWN_SECS", "shutdown-secs", Some("9"),
        "a whole number of seconds 1..=3600",
        "Budget for the whole drain after SIGTERM (Cloud Run kills 10 s after SIGTERM): one deadline for every program, counted from the signal pcap-init receives; the exporter reports every file it could not export before it could be killed.")
        .used_by(Group::Runtime, TCPDUMPW | FSNOTIFY),
    var("PCAP_REDACT_HEADERS", "redact-headers", None,
        "comma list of HTTP header names",
        "Headers whose values are redacted in addition to Authorization, Proxy-Authorization, Cookie and Set-Cookie.")
        .used_by(Group::Output, PCAPD),
    var("PCAP_MAX_ENTRY_BYTES", "max-entry-bytes", Some("204800"),
        "a whole number of bytes 4096..=262144",
        "Largest packet JSON entry written. A larger entry loses its least important parts first (raw samples and hex dumps, then header values, then the L7 sections) and is marked with \"truncated\"; the envelope (severity, message, pcap, timestamp, flow, trace) is never cut. Cloud Logging rejects entries over 256 KB.")
        .used_by(Group::Output, PCAPD),
    var("PCAP_STATE_MIB", "state-mib", Some("32"),
        "a whole number of MiB 4..=4096",
        "Byte budget of pcapd's per-connection analysis state (flow table, HTTP/1 buffers and pending requests, HPACK tables, HTTP/2 frame and header buffers and streams), shared by all translation workers. Over it, the state of the least recently used connections is dropped and counted; their later packets say so.")
        .used_by(Group::Output, PCAPD),
    var("PCAP_RUN_DIR", "run-dir", Some("/run/pcap-sidecar"),
        "an absolute directory path",
        "Runtime directory of the daemons' signals (the capture readiness file read by hc-probe), the shutdown deadline pcap-init hands down, the drop journals (drops/) and the manifest being written.")
        .used_by(Group::Runtime, TCPDUMPW | FSNOTIFY | HC_PROBE | PCAPD),
    var("PCAP_SUPERVISOR_FILE", "supervisor-file", None,
        "an absolute path of a process-graph TOML file",
        "Process graph pcap-init runs instead of the built-in supervisor/processes.toml (e.g. another FUSE mounter).")
        .used_by(Group::Runtime, INIT),
];

/// Looks a variable up by name.
pub fn find(name: &str) -> Option<&'static Var> {
    VARS.iter().find(|v| v.name == name)
}

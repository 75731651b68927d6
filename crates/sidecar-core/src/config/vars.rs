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
    }
}

/// Every variable, in README order.
pub const VARS: &[Var] = &[
    var("PCAP_IFACE", "iface", Some("eth"),
        "an interface name prefix (e.g. eth, ens) or 'any'",
        "Prefix of the interfaces to capture on: eth captures eth0, eth1, ipvlan-eth0 …; 'any' captures all interfaces through the Linux cooked header."),
    boolean("PCAP_LOOPBACK", "loopback", false,
        "Also capture on the loopback interface lo (traffic between containers of the instance); with PCAP_IFACE=any the pseudo-device sees loopback traffic whatever this says."),
    var("PCAP_GCS_BUCKET", "gcs-bucket", None,
        "a Cloud Storage bucket name, without gs://",
        "Bucket that receives the files. Unset: files are exported into the plain directory GCS_MOUNT (a Cloud Run volume mount, a Kubernetes volume, a local directory)."),
    boolean("PCAP_GCS_FUSE", "gcs-fuse", true,
        "With a bucket: true mounts it at GCS_MOUNT with gcsfuse; false uploads through the Cloud Storage JSON API."),
    var("PCAP_GCS_PREFIX", "gcs-prefix", None,
        "'/'-separated path segments (no empty, '.' or '..' segments)",
        "Prefix put before the PROJECT/SERVICE/REGION/REVISION/TIMESTAMP/INSTANCE path of every object."),
    var("GCS_MOUNT", "gcs-mount", Some("/pcap"),
        "an absolute directory path other than /",
        "Where the bucket is mounted (or the export directory without a bucket). Capture files are written to GCS_MOUNT-tmp first."),
    var("PCAP_L3_PROTOS", "l3-protos", Some("ipv4,ipv6"),
        "comma list of ipv4, ipv6, arp (also ip, ip4, ip6, 4, 41, 0x0806 …), or ALL",
        "Network-layer protocols to capture."),
    var("PCAP_L4_PROTOS", "l4-protos", Some("tcp,udp"),
        "comma list of tcp, udp, icmp, icmp6 (also 6, 17, 1, 58 …), or ALL",
        "Transport-layer protocols to capture (ICMP is only captured when listed)."),
    var("PCAP_IPV4", "ipv4", Some("DISABLED"),
        "comma list of IPv4 addresses or CIDR networks without host bits, or DISABLED/ALL",
        "Capture only traffic to/from these IPv4 addresses or networks."),
    var("PCAP_IPV6", "ipv6", Some("DISABLED"),
        "comma list of IPv6 addresses or CIDR networks without host bits, or DISABLED/ALL",
        "Capture only traffic to/from these IPv6 addresses or networks."),
    var("PCAP_HOSTS", "hosts", Some("ALL"),
        "comma list of host names (FQDNs), or ALL",
        "Capture only traffic to/from the addresses these names resolve to (re-resolved periodically)."),
    var("PCAP_PORTS", "ports", Some("ALL"),
        "comma list of ports 1-65535, ranges like 8000-8080, or service names (http, https, dns …), or ALL",
        "Capture only TCP/UDP traffic to/from these ports."),
    var("PCAP_TCP_FLAGS", "tcp-flags", Some("ANY"),
        "comma list of fin, syn, rst, psh, ack, urg, ece, cwr, or ANY",
        "Capture only TCP segments that carry at least one of these flags."),
    var("PCAP_FILTER", "filter", Some("DISABLED"),
        "a libpcap (tcpdump) filter expression, or DISABLED",
        "Free BPF filter; when set it replaces all the simple filters above."),
    boolean("PCAP_EXCLUDE_SELF", "exclude-self", true,
        "Leave the sidecar's own traffic out of the capture, also with PCAP_FILTER: the metadata server's HTTP service (TCP 80 of 169.254.169.254, and GCE_METADATA_HOST when set; DNS on 169.254.169.254 stays visible) and, with PCAP_GCS_BUCKET, TCP 443 to/from the resolved Cloud Storage API addresses (this hides the application's own metadata and Cloud Storage calls too)."),
    var("PCAP_SNAPSHOT_LENGTH", "snapshot-length", Some("65536"),
        "a whole number 0..=262144 (0 means 262144)",
        "Bytes captured from each packet."),
    var("PCAP_ROTATE_SECS", "rotate-secs", Some("60"),
        "a whole number of seconds 0..=86400 (0: no rotation, files are exported at stop)",
        "How often capture files are closed and handed to export."),
    var("PCAP_FILE_EXT", "file-ext", Some("pcap"),
        "1-16 lowercase letters or digits, not json or gz",
        "Extension of packet capture files."),
    boolean("PCAP_COMPRESS", "compress", true,
        "gzip files on export (adds .gz)."),
    var("PCAP_COMPRESS_LEVEL", "compress-level", Some("1"),
        "a whole number 1..=9",
        "gzip level of exported files: 1 is fastest, 9 smallest. At SIGTERM, files are compressed only while the shutdown budget allows."),
    var("PCAP_BACKLOG_MB", "backlog-mb", Some("256"),
        "a whole number of MiB 0..=1048576 (0: no limit)",
        "Byte budget of the capture directory GCS_MOUNT-tmp (memory on Cloud Run). When exports fall behind and completed files exceed it, PCAP_BACKLOG_POLICY decides which completed files are deleted unexported; each is logged by name and listed in MANIFEST.jsonl. The last waiting file is never deleted, so exports can resume."),
    var("PCAP_BACKLOG_POLICY", "backlog-policy", Some("drop-oldest"),
        "drop-oldest or drop-newest",
        "What is given up when PCAP_BACKLOG_MB is exceeded: drop-oldest deletes the oldest completed files (keeps recent traffic), drop-newest deletes the newest completed files (keeps the start of an incident)."),
    boolean("PCAP_TCPDUMP", "tcpdump", true,
        "Write .pcap files with tcpdump."),
    boolean("PCAP_JSON", "json", false,
        "Write packets translated to JSON into rotating .json files that are exported with the .pcap files."),
    boolean("PCAP_JSON_LOG", "json-log", false,
        "Write packets translated to JSON on stdout (Cloud Logging)."),
    boolean("PCAP_ORDERED", "ordered", false,
        "Write JSON translations in capture order (translation still runs in parallel)."),
    boolean("PCAP_CONNTRACK", "conntrack", false,
        "Translate with connection tracking: one translation worker, strictly in capture order."),
    var("PCAP_HC_PORT", "hc-port", Some("12345"),
        "a TCP port 1..=65535",
        "Port of the TCP startup probe; it accepts connections only while capture is ready."),
    boolean("PCAP_USE_CRON", "use-cron", false,
        "Run captures on the PCAP_CRON_EXP schedule instead of continuously."),
    var("PCAP_CRON_EXP", "cron-exp", None,
        "a cron expression of 5 fields (crontab) or 6 fields (seconds first)",
        "When captures start (required with PCAP_USE_CRON=true)."),
    var("PCAP_TIMEZONE", "timezone", Some("UTC"),
        "an IANA time zone name, e.g. America/Los_Angeles",
        "Time zone of PCAP_CRON_EXP. File names are always UTC."),
    var("PCAP_TIMEOUT_SECS", "timeout-secs", Some("0"),
        "a whole number of seconds 0..=31536000 (0: no limit)",
        "How long each capture runs; without cron a timeout makes a one-shot capture."),
    boolean("PCAP_COMPAT", "compat", false,
        "true forces the ring-less capture path of Cloud Run gen1 (gVisor): AF_PACKET sockets read with recvmmsg, the same libpcap filter run in user space, pcapd writing the .pcap files instead of tcpdump (PCAP_SNAPSHOT_LENGTH=0 is refused there). false detects at start: the ring-less path is used when the kernel refuses packet rings (setsockopt PACKET_VERSION); the log says which path and why (docs/capture-paths.md)."),
    boolean("PCAP_GAE", "gae", false,
        "App Engine Flex mode: service, version, instance and project come from the app container (gaeapp) read through the Docker socket, the region from the VM's zone."),
    boolean("PCAP_DEBUG", "debug", false,
        "Write DEBUG log lines."),
    var("PCAP_VERBOSITY", "verbosity", Some("DEBUG"),
        "INFO or DEBUG (any case)",
        "Packet JSON detail: INFO gives compact entries (lower Cloud Logging cost), DEBUG the full analysis."),
    var("PCAP_SHUTDOWN_SECS", "shutdown-secs", Some("9"),
        "a whole number of seconds 1..=3600",
        "Budget for the whole drain after SIGTERM (Cloud Run kills 10 s after SIGTERM): one deadline for every program, counted from the signal pcap-init receives; the exporter reports every file it could not export before it could be killed."),
    var("PCAP_REDACT_HEADERS", "redact-headers", None,
        "comma list of HTTP header names",
        "Headers whose values are redacted in addition to Authorization, Proxy-Authorization, Cookie and Set-Cookie."),
    var("PCAP_RUN_DIR", "run-dir", Some("/run/pcap-sidecar"),
        "an absolute directory path",
        "Runtime directory of the daemons' signals (the capture readiness file read by hc-probe), the shutdown deadline pcap-init hands down and the manifest being written."),
    var("PCAP_SUPERVISOR_FILE", "supervisor-file", None,
        "an absolute path of a process-graph TOML file",
        "Process graph pcap-init runs instead of the built-in supervisor/processes.toml (e.g. another FUSE mounter)."),
];

/// Looks a variable up by name.
pub fn find(name: &str) -> Option<&'static Var> {
    VARS.iter().find(|v| v.name == name)
}

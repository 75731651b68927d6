//! JSON field names, as the original translator wrote them (so existing Cloud Logging
//! queries keep working), plus the ones this rewrite adds (`pcap.date`, `severity`,
//! `community_id`, `error`).

/// Run identity and serial: `{id, ctx, num, date}`.
pub const PCAP: &str = "pcap";
/// `pcap.id`: the run id.
pub const ID: &str = "id";
/// `pcap.ctx`: the log name.
pub const CTX: &str = "ctx";
/// `pcap.num`: capture-order serial per interface, a decimal string (first packet "0").
pub const NUM: &str = "num";
/// `pcap.date`: RFC 3339 UTC with 9 fractional digits (sortable as text).
pub const DATE: &str = "date";
/// Capture facts: `{trunc, len, cap_len}`.
pub const META: &str = "meta";
/// `meta.trunc`: fewer bytes captured than were on the wire.
pub const TRUNC: &str = "trunc";
/// Length (wire length in `meta`, header length fields elsewhere).
pub const LEN: &str = "len";
/// `meta.cap_len`: captured length.
pub const CAP_LEN: &str = "cap_len";
/// `meta.linktype`.
pub const LINKTYPE: &str = "linktype";
/// Cloud Logging entry time `{seconds, nanos}`.
pub const TIMESTAMP: &str = "timestamp";
/// `timestamp.seconds`.
pub const SECONDS: &str = "seconds";
/// `timestamp.nanos`.
pub const NANOS: &str = "nanos";
/// Capture interface `{index, name, addrs}`.
pub const IFACE: &str = "iface";
/// `iface.index`.
pub const INDEX: &str = "index";
/// Names.
pub const NAME: &str = "name";
/// `iface.addrs`.
pub const ADDRS: &str = "addrs";
/// Link layer section.
pub const L2: &str = "L2";
/// Network layer section.
pub const L3: &str = "L3";
/// Transport layer section.
pub const L4: &str = "L4";
/// Application payload section (opaque payloads).
pub const L7: &str = "L7";
/// ARP section.
pub const ARP: &str = "ARP";
/// ICMP section.
pub const ICMP: &str = "ICMP";
/// DNS section.
pub const DNS: &str = "DNS";
/// TLS section.
pub const TLS: &str = "TLS";
/// Flow id: decimal string of the 64-bit direction-independent hash.
pub const FLOW: &str = "flow";
/// Community ID v1.
pub const COMMUNITY_ID: &str = "community_id";
/// Sent by a server in the sandbox.
pub const LOCAL: &str = "local";
/// One-line summary.
pub const MESSAGE: &str = "message";
/// Cloud Logging severity.
pub const SEVERITY: &str = "severity";
/// Decoding failure `{layer, kind, offset}`.
pub const ERROR: &str = "error";
/// `error.layer`.
pub const LAYER: &str = "layer";
/// `error.kind`.
pub const KIND: &str = "kind";
/// `error.offset`.
pub const OFFSET: &str = "offset";
/// Cloud Logging labels.
pub const LABELS: &str = "logging.googleapis.com/labels";
/// Cloud Logging operation `{id, producer, first, last}`.
pub const OPERATION: &str = "logging.googleapis.com/operation";
/// HTTP/1.x message section.
pub const HTTP: &str = "HTTP";
/// Cloud Logging's HTTP request object (on response entries).
pub const HTTP_REQUEST: &str = "httpRequest";
/// What replaces the value of a secret header.
pub const REDACTED: &str = "[REDACTED]";
/// Cloud Logging trace (HTTP analysis).
pub const TRACE: &str = "logging.googleapis.com/trace";
/// Cloud Logging span id (HTTP analysis).
pub const SPAN_ID: &str = "logging.googleapis.com/spanId";
/// Cloud Logging trace sampling flag (HTTP analysis).
pub const TRACE_SAMPLED: &str = "logging.googleapis.com/trace_sampled";
/// `operation.producer`.
pub const PRODUCER: &str = "producer";
/// `operation.first`.
pub const FIRST: &str = "first";
/// `operation.last`.
pub const LAST: &str = "last";

/// Label: the tool.
pub const LABEL_TOOL: &str = "tools.chux.dev/tool";
/// Label: the run id.
pub const LABEL_ID: &str = "tools.chux.dev/pcap/id";
/// Label: the log name.
pub const LABEL_NAME: &str = "tools.chux.dev/pcap/name";
/// Label: the configured interface.
pub const LABEL_IFACE: &str = "tools.chux.dev/pcap/iface";
/// Label every sidecar line carries (README, "Logs").
pub const LABEL_SIDECAR: &str = "sidecar";
/// Label: the daemon.
pub const LABEL_MODULE: &str = "module";
/// Value of [`LABEL_TOOL`].
pub const TOOL: &str = "pcap";
/// Value of [`LABEL_MODULE`].
pub const MODULE: &str = "pcapd";

/// Source (address, port, …).
pub const SRC: &str = "src";
/// Destination.
pub const DST: &str = "dst";
/// Type (EtherType name, ICMP type, DNS type, …).
pub const TYPE: &str = "type";
/// Protocol `{num, name}`.
pub const PROTO: &str = "proto";
/// Numbers.
pub const NUM_KEY: &str = "num";
/// Per-layer direction-independent hash.
pub const ENDPOINTS: &str = "endpoints";
/// `endpoints.fwd`: `src->dst`.
pub const FWD: &str = "fwd";
/// `endpoints.bwd`: `dst->src`.
pub const BWD: &str = "bwd";
/// IP version.
pub const V: &str = "v";
/// Checksum.
pub const XSUM: &str = "xsum";
/// Flags.
pub const FLAGS: &str = "flags";
/// Options.
pub const OPTS: &str = "opts";
/// TTL / hop limit.
pub const TTL: &str = "ttl";
/// TCP sequence number.
pub const SEQ: &str = "seq";
/// TCP acknowledgement number.
pub const ACK: &str = "ack";
/// TCP window.
pub const WIN: &str = "win";
/// TCP effective (scaled) window.
pub const XWIN: &str = "xwin";
/// TCP data offset.
pub const OFF: &str = "off";
/// TCP urgent pointer.
pub const URG: &str = "urg";
/// Service name of the source port.
pub const SPROTO: &str = "sproto";
/// Service name of the destination port.
pub const DPROTO: &str = "dproto";
/// UDP payload size.
pub const SIZE: &str = "size";
/// Payload length (L7).
pub const LENGTH: &str = "length";
/// The flow's analysis state was dropped to stay within `PCAP_STATE_MIB`.
pub const STATE_EVICTED: &str = "state_evicted";
/// What the entry-size guard cut (`PCAP_MAX_ENTRY_BYTES`).
pub const TRUNCATED: &str = "truncated";
/// Payload sample (L7).
pub const SAMPLE: &str = "sample";
/// Encoding of the sample: `text` or `hex`.
pub const ENCODING: &str = "encoding";

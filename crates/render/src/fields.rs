//! JSON field names, as the original translator wrote them (so existing Cloud Logging
//! queries keep working), plus the ones this rewrite adds (`pcap.date`, `severity`,
//! `community_id`, `error`).
//!
//! Every key render writes is one of these constants: sections written by hand use them in
//! `serialize_entry`, small structs get their keys through `serialize_with_keys!`, and
//! protocol names used as keys (TCP flags and options, HTTP/2 settings) come from `wire`.

/// Implements `Serialize` for a struct as a JSON object with one key from this module per
/// field, in the order listed (`derive` would take the keys from the Rust field names):
/// `serialize_with_keys!([N: Serialize] Mx<N> { preference: f::PREFERENCE, host: f::HOST });`
/// The brackets hold the impl's generic parameters (empty for none).
macro_rules! serialize_with_keys {
    ([$($generics:tt)*] $ty:ty { $($field:ident: $key:expr),+ $(,)? }) => {
        impl<$($generics)*> serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some([$($key),+].len()))?;
                $(m.serialize_entry($key, &self.$field)?;)+
                m.end()
            }
        }
    };
}
pub(crate) use serialize_with_keys;

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
/// `truncated.limit`: the entry size limit.
pub const LIMIT: &str = "limit";
/// `truncated.cut`: the parts cut, in order.
pub const CUT: &str = "cut";
/// Payload sample (L7).
pub const SAMPLE: &str = "sample";
/// Encoding of the sample: `text` or `hex`.
pub const ENCODING: &str = "encoding";

// Link layer (`L2`) and ARP.

/// `L2.vlan`: 802.1Q VLAN ids, outermost first.
pub const VLAN: &str = "vlan";
/// `L2.pkttype`: Linux cooked header packet type.
pub const PKTTYPE: &str = "pkttype";
/// `L2.hatype`: Linux cooked header ARPHRD type.
pub const HATYPE: &str = "hatype";
/// `L2.ifindex`: interface index of a cooked v2 header.
pub const IFINDEX: &str = "ifindex";
/// `L2.family`: address family of a loopback (null) header.
pub const FAMILY: &str = "family";
/// Operation code (ARP operation, DNS opcode).
pub const OP: &str = "op";
/// `ARP.src.IP` / `ARP.dst.IP`: protocol address.
pub const ARP_IP: &str = "IP";
/// `ARP.src.MAC` / `ARP.dst.MAC`: hardware address.
pub const ARP_MAC: &str = "MAC";

// Network layer (`L3`).

/// `L3.ihl`: IPv4 header length in 32-bit words.
pub const IHL: &str = "ihl";
/// `L3.tos`: IPv4 type of service.
pub const TOS: &str = "tos";
/// `L3.foff`: IPv4 fragment offset.
pub const FOFF: &str = "foff";
/// `L3.cls`: IPv6 traffic class.
pub const CLS: &str = "cls";
/// IPv6 flow label.
pub const LBL: &str = "lbl";
/// `L3.ext`: IPv6 extension headers.
pub const EXT: &str = "ext";
/// `L3.frag`: IPv6 fragment header.
pub const FRAG: &str = "frag";
/// `L3.frag.more`: more fragments follow.
pub const MORE: &str = "more";
/// Option, record or payload data (hex when opaque).
pub const DATA: &str = "data";

// Transport layer (`L4`).

/// `L4.flags.str`: flag names joined by `|`.
pub const STR: &str = "str";
/// Value in decimal.
pub const DEC: &str = "dec";
/// `L4.flags.bin`: flags in binary.
pub const BIN: &str = "bin";
/// Value in hexadecimal.
pub const HEX: &str = "hex";
/// `L4.flags.map`: each flag by name.
pub const MAP: &str = "map";
/// `WindowScale.scale`: the window multiplier.
pub const SCALE: &str = "scale";
/// `L4.analysis`: TCP sequence analysis (Wireshark's names).
pub const ANALYSIS: &str = "analysis";
/// `L4.analysis`: which duplicate ACK this is (1 for the first).
pub const DUPLICATE_ACK_NUM: &str = "duplicate_ack_num";
/// `L4.analysis`: the frame (`pcap.num`) whose ACK a duplicate repeats.
pub const DUPLICATE_ACK_FRAME: &str = "duplicate_ack_frame";
/// `L4.analysis`: the frame (`pcap.num`) of the segment this one acknowledges.
pub const ACKS_FRAME: &str = "acks_frame";
/// `L4.analysis`: seconds from that segment to this ACK.
pub const ACK_RTT: &str = "ack_rtt";
/// `L4.flags.res`: the TCP reserved bits, when set.
pub const RES: &str = "res";

// ICMP.

/// Code (ICMP code, HTTP status code, HTTP/2 error code, HTTP/1.x parse error).
pub const CODE: &str = "code";
/// `ICMP.msg`: the type's name.
pub const MSG: &str = "msg";
/// `ICMP.mtu`: next-hop MTU of a fragmentation-needed or packet-too-big message.
pub const MTU: &str = "mtu";
/// Pointer (ICMP parameter problem) or PTR record target (DNS).
pub const PTR: &str = "ptr";
/// `ICMP.IPv4`: the invoking IPv4 datagram.
pub const IPV4: &str = "IPv4";
/// `ICMP.IPv6`: the invoking IPv6 datagram.
pub const IPV6: &str = "IPv6";
/// Source port of the invoking datagram.
pub const SPORT: &str = "sport";
/// Destination port of the invoking datagram.
pub const DPORT: &str = "dport";
/// Differentiated services field of the invoking datagram.
pub const DSF: &str = "dsf";
/// ECN bits of the invoking datagram.
pub const ECN: &str = "ecn";
/// `ICMP.tgt`: neighbour discovery target address.
pub const TGT: &str = "tgt";
/// `ICMP.nd`: neighbour discovery options.
pub const ND: &str = "nd";
/// `ICMP.ra`: router advertisement fields.
pub const RA: &str = "ra";
/// `ICMP.na`: neighbour advertisement flags.
pub const NA: &str = "na";
/// `ICMP.ra.hops`: the current hop limit a router advertises.
pub const HOPS: &str = "hops";
/// `ICMP.ra.lifetime`: the router lifetime in seconds.
pub const LIFETIME: &str = "lifetime";
/// Link-layer address of a neighbour discovery option.
pub const LLADDR: &str = "lladdr";

// DNS.

/// `DNS.qr`: a response.
pub const QR: &str = "qr";
/// `DNS.response_code`: the RCODE's name.
pub const RESPONSE_CODE: &str = "response_code";
/// `DNS.questions_count`.
pub const QUESTIONS_COUNT: &str = "questions_count";
/// `DNS.answers_count`.
pub const ANSWERS_COUNT: &str = "answers_count";
/// `DNS.authorities_count`.
pub const AUTHORITIES_COUNT: &str = "authorities_count";
/// `DNS.additionals_count`.
pub const ADDITIONALS_COUNT: &str = "additionals_count";
/// `DNS.questions` (at most a few dozen).
pub const QUESTIONS: &str = "questions";
/// Answer records (`DNS.answers`), or their count in a DNS pair summary.
pub const ANSWERS: &str = "answers";
/// `DNS.authorities`.
pub const AUTHORITIES: &str = "authorities";
/// `DNS.additionals`.
pub const ADDITIONALS: &str = "additionals";
/// A record's or question's class.
pub const CLASS: &str = "class";
/// An A or AAAA record's address.
pub const IP: &str = "ip";
/// A CNAME record's target.
pub const CNAME: &str = "cname";
/// An NS record's name server.
pub const NS: &str = "ns";
/// An MX record `{preference, host}`.
pub const MX: &str = "mx";
/// `mx.preference`.
pub const PREFERENCE: &str = "preference";
/// An SOA record `{mname, rname, serial, refresh, retry, expire, minimum}`.
pub const SOA: &str = "soa";
/// `soa.mname`: the primary name server.
pub const MNAME: &str = "mname";
/// `soa.rname`: the responsible mailbox.
pub const RNAME: &str = "rname";
/// `soa.serial`: the zone's serial number.
pub const SERIAL: &str = "serial";
/// `soa.refresh`: seconds between secondary refreshes.
pub const REFRESH: &str = "refresh";
/// `soa.retry`: seconds before a failed refresh is retried.
pub const RETRY: &str = "retry";
/// `soa.expire`: seconds until a secondary stops answering without a refresh.
pub const EXPIRE: &str = "expire";
/// `soa.minimum`: the negative-caching TTL.
pub const MINIMUM: &str = "minimum";
/// An SRV record `{priority, weight, port, target}`.
pub const SRV: &str = "srv";
/// `srv.priority`.
pub const PRIORITY: &str = "priority";
/// `srv.weight`.
pub const WEIGHT: &str = "weight";
/// `srv.port`.
pub const PORT: &str = "port";
/// `srv.target`: the host providing the service.
pub const TARGET: &str = "target";
/// A CAA record `{flags, tag, value}`.
pub const CAA: &str = "caa";
/// `caa.tag`: the property name.
pub const TAG: &str = "tag";
/// `caa.value`: the property value.
pub const VALUE: &str = "value";
/// A TXT record's strings.
pub const TXT: &str = "txt";
/// `DNS.edns`: the OPT pseudo-record.
pub const EDNS: &str = "edns";
/// `DNS.edns.udp_size`: the requester's UDP payload size.
pub const UDP_SIZE: &str = "udp_size";
/// `DNS.edns.ext_rcode`: the extended RCODE bits.
pub const EXT_RCODE: &str = "ext_rcode";
/// Version (EDNS, TLS).
pub const VERSION: &str = "version";
/// `DNS.edns.do`: DNSSEC OK.
pub const DO: &str = "do";
/// `DNS.edns.options`.
pub const OPTIONS: &str = "options";

// TLS.

/// A TLS record's content type.
pub const CONTENT_TYPE: &str = "content_type";
/// The record continues past this segment.
pub const PARTIAL: &str = "partial";
/// Alert level.
pub const LEVEL: &str = "level";
/// Alert description.
pub const DESCRIPTION: &str = "description";
/// A hello's legacy version field.
pub const LEGACY_VERSION: &str = "legacy_version";
/// Server name indication.
pub const SNI: &str = "sni";
/// Application protocols offered (ALPN).
pub const ALPN: &str = "alpn";
/// Supported versions.
pub const VERSIONS: &str = "versions";
/// The server's chosen cipher suite.
pub const CIPHER: &str = "cipher";
/// The client's cipher suites.
pub const CIPHERS: &str = "ciphers";
/// Extension types.
pub const EXTENSIONS: &str = "extensions";
/// `TLS.handshake`: handshake records (DEBUG).
pub const HANDSHAKE: &str = "handshake";
/// `TLS.change_cipher_spec`: ChangeCipherSpec records (DEBUG).
pub const CHANGE_CIPHER_SPEC: &str = "change_cipher_spec";
/// `TLS.alert`: alert records (DEBUG).
pub const ALERT: &str = "alert";
/// `TLS.app_data`: application data records (DEBUG).
pub const APP_DATA: &str = "app_data";
/// `TLS.heartbeat`: heartbeat records (DEBUG).
pub const HEARTBEAT: &str = "heartbeat";
/// `TLS.client_hello`.
pub const CLIENT_HELLO: &str = "client_hello";
/// `TLS.server_hello`.
pub const SERVER_HELLO: &str = "server_hello";

// HTTP/1.1 and HTTP/2 messages.

/// The request line or pseudo-headers (`method`, `url`, …).
pub const REQUEST: &str = "request";
/// Request method (or gRPC method).
pub const METHOD: &str = "method";
/// Request target.
pub const URL: &str = "url";
/// Request host (`Host` or `:authority`); an MX record's mail exchange.
pub const HOST: &str = "host";
/// HTTP version of a message.
pub const PROTOCOL: &str = "protocol";
/// Response status (HTTP or gRPC).
pub const STATUS: &str = "status";
/// Response reason phrase.
pub const REASON: &str = "reason";
/// Seconds from request to response.
pub const LATENCY: &str = "latency";
/// Header fields, values grouped by name.
pub const HEADERS: &str = "headers";
/// Raw header block (DEBUG, secrets redacted).
pub const RAW: &str = "raw";
/// Body `{length, content_length, chunked}`.
pub const BODY: &str = "body";
/// Announced `Content-Length`.
pub const CONTENT_LENGTH: &str = "content_length";
/// Chunked transfer coding.
pub const CHUNKED: &str = "chunked";
/// Requests pipelined ahead of this one.
pub const PIPELINED: &str = "pipelined";
/// A segment continuing an earlier message.
pub const CONTINUATION: &str = "continuation";
/// The message spans several segments.
pub const FRAGMENTED: &str = "fragmented";
/// The message was reassembled from several segments.
pub const REASSEMBLED: &str = "reassembled";
/// Bytes lost before this segment.
pub const GAP: &str = "gap";
/// Bytes not parsed (skipped).
pub const SKIPPED: &str = "skipped";
/// `httpRequest.userAgent`.
pub const USER_AGENT: &str = "userAgent";
/// `httpRequest.requestMethod`.
pub const REQUEST_METHOD: &str = "requestMethod";
/// `httpRequest.requestUrl`.
pub const REQUEST_URL: &str = "requestUrl";
/// `httpRequest.responseSize`.
pub const RESPONSE_SIZE: &str = "responseSize";
/// `httpRequest.remoteIp`.
pub const REMOTE_IP: &str = "remoteIp";
/// `httpRequest.serverIp`.
pub const SERVER_IP: &str = "serverIp";

// HTTP/2 frames and gRPC.

/// The connection preface was seen.
pub const PREFACE: &str = "preface";
/// The segment's frames.
pub const FRAMES: &str = "frames";
/// A frame's type name.
pub const FRAME: &str = "frame";
/// A frame's type number.
pub const TYPE_ID: &str = "type_id";
/// Stream id (HTTP/2); in `L7`, why a segment of an HTTP flow was not parsed
/// (`retransmitted`, `held_out_of_order`).
pub const STREAM: &str = "stream";
/// Which side sent the frame (`client`, `server`).
pub const ROLE: &str = "role";
/// Frames left out of `frames`.
pub const MORE_FRAMES: &str = "more_frames";
/// What a decoding error found.
pub const INFO: &str = "info";
/// SETTINGS parameters.
pub const SETTINGS: &str = "settings";
/// WINDOW_UPDATE increment.
pub const INCREMENT: &str = "increment";
/// GOAWAY last stream id.
pub const LAST_STREAM: &str = "last_stream";
/// RST_STREAM or GOAWAY error code.
pub const ERROR_CODE: &str = "error_code";
/// The error code's name.
pub const ERROR_NAME: &str = "error_name";
/// GOAWAY debug data.
pub const DEBUG_DATA: &str = "debug_data";
/// The stream was reset.
pub const STREAM_ERROR: &str = "stream_error";
/// A header block continued in CONTINUATION frames.
pub const CONTINUED: &str = "continued";
/// CONTINUATION frames of a header block.
pub const CONTINUATIONS: &str = "continuations";
/// A header block larger than the buffer kept.
pub const OVERSIZE: &str = "oversize";
/// Limits that applied.
pub const CAPS: &str = "caps";
/// Decoded header list size.
pub const HEADER_LIST_SIZE: &str = "header_list_size";
/// The header list was cut at its limit.
pub const HEADERS_TRUNCATED: &str = "headers_truncated";
/// Header fields left out.
pub const OMITTED_HEADERS: &str = "omitted_headers";
/// HPACK references to dynamic table entries not seen.
pub const UNKNOWN_DYNAMIC: &str = "unknown_dynamic";
/// `HTTP.caps`: header lists cut at their limit.
pub const LISTS_TRUNCATED: &str = "lists_truncated";
/// `HTTP.caps`: header fields left out.
pub const FIELDS_OMITTED: &str = "fields_omitted";
/// `HTTP.caps`: HPACK references skipped.
pub const REFERENCES_SKIPPED: &str = "references_skipped";
/// `HTTP.caps`: streams not tracked.
pub const STREAMS_SKIPPED: &str = "streams_skipped";
/// `HTTP.caps`: CONTINUATION floods stopped.
pub const CONTINUATION_FLOODS: &str = "continuation_floods";
/// The HPACK table lost sync (earlier header blocks were missed).
pub const HPACK_UNSYNCED: &str = "hpack_unsynced";
/// gRPC call `{service, method, status, status_name, message}`.
pub const GRPC: &str = "grpc";
/// gRPC service.
pub const SERVICE: &str = "service";
/// gRPC status name.
pub const STATUS_NAME: &str = "status_name";

// Summaries (`PCAP_VERBOSITY=SUMMARY`).

/// `kind` and section of a connection summary entry.
pub const CONNECTION: &str = "connection";
/// `kind` and section of an exchange summary entry (HTTP exchange, gRPC call, DNS pair).
pub const EXCHANGE: &str = "exchange";
/// The client endpoint of an exchange.
pub const CLIENT: &str = "client";
/// The server endpoint of an exchange.
pub const SERVER: &str = "server";
/// A DNS query/response pair `{qname, qtype, rcode, answers}`.
pub const DNS_PAIR: &str = "dns";
/// DNS pair: the question's name.
pub const QNAME: &str = "qname";
/// DNS pair: the question's type.
pub const QTYPE: &str = "qtype";
/// DNS pair: the response code.
pub const RCODE: &str = "rcode";
/// Connection duration in seconds.
pub const DURATION: &str = "duration";
/// Connection state (Zeek's `conn_state`).
pub const CONN_STATE: &str = "conn_state";
/// Why the connection summary was written (`fin`, `rst`, `end`, `state_budget`).
pub const CLOSE_REASON: &str = "close_reason";
/// Connection history (Zeek's letters).
pub const HISTORY: &str = "history";
/// Seconds from the last SYN to the ACK completing the handshake (`L4.analysis`, connection
/// summaries).
pub const INITIAL_RTT: &str = "initial_rtt";
/// HTTP exchanges seen on the connection.
pub const HTTP_EXCHANGES: &str = "http_exchanges";
/// Originator address.
pub const ORIG_H: &str = "orig_h";
/// Originator port.
pub const ORIG_P: &str = "orig_p";
/// Responder address.
pub const RESP_H: &str = "resp_h";
/// Responder port.
pub const RESP_P: &str = "resp_p";
/// Originator packets.
pub const ORIG_PKTS: &str = "orig_pkts";
/// Responder packets.
pub const RESP_PKTS: &str = "resp_pkts";
/// Originator payload bytes.
pub const ORIG_PAYLOAD_BYTES: &str = "orig_payload_bytes";
/// Responder payload bytes.
pub const RESP_PAYLOAD_BYTES: &str = "resp_payload_bytes";
/// Originator retransmissions.
pub const ORIG_RETRANSMISSIONS: &str = "orig_retransmissions";
/// Responder retransmissions.
pub const RESP_RETRANSMISSIONS: &str = "resp_retransmissions";
/// Originator out-of-order segments.
pub const ORIG_OUT_OF_ORDER: &str = "orig_out_of_order";
/// Responder out-of-order segments.
pub const RESP_OUT_OF_ORDER: &str = "resp_out_of_order";
/// Originator segments lost (gaps).
pub const ORIG_LOST: &str = "orig_lost";
/// Responder segments lost (gaps).
pub const RESP_LOST: &str = "resp_lost";
/// Originator zero-window advertisements.
pub const ORIG_ZERO_WINDOW: &str = "orig_zero_window";
/// Responder zero-window advertisements.
pub const RESP_ZERO_WINDOW: &str = "resp_zero_window";

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// The crate's code outside test modules is where entries are written: a key spelled
    /// there instead of taken from this module is a key queries cannot find by name here.
    #[test]
    fn every_key_comes_from_this_module() {
        let mut files = Vec::new();
        rust_files(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        assert!(files.len() > 10, "{files:?}");
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default();
            // Whitespace collapsed, so a call split over lines reads as one.
            let code = code
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace("( ", "(")
                .replace("{ ", "{");
            for derive in code.split("#[derive(").skip(1) {
                let list = derive.split(")]").next().unwrap_or_default();
                assert!(
                    !list.contains("Serialize"),
                    "{}: derive(Serialize) takes keys from Rust field names; use serialize_with_keys!",
                    path.display()
                );
            }
            for literal_key in [
                "serialize_entry(\"",
                "serialize_key(\"",
                "serialize_field(\"",
                "json!({\"",
            ] {
                assert!(
                    !code.contains(literal_key),
                    "{}: a literal key after {literal_key}",
                    path.display()
                );
            }
        }
    }
}

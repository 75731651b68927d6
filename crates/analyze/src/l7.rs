//! The application-layer dispatch point: what a TCP/UDP payload is.
//!
//! DNS (by port: 53, mDNS 5353, LLMNR 5355; over TCP with its 2-byte length prefix),
//! HTTP/1.x (by content, on any TCP port, with per-connection state in [`FlowState::http`];
//! see [`crate::http1`]), HTTP/2 over cleartext TCP (by content, on any TCP port: the
//! connection preface or strictly valid frames, with per-connection state in
//! [`FlowState::h2`]; see [`crate::http2`]; an HTTP/1.1 `Upgrade: h2c` answered by `101`
//! switches the connection), TLS (by content, on any port: a strictly valid record header),
//! or an opaque payload.
//!
//! HTTP/1.x and HTTP/2 read each direction's bytes in order: the flow's
//! [`crate::reassembly::Streams`] (allocated on a SYN or the first payload of a TCP flow
//! that is not TLS or DNS) deliver them, so a retransmission is not parsed again
//! ([`App::Stream`] with [`StreamNote::Duplicate`] on an HTTP flow), an out-of-order segment
//! waits ([`StreamNote::Held`]) and the segment that fills the gap carries what it completed.

use wire::{dns, tls, ErrorKind};

use crate::decode::{DecodeError, Decoded, Layer, Transport};
use crate::flow::Side;
use crate::http1;
use crate::http2;
use crate::reassembly::{Delivery, Outcome, Seg, Stamps};
use crate::table::{FlowState, L7State};

/// What the payload of a packet is.
#[derive(Debug, Clone)]
pub enum App<'a> {
    /// An HTTP/1.x message, or a continuation of one (owned: it may come from several
    /// segments).
    Http(Box<http1::Message>),
    /// HTTP/2 frames (owned: frames and header blocks may span segments).
    Http2(Box<http2::Segment>),
    /// No payload.
    None,
    /// A DNS message (its header is present; sections may fail, see the error).
    Dns(dns::Message<'a>),
    /// TLS records.
    Tls(&'a [u8]),
    /// Unrecognised bytes.
    Opaque(&'a [u8]),
    /// A segment of an HTTP flow (or one not recognised yet) whose bytes gave the parser
    /// nothing now.
    Stream(StreamNote),
}

/// Why a segment of an HTTP flow was not parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamNote {
    /// Its bytes were delivered before (a retransmission or duplicate).
    Duplicate,
    /// Out of order: held until the gap before it fills.
    Held,
}

impl StreamNote {
    /// Name in JSON (`L7.stream`).
    pub fn name(self) -> &'static str {
        match self {
            StreamNote::Duplicate => "retransmitted",
            StreamNote::Held => "held_out_of_order",
        }
    }
}

fn is_dns_port(p: u16) -> bool {
    matches!(p, 53 | 5353 | 5355)
}

/// Recognises the payload of `d` and checks it fully, returning the first application-layer
/// error (a DNS message cut by a TCP segment boundary is not an error). Without the sender
/// side and time, HTTP state is keyed as if side A sent it at time 0: use [`classify_at`].
pub fn classify<'a>(
    d: &Decoded<'a>,
    flow: Option<&mut FlowState>,
) -> (App<'a>, Option<DecodeError>) {
    classify_at(d, flow, Side::A, 0)
}

/// [`classify`] for a packet sent by `side` of its flow at `now_ns` (packet time): HTTP/1.x
/// messages are analysed with the flow's per-connection state.
pub fn classify_at<'a>(
    d: &Decoded<'a>,
    mut flow: Option<&mut FlowState>,
    side: Side,
    now_ns: u64,
) -> (App<'a>, Option<DecodeError>) {
    let payload = d.payload;
    let (sport, dport) = d.ports().unwrap_or((0, 0));
    let dns_port = is_dns_port(sport) || is_dns_port(dport);
    // The flow's in-order bytes, for the HTTP parsers.
    let mut in_order: Option<Delivery<'a>> = None;
    let mut whole = true;
    if let (Some(Transport::Tcp(t)), Some(f), false) = (d.transport, flow.as_deref_mut(), dns_port)
    {
        match stream(f, d, &t, side, now_ns) {
            Some(Outcome::Data(del)) => {
                whole = false;
                in_order = Some(del);
            }
            Some(o @ (Outcome::Duplicate | Outcome::Held)) if !payload.is_empty() => {
                whole = false;
                let note = if matches!(o, Outcome::Held) {
                    StreamNote::Held
                } else {
                    StreamNote::Duplicate
                };
                // Flows already known as something else describe the segment as it is.
                if matches!(f.l7, L7State::Http | L7State::Http2 | L7State::Unknown) {
                    return (App::Stream(note), None);
                }
            }
            _ => {}
        }
    }
    if payload.is_empty() {
        return (App::None, None);
    }
    if let (Some(Transport::Tcp(_)), false) = (d.transport, dns_port) {
        // Without a flow (or before the stream knew the segment) the segment's own bytes.
        let (bytes, stamps, gap): (&[u8], Stamps, u64) = match &in_order {
            Some(del) => (&del.bytes, del.stamps.clone(), del.gap),
            None if whole => (payload, Stamps::at_once(now_ns), 0),
            None => (&[], Stamps::at_once(now_ns), 0),
        };
        if gap > 0 {
            if let Some(f) = flow.as_deref_mut() {
                if let Some(c) = f.http.as_mut() {
                    c.on_gap(side, gap);
                }
                if let Some(c) = f.h2.as_mut() {
                    c.on_gap(side, gap);
                }
            }
        }
        let has_h2 = flow.as_deref().is_some_and(|f| f.h2.is_some());
        if !has_h2 && !bytes.is_empty() {
            if let Some(mut m) = http_app(flow.as_deref_mut(), side, now_ns, &stamps, bytes) {
                m.gap = gap;
                if let Some(f) = flow {
                    f.l7 = L7State::Http;
                    if is_h2c_switch(&m) {
                        let req = m.request.clone().unwrap_or_default();
                        f.h2 = Some(Box::new(http2::Conn::upgraded(side.other(), req)));
                        f.http = None;
                    }
                }
                return (App::Http(Box::new(m)), None);
            }
        }
        if bytes.is_empty() {
            // Held or already seen on a flow not (yet) known as HTTP: described as it is.
        } else if let Some(mut seg) = h2_app(flow.as_deref_mut(), side, &stamps, bytes) {
            seg.gap = gap;
            if let Some(f) = flow {
                f.l7 = L7State::Http2;
            }
            return (App::Http2(Box::new(seg)), None);
        }
    }
    let (app, err) = match d.transport {
        Some(Transport::Udp(_)) if dns_port => dns_app(d, payload, d.payload_offset, false),
        Some(Transport::Tcp(_)) if dns_port && payload.len() >= 2 + dns::HEADER_LEN => {
            let declared = usize::from(u16::from_be_bytes([
                payload.first().copied().unwrap_or(0),
                payload.get(1).copied().unwrap_or(0),
            ]));
            let msg = payload.get(2..).unwrap_or(&[]);
            let cut = declared > msg.len();
            let msg = msg.get(..declared.min(msg.len())).unwrap_or(&[]);
            dns_app(d, msg, d.payload_offset + 2, cut)
        }
        Some(Transport::Tcp(_)) if tls::looks_like_tls(payload) => (App::Tls(payload), None),
        _ => (App::Opaque(payload), None),
    };
    if let Some(f) = flow {
        f.l7 = match app {
            App::Dns(_) => L7State::Dns,
            App::Tls(_) => L7State::Tls,
            App::Opaque(_) if f.l7 == L7State::Unknown => L7State::Opaque,
            _ => f.l7,
        };
        if matches!(f.l7, L7State::Tls | L7State::Dns) {
            // Encrypted or DNS: no parser reads the stream.
            f.streams = None;
        }
    }
    (app, err)
}

/// Feeds a TCP segment to its flow's streams (allocated on a SYN or the first payload);
/// `None` when the flow's bytes are not reassembled (TLS, DNS).
fn stream<'a>(
    f: &mut FlowState,
    d: &Decoded<'a>,
    t: &wire::tcp::Packet<'a>,
    side: Side,
    now_ns: u64,
) -> Option<Outcome<'a>> {
    if matches!(f.l7, L7State::Tls | L7State::Dns) {
        return None;
    }
    let flags = t.flags();
    if f.streams.is_none() && !flags.syn() && d.payload.is_empty() {
        return None;
    }
    let seg = Seg {
        seq: t.seq(),
        ack: flags.ack().then(|| t.ack()),
        syn: flags.syn(),
        fin: flags.fin(),
        rst: flags.rst(),
        payload: d.payload,
        wire_len: crate::tcp_analysis::payload_len_on_wire(d),
        ts_ns: now_ns,
    };
    let streams = f.streams.get_or_insert_with(Box::default);
    Some(streams.on_segment(side.index(), &seg))
}

fn http_app(
    flow: Option<&mut FlowState>,
    side: Side,
    now_ns: u64,
    stamps: &Stamps,
    payload: &[u8],
) -> Option<http1::Message> {
    match flow {
        Some(f) => {
            if f.http.is_none() {
                if !(http1::looks_like_request(payload) || http1::looks_like_response(payload)) {
                    return None;
                }
                f.http = Some(Box::default());
            }
            f.http.as_mut()?.on_bytes(side, now_ns, stamps, payload)
        }
        None => http1::Conn::default().on_bytes(side, now_ns, stamps, payload),
    }
}

/// A `101 Switching Protocols` to `h2c`.
fn is_h2c_switch(m: &http1::Message) -> bool {
    m.kind == http1::Kind::Response
        && m.code == 101
        && m.header("upgrade")
            .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"h2c"))
}

fn h2_app(
    flow: Option<&mut FlowState>,
    side: Side,
    stamps: &Stamps,
    payload: &[u8],
) -> Option<http2::Segment> {
    match flow {
        Some(f) => {
            if f.h2.is_none() {
                // A flow known as HTTP/2 whose state was evicted resumes without the
                // recognition check (its segments need not start on a frame boundary).
                let resumed = f.state_evicted && f.l7 == L7State::Http2;
                if !resumed
                    && (matches!(f.l7, L7State::Tls | L7State::Dns)
                        || !http2::looks_like_http2(payload))
                {
                    return None;
                }
                // Seeing the SYN (or the preface) means no header block was missed, unless
                // the state was evicted since.
                let from_start = !f.state_evicted
                    && (f.syn.iter().any(|s| *s) || payload.starts_with(http2::PREFACE));
                f.h2 = Some(Box::new(http2::Conn::new(from_start)));
                f.http = None;
            }
            Some(f.h2.as_mut()?.on_bytes(side, stamps, payload))
        }
        None => http2::looks_like_http2(payload).then(|| {
            http2::Conn::new(payload.starts_with(http2::PREFACE)).on_bytes(side, stamps, payload)
        }),
    }
}

fn dns_app<'a>(
    d: &Decoded<'a>,
    msg: &'a [u8],
    base: usize,
    cut: bool,
) -> (App<'a>, Option<DecodeError>) {
    let snap = d.truncated || cut;
    let m = match dns::Message::new_checked(msg) {
        Ok(m) => m,
        Err(e) if snap && e.kind == ErrorKind::Truncated => return (App::Opaque(d.payload), None),
        Err(_) => return (App::Opaque(d.payload), None),
    };
    let mut err = None;
    let q = m.questions().find_map(|r| r.err());
    let r = q.or_else(|| {
        m.records().find_map(|r| match r {
            Err(e) => Some(e),
            Ok(rec) => rec.data().err(),
        })
    });
    if let Some(e) = r {
        if !(snap && e.kind == ErrorKind::Truncated) {
            err = Some(DecodeError {
                layer: Layer::Dns,
                kind: e.kind,
                offset: base + e.offset,
            });
        }
    }
    (App::Dns(m), err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn veth(n: usize) -> &'static [u8] {
        wire::pcapfile::File::new(include_bytes!("../../wire/testdata/veth.pcap"))
            .unwrap()
            .records()
            .nth(n)
            .unwrap()
            .unwrap()
            .data
    }

    fn app(p: &[u8], wire_len: usize) -> (App<'_>, Option<DecodeError>) {
        let d = crate::decode(1, p, wire_len as u32);
        let mut f = FlowState::default();
        classify(&d, Some(&mut f))
    }

    #[test]
    fn dns_udp_tcp_tls_opaque() {
        assert!(matches!(app(veth(25), veth(25).len()), (App::Dns(m), None) if m.ancount() == 2));
        // DNS over TCP (packet 43: the query with its length prefix).
        assert!(matches!(app(veth(43), veth(43).len()), (App::Dns(m), None) if m.qdcount() == 1));
        assert!(matches!(app(veth(78), veth(78).len()), (App::Tls(_), None)));
        assert!(matches!(app(veth(53), veth(53).len()), (App::Http(m), None) if m.method == "GET"));
        // Not HTTP, and no HTTP state on the flow: opaque.
        let mut p = veth(53).to_vec();
        p[66] = b'g';
        assert!(matches!(app(&p, p.len()), (App::Opaque(_), None)));
        assert!(matches!(app(veth(50), veth(50).len()), (App::None, None)));
    }

    #[test]
    fn http2_by_content_after_http1_and_never_on_tls_flows() {
        // The HTTP/1.1 request of veth.pcap (packet 53) with its payload replaced.
        let with_payload = |payload: &[u8]| {
            let mut p = veth(53)[..66].to_vec();
            p.extend_from_slice(payload);
            let ip_len = (p.len() - 14) as u16;
            p[16..18].copy_from_slice(&ip_len.to_be_bytes());
            p
        };
        let mut preface = http2::PREFACE.to_vec();
        preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        let p = with_payload(&preface);
        let d = crate::decode(1, &p, p.len() as u32);
        let mut f = FlowState::default();
        let (a, e) = classify(&d, Some(&mut f));
        assert!(
            matches!(a, App::Http2(s) if s.preface && s.frames.len() == 1),
            "{e:?}"
        );
        assert_eq!(f.l7, L7State::Http2);
        assert!(f.h2.is_some() && f.http.is_none());
        // A flow already seen as TLS is never taken for HTTP/2, even by valid frames.
        let settings = with_payload(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        let d = crate::decode(1, &settings, settings.len() as u32);
        let mut tls = FlowState {
            l7: L7State::Tls,
            ..FlowState::default()
        };
        assert!(matches!(classify(&d, Some(&mut tls)).0, App::Opaque(_)));
        // HTTP/1.1 still wins on a new flow.
        let mut f = FlowState::default();
        assert!(matches!(app(veth(53), veth(53).len()).0, App::Http(_)));
        assert!(matches!(classify(&d, Some(&mut f)).0, App::Http2(_)));
    }

    #[test]
    fn dns_errors_and_snaplen() {
        let p = veth(25);
        // Snaplen cut inside the answers: not an error.
        let (a, e) = app(&p[..p.len() - 10], p.len());
        assert!(matches!(a, App::Dns(_)) && e.is_none(), "{e:?}");
        // A pointer forward in the answer name: an error with an absolute offset.
        let mut bad = p.to_vec();
        // The first compression pointer after the question is the answer's owner name
        // (questions hold none here); point it past itself, which RFC 1035 forbids.
        let question_end = 42 + 12 + "alias.example.test".len() + 2 + 4;
        let ptr = bad[question_end..].iter().position(|b| *b == 0xc0).unwrap() + question_end;
        bad[ptr + 1] = 0xff;
        let (_, e) = app(&bad, bad.len());
        let e = e.unwrap();
        assert_eq!(e.layer, Layer::Dns);
        assert_eq!(e.offset, ptr);
    }
}

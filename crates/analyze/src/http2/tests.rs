use super::*;
use crate::hpack::{self, Field};
use testbed::rng::Rng;
use testbed::synth::h2_frame_of as frame;
use testbed::synth::hpack_literal as encode_literal;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn block(fields: &[(&str, &str)], index: bool) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in fields {
        encode_literal(&mut b, n, v.as_bytes(), index);
    }
    b
}

fn settings() -> Vec<u8> {
    frame(4, 0, 0, &[0, 3, 0, 0, 0, 100, 0, 4, 0, 0, 0xff, 0xff])
}

/// The 24-byte PostgreSQL 3.0 startup message (user=postgres, database=db).
const POSTGRES_STARTUP: &[u8] =
    b"\x00\x00\x00\x26\x00\x03\x00\x00user\x00postgres\x00database\x00db\x00\x00";

#[test]
fn detection_is_strict() {
    let mut p = PREFACE.to_vec();
    assert!(looks_like_http2(&p));
    p.truncate(10);
    assert!(!looks_like_http2(&p));
    assert!(looks_like_http2(&settings()));
    let mut two = settings();
    two.extend(frame(8, 0, 0, &[0, 0, 0x10, 0]));
    assert!(looks_like_http2(&two));
    // A trailing byte, an unknown flag, a reserved bit, wrong lengths or stream ids.
    let mut bad = settings();
    bad.push(0);
    assert!(!looks_like_http2(&bad));
    assert!(!looks_like_http2(&frame(4, 0x02, 0, &[])));
    assert!(!looks_like_http2(&frame(8, 0, 0x8000_0000, &[0, 0, 1, 0])));
    assert!(!looks_like_http2(&frame(8, 0, 0, &[0, 0, 1])));
    assert!(!looks_like_http2(&frame(0, 0, 0, b"data")));
    assert!(!looks_like_http2(&frame(4, 0, 1, &[])));
    assert!(!looks_like_http2(&frame(6, 0, 0, &[0; 7])));
    assert!(!looks_like_http2(&frame(0x0b, 0, 1, b"ext")));
    // The first frame must be complete.
    assert!(!looks_like_http2(&frame(0, 0, 1, &[0; 100])[..50]));
    // Other protocols.
    assert!(!looks_like_http2(POSTGRES_STARTUP));
    assert!(
        !looks_like_http2(b"\x00\x00\x00\x08\x04\xd2\x16\x2f"),
        "SSLRequest"
    );
    assert!(!looks_like_http2(b"Q\x00\x00\x00\x0dselect 1\x00"));
    assert!(!looks_like_http2(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    ));
    assert!(!looks_like_http2(b"GET / HTTP/1.1\r\n\r\n"));
    // Random segments (fixed seed): none is taken for HTTP/2.
    let mut rng = Rng::from_state(0x2545_f491_4f6c_dd1d);
    let mut hits = 0;
    for _ in 0..200_000 {
        let mut seg = [0u8; 48];
        let len = 9 + rng.index(40);
        rng.fill(&mut seg);
        hits += usize::from(looks_like_http2(&seg[..len]));
    }
    assert_eq!(hits, 0);
}

fn request(sid: u32, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut f = vec![
        (":method", "GET"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "svc.test"),
    ];
    f.extend_from_slice(extra);
    frame(
        1,
        flags::END_HEADERS | flags::END_STREAM,
        sid,
        &block(&f, true),
    )
}

#[test]
fn pairs_streams_with_latency_and_trace() {
    let mut c = Conn::new(true);
    let mut p = PREFACE.to_vec();
    p.extend(settings());
    p.extend(request(1, "/a", &[("traceparent", TP)]));
    p.extend(request(3, "/b", &[]));
    let s = c.on_segment(Side::A, 1_000, &p);
    assert!(s.preface && s.error.is_none(), "{s:?}");
    assert_eq!(s.frames.len(), 3);
    let (f, h) = s.first_headers().unwrap();
    assert_eq!((f.stream, h.role), (1, Role::Request));
    assert_eq!(h.get(":path"), Some(&b"/a"[..]));
    assert_eq!(
        s.trace.unwrap().trace_id_str(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(c.streams(), 2);
    assert_eq!(c.client, Some(Side::A));
    // Responses in the other order; the server's table is its own.
    let mut r = settings();
    r.extend(frame(
        1,
        flags::END_HEADERS,
        3,
        &block(&[(":status", "404")], true),
    ));
    r.extend(frame(1, flags::END_HEADERS, 1, &[0xbe]));
    r.extend(frame(0, flags::END_STREAM, 1, b"hello"));
    let s = c.on_segment(Side::B, 5_001_000, &r);
    assert!(s.error.is_none(), "{s:?}");
    let h3 = s.frames[1].headers.as_ref().unwrap();
    assert_eq!(
        (h3.role, h3.status, h3.latency_ns),
        (Role::Response, Some(404), Some(5_000_000))
    );
    assert!(h3.trace.is_none());
    let h1 = s.frames[2].headers.as_ref().unwrap();
    assert_eq!(
        h1.status,
        Some(404),
        "dynamic index 62 of the server's table"
    );
    assert_eq!(h1.request.as_ref().unwrap().url, "/a");
    assert!(
        h1.trace.is_some(),
        "the response inherits its request's trace"
    );
    assert!(s.frames[3].trace.is_some(), "so does its DATA");
    assert_eq!(c.streams(), 1, "stream 1 ended");
    assert!(c.current.is_some());
}

#[test]
fn continuation_padding_priority() {
    let mut c = Conn::new(true);
    let big = "x".repeat(20_000);
    let b = block(
        &[
            (":method", "POST"),
            (":path", "/big"),
            ("x-big", &big),
            (
                "x-cloud-trace-context",
                "0af7651916cd43dd8448eb211c80319c/1;o=1",
            ),
        ],
        false,
    );
    // HEADERS with PADDED|PRIORITY carrying the first 10 000 bytes, then two CONTINUATIONs.
    let mut first = vec![3u8];
    first.extend_from_slice(&[0x80, 0, 0, 0, 15]);
    first.extend_from_slice(&b[..10_000]);
    first.extend_from_slice(&[0, 0, 0]);
    let mut p = frame(1, flags::PADDED | flags::PRIORITY, 5, &first);
    p.extend(frame(9, 0, 5, &b[10_000..16_000]));
    p.extend(frame(9, flags::END_HEADERS, 5, &b[16_000..]));
    // Across three segments, cut inside frames.
    let (a, rest) = p.split_at(7_000);
    let (bb, cc) = rest.split_at(9_000);
    let s = c.on_segment(Side::A, 0, a);
    assert!(s.partial && s.frames.is_empty() && s.error.is_none());
    let s = c.on_segment(Side::A, 1, bb);
    assert!(s.error.is_none(), "{s:?}");
    assert_eq!(s.frames[0].kind, FrameType::Headers);
    assert!(s.frames[0].reassembled && s.frames[0].headers.is_none());
    assert!(s.continued > 0);
    let s = c.on_segment(Side::A, 2, cc);
    assert!(s.error.is_none(), "{s:?}");
    let last = s.frames.last().unwrap();
    assert_eq!(last.kind, FrameType::Continuation);
    let h = last.headers.as_ref().unwrap();
    assert_eq!((h.role, h.continuations), (Role::Request, 2));
    assert_eq!(
        h.get("x-big").map(<[u8]>::len),
        Some(hpack::MAX_STRING),
        "cut"
    );
    assert!(h.trace.is_some());
    assert_eq!(c.buffered(), 0);
    // Padding longer than the payload.
    let s = c.on_segment(
        Side::A,
        3,
        &frame(1, flags::PADDED | flags::END_HEADERS, 7, &[9, 0x82]),
    );
    assert_eq!(s.error.unwrap().code, "BAD_PADDING");
    // A frame in the middle of a header block.
    let mut p = frame(1, 0, 9, &block(&[(":method", "GET")], false));
    p.extend(frame(8, 0, 0, &[0, 0, 1, 0]));
    let s = c.on_segment(Side::A, 4, &p);
    assert_eq!(s.error.unwrap().code, "EXPECTED_CONTINUATION");
}

#[test]
fn rst_goaway_and_grpc() {
    let mut c = Conn::new(true);
    let req = |sid, path| {
        frame(
            1,
            flags::END_HEADERS,
            sid,
            &block(
                &[
                    (":method", "POST"),
                    (":path", path),
                    ("content-type", "application/grpc"),
                    ("traceparent", TP),
                ],
                false,
            ),
        )
    };
    let mut p = PREFACE.to_vec();
    p.extend(req(1, "/pkg.Svc/Get"));
    p.extend(frame(0, flags::END_STREAM, 1, &[0, 0, 0, 0, 2, 8, 1]));
    p.extend(req(3, "/pkg.Svc/Slow"));
    c.on_segment(Side::A, 0, &p);
    // Trailers-only error response.
    let t = block(
        &[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "5"),
            ("grpc-message", "no%20such%20key"),
        ],
        false,
    );
    let s = c.on_segment(
        Side::B,
        10,
        &frame(1, flags::END_HEADERS | flags::END_STREAM, 1, &t),
    );
    let h = s.frames[0].headers.as_ref().unwrap();
    let g = h.grpc.as_ref().unwrap();
    assert_eq!((g.service.as_str(), g.method.as_str()), ("pkg.Svc", "Get"));
    assert_eq!(
        (g.status, g.message.as_deref()),
        (Some(5), Some("no such key"))
    );
    // Stream 3: response headers, then trailers with grpc-status 0.
    c.on_segment(
        Side::B,
        11,
        &frame(
            1,
            flags::END_HEADERS,
            3,
            &block(&[(":status", "200")], false),
        ),
    );
    let s = c.on_segment(
        Side::B,
        12,
        &frame(
            1,
            flags::END_HEADERS | flags::END_STREAM,
            3,
            &block(&[("grpc-status", "0")], false),
        ),
    );
    let h = s.frames[0].headers.as_ref().unwrap();
    assert_eq!(h.role, Role::Trailers);
    assert_eq!(h.grpc.as_ref().unwrap().status, Some(0));
    assert_eq!(h.grpc.as_ref().unwrap().method, "Slow");
    assert!(h.trace.is_some());
    assert_eq!(c.streams(), 0);
    // RST_STREAM of an open stream reports its request and trace; GOAWAY its codes.
    c.on_segment(Side::A, 13, &req(5, "/pkg.Svc/Gone"));
    let s = c.on_segment(Side::B, 14, &frame(3, 0, 5, &8u32.to_be_bytes()));
    assert_eq!(s.frames[0].error_code, Some(8));
    assert_eq!(s.frames[0].request.as_ref().unwrap().url, "/pkg.Svc/Gone");
    assert!(s.trace.is_some());
    let mut g = 5u32.to_be_bytes().to_vec();
    g.extend(2u32.to_be_bytes());
    g.extend(b"boom");
    let s = c.on_segment(Side::B, 15, &frame(7, 0, 0, &g));
    let f = &s.frames[0];
    assert_eq!(
        (f.last_stream, f.error_code, f.debug_data.as_deref()),
        (Some(5), Some(2), Some("boom"))
    );
    assert_eq!(s.worst_error_code(), Some(2));
    assert!(is_severe_error(2) && !is_severe_error(8));
    assert_eq!(error_name(8), "CANCEL");
}

#[test]
fn mid_connection_marks_unknown_dynamic_references() {
    // Joined mid-way: the client's table already holds entries we never saw.
    let mut c = Conn::new(false);
    let mut b = vec![0x82, 0x86, 0xbf, 0xbe]; // GET, http, two unknown dynamic refs
    encode_literal(&mut b, ":path", b"/later", false);
    let s = c.on_segment(
        Side::A,
        0,
        &frame(1, flags::END_HEADERS | flags::END_STREAM, 7, &b),
    );
    assert!(s.error.is_none(), "{s:?}");
    let h = s.frames[0].headers.as_ref().unwrap();
    assert!(h.unsynced);
    assert_eq!(h.role, Role::Request);
    assert_eq!(h.block.unknown().collect::<Vec<_>>(), [63, 62]);
    assert_eq!(h.get(":path"), Some(&b"/later"[..]));
    assert!(matches!(h.block.fields[2], Field::Unknown(63)));
    // A CONTINUATION whose HEADERS was before the capture: described, not an error.
    let s = c.on_segment(Side::A, 1, &frame(9, flags::END_HEADERS, 9, &[0xbe]));
    assert!(s.error.is_none() && s.frames[0].headers.is_none());
    // Garbage after joining is an error, then analysis resumes.
    let s = c.on_segment(Side::A, 2, b"\x00\x00\x05\x03\x00\x00\x00\x00\x01abcde");
    assert_eq!(s.error.unwrap().code, "INVALID_FRAME_HEADER");
    let s = c.on_segment(Side::A, 3, &settings());
    assert!(s.error.is_none());
}

#[test]
fn bounds() {
    let mut c = Conn::new(true);
    for i in 0..1000u32 {
        c.on_segment(Side::A, u64::from(i), &request(2 * i + 1, "/", &[]));
        assert!(c.streams() <= MAX_STREAMS);
    }
    assert_eq!(c.dropped_streams, 1000 - MAX_STREAMS as u64);
    // An oversize DATA frame: described, then its bytes skipped without buffering.
    let mut p = frame(0, 0, 1, &vec![0; 100_000]);
    let tail = p.split_off(1_400);
    let s = c.on_segment(Side::B, 0, &p);
    assert!(s.frames[0].oversize && c.buffered() == 0);
    for chunk in tail.chunks(1_400) {
        let s = c.on_segment(Side::B, 0, chunk);
        assert!(s.error.is_none() && s.frames.is_empty() && s.continued == chunk.len());
    }
    assert!(c.on_segment(Side::B, 0, &settings()).error.is_none());
    // An endless header block is cut at its cap.
    let mut c = Conn::new(true);
    let mut err = None;
    c.on_segment(Side::A, 0, &frame(1, 0, 1, &[0x82]));
    for _ in 0..10 {
        let s = c.on_segment(Side::A, 0, &frame(9, 0, 1, &[0x40; 16_000]));
        assert!(c.buffered() <= MAX_HEADER_BLOCK + MAX_FRAME_BUFFER);
        if s.error.is_some() {
            err = s.error;
            break;
        }
    }
    assert_eq!(err.unwrap().code, "HEADER_BLOCK_TOO_LARGE");
    assert_eq!(c.buffered(), 0);
}

#[test]
fn push_promise_and_unknown_frame_types() {
    let mut c = Conn::new(true);
    c.on_segment(Side::A, 0, &request(1, "/", &[]));
    let mut pp = 2u32.to_be_bytes().to_vec();
    pp.extend(block(&[(":method", "GET"), (":path", "/style.css")], false));
    let mut p = frame(5, flags::END_HEADERS, 1, &pp);
    p.extend(frame(0xfa, 0x0f, 0, b"extension"));
    let s = c.on_segment(Side::B, 1, &p);
    assert!(s.error.is_none(), "{s:?}");
    let h = s.frames[0].headers.as_ref().unwrap();
    assert_eq!(
        (h.role, h.get(":path")),
        (Role::Promise, Some(&b"/style.css"[..]))
    );
    assert_eq!(s.frames[1].kind, FrameType::Unknown(0xfa));
    assert_eq!(s.frames[1].kind.name(), "UNKNOWN");
}

/// Mutated and cut valid traffic (fixed seed) through synced and mid-connection
/// state: nothing panics (debug builds check arithmetic overflow too) and the bounds hold.
#[test]
fn mutated_segments_never_panic() {
    let mut base = PREFACE.to_vec();
    base.extend(settings());
    base.extend(request(1, "/a", &[("traceparent", TP), ("cookie", "c")]));
    let mut cont = frame(
        1,
        flags::PADDED | flags::PRIORITY,
        3,
        &[2, 0, 0, 0, 1, 9, 0x82, 0x40, 1, b'k', 1, b'v', 0, 0],
    );
    cont.extend(frame(
        9,
        flags::END_HEADERS,
        3,
        &[0xbe, 0xbf, 0x3f, 0xe1, 0x1f],
    ));
    base.extend(cont);
    base.extend(frame(3, 0, 1, &[0, 0, 0, 1]));
    base.extend(frame(7, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 2, b'x']));
    let mut rng = Rng::from_state(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000 {
        let mut c = Conn::new(round % 2 == 0);
        for _ in 0..8 {
            let mut seg = base.clone();
            for _ in 0..rng.below(6) {
                let i = rng.index(seg.len());
                seg[i] = rng.next() as u8;
            }
            let start = rng.index(40);
            let end = seg.len() - rng.index(40);
            let side = if rng.below(3) == 0 { Side::B } else { Side::A };
            let _ = c.on_segment(side, rng.below(1_000), &seg[start.min(end)..end]);
            assert!(c.buffered() <= 2 * (MAX_FRAME_BUFFER + MAX_HEADER_BLOCK));
            assert!(c.streams() <= MAX_STREAMS);
            assert!(c.table_sizes().iter().all(|t| *t <= hpack::MAX_TABLE_SIZE));
        }
    }
}

#[test]
fn a_gap_inside_a_frame_loses_that_frame_and_keeps_the_boundaries() {
    let mut c = Conn::new(true);
    let req = frame(
        1,
        0x05,
        1,
        &block(
            &[(":method", "GET"), (":path", "/a"), ("traceparent", TP)],
            false,
        ),
    );
    c.on_segment(Side::A, 0, &req);
    let resp = frame(1, 0x04, 1, &block(&[(":status", "200")], false));
    c.on_segment(Side::B, 1, &resp);
    // A DATA frame of 100 bytes: its first 30 seen, 40 never, the last 30 and the next
    // frame in one delivery.
    let data = frame(0, 0, 1, &[7u8; 100]);
    c.on_segment(Side::B, 2, &data[..39]);
    c.on_gap(Side::B, 40);
    let mut rest = data[79..].to_vec();
    let end = frame(0, 0x01, 1, b"end");
    rest.extend_from_slice(&end);
    let seg = c.on_bytes(Side::B, &Stamps::at_once(3), &rest);
    assert!(seg.error.is_none(), "{:?}", seg.error);
    assert_eq!(seg.frames.len(), 1);
    assert_eq!(seg.frames[0].kind, FrameType::Data);
    assert_eq!(seg.skipped, 0);
}

#[test]
fn a_gap_across_frames_resynchronises_at_a_run_of_frames() {
    let mut c = Conn::new(true);
    c.on_segment(Side::A, 0, &settings());
    // Frame boundaries lost: the bytes before the next whole run of frames are skipped,
    // HPACK knows it may have missed entries.
    c.on_gap(Side::A, 25);
    let mut bytes = vec![0xaa; 5];
    let req = frame(
        1,
        0x05,
        3,
        &block(&[(":method", "GET"), (":path", "/b")], false),
    );
    bytes.extend_from_slice(&req);
    let seg = c.on_bytes(Side::A, &Stamps::at_once(10), &bytes);
    assert!(seg.error.is_none(), "{:?}", seg.error);
    assert_eq!(seg.skipped, 5);
    let (_, h) = seg.first_headers().unwrap();
    assert_eq!(h.get(":path"), Some(&b"/b"[..]));
    assert!(h.unsynced);
}

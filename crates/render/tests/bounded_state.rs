//! Memory stays bounded under many HTTP connections: 100 000 connections, half
//! h2c (preface, SETTINGS, a request and a response whose headers enter both HPACK dynamic
//! tables, DATA) and half HTTP/1.1 (keep-alive request and response), all with trace
//! headers, go through one `Translator` with the default settings (50 000 flows). Half of
//! the connections close (FIN, FIN, ACK: their HTTP state is freed at once), half stay
//! open until the flow table's cap evicts them.
//!
//! A counting global allocator measures the live heap bytes; the peak must stay under
//! [`BOUND`]: 50 000 flows × (flow-table slot + boxed HTTP/1.1 or HTTP/2 state with its
//! small HPACK tables) measured 41 MiB; 64 MiB leaves room for hash-map growth steps. The bound is what `docs/benchmarks.md` states too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The only unsafe code of the workspace, in this test binary alone: a global allocator must
// implement `GlobalAlloc` (an unsafe trait); it forwards to `System` and only counts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use cloud_logging::Verbosity;
use render::{Interface, Source, Translator, TranslatorSettings};
use testbed::synth::hpack_literal as encode_literal;
use wire::{CapturedPacket, LinkType};

mod common;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                let now = LIVE.fetch_add(new - l.size(), Ordering::Relaxed) + new - l.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Peak live heap allowed while 100 000 connections pass (see the module doc).
const BOUND: usize = 64 << 20;
const CONNECTIONS: u32 = 100_000;

fn frame(t: u8, fl: u8, sid: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    v.push(t);
    v.push(fl);
    v.extend_from_slice(&sid.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn tcp(client: u32, to_server: bool, flags: u8, payload: &[u8], out: &mut Vec<u8>) {
    let c = [
        10,
        1 + (client >> 16) as u8,
        (client >> 8) as u8,
        client as u8,
    ];
    let s = [10, 0, 0, 1];
    let cport = 20_000 + (client % 40_000) as u16;
    let (src, dst, sp, dp) = if to_server {
        (c, s, cport, 8080)
    } else {
        (s, c, 8080, cport)
    };
    common::write_tcp(out, (src, sp), (dst, dp), 1, flags, payload);
}

fn h2_messages(i: u32) -> (Vec<u8>, Vec<u8>) {
    let tp = format!("00-{:032x}-{:016x}-01", u128::from(i) + 1, u64::from(i) + 1);
    let mut req = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    req.extend(frame(4, 0, 0, &[0, 3, 0, 0, 0, 100]));
    let mut b = vec![0x82, 0x86];
    encode_literal(&mut b, ":path", format!("/item/{i}").as_bytes(), false);
    encode_literal(&mut b, ":authority", b"svc.test:8080", true);
    encode_literal(&mut b, "user-agent", b"bounded-state-test/1.0", true);
    encode_literal(&mut b, "traceparent", tp.as_bytes(), false);
    req.extend(frame(1, 5, 1, &b));
    let mut resp = frame(4, 0, 0, &[]);
    let mut h = vec![0x88];
    encode_literal(&mut h, "server", b"bounded/1", true);
    encode_literal(&mut h, "content-type", b"text/plain", true);
    resp.extend(frame(1, 4, 1, &h));
    resp.extend(frame(0, 1, 1, b"hello world"));
    (req, resp)
}

fn h1_messages(i: u32) -> (Vec<u8>, Vec<u8>) {
    let req = format!(
        "GET /item/{i} HTTP/1.1\r\nHost: svc.test\r\nUser-Agent: bounded-state-test/1.0\r\nX-Cloud-Trace-Context: {:032x}/{i};o=1\r\n\r\n",
        u128::from(i) + 1
    );
    let resp =
        "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world";
    (req.into_bytes(), resp.as_bytes().to_vec())
}

#[test]
fn one_hundred_thousand_http_connections_stay_under_the_bound() {
    let source = Source {
        interface: Interface {
            index: 1,
            name: "eth0".into(),
            addrs: vec!["10.0.0.1".parse::<IpAddr>().unwrap()],
        },
        linktype: LinkType::Raw,
    };
    let mut t = Translator::new(TranslatorSettings {
        verbosity: Verbosity::Info,
        ..TranslatorSettings::default()
    });
    let mut out = Vec::with_capacity(1 << 20);
    let mut data = Vec::with_capacity(2048);
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let mut num = 0u64;
    let mut h2_entries = 0u64;
    let mut max_live = 0usize;
    for i in 0..CONNECTIONS {
        let (req, resp) = if i % 2 == 0 {
            h2_messages(i)
        } else {
            h1_messages(i)
        };
        let close = i % 4 < 2;
        let mut steps: Vec<(bool, u8, &[u8])> = vec![
            (true, 0x02, &[]),
            (false, 0x12, &[]),
            (true, 0x10, &[]),
            (true, 0x18, &req),
            (false, 0x18, &resp),
        ];
        if close {
            steps.extend([
                (true, 0x11, &[][..]),
                (false, 0x11, &[][..]),
                (true, 0x10, &[][..]),
            ]);
        }
        for (to_server, flags, payload) in steps {
            tcp(i, to_server, flags, payload, &mut data);
            let ns = u64::from(i) * 20_000 + num % 8;
            let p = CapturedPacket {
                ts_sec: 1_700_000_000 + (ns / 1_000_000_000) as i64,
                ts_nsec: (ns % 1_000_000_000) as u32,
                wire_len: data.len() as u32,
                num,
                data: &data,
            };
            num += 1;
            out.clear();
            t.translate(&source, &p, &mut out);
            if out
                .windows(13)
                .any(|w| w == b"HEADERS#1 200" || w == b"HEADERS#1 GET")
            {
                h2_entries += 1;
            }
        }
        if i % 10_000 == 9_999 {
            max_live = max_live.max(LIVE.load(Ordering::Relaxed) - base);
        }
    }
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let c = t.counters();
    eprintln!(
        "packets {} peak live heap {:.1} MiB, live at checkpoints {:.1} MiB, flows active {} evicted by cap {}",
        c.packets,
        peak as f64 / (1 << 20) as f64,
        max_live as f64 / (1 << 20) as f64,
        c.flows_active,
        c.flows_evicted_cap
    );
    // Each h2c connection: one request and one response entry.
    assert_eq!(h2_entries, u64::from(CONNECTIONS), "h2 analysed");
    assert_eq!(c.error, 0, "no analysis errors");
    assert!(c.flows_evicted_cap > 0, "the cap was reached");
    assert!(c.flows_active <= 50_000);
    assert!(
        peak < BOUND,
        "peak live heap {peak} bytes over the bound {BOUND}"
    );
}

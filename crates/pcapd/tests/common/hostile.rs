//! Hostile traffic written as pcap files, and a runner that measures what
//! `pcapd --read` costs on them: peak RSS of the child (wait4's rusage), the longest line,
//! lines per packet, time.
//!
//! Generators: HPACK bombs (a 16 KB entry referenced thousands of times; table-size games;
//! long Huffman strings), CONTINUATION floods, rapid-reset floods, very many h2c
//! connections holding state, a million tiny flows, very many headers (HTTP/1 and h2c),
//! pipelined HTTP/1 floods, DNS compression chains and loops, TLS ClientHellos with
//! thousands of extensions.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::live::clean_env;
use testbed::pcapfile::{Writer, START_MICROS};
use testbed::synth::{self, h2_frame, hpack_integer, hpack_literal, Ip, ACK, FIN, PSH, SYN};

/// Creates `path` and runs `f` with a pcap writer (snap length 256 KiB, frames 10 µs apart);
/// returns the packets written.
pub fn write_file(path: &Path, f: impl FnOnce(&mut Writer<BufWriter<File>>)) -> u64 {
    let file = BufWriter::new(File::create(path).unwrap());
    let mut w = Writer::new(file, 262_144)
        .unwrap()
        .clock(START_MICROS + 10, 10);
    f(&mut w);
    let packets = w.packets();
    w.finish().unwrap();
    packets
}

/// One TCP connection: both directions' sequence numbers.
pub struct Tcp {
    ip: Ip,
    sport: u16,
    dport: u16,
    c: u32,
    s: u32,
}

impl Tcp {
    /// Client `10.<n>` port `sport` to server 10.0.0.1:`dport`.
    pub fn new(n: u32, sport: u16, dport: u16) -> Tcp {
        let client = Ipv4Addr::from(0x0a00_0000 | (n & 0x00ff_ffff).max(2));
        Tcp {
            ip: Ip::V4(client, Ipv4Addr::new(10, 0, 0, 1)),
            sport,
            dport,
            c: 1000,
            s: 5000,
        }
    }

    pub fn handshake<W: Write>(&mut self, w: &mut Writer<W>) {
        w.frame(&synth::tcp(
            self.ip,
            self.sport,
            self.dport,
            self.c,
            0,
            SYN,
            &[],
            1,
        ))
        .unwrap();
        w.frame(&synth::tcp(
            self.ip.reversed(),
            self.dport,
            self.sport,
            self.s,
            self.c + 1,
            SYN | ACK,
            &[],
            1,
        ))
        .unwrap();
        self.c += 1;
        self.s += 1;
        w.frame(&synth::tcp(
            self.ip,
            self.sport,
            self.dport,
            self.c,
            self.s,
            ACK,
            &[],
            2,
        ))
        .unwrap();
    }

    /// A segment from the client (`true`) or the server.
    pub fn send<W: Write>(&mut self, w: &mut Writer<W>, client: bool, payload: &[u8]) {
        let frame = if client {
            let f = synth::tcp(
                self.ip,
                self.sport,
                self.dport,
                self.c,
                self.s,
                PSH | ACK,
                payload,
                3,
            );
            self.c = self.c.wrapping_add(payload.len() as u32);
            f
        } else {
            let f = synth::tcp(
                self.ip.reversed(),
                self.dport,
                self.sport,
                self.s,
                self.c,
                PSH | ACK,
                payload,
                3,
            );
            self.s = self.s.wrapping_add(payload.len() as u32);
            f
        };
        w.frame(&frame).unwrap();
    }

    pub fn close<W: Write>(&mut self, w: &mut Writer<W>) {
        w.frame(&synth::tcp(
            self.ip,
            self.sport,
            self.dport,
            self.c,
            self.s,
            FIN | ACK,
            &[],
            4,
        ))
        .unwrap();
        w.frame(&synth::tcp(
            self.ip.reversed(),
            self.dport,
            self.sport,
            self.s,
            self.c + 1,
            FIN | ACK,
            &[],
            4,
        ))
        .unwrap();
    }
}

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const HEADERS: u8 = 1;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const CONTINUATION: u8 = 9;
pub const END_STREAM: u8 = 1;
pub const END_HEADERS: u8 = 4;

/// The client preface, SETTINGS (HEADER_TABLE_SIZE 65536) and a HEADERS frame on stream 1
/// that raises the table to 64 KiB and adds `name: value` to it.
pub fn h2_setup(name: &str, value: &[u8]) -> Vec<u8> {
    let mut seg = PREFACE.to_vec();
    let mut settings = vec![0, 1];
    settings.extend_from_slice(&65_536u32.to_be_bytes());
    h2_frame(&mut seg, SETTINGS, 0, 0, &settings);
    let mut block = Vec::new();
    hpack_integer(&mut block, 0x20, 5, 65_536);
    block.extend_from_slice(&[0x82, 0x86, 0x84]); // :method GET, :scheme http, :path /
    hpack_literal(&mut block, name, value, true);
    h2_frame(&mut seg, HEADERS, END_HEADERS | END_STREAM, 1, &block);
    seg
}

/// The measured HPACK bomb: one h2c connection sets a 64 KiB header table, adds one 16 KB
/// entry, then sends `segments` segments each holding 10 HEADERS frames of 128 one-byte
/// references to that entry.
pub fn hpack_bomb<W: Write>(w: &mut Writer<W>, segments: u32) {
    let mut t = Tcp::new(2, 40_000, 8080);
    t.handshake(w);
    t.send(w, true, &h2_setup("x-bomb", &[b'b'; 16_000]));
    let mut stream = 3u32;
    for _ in 0..segments {
        let mut seg = Vec::new();
        for _ in 0..10 {
            h2_frame(
                &mut seg,
                HEADERS,
                END_HEADERS | END_STREAM,
                stream,
                &[0xbe; 128],
            );
            stream += 2;
        }
        t.send(w, true, &seg);
    }
    t.close(w);
}

/// Table-size games (the table shrunk to 0 and regrown in every block, entries added and
/// referenced) and Huffman edge cases (long strings of 5-bit codes decoding past the string
/// cap, 30-bit codes, bad padding).
pub fn hpack_games<W: Write>(w: &mut Writer<W>, segments: u32) {
    let mut t = Tcp::new(3, 40_001, 8080);
    t.handshake(w);
    t.send(w, true, &h2_setup("x-a", &[b'a'; 4_000]));
    let mut stream = 3u32;
    // 12,000 bytes of '0' (5-bit code 00000): 19,200 symbols.
    let zeros = vec![0u8; 12_000];
    for i in 0..segments {
        let mut block = Vec::new();
        hpack_integer(&mut block, 0x20, 5, 0);
        hpack_integer(&mut block, 0x20, 5, 65_536);
        match i % 3 {
            0 => {
                // Literal, indexed name, Huffman value of 19,200 symbols.
                block.push(0x40 | 58); // user-agent
                hpack_integer(&mut block, 0x80, 7, zeros.len());
                block.extend_from_slice(&zeros);
                block.extend_from_slice(&[0xbe; 64]);
            }
            1 => {
                // 30-bit codes (symbols 10, 13, 22) until the padding: a bad string.
                block.push(0x40);
                hpack_integer(&mut block, 0, 7, 1);
                block.push(b'n');
                hpack_integer(&mut block, 0x80, 7, 4_000);
                block.extend(std::iter::repeat_n(0xff, 3_999));
                block.push(0xf0);
            }
            _ => {
                for j in 0..200 {
                    hpack_literal(&mut block, "x-g", format!("{j:0>300}").as_bytes(), true);
                    block.push(0xbe);
                }
            }
        }
        let mut seg = Vec::new();
        for chunk_start in (0..block.len()).step_by(16_000) {
            let chunk = &block[chunk_start..block.len().min(chunk_start + 16_000)];
            let last = chunk_start + 16_000 >= block.len();
            let (kind, flags) = if chunk_start == 0 {
                (HEADERS, END_STREAM)
            } else {
                (CONTINUATION, 0)
            };
            h2_frame(
                &mut seg,
                kind,
                flags | if last { END_HEADERS } else { 0 },
                stream,
                chunk,
            );
        }
        stream += 2;
        t.send(w, true, &seg);
    }
    t.close(w);
}

/// A HEADERS frame without END_HEADERS followed by thousands of one-byte CONTINUATION
/// frames (never ending), over `segments` segments.
pub fn continuation_flood<W: Write>(w: &mut Writer<W>, segments: u32) {
    let mut t = Tcp::new(4, 40_002, 8080);
    t.handshake(w);
    let mut first = PREFACE.to_vec();
    h2_frame(&mut first, SETTINGS, 0, 0, &[]);
    h2_frame(&mut first, HEADERS, 0, 1, &[0x82, 0x86, 0x84]);
    t.send(w, true, &first);
    for _ in 0..segments {
        let mut seg = Vec::new();
        for _ in 0..1_400 {
            h2_frame(&mut seg, CONTINUATION, 0, 1, &[0xbe]);
        }
        t.send(w, true, &seg);
    }
    t.close(w);
}

/// Rapid reset (CVE-2023-44487): HEADERS then RST_STREAM(CANCEL) for thousands of streams,
/// from the start and, on a second connection, from a capture joined mid-way.
pub fn rapid_reset<W: Write>(w: &mut Writer<W>, segments: u32) {
    let mut t = Tcp::new(5, 40_003, 8080);
    t.handshake(w);
    t.send(w, true, &h2_setup("x-r", b"r"));
    let mut stream = 3u32;
    for _ in 0..segments {
        let mut seg = Vec::new();
        for _ in 0..1_000 {
            h2_frame(
                &mut seg,
                HEADERS,
                END_HEADERS,
                stream,
                &[0x82, 0x86, 0x84, 0xbe],
            );
            h2_frame(&mut seg, RST_STREAM, 0, stream, &8u32.to_be_bytes());
            stream += 2;
        }
        t.send(w, true, &seg);
    }
    t.close(w);
}

/// `conns` h2c connections, all open at once, each leaving a `entry`-byte dynamic-table
/// entry and a partly received 16 KB frame in the decoder (the 177 MiB case).
/// The first connection then sends a request referencing its dynamic entry: by then its
/// state has been evicted.
pub fn h2_state_flood<W: Write>(w: &mut Writer<W>, conns: u32, entry: usize) {
    let value = vec![b'e'; entry];
    let conn = |n: u32| Tcp::new(0x10_0000 + n, 10_000 + (n % 50_000) as u16, 8080);
    for n in 0..conns {
        let mut t = conn(n);
        t.handshake(w);
        let mut seg = h2_setup("x-state", &value);
        // A HEADERS frame announcing 16,000 bytes; only 4,000 arrive.
        let mut partial = Vec::new();
        h2_frame(&mut partial, HEADERS, END_HEADERS, 3, &[0xbe; 16_000]);
        partial.truncate(9 + 4_000);
        seg.extend_from_slice(&partial);
        t.send(w, true, &seg);
    }
    let mut again = Vec::new();
    h2_frame(
        &mut again,
        HEADERS,
        END_HEADERS | END_STREAM,
        5,
        &[0x82, 0x86, 0x84, 0xbe],
    );
    conn(0).send(w, true, &again);
}

/// `conns` HTTP/1.1 connections whose request loses its second byte: every later segment
/// (`segments` of 1,400 bytes each) waits out of order for a gap that never fills.
pub fn out_of_order_flood<W: Write>(w: &mut Writer<W>, conns: u32, segments: u32) {
    let chunk = vec![b'x'; 1_400];
    for n in 0..conns {
        let mut t = Tcp::new(0x20_0000 + n, 10_000 + (n % 50_000) as u16, 8080);
        t.handshake(w);
        t.send(w, true, b"G");
        t.c = t.c.wrapping_add(1);
        for _ in 0..segments {
            t.send(w, true, &chunk);
        }
    }
}

/// `flows` tiny flows: one SYN each, every one a new 5-tuple.
pub fn tiny_flows<W: Write>(w: &mut Writer<W>, flows: u32) {
    for n in 0..flows {
        let client = Ipv4Addr::from(0x0b00_0000 | (n >> 14));
        let ip = Ip::V4(client, Ipv4Addr::new(10, 0, 0, 1));
        w.frame(&synth::tcp(
            ip,
            1024 + (n & 0x3fff) as u16,
            443,
            n,
            0,
            SYN,
            &[],
            1,
        ))
        .unwrap();
    }
}

/// Very many headers: HTTP/1.1 requests of thousands of short header lines (over several
/// segments), and h2c header blocks of thousands of tiny literals joined by CONTINUATION.
pub fn many_headers<W: Write>(w: &mut Writer<W>, requests: u32) {
    let mut t = Tcp::new(6, 40_004, 80);
    t.handshake(w);
    for _ in 0..requests {
        let mut req = b"GET /many HTTP/1.1\r\nHost: h\r\n".to_vec();
        for j in 0..3_000 {
            req.extend_from_slice(format!("X-{j}: v\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        for chunk in req.chunks(1_448) {
            t.send(w, true, chunk);
        }
    }
    t.close(w);
    let mut t = Tcp::new(7, 40_005, 8080);
    t.handshake(w);
    t.send(w, true, &h2_setup("x-h", b"h"));
    let mut stream = 3u32;
    for _ in 0..requests {
        let mut block = vec![0x82, 0x86, 0x84];
        for j in 0..10_000u32 {
            block.push(0x00);
            block.push(1);
            block.push(b'a' + (j % 26) as u8);
            block.push(1);
            block.push(b'v');
        }
        let mut seg = Vec::new();
        let chunks: Vec<&[u8]> = block.chunks(16_000).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let kind = if i == 0 { HEADERS } else { CONTINUATION };
            let flags = if i + 1 == chunks.len() {
                END_HEADERS
            } else {
                0
            };
            h2_frame(
                &mut seg,
                kind,
                flags | if i == 0 { END_STREAM } else { 0 },
                stream,
                chunk,
            );
        }
        stream += 2;
        t.send(w, true, &seg);
    }
    t.close(w);
}

/// Pipelined HTTP/1.1: segments each holding a hundred requests, never answered.
pub fn pipelined_http1<W: Write>(w: &mut Writer<W>, segments: u32) {
    let mut t = Tcp::new(8, 40_006, 80);
    t.handshake(w);
    for i in 0..segments {
        let mut seg = Vec::new();
        for j in 0..100 {
            seg.extend_from_slice(
                format!("GET /p/{i}/{j} HTTP/1.1\r\nHost: h\r\nUser-Agent: flood\r\n\r\n")
                    .as_bytes(),
            );
        }
        t.send(w, true, &seg);
    }
    t.close(w);
}

/// DNS responses whose names are long compression-pointer chains, and pointer loops.
pub fn dns_chains<W: Write>(w: &mut Writer<W>, packets: u32) {
    let ip = Ip::V4(Ipv4Addr::new(10, 0, 0, 53), Ipv4Addr::new(10, 0, 0, 2));
    for i in 0..packets {
        let mut m = vec![0u8; 12];
        m[0..2].copy_from_slice(&(i as u16).to_be_bytes());
        m[2] = 0x81;
        m[3] = 0x80;
        m[5] = 1; // one question
        let answers = 400u16;
        m[6..8].copy_from_slice(&answers.to_be_bytes());
        synth::dns_name("a.example", &mut m);
        m.extend_from_slice(&[0, 1, 0, 1]);
        let mut prev = 12u16;
        for k in 0..answers {
            let here = m.len() as u16;
            if i % 2 == 0 {
                // A one-label name pointing at the previous name: a chain 400 deep.
                m.extend_from_slice(&[1, b'a']);
                m.extend_from_slice(&(0xc000 | prev).to_be_bytes());
            } else {
                // A pointer to itself: a loop.
                m.extend_from_slice(&(0xc000 | here).to_be_bytes());
            }
            prev = here;
            m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, (k & 0xff) as u8]);
        }
        w.frame(&synth::udp(ip, 53, 33_000, &m, 1)).unwrap();
    }
}

/// TLS ClientHellos carrying thousands of extensions (one 16 KB record each).
pub fn tls_hellos<W: Write>(w: &mut Writer<W>, hellos: u32) {
    let mut t = Tcp::new(9, 40_007, 443);
    t.handshake(w);
    for i in 0..hellos {
        let mut exts = Vec::new();
        let mut j = 0u16;
        while exts.len() < 15_000 {
            // GREASE-like and unknown types, some with bodies; an SNI every 500.
            if j % 500 == 0 {
                let name = format!("h{i}-{j}.example");
                let mut sni = vec![0, 0];
                let list_len = 3 + name.len();
                let mut body = (list_len as u16).to_be_bytes().to_vec();
                body.push(0);
                body.extend_from_slice(&(name.len() as u16).to_be_bytes());
                body.extend_from_slice(name.as_bytes());
                sni.extend_from_slice(&(body.len() as u16).to_be_bytes());
                sni.extend_from_slice(&body);
                exts.extend_from_slice(&sni);
            } else {
                exts.extend_from_slice(&(0x0a0a_u16.wrapping_add(j)).to_be_bytes());
                exts.extend_from_slice(&[0, 0]);
            }
            j += 1;
        }
        let mut hello = vec![3, 3];
        hello.extend_from_slice(&[7; 32]);
        hello.push(0);
        hello.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
        hello.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        hello.extend_from_slice(&exts);
        let mut hs = vec![1];
        hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&hello);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        t.send(w, true, &rec);
    }
    t.close(w);
}

/// What one `pcapd --read` cost.
#[derive(Debug)]
pub struct ReadRun {
    pub lines: u64,
    pub max_line: usize,
    pub peak_rss_kib: u64,
    pub elapsed: Duration,
    pub exit: Option<i32>,
    pub stats: Value,
    /// Lines for which `keep` returned true.
    pub kept: Vec<Value>,
}

/// The `pcapd` binary under test: `bin`, unless `PCAPD_UNDER_TEST` names another one (to
/// measure an older build with the same generators).
pub fn under_test(bin: &str) -> String {
    std::env::var("PCAPD_UNDER_TEST").unwrap_or_else(|_| bin.to_string())
}

/// Runs the real `pcapd --read file` with a clean environment plus `env`; stdout is read as
/// it comes (never held whole); lines are parsed only when `keep` is given. Peak RSS comes
/// from GNU time (`/usr/bin/time -f %M`, installed by scripts/install-deps): a child forked
/// by this test process would inherit the test's own high-water mark across exec, a child
/// of `time` does not.
pub fn read_measured(
    bin: &str,
    file: &Path,
    env: &[(&str, &str)],
    keep: Option<&dyn Fn(&Value) -> bool>,
) -> ReadRun {
    let started = Instant::now();
    let rss_dir = tempfile::tempdir().unwrap();
    let rss_file = rss_dir.path().join("maxrss");
    // Killed and reaped if the test fails half-way (pcapd then meets a closed stdout).
    let mut child = testbed::ChildGuard::new(
        clean_env(&mut Command::new("/usr/bin/time"))
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&rss_file)
            .arg(under_test(bin))
            .envs(env.iter().copied())
            .arg("--read")
            .arg(file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.child_mut().stdout.take().unwrap();
    let stderr = child.child_mut().stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text).unwrap();
        text
    });
    let mut lines = 0u64;
    let mut max_line = 0usize;
    let mut kept = Vec::new();
    let mut reader = BufReader::with_capacity(1 << 20, stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).unwrap();
        if n == 0 {
            break;
        }
        assert_eq!(line.last(), Some(&b'\n'), "a cut last line");
        let len = line.len() - 1;
        max_line = max_line.max(len);
        lines += 1;
        assert_eq!(line.first(), Some(&b'{'), "a JSON object per line");
        if let Some(keep) = keep {
            let v: Value = serde_json::from_slice(&line[..len]).expect("each line is JSON");
            if keep(&v) {
                kept.push(v);
            }
        }
    }
    let status = child
        .wait_timeout(Duration::from_secs(600))
        .unwrap()
        .expect("pcapd ends once its stdout is read");
    let stderr = err_thread.join().unwrap();
    let stats = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "pcapd stats" && v["final"] == true)
        .unwrap_or_else(|| panic!("no final stats line in {stderr}"));
    let peak_rss_kib = std::fs::read_to_string(&rss_file)
        .unwrap()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("GNU time's %M");
    ReadRun {
        lines,
        max_line,
        peak_rss_kib,
        elapsed: started.elapsed(),
        exit: status.code(),
        stats,
        kept,
    }
}

/// The bounds with defaults: peak RSS ≤ 96 MiB, no line over the entry limit, one
/// line per packet, nothing dropped, bounded time.
pub fn assert_bounded(name: &str, run: &ReadRun, packets: u64, max_time: Duration) {
    eprintln!(
        "{name}: {packets} packets, {} lines, max line {} B, peak RSS {} KiB, {:?}",
        run.lines, run.max_line, run.peak_rss_kib, run.elapsed
    );
    assert_eq!(run.exit, Some(0), "{name}: exit");
    assert_eq!(run.lines, packets, "{name}: one line per packet");
    assert_eq!(run.stats["received"], packets, "{name}: {}", run.stats);
    assert_eq!(run.stats["shutdown_dropped"], 0, "{name}: {}", run.stats);
    assert_eq!(run.stats["queue_dropped"], 0, "{name}: {}", run.stats);
    assert!(
        run.max_line <= 200 * 1024,
        "{name}: a line of {} bytes",
        run.max_line
    );
    assert!(
        run.peak_rss_kib <= 96 * 1024,
        "{name}: peak RSS {} KiB",
        run.peak_rss_kib
    );
    assert!(run.elapsed <= max_time, "{name}: took {:?}", run.elapsed);
}

/// The secrets of [`redaction_corpus`]: Authorization, Cookie, X-Api-Key (configured),
/// Set-Cookie, and the X-Api-Key of responses.
pub fn secrets(seed: u64) -> [String; 5] {
    let mut rng = testbed::rng::Rng::from_state(seed);
    let alphabet = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    std::array::from_fn(|_| {
        (0..24)
            .map(|_| char::from(alphabet[rng.below(alphabet.len() as u64) as usize]))
            .collect()
    })
}

/// Every cut point of HTTP/1.1 and h2c messages carrying `secrets` (see [`secrets`]), each
/// on its own connection: split in two segments after a handshake, joined mid-way (the
/// capture starts at the cut: no handshake, nothing before it), and after a handshake with
/// everything before the cut lost (a queue drop). h2c requests add the secret headers to the
/// HPACK dynamic table and a second request sends them as references. Then header blocks
/// over the analysers' buffers with the secrets at their end.
pub fn redaction_corpus<W: Write>(w: &mut Writer<W>, s: &[String; 5]) {
    let req = format!(
        "GET /r HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {}\r\nCookie: sid={}\r\nX-Api-Key: {}\r\nAccept: */*\r\n\r\n",
        s[0], s[1], s[2]
    )
    .into_bytes();
    let resp = format!(
        "HTTP/1.1 200 OK\r\nSet-Cookie: sid={}; Path=/\r\nX-Api-Key: {}\r\nContent-Length: 2\r\n\r\nok",
        s[3], s[4]
    )
    .into_bytes();
    // h2c: the client's and the server's byte streams.
    let mut client = PREFACE.to_vec();
    h2_frame(&mut client, SETTINGS, 0, 0, &[]);
    let mut block = vec![0x82, 0x86, 0x84];
    for (index, value) in [
        (23u8, format!("Bearer {}", s[0])),
        (32, format!("sid={}", s[1])),
    ] {
        hpack_integer(&mut block, 0x40, 6, usize::from(index));
        hpack_integer(&mut block, 0, 7, value.len());
        block.extend_from_slice(value.as_bytes());
    }
    hpack_literal(&mut block, "x-api-key", s[2].as_bytes(), true);
    h2_frame(&mut client, HEADERS, END_HEADERS | END_STREAM, 1, &block);
    // Dynamic table now: 62 x-api-key, 63 cookie, 64 authorization.
    h2_frame(
        &mut client,
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &[0x82, 0x86, 0x84, 0xbe, 0xbf, 0xc0],
    );
    let mut server = Vec::new();
    h2_frame(&mut server, SETTINGS, 0, 0, &[]);
    let mut block = vec![0x88];
    let value = format!("sid={}; Path=/", s[3]);
    hpack_integer(&mut block, 0x40, 6, 55);
    hpack_integer(&mut block, 0, 7, value.len());
    block.extend_from_slice(value.as_bytes());
    hpack_literal(&mut block, "x-api-key", s[4].as_bytes(), true);
    h2_frame(&mut server, HEADERS, END_HEADERS | END_STREAM, 1, &block);
    h2_frame(
        &mut server,
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &[0x88, 0xbe, 0xbf],
    );

    let mut n = 0u32;
    let conn = |n: &mut u32, dport: u16| {
        *n += 1;
        Tcp::new(0x20_0000 + *n, 20_000 + (*n % 40_000) as u16, dport)
    };
    for (first, second, dport) in [(&req, &resp, 80u16), (&client, &server, 8080)] {
        for (cut_first, msg) in [(true, first), (false, second)] {
            for k in 1..msg.len() {
                // Split in two segments, the connection seen from its start.
                let mut t = conn(&mut n, dport);
                t.handshake(w);
                if !cut_first {
                    t.send(w, true, first);
                }
                t.send(w, cut_first, &msg[..k]);
                t.send(w, cut_first, &msg[k..]);
                if cut_first {
                    t.send(w, false, second);
                }
                t.close(w);
                // Joined at the cut: the capture starts inside the message; and the same
                // after a handshake (what came before the cut was dropped).
                for handshake in [false, true] {
                    let mut t = conn(&mut n, dport);
                    if handshake {
                        t.handshake(w);
                    }
                    t.send(w, cut_first, &msg[k..]);
                    if cut_first {
                        t.send(w, false, second);
                    }
                    t.close(w);
                }
            }
        }
    }
    // Header blocks over the analysers' buffers (HTTP/1.1: 8 KiB; HTTP/2: 64 KiB joined
    // from CONTINUATION frames), secrets at their end, in MTU-sized segments.
    let pad = "p".repeat(9_000);
    let big = format!(
        "GET /big HTTP/1.1\r\nHost: h\r\nX-Pad: {pad}\r\nAuthorization: Bearer {}\r\nCookie: sid={}\r\nX-Api-Key: {}\r\n\r\n",
        s[0], s[1], s[2]
    );
    let mut t = conn(&mut n, 80);
    t.handshake(w);
    for chunk in big.as_bytes().chunks(1_448) {
        t.send(w, true, chunk);
    }
    t.close(w);
    let mut h2 = PREFACE.to_vec();
    h2_frame(&mut h2, SETTINGS, 0, 0, &[]);
    let mut block = vec![0x82, 0x86, 0x84];
    hpack_literal(&mut block, "x-pad", "p".repeat(70_000).as_bytes(), true);
    hpack_integer(&mut block, 0x40, 6, 23);
    hpack_integer(&mut block, 0, 7, s[0].len());
    block.extend_from_slice(s[0].as_bytes());
    hpack_literal(&mut block, "x-api-key", s[2].as_bytes(), true);
    let chunks: Vec<&[u8]> = block.chunks(16_000).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let kind = if i == 0 { HEADERS } else { CONTINUATION };
        let flags = if i + 1 == chunks.len() {
            END_HEADERS
        } else {
            0
        };
        h2_frame(&mut h2, kind, flags, 1, chunk);
    }
    let mut t = conn(&mut n, 8080);
    t.handshake(w);
    for chunk in h2.chunks(1_448) {
        t.send(w, true, chunk);
    }
    t.close(w);
}

/// Secret windows found in `text`: any 8 characters of a secret, or the hex of any 6 of
/// its bytes.
pub fn leaks(text: &str, secrets: &[String]) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let mut found = Vec::new();
    for s in secrets {
        let b = s.as_bytes();
        for w in b.windows(8) {
            let w = std::str::from_utf8(w).unwrap();
            if text.contains(w) {
                found.push(w.to_string());
            }
        }
        for w in b.windows(6) {
            let hex: String = w.iter().map(|x| format!("{x:02x}")).collect();
            if lower.contains(&hex) {
                found.push(format!("hex {hex}"));
            }
        }
    }
    found
}

//! Traffic for `scripts/bench-compat`: `udp-blast send ADDR:PORT COUNT RATE [SIZE]` sends
//! COUNT UDP datagrams of SIZE bytes (default 64) at RATE packets/s (0: as fast as possible),
//! paced in bursts of 64, and prints `sent=N seconds=S pps=P`; `udp-blast sink ADDR:PORT`
//! receives and discards datagrams until killed (so the receiver sends no ICMP errors).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

const BURST: u64 = 64;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: udp-blast send ADDR:PORT COUNT RATE [SIZE] | udp-blast sink ADDR:PORT";
    match args.first().map(String::as_str) {
        Some("sink") => {
            let socket = UdpSocket::bind(args.get(1).expect(usage)).expect("bind");
            let mut buf = [0u8; 65_536];
            loop {
                let _ = socket.recv(&mut buf);
            }
        }
        Some("send") => {
            let target = args.get(1).expect(usage);
            let count: u64 = args.get(2).expect(usage).parse().expect("COUNT");
            let rate: u64 = args.get(3).expect(usage).parse().expect("RATE");
            let size: usize = args.get(4).map_or(64, |s| s.parse().expect("SIZE"));
            let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
            socket.connect(target).expect("connect");
            let mut payload = vec![0u8; size];
            let started = Instant::now();
            let mut sent = 0u64;
            while sent < count {
                let burst = BURST.min(count - sent);
                for _ in 0..burst {
                    payload[..8].copy_from_slice(&sent.to_be_bytes());
                    // ENOBUFS under pressure: try again (the count is what was sent).
                    while socket.send(&payload).is_err() {
                        std::thread::yield_now();
                    }
                    sent += 1;
                }
                if rate > 0 {
                    let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                }
            }
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "sent={sent} seconds={seconds:.3} pps={:.0}",
                sent as f64 / seconds
            );
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}

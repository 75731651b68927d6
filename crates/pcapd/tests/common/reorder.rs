//! Reordering and duplication crafted into a real capture (no iptables rule makes either):
//! TCP data segments swapped with a later one of the same direction, and some sent twice.

// Each test binary compiles this module and uses a subset of it.
#![allow(dead_code)]

use std::path::Path;

use testbed::pcapfile::Writer;

/// Which later segment a swapped data segment trades places with: one of the next five
/// packets, all of the same direction (a segment never moves behind the peer's answer to it:
/// the capture point sees causes before effects).
#[derive(Clone, Copy, Debug)]
pub enum Partner {
    /// The first data segment of the same direction among the next five packets.
    FirstData,
    /// The last of the run of same-direction packets that follows (within five), when it
    /// carries data.
    RunEnd,
}

/// What to craft: every `swap_every`th data segment is swapped with its [`Partner`], every
/// `dup_every`th data segment (counted after the swaps) is sent twice.
#[derive(Clone, Copy, Debug)]
pub struct Crafting {
    pub swap_every: usize,
    pub partner: Partner,
    pub dup_every: usize,
}

/// A copy of `src` (tcpdump's capture of IPv4 TCP on Ethernet) crafted as `how` says into
/// `dst`; timestamps stay in order, as a capture's would (a copy is one microsecond later).
/// Returns the swaps and the duplicates made.
pub fn craft(src: &Path, dst: &Path, how: Crafting) -> (usize, usize) {
    let bytes = std::fs::read(src).unwrap();
    let file = wire::pcapfile::File::new(&bytes).unwrap();
    let records: Vec<_> = file.records().map(Result::unwrap).collect();
    let mut data: Vec<&[u8]> = records.iter().map(|r| r.data).collect();
    let (mut n, mut i, mut swaps) = (0, 0, 0);
    while i + 1 < data.len() {
        if is_data(data[i]) {
            n += 1;
            if n % how.swap_every == 0 {
                let same = |k: usize| source(data[k]) == source(data[i]);
                let next = i + 1..data.len().min(i + 6);
                let partner = match how.partner {
                    Partner::FirstData => next.clone().find(|&j| is_data(data[j]) && same(j)),
                    Partner::RunEnd => next
                        .take_while(|&k| same(k))
                        .last()
                        .filter(|&j| is_data(data[j])),
                };
                if let Some(j) = partner {
                    data.swap(i, j);
                    swaps += 1;
                    i = j;
                }
            }
        }
        i += 1;
    }
    let out = std::io::BufWriter::new(std::fs::File::create(dst).unwrap());
    let mut pcap = Writer::new(out, file.snaplen()).unwrap();
    let (mut count, mut dups) = (0, 0);
    for (r, d) in records.iter().zip(&data) {
        let copies = if is_data(d) {
            count += 1;
            1 + u32::from(count % how.dup_every == 0)
        } else {
            1
        };
        dups += copies as usize - 1;
        let (sec, usec) = (r.ts_sec as u64, r.ts_nsec / 1000);
        for c in 0..copies {
            let micros = sec * 1_000_000 + u64::from((usec + c).min(999_999));
            pcap.frame_at(micros, d).unwrap();
        }
    }
    pcap.finish().unwrap();
    (swaps, dups)
}

/// Whether an Ethernet/IPv4/TCP frame carries data.
fn is_data(d: &[u8]) -> bool {
    let ihl = usize::from(d[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([d[16], d[17]]));
    let doff = usize::from(d[14 + ihl + 12] >> 4) * 4;
    total > ihl + doff
}

/// The IPv4 source address of an Ethernet frame.
fn source(d: &[u8]) -> &[u8] {
    &d[26..30]
}

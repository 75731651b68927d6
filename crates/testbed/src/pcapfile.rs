//! [`Writer`]: the one writer of pcap files in the tests (classic pcap, Ethernet,
//! microseconds), on `wire::pcapfile`'s headers. A record is a whole frame at an explicit time
//! ([`Writer::frame_at`]) or at the next tick of a fixed-step clock ([`Writer::frame`]), or
//! the captured part of a longer one ([`Writer::cut_at`]).

use std::io::{self, Write};

/// 2026-01-01T00:00:00Z in microseconds since the epoch: where generated captures start.
pub const START_MICROS: u64 = 1_767_225_600_000_000;

/// A pcap file being written to `W`.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    next_micros: u64,
    step_micros: u64,
    packets: u64,
}

impl<W: Write> Writer<W> {
    /// Writes the global header (Ethernet, `snaplen`). The clock of [`Writer::frame`] starts
    /// at [`START_MICROS`] and steps 1 µs; [`Writer::clock`] changes that.
    pub fn new(mut out: W, snaplen: u32) -> io::Result<Self> {
        out.write_all(&wire::pcapfile::global_header(
            snaplen,
            wire::LinkType::Ethernet,
        ))?;
        Ok(Writer {
            out,
            next_micros: START_MICROS,
            step_micros: 1,
            packets: 0,
        })
    }

    /// [`Writer::frame`] writes its first record at `first_micros` and each next one
    /// `step_micros` later.
    pub fn clock(mut self, first_micros: u64, step_micros: u64) -> Self {
        self.next_micros = first_micros;
        self.step_micros = step_micros;
        self
    }

    /// Writes `frame` as a record at `micros` since the epoch.
    pub fn frame_at(&mut self, micros: u64, frame: &[u8]) -> io::Result<()> {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.cut_at(micros, frame, len)
    }

    /// Writes `data`, the captured part of a frame of `orig_len` bytes on the wire, as a
    /// record at `micros` since the epoch.
    pub fn cut_at(&mut self, micros: u64, data: &[u8], orig_len: u32) -> io::Result<()> {
        // Seconds fit in u32 until 2106; the remainder is below 1_000_000.
        let (sec, usec) = ((micros / 1_000_000) as u32, (micros % 1_000_000) as u32);
        let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.out
            .write_all(&wire::pcapfile::record_header(sec, usec, caplen, orig_len))?;
        self.out.write_all(data)?;
        self.packets += 1;
        Ok(())
    }

    /// Writes `frame` at the clock's next tick.
    pub fn frame(&mut self, frame: &[u8]) -> io::Result<()> {
        let at = self.next_micros;
        self.next_micros += self.step_micros;
        self.frame_at(at, frame)
    }

    /// Records written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// What is written to.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Flushes and hands back what was written to.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_with_their_times_and_bytes() -> Result<(), Box<dyn std::error::Error>> {
        let mut w = Writer::new(Vec::new(), 65_535)?.clock(START_MICROS + 10, 1_000_000);
        w.frame(b"one")?;
        w.frame(b"two!")?;
        w.frame_at(5_000_123, b"")?;
        w.cut_at(7, b"cut", 1500)?;
        assert_eq!(w.packets(), 4);
        let bytes = w.finish()?;
        let file = wire::pcapfile::File::new(&bytes)?;
        let got: Vec<_> = file
            .records()
            .map(|r| r.map(|r| (r.ts_sec, r.ts_nsec, r.wire_len, r.data.to_vec())))
            .collect::<Result<_, _>>()?;
        assert_eq!(
            got,
            [
                (1_767_225_600, 10_000, 3, b"one".to_vec()),
                (1_767_225_601, 10_000, 4, b"two!".to_vec()),
                (5, 123_000, 0, Vec::new()),
                (0, 7_000, 1500, b"cut".to_vec()),
            ]
        );
        Ok(())
    }
}

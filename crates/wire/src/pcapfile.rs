//! Classic pcap files: read from memory (the global header's link type, time resolution and
//! byte order, and an iterator over records; for tests and tools, `pcapd --read` uses
//! libpcap), and the one writer of their headers ([`global_header`], [`record_header`]) that
//! pcapd's own `.pcap` files and the tests' generated captures share. Records whose length
//! runs past the file end the iteration with an error.

use crate::bytes::slice;
use crate::{CapturedPacket, Error, ErrorKind, LinkType, Result};

/// Magic number of classic pcap with microsecond timestamps.
pub const MAGIC_MICRO: u32 = 0xa1b2_c3d4;
const MAGIC_NANO: u32 = 0xa1b2_3c4d;
/// Bytes of the global header: the size of a file without packets.
pub const GLOBAL_HEADER_LEN: usize = 24;
/// Bytes of a record header.
pub const RECORD_HEADER_LEN: usize = 16;

/// The global header of a classic pcap file as libpcap and tcpdump write it: version 2.4,
/// microsecond timestamps, native byte order.
pub fn global_header(snaplen: u32, linktype: LinkType) -> [u8; GLOBAL_HEADER_LEN] {
    let [m0, m1, m2, m3] = MAGIC_MICRO.to_ne_bytes();
    let [v0, v1] = 2u16.to_ne_bytes();
    let [v2, v3] = 4u16.to_ne_bytes();
    let [s0, s1, s2, s3] = snaplen.to_ne_bytes();
    let [l0, l1, l2, l3] = linktype.number().to_ne_bytes();
    // Bytes 8..16, time zone offset and timestamp accuracy, are always 0.
    [
        m0, m1, m2, m3, v0, v1, v2, v3, 0, 0, 0, 0, 0, 0, 0, 0, s0, s1, s2, s3, l0, l1, l2, l3,
    ]
}

/// A record header matching [`global_header`]: seconds, microseconds, captured length,
/// original length.
pub fn record_header(
    ts_sec: u32,
    ts_usec: u32,
    caplen: u32,
    orig_len: u32,
) -> [u8; RECORD_HEADER_LEN] {
    let [a0, a1, a2, a3] = ts_sec.to_ne_bytes();
    let [b0, b1, b2, b3] = ts_usec.to_ne_bytes();
    let [c0, c1, c2, c3] = caplen.to_ne_bytes();
    let [d0, d1, d2, d3] = orig_len.to_ne_bytes();
    [
        a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3,
    ]
}

/// A classic pcap file held in memory.
#[derive(Debug, Clone, Copy)]
pub struct File<'a> {
    buf: &'a [u8],
    little: bool,
    nanos: bool,
}

impl<'a> File<'a> {
    /// Checks the global header.
    pub fn new(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < GLOBAL_HEADER_LEN {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        }
        let le = u32::from_le_bytes(first4(buf, 0));
        let be = u32::from_be_bytes(first4(buf, 0));
        let (little, nanos) = match (le, be) {
            (MAGIC_MICRO, _) => (true, false),
            (MAGIC_NANO, _) => (true, true),
            (_, MAGIC_MICRO) => (false, false),
            (_, MAGIC_NANO) => (false, true),
            _ => return Err(Error::new(ErrorKind::BadVersion, 0)),
        };
        Ok(File { buf, little, nanos })
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = first4(self.buf, at);
        if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    }

    /// The link type of every record (the low 28 bits of the header's field; the upper bits
    /// carry FCS flags).
    pub fn linktype(&self) -> LinkType {
        LinkType::from((self.u32_at(20) & 0x0fff_ffff) as i32)
    }

    /// Snapshot length.
    pub fn snaplen(&self) -> u32 {
        self.u32_at(16)
    }

    /// The records in file order, numbered from 0.
    pub fn records(&self) -> Records<'a> {
        Records {
            file: *self,
            at: GLOBAL_HEADER_LEN,
            num: 0,
        }
    }
}

fn first4(b: &[u8], at: usize) -> [u8; 4] {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    a
}

/// Iterator over the records of a [`File`].
#[derive(Debug, Clone)]
pub struct Records<'a> {
    file: File<'a>,
    at: usize,
    /// Number of the next record.
    num: u64,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<CapturedPacket<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let buf = self.file.buf;
        if self.at >= buf.len() {
            return None;
        }
        if self.at + RECORD_HEADER_LEN > buf.len() {
            self.at = buf.len();
            return Some(Err(Error::new(ErrorKind::Truncated, self.at)));
        }
        let f = &self.file;
        let ts_sec = f.u32_at(self.at);
        let frac = f.u32_at(self.at + 4);
        let incl = f.u32_at(self.at + 8) as usize;
        let orig_len = f.u32_at(self.at + 12);
        let start = self.at + RECORD_HEADER_LEN;
        if start + incl > buf.len() {
            self.at = buf.len();
            return Some(Err(Error::new(ErrorKind::Truncated, start)));
        }
        self.at = start + incl;
        let num = self.num;
        self.num += 1;
        Some(Ok(CapturedPacket {
            num,
            ts_sec: i64::from(ts_sec),
            ts_nsec: if f.nanos {
                frac
            } else {
                frac.wrapping_mul(1000)
            },
            wire_len: orig_len,
            data: slice(buf, start, start + incl),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `(seconds, microseconds, data, original length)` records. Other crates' tests
    /// write pcap files with `testbed::pcapfile::Writer`; testbed depends on this crate.
    fn write(linktype: LinkType, records: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
        let mut out = global_header(262_144, linktype).to_vec();
        for (sec, usec, data, orig) in records {
            out.extend_from_slice(&record_header(*sec, *usec, data.len() as u32, *orig));
            out.extend_from_slice(data);
        }
        out
    }

    #[test]
    fn reads_real_capture() {
        let f = File::new(include_bytes!("../testdata/veth.pcap")).unwrap();
        assert_eq!(f.linktype(), LinkType::Ethernet);
        let recs: Vec<_> = f.records().collect::<Result<_>>().unwrap();
        assert_eq!(recs.len(), 98);
        assert_eq!(recs[8].data.len(), 42);
        let s = File::new(include_bytes!("../testdata/any-sll2.pcap")).unwrap();
        assert_eq!(s.linktype(), LinkType::LinuxSll2);
        let t = File::new(include_bytes!("../testdata/snaplen64.pcap")).unwrap();
        assert_eq!(t.snaplen(), 64);
        assert!(t.records().any(|r| r.unwrap().wire_len > 64));
    }

    #[test]
    fn round_trip_and_garbage() {
        let b = write(LinkType::Raw, &[(1, 2, &[0x45, 0], 20)]);
        let f = File::new(&b).unwrap();
        assert_eq!(f.linktype(), LinkType::Raw);
        let b2 = write(LinkType::Raw, &[(1, 2, &[0x45, 0], 20), (3, 4, &[], 0)]);
        let recs: Vec<_> = File::new(&b2)
            .unwrap()
            .records()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            recs[0],
            crate::CapturedPacket {
                num: 0,
                ts_sec: 1,
                ts_nsec: 2000,
                wire_len: 20,
                data: &[0x45u8, 0][..]
            }
        );
        assert_eq!((recs[1].num, recs[1].ts_sec), (1, 3));
        assert!(File::new(&b[..10]).is_err());
        assert!(File::new(&[0u8; 24]).is_err());
        let cut = &b[..b.len() - 1];
        assert!(File::new(cut).unwrap().records().next().unwrap().is_err());
    }
}

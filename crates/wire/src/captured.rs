//! [`Captured`]: one captured packet, its capture record (number, time, length on the wire)
//! with its bytes. The one packet type of the data path: libpcap and the packet socket fill
//! it, [`crate::pcapfile`] reads it from files, the pipeline queues it and `render`
//! translates it. [`CapturedPacket`] borrows the bytes from wherever the source keeps them;
//! `Captured<Vec<u8>>` owns them, for a packet that crosses a thread.

/// One captured packet; `D` holds its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Captured<D> {
    /// Capture serial number (the source's own numbering, first packet 0).
    pub num: u64,
    /// Capture time, seconds since the epoch.
    pub ts_sec: i64,
    /// Capture time, nanoseconds within the second.
    pub ts_nsec: u32,
    /// Length on the wire; it exceeds `data`'s length when the snap length cut the packet.
    pub wire_len: u32,
    /// The captured bytes.
    pub data: D,
}

/// A captured packet whose bytes are borrowed (a capture buffer, a file, a queue batch).
pub type CapturedPacket<'a> = Captured<&'a [u8]>;

impl<D> Captured<D> {
    /// The same capture record with other bytes (a copy, a cut).
    pub fn with_data<E>(&self, data: E) -> Captured<E> {
        Captured {
            num: self.num,
            ts_sec: self.ts_sec,
            ts_nsec: self.ts_nsec,
            wire_len: self.wire_len,
            data,
        }
    }
}

impl<D: AsRef<[u8]>> Captured<D> {
    /// The same packet, its bytes borrowed.
    pub fn borrowed(&self) -> CapturedPacket<'_> {
        self.with_data(self.data.as_ref())
    }

    /// Capture time in nanoseconds since the epoch (seconds before it count as 0; saturating far
    /// after).
    pub fn timestamp_ns(&self) -> u64 {
        u64::try_from(self.ts_sec)
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(self.ts_nsec))
    }
}

impl CapturedPacket<'_> {
    /// The same packet owning a copy of its bytes.
    pub fn to_owned(&self) -> Captured<Vec<u8>> {
        self.with_data(self.data.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_and_borrowed_are_the_same_packet() {
        let bytes = [1u8, 2, 3];
        let p = CapturedPacket {
            num: 7,
            ts_sec: 1_700_000_000,
            ts_nsec: 5,
            wire_len: 60,
            data: &bytes,
        };
        let owned = p.to_owned();
        assert_eq!(owned.borrowed(), p);
        assert_eq!(p.timestamp_ns(), 1_700_000_000_000_000_005);
        let before_epoch = Captured { ts_sec: -1, ..p };
        assert_eq!(before_epoch.timestamp_ns(), 5);
    }
}

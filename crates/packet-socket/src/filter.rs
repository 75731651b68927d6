//! The capture filter, compiled by libpcap for a link type, run in user space.

use pcap::{BpfProgram, Capture, Linktype};
use wire::LinkType;

use crate::sys;

/// A libpcap filter program run per packet by libpcap's interpreter (`pcap_offline_filter`).
/// The program is the one libpcap would hand the kernel for the same link type, so the
/// decisions are the same.
pub struct UserFilter {
    text: String,
    program: BpfProgram,
}

impl std::fmt::Debug for UserFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserFilter")
            .field("text", &self.text)
            .finish_non_exhaustive()
    }
}

impl UserFilter {
    /// Compiles `text` (optimised, like tcpdump) for `linktype`; the error is libpcap's
    /// message.
    pub fn compile(linktype: LinkType, text: &str) -> Result<UserFilter, String> {
        let dead = Capture::dead(Linktype(linktype.number())).map_err(|e| e.to_string())?;
        let program = dead.compile(text, true).map_err(|error| match error {
            pcap::Error::PcapError(message) => message,
            other => other.to_string(),
        })?;
        Ok(UserFilter {
            text: text.to_string(),
            program,
        })
    }

    /// The filter text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether a packet of `wire_len` bytes, of which `data` was captured, passes.
    pub fn matches(&self, data: &[u8], wire_len: u32) -> bool {
        sys::offline_filter(&self.program, data, wire_len)
    }

    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.program.get_instructions().len()
    }

    /// Whether the program is empty (never: libpcap always returns one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame: IPv4 UDP from 10.0.0.1:1000 to 10.0.0.2:`port`.
    fn udp_frame(port: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12] = 0x08;
        f[14] = 0x45;
        f[16..18].copy_from_slice(&28u16.to_be_bytes());
        f[22] = 64;
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&1000u16.to_be_bytes());
        f[36..38].copy_from_slice(&port.to_be_bytes());
        f[38..40].copy_from_slice(&8u16.to_be_bytes());
        f
    }

    #[test]
    fn filters_like_libpcap() {
        let filter = UserFilter::compile(LinkType::Ethernet, "udp dst port 53").unwrap();
        assert!(filter.matches(&udp_frame(53), 42));
        assert!(!filter.matches(&udp_frame(54), 42));
        assert!(!filter.matches(&[0u8; 3], 3), "short packets never panic");
        assert!(!filter.is_empty());
    }

    #[test]
    fn length_tests_see_the_wire_length() {
        let filter = UserFilter::compile(LinkType::Ethernet, "greater 1000").unwrap();
        let frame = udp_frame(53);
        assert!(!filter.matches(&frame, 42));
        // Captured 42 bytes of a 1500-byte packet: `len` is the original length.
        assert!(filter.matches(&frame, 1500));
    }

    #[test]
    fn bad_filters_carry_libpcap_message() {
        let error = UserFilter::compile(LinkType::Ethernet, "udp port banana").unwrap_err();
        assert!(!error.is_empty());
    }
}

//! Link types: the `LINKTYPE_*` number of a pcap file header and of libpcap's `pcap_datalink`,
//! which says what the first header of every packet is. One enum for the decoder, the packet
//! socket, the filter compiler, the pcap writer and the tests; the number itself is what files,
//! libpcap and the JSON `meta.linktype` carry.

use std::fmt;

/// A link type. The named ones are those this workspace captures or decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// 0, `LINKTYPE_NULL`: BSD loopback, address family in host byte order.
    Null,
    /// 1, `LINKTYPE_ETHERNET`.
    Ethernet,
    /// 12: raw IP under the `DLT_RAW` number of Linux and OpenBSD.
    RawLinux,
    /// 101, `LINKTYPE_RAW`: raw IPv4 or IPv6 (the version nibble tells).
    Raw,
    /// 108, `LINKTYPE_LOOP`: OpenBSD loopback, address family in network byte order.
    Loop,
    /// 113, `LINKTYPE_LINUX_SLL`: Linux cooked capture v1.
    LinuxSll,
    /// 228, `LINKTYPE_IPV4`: raw IPv4.
    Ipv4,
    /// 229, `LINKTYPE_IPV6`: raw IPv6.
    Ipv6,
    /// 276, `LINKTYPE_LINUX_SLL2`: Linux cooked capture v2 (what tcpdump ≥ 4.99 writes for
    /// the `any` device, and the packet socket's cooked mode).
    LinuxSll2,
    /// Any other number.
    Other(i32),
}

impl LinkType {
    /// Every named link type (the ones the decoder reads), in numeric order.
    pub const DECODED: [LinkType; 9] = [
        LinkType::Null,
        LinkType::Ethernet,
        LinkType::RawLinux,
        LinkType::Raw,
        LinkType::Loop,
        LinkType::LinuxSll,
        LinkType::Ipv4,
        LinkType::Ipv6,
        LinkType::LinuxSll2,
    ];

    /// The `LINKTYPE_*` number.
    pub const fn number(self) -> i32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::RawLinux => 12,
            LinkType::Raw => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
            LinkType::Other(n) => n,
        }
    }
}

impl From<i32> for LinkType {
    fn from(n: i32) -> Self {
        match n {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 => LinkType::RawLinux,
            101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            n => LinkType::Other(n),
        }
    }
}

impl From<LinkType> for i32 {
    fn from(l: LinkType) -> i32 {
        l.number()
    }
}

impl fmt::Display for LinkType {
    /// The number, as files and libpcap give it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for l in LinkType::DECODED {
            assert_eq!(LinkType::from(l.number()), l);
        }
        assert_eq!(LinkType::from(147), LinkType::Other(147));
        assert_eq!(i32::from(LinkType::Other(147)), 147);
        assert_eq!(LinkType::LinuxSll2.to_string(), "276");
        let numbers: Vec<i32> = LinkType::DECODED.iter().map(|l| l.number()).collect();
        assert_eq!(numbers, [0, 1, 12, 101, 108, 113, 228, 229, 276]);
    }
}

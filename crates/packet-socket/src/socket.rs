//! An `AF_PACKET` socket read in `recvmmsg` batches, without packet rings.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{SystemTime, UNIX_EPOCH};

use wire::LinkType;

use crate::detect::errno_text;
use crate::filter::UserFilter;
use crate::sys::{self, Slot};

/// tcpdump's "unlimited" snap length (`-s 0`): refused on this path.
pub const MAX_SNAPLEN: u32 = 262_144;

/// Room before each received packet: a cooked header (20 bytes) or a VLAN tag (4).
const HEADROOM: usize = 20;
/// Bytes of a VLAN tag (TPID, TCI).
const VLAN_TAG_LEN: usize = 4;
const SLL2_HEADER_LEN: usize = 20;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const PACKET_OUTGOING: u8 = 4;
const SCM_TIMESTAMPNS: i32 = libc::SO_TIMESTAMPNS;
const SCM_TIMESTAMP: i32 = libc::SO_TIMESTAMP;
const TP_STATUS_VLAN_VALID: u32 = 0x10;
const TP_STATUS_VLAN_TPID_VALID: u32 = 0x40;
const ETH_P_8021Q: u16 = 0x8100;

/// How to open a [`PacketSocket`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSettings {
    /// Interface name, or `any` for every interface (cooked headers).
    pub iface: String,
    /// Bytes kept of each packet, link-layer header included: 1 ..= 262143.
    pub snaplen: u32,
    /// Socket receive buffer (`SO_RCVBUFFORCE`, else `SO_RCVBUF`), bytes.
    pub buffer_bytes: u32,
    /// Promiscuous mode (a named interface only).
    pub promisc: bool,
    /// Packets read per `recvmmsg`.
    pub batch: usize,
}

impl Default for SocketSettings {
    fn default() -> Self {
        SocketSettings {
            iface: "any".into(),
            snaplen: 65_536,
            buffer_bytes: 4 << 20,
            promisc: true,
            batch: 64,
        }
    }
}

/// Why a socket could not be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Snap length 0 / 262144 ("unlimited") or out of range.
    Snaplen(u32),
    /// libpcap rejected the filter.
    Filter(String),
    /// A system call failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Snaplen(snaplen) => write!(
                f,
                "PCAP_SNAPSHOT_LENGTH={} is not supported on the ring-less capture path: 0 \
                 (= {MAX_SNAPLEN}, unlimited) needs a {MAX_SNAPLEN}-byte buffer per packet of \
                 every recvmmsg batch; set PCAP_SNAPSHOT_LENGTH to 1..={} (default 65536)",
                if *snaplen >= MAX_SNAPLEN { 0 } else { *snaplen },
                MAX_SNAPLEN - 1
            ),
            Error::Filter(message) => write!(f, "{message}"),
            Error::Io { what, source } => write!(f, "{what}: {}", errno_text(source)),
        }
    }
}

impl std::error::Error for Error {}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Why the filter never goes to the kernel on this path. gVisor refuses `SO_ATTACH_FILTER`;
/// and on a kernel that takes it, libpcap's program for a capture file (what a socket that
/// libpcap did not open can get) tests VLAN tags in the packet bytes, where the kernel has
/// already removed them (libpcap rewrites its programs for its own live sockets).
pub const USER_SPACE_REASON: &str = "the ring-less path filters after VLAN tags and cooked headers are restored, exactly as libpcap sees packets (the kernel would see them without; gVisor refuses SO_ATTACH_FILTER anyway)";

/// Where the capture filter runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterMode {
    /// No filter.
    None,
    /// Run per packet by libpcap's interpreter.
    UserSpace {
        /// Why not in the kernel.
        reason: String,
    },
}

impl FilterMode {
    /// `none`, `kernel` or `user-space`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FilterMode::None => "none",
            FilterMode::UserSpace { .. } => "user-space",
        }
    }
}

/// One packet of the last batch.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Seconds since the epoch.
    pub ts_sec: i64,
    /// Nanoseconds within the second.
    pub ts_nsec: u32,
    /// Length on the wire, link-layer header included (cooked header for `any`).
    pub wire_len: u32,
    /// The captured bytes (at most the snap length).
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy, Default)]
struct Meta {
    start: usize,
    end: usize,
    ts_sec: i64,
    ts_nsec: u32,
    wire_len: u32,
    keep: bool,
}

/// A ring-less capture socket; see the crate docs.
pub struct PacketSocket {
    fd: OwnedFd,
    slots: Vec<Slot>,
    meta: Vec<Meta>,
    filled: usize,
    linktype: LinkType,
    cooked: bool,
    ifindex: u32,
    lo_index: Option<u32>,
    snaplen: usize,
    filter: Option<UserFilter>,
    filter_mode: FilterMode,
    stats: Option<(u64, u64)>,
    notes: Vec<String>,
}

impl std::fmt::Debug for PacketSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketSocket")
            .field("linktype", &self.linktype)
            .field("ifindex", &self.ifindex)
            .field("filter_mode", &self.filter_mode)
            .finish_non_exhaustive()
    }
}

impl PacketSocket {
    /// Opens the socket on `settings.iface`, with `filter` (libpcap syntax) run in user space
    /// (see [`USER_SPACE_REASON`]).
    pub fn open(settings: &SocketSettings, filter: Option<&str>) -> Result<PacketSocket, Error> {
        if settings.snaplen == 0 || settings.snaplen >= MAX_SNAPLEN {
            return Err(Error::Snaplen(settings.snaplen));
        }
        let any = settings.iface == "any";
        let ifindex = if any {
            0
        } else {
            sys::if_index(&settings.iface)
                .map_err(io_error(format!("no interface {:?}", settings.iface)))?
        };
        let mut notes = Vec::new();
        let raw = sys::packet_socket(libc::SOCK_RAW)
            .map_err(io_error("cannot open an AF_PACKET socket"))?;
        let cooked = if any {
            true
        } else {
            match sys::hardware_type(raw.as_fd(), &settings.iface) {
                Ok(ARPHRD_ETHER | ARPHRD_LOOPBACK) => false,
                Ok(other) => {
                    notes.push(format!(
                        "link type ARPHRD {other} is captured with Linux cooked headers"
                    ));
                    true
                }
                Err(error) => {
                    notes.push(format!(
                        "cannot read the link type of {} ({}): assuming Ethernet",
                        settings.iface,
                        errno_text(&error)
                    ));
                    false
                }
            }
        };
        let fd = if cooked {
            drop(raw);
            sys::packet_socket(libc::SOCK_DGRAM)
                .map_err(io_error("cannot open an AF_PACKET socket"))?
        } else {
            raw
        };
        let linktype = if cooked {
            LinkType::LinuxSll2
        } else {
            LinkType::Ethernet
        };

        let buffer = libc::c_int::try_from(settings.buffer_bytes).unwrap_or(libc::c_int::MAX);
        if sys::setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, buffer).is_err()
        {
            if let Err(error) =
                sys::setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, buffer)
            {
                notes.push(format!(
                    "SO_RCVBUF refused ({}): default buffer",
                    errno_text(&error)
                ));
            }
        }
        // Nanoseconds if the kernel has them, else microseconds, else the time of the read.
        if let Err(error) =
            sys::setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
        {
            match sys::setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMP, 1) {
                Ok(()) => notes.push(format!(
                    "SO_TIMESTAMPNS refused ({}): microsecond timestamps (SO_TIMESTAMP)",
                    errno_text(&error)
                )),
                Err(_) => notes.push(format!(
                    "SO_TIMESTAMPNS and SO_TIMESTAMP refused ({}): packets are stamped when read",
                    errno_text(&error)
                )),
            }
        }
        if let Err(error) = sys::setsockopt_int(fd.as_fd(), sys::SOL_PACKET, sys::PACKET_AUXDATA, 1)
        {
            notes.push(format!(
                "PACKET_AUXDATA refused ({}): original lengths from MSG_TRUNC, VLAN tags not restored",
                errno_text(&error)
            ));
        }

        let filter = filter.map(str::trim).filter(|f| !f.is_empty());
        let (filter, filter_mode) = match filter {
            None => (None, FilterMode::None),
            Some(text) => {
                let compiled = UserFilter::compile(linktype, text).map_err(Error::Filter)?;
                (
                    Some(compiled),
                    FilterMode::UserSpace {
                        reason: USER_SPACE_REASON.into(),
                    },
                )
            }
        };

        // Packets flow from here on.
        sys::bind(fd.as_fd(), ifindex, sys::ETH_P_ALL).map_err(io_error(format!(
            "cannot bind the packet socket to {}",
            settings.iface
        )))?;
        if settings.promisc && !any {
            if let Err(error) = sys::add_promisc(fd.as_fd(), ifindex) {
                notes.push(format!("promiscuous mode refused ({})", errno_text(&error)));
            }
        }
        // Read once to reset the counters; refused (gVisor) means unknown drops.
        let stats = sys::packet_stats(fd.as_fd()).ok().map(|_| (0, 0));
        if stats.is_none() {
            notes.push("PACKET_STATISTICS refused: kernel drops unknown".into());
        }
        let snaplen = settings.snaplen as usize;
        let payload = if cooked {
            snaplen.saturating_sub(SLL2_HEADER_LEN).max(1)
        } else {
            snaplen
        };
        let batch = settings.batch.clamp(1, 1024);
        Ok(PacketSocket {
            fd,
            slots: (0..batch).map(|_| Slot::new(HEADROOM + payload)).collect(),
            meta: vec![Meta::default(); batch],
            filled: 0,
            linktype,
            cooked,
            ifindex,
            lo_index: sys::if_index("lo").ok(),
            snaplen,
            filter,
            filter_mode,
            stats,
            notes,
        })
    }

    /// Link type of the packets: [`LinkType::Ethernet`], or [`LinkType::LinuxSll2`] (cooked,
    /// as tcpdump ≥ 4.99 writes for `any`).
    pub fn linktype(&self) -> LinkType {
        self.linktype
    }

    /// Kernel index of the interface (0 for `any`).
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Where the filter runs.
    pub fn filter_mode(&self) -> &FilterMode {
        &self.filter_mode
    }

    /// What the kernel refused while opening (each a sentence for the log).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Reads the next batch: what is waiting, or — when nothing is — what arrives within
    /// `wait_ms`. Returns the number of slots read (filtered packets included, see
    /// [`PacketSocket::packet`]); 0 when nothing came.
    pub fn recv(&mut self, wait_ms: u16) -> io::Result<usize> {
        self.filled = 0;
        let mut count = sys::recv_batch(self.fd.as_fd(), &mut self.slots, HEADROOM)?;
        if count == 0 {
            sys::wait_readable(self.fd.as_fd(), wait_ms);
            count = sys::recv_batch(self.fd.as_fd(), &mut self.slots, HEADROOM)?;
        }
        for index in 0..count {
            let meta = self.decode(index);
            if let Some(slot) = self.meta.get_mut(index) {
                *slot = meta;
            }
        }
        self.filled = count;
        Ok(count)
    }

    /// Packet `index` of the last batch; `None` when the filter rejected it (or a duplicate
    /// outgoing loopback packet, which libpcap skips too).
    pub fn packet(&self, index: usize) -> Option<Packet<'_>> {
        if index >= self.filled {
            return None;
        }
        let meta = self.meta.get(index)?;
        if !meta.keep {
            return None;
        }
        let data = self.slots.get(index)?.buf.get(meta.start..meta.end)?;
        Some(Packet {
            ts_sec: meta.ts_sec,
            ts_nsec: meta.ts_nsec,
            wire_len: meta.wire_len,
            data,
        })
    }

    /// Kernel counters since opening: (packets, drops); `None` when the kernel has none.
    pub fn stats(&mut self) -> Option<(u64, u64)> {
        let (packets, drops) = self.stats?;
        match sys::packet_stats(self.fd.as_fd()) {
            Ok((more_packets, more_drops)) => {
                let total = (
                    packets + u64::from(more_packets),
                    drops + u64::from(more_drops),
                );
                self.stats = Some(total);
                Some(total)
            }
            Err(_) => {
                self.stats = None;
                None
            }
        }
    }

    fn decode(&mut self, index: usize) -> Meta {
        let lo_index = self.lo_index;
        let cooked = self.cooked;
        let snaplen = self.snaplen;
        let Some(slot) = self.slots.get_mut(index) else {
            return Meta::default();
        };
        let control = Control::parse(&slot.control, slot.control_len);
        let payload_cap = slot.buf.len() - HEADROOM;
        let captured = slot.len.min(payload_cap);
        let original = control
            .aux
            .map_or(slot.len, |aux| (aux.len as usize).max(captured));
        let (ts_sec, ts_nsec) = control.timestamp.unwrap_or_else(now);
        let duplicate = slot.addr.sll_pkttype == PACKET_OUTGOING
            && lo_index.is_some_and(|lo| i64::from(slot.addr.sll_ifindex) == i64::from(lo));
        // The kernel strips VLAN tags (offload) and reports them aside: like libpcap, they
        // are put back after the MAC addresses of Ethernet packets; cooked v2 packets carry
        // none (libpcap does not restore them there either).
        let tag = control.aux.and_then(Aux::vlan_tag);
        let (start, wire_len) = if cooked {
            let header = sll2_header(&slot.addr);
            slot.buf[..SLL2_HEADER_LEN].copy_from_slice(&header);
            (0, original + SLL2_HEADER_LEN)
        } else if let Some(tag) = tag.filter(|_| captured >= 12) {
            let start = HEADROOM - VLAN_TAG_LEN;
            slot.buf.copy_within(HEADROOM..HEADROOM + 12, start);
            slot.buf[start + 12..HEADROOM + 12].copy_from_slice(&tag);
            (start, original + VLAN_TAG_LEN)
        } else {
            (HEADROOM, original)
        };
        let end = (HEADROOM + captured).min(start + snaplen);
        let wire_len = u32::try_from(wire_len).unwrap_or(u32::MAX);
        let keep = !duplicate
            && self.filter.as_ref().is_none_or(|filter| {
                slot.buf
                    .get(start..end)
                    .is_some_and(|data| filter.matches(data, wire_len))
            });
        Meta {
            start,
            end,
            ts_sec,
            ts_nsec,
            wire_len,
            keep,
        }
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn now() -> (i64, u32) {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (
        i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        since.subsec_nanos(),
    )
}

/// The `DLT_LINUX_SLL2` header of a packet received on a `SOCK_DGRAM` socket (as libpcap
/// builds it: protocol, reserved, interface index, ARPHRD type, packet type, address).
fn sll2_header(addr: &libc::sockaddr_ll) -> [u8; SLL2_HEADER_LEN] {
    let mut header = [0u8; SLL2_HEADER_LEN];
    // Already in network order.
    header[0..2].copy_from_slice(&addr.sll_protocol.to_ne_bytes());
    let ifindex = u32::try_from(addr.sll_ifindex).unwrap_or(0);
    header[4..8].copy_from_slice(&ifindex.to_be_bytes());
    header[8..10].copy_from_slice(&addr.sll_hatype.to_be_bytes());
    header[10] = addr.sll_pkttype;
    let halen = usize::from(addr.sll_halen).min(8);
    header[11] = halen as u8;
    header[12..12 + halen].copy_from_slice(&addr.sll_addr[..halen]);
    header
}

/// `struct tpacket_auxdata`, the fields used.
#[derive(Debug, Clone, Copy)]
struct Aux {
    status: u32,
    len: u32,
    vlan_tci: u16,
    vlan_tpid: u16,
}

impl Aux {
    /// The 802.1Q tag to re-insert (TPID then TCI, network order).
    fn vlan_tag(self) -> Option<[u8; 4]> {
        if self.status & TP_STATUS_VLAN_VALID == 0 {
            return None;
        }
        let tpid = if self.status & TP_STATUS_VLAN_TPID_VALID != 0 {
            self.vlan_tpid
        } else {
            ETH_P_8021Q
        };
        let mut tag = [0u8; 4];
        tag[0..2].copy_from_slice(&tpid.to_be_bytes());
        tag[2..4].copy_from_slice(&self.vlan_tci.to_be_bytes());
        Some(tag)
    }
}

/// What the control messages of one packet said.
#[derive(Debug, Default)]
struct Control {
    timestamp: Option<(i64, u32)>,
    aux: Option<Aux>,
}

const WORD: usize = std::mem::size_of::<usize>();

fn align(len: usize) -> usize {
    (len + WORD - 1) & !(WORD - 1)
}

impl Control {
    /// Walks the `cmsghdr` chain in the first `len` bytes (CMSG_FIRSTHDR/NXTHDR by hand).
    fn parse(words: &[u64], len: usize) -> Control {
        let mut all = [0u8; sys::CONTROL_WORDS * 8];
        for (chunk, word) in all.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        let bytes = &all[..len.min(all.len())];
        let header_len = align(std::mem::size_of::<libc::cmsghdr>());
        let mut control = Control::default();
        let mut offset = 0;
        while offset + header_len <= bytes.len() {
            let Some(cmsg_len) = read_usize(bytes, offset) else {
                break;
            };
            let level = read_i32(bytes, offset + WORD);
            let kind = read_i32(bytes, offset + WORD + 4);
            if cmsg_len < header_len || offset + cmsg_len > bytes.len() {
                break;
            }
            let data = &bytes[offset + header_len..offset + cmsg_len];
            match (level, kind) {
                (Some(libc::SOL_SOCKET), Some(SCM_TIMESTAMPNS)) if data.len() >= 16 => {
                    let sec = i64::from_ne_bytes(data[0..8].try_into().unwrap_or([0; 8]));
                    let nsec = i64::from_ne_bytes(data[8..16].try_into().unwrap_or([0; 8]));
                    control.timestamp =
                        Some((sec, u32::try_from(nsec.clamp(0, 999_999_999)).unwrap_or(0)));
                }
                (Some(libc::SOL_SOCKET), Some(SCM_TIMESTAMP)) if data.len() >= 16 => {
                    let sec = i64::from_ne_bytes(data[0..8].try_into().unwrap_or([0; 8]));
                    let usec = i64::from_ne_bytes(data[8..16].try_into().unwrap_or([0; 8]));
                    let nsec = usec.clamp(0, 999_999) * 1000;
                    control.timestamp = Some((sec, u32::try_from(nsec).unwrap_or(0)));
                }
                (Some(sys::SOL_PACKET), Some(sys::PACKET_AUXDATA)) if data.len() >= 20 => {
                    let u32_at = |at: usize| {
                        u32::from_ne_bytes(data[at..at + 4].try_into().unwrap_or([0; 4]))
                    };
                    let u16_at = |at: usize| {
                        u16::from_ne_bytes(data[at..at + 2].try_into().unwrap_or([0; 2]))
                    };
                    control.aux = Some(Aux {
                        status: u32_at(0),
                        len: u32_at(4),
                        vlan_tci: u16_at(16),
                        vlan_tpid: u16_at(18),
                    });
                }
                _ => {}
            }
            offset += align(cmsg_len);
        }
        control
    }
}

fn read_usize(bytes: &[u8], at: usize) -> Option<usize> {
    let raw: [u8; WORD] = bytes.get(at..at + WORD)?.try_into().ok()?;
    Some(usize::from_ne_bytes(raw))
}

fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(i32::from_ne_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(bytes: &[u8]) -> Vec<u64> {
        bytes
            .chunks(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w[..c.len()].copy_from_slice(c);
                u64::from_ne_bytes(w)
            })
            .collect()
    }

    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(16 + data.len()).to_ne_bytes());
        out.extend_from_slice(&level.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(data);
        while out.len() % 8 != 0 {
            out.push(0);
        }
        out
    }

    #[test]
    fn control_messages_are_parsed() {
        let mut ts = Vec::new();
        ts.extend_from_slice(&1_700_000_000i64.to_ne_bytes());
        ts.extend_from_slice(&123_456_789i64.to_ne_bytes());
        let mut aux = Vec::new();
        aux.extend_from_slice(&(TP_STATUS_VLAN_VALID).to_ne_bytes());
        aux.extend_from_slice(&1514u32.to_ne_bytes());
        aux.extend_from_slice(&96u32.to_ne_bytes());
        aux.extend_from_slice(&0u16.to_ne_bytes());
        aux.extend_from_slice(&14u16.to_ne_bytes());
        aux.extend_from_slice(&42u16.to_ne_bytes());
        aux.extend_from_slice(&0u16.to_ne_bytes());
        let mut bytes = cmsg(libc::SOL_SOCKET, SCM_TIMESTAMPNS, &ts);
        bytes.extend(cmsg(sys::SOL_PACKET, sys::PACKET_AUXDATA, &aux));
        let len = bytes.len();
        let control = Control::parse(&words(&bytes), len);
        assert_eq!(control.timestamp, Some((1_700_000_000, 123_456_789)));
        let aux = control.aux.unwrap();
        assert_eq!(aux.len, 1514);
        assert_eq!(aux.vlan_tag(), Some([0x81, 0x00, 0, 42]));
    }

    #[test]
    fn microsecond_timestamps_are_read_too() {
        let mut ts = Vec::new();
        ts.extend_from_slice(&1_700_000_000i64.to_ne_bytes());
        ts.extend_from_slice(&654_321i64.to_ne_bytes());
        let bytes = cmsg(libc::SOL_SOCKET, SCM_TIMESTAMP, &ts);
        let control = Control::parse(&words(&bytes), bytes.len());
        assert_eq!(control.timestamp, Some((1_700_000_000, 654_321_000)));
    }

    #[test]
    fn malformed_control_messages_are_ignored() {
        for bytes in [
            vec![0xffu8; 64],
            vec![0u8; 64],
            cmsg(libc::SOL_SOCKET, SCM_TIMESTAMPNS, &[1, 2, 3]),
            vec![200, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 35, 0, 0, 0],
        ] {
            let len = bytes.len();
            let control = Control::parse(&words(&bytes), len);
            assert!(control.timestamp.is_none() && control.aux.is_none());
        }
        // A length beyond the buffer is clamped.
        let control = Control::parse(&[0u64; 2], 4096);
        assert!(control.timestamp.is_none());
    }

    #[test]
    fn cooked_headers_follow_libpcap() {
        let mut addr = sys::Slot::new(1).addr;
        addr.sll_pkttype = PACKET_OUTGOING;
        addr.sll_hatype = ARPHRD_LOOPBACK;
        addr.sll_ifindex = 1;
        addr.sll_halen = 6;
        addr.sll_addr = [2, 2, 2, 2, 2, 2, 7, 8];
        addr.sll_protocol = 0x0800u16.to_be();
        // As tcpdump -i any wrote it for a packet on lo.
        assert_eq!(
            sll2_header(&addr),
            [8, 0, 0, 0, 0, 0, 0, 1, 3, 4, 4, 6, 2, 2, 2, 2, 2, 2, 0, 0]
        );
    }

    #[test]
    fn unlimited_snaplen_is_refused_with_the_variable() {
        for snaplen in [0, MAX_SNAPLEN] {
            let settings = SocketSettings {
                snaplen,
                ..SocketSettings::default()
            };
            let error = PacketSocket::open(&settings, None).unwrap_err().to_string();
            assert!(
                error.contains("PCAP_SNAPSHOT_LENGTH=0") && error.contains("ring-less"),
                "{error}"
            );
        }
    }
}

//! Packet capture without packet rings, for gVisor (Cloud Run's first generation), and the
//! start-up decision between that path and libpcap's.
//!
//! gVisor implements `AF_PACKET` sockets but not `PACKET_RX_RING`/`PACKET_VERSION` (the
//! `TPACKET` rings libpcap ≥ 1.10 requires) nor `SO_ATTACH_FILTER`. This crate provides:
//!
//! - [`detect`]: which capture path to use, and why (forced by `PCAP_COMPAT`, or a probe of
//!   `setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)` on a packet socket), shared by
//!   `tcpdumpw` and `pcapd`.
//! - [`PacketSocket`]: an `AF_PACKET` socket read with `recvmmsg` batches: timestamps
//!   (`SO_TIMESTAMPNS`), original lengths (`MSG_TRUNC`, `PACKET_AUXDATA`), VLAN tags
//!   re-inserted, the link type of the interface (Ethernet, or Linux cooked v2 headers
//!   built for `any` and other link types, as tcpdump writes them), kernel drop counters when the kernel has them.
//! - [`UserFilter`]: the capture filter compiled by libpcap for the socket's link type and
//!   run in user space by libpcap's own interpreter (`pcap_offline_filter`), on the packets
//!   as libpcap presents them (VLAN tags restored, cooked headers built): the same program
//!   over the same bytes, so the same packets as on the ring path. gVisor refuses kernel
//!   filters; on a normal kernel the program is not attached either ([`USER_SPACE_REASON`]).
//!
//! All `unsafe` code is in one private module (`sys`), each block with its justification.
//! `docs/capture-paths.md` describes the paths for users.

mod detect;
mod filter;
mod socket;
mod sys;

pub use detect::{detect, gvisor_hint, probe_rings, CapturePath, Detection};
pub use filter::UserFilter;
pub use socket::{
    Error, FilterMode, Packet, PacketSocket, SocketSettings, MAX_SNAPLEN, USER_SPACE_REASON,
};

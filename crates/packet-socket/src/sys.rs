//! Every `unsafe` block of the crate: thin wrappers over the socket system calls and libpcap's
//! `pcap_offline_filter`. Each returns `io::Result` (or a plain value) and owns no state; the
//! safe modules do all the parsing.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use libc::{c_int, c_void, socklen_t};

/// `SOL_PACKET`.
pub(crate) const SOL_PACKET: c_int = 263;
/// `PACKET_ADD_MEMBERSHIP`.
const PACKET_ADD_MEMBERSHIP: c_int = 1;
/// `PACKET_MR_PROMISC`.
const PACKET_MR_PROMISC: u16 = 1;
/// `PACKET_STATISTICS`.
const PACKET_STATISTICS: c_int = 6;
/// `PACKET_AUXDATA`.
pub(crate) const PACKET_AUXDATA: c_int = 8;
/// `PACKET_VERSION`.
pub(crate) const PACKET_VERSION: c_int = 10;
/// `TPACKET_V3`.
pub(crate) const TPACKET_V3: c_int = 2;
/// `ETH_P_ALL`, host order.
pub(crate) const ETH_P_ALL: u16 = 0x0003;

/// Bytes of control data kept per packet (a timestamp and the auxiliary data fit twice).
pub(crate) const CONTROL_WORDS: usize = 16;

/// One receive slot of a `recvmmsg` batch.
pub(crate) struct Slot {
    /// Packet bytes are received at `buf[headroom..]`; the headroom takes a cooked header or
    /// a re-inserted VLAN tag without moving the payload.
    pub(crate) buf: Vec<u8>,
    /// Control messages (u64 words: aligned for `cmsghdr`).
    pub(crate) control: [u64; CONTROL_WORDS],
    /// Bytes of `control` the kernel filled.
    pub(crate) control_len: usize,
    /// The sender address: interface index, packet type, link-layer header type and address.
    pub(crate) addr: libc::sockaddr_ll,
    /// What `recvmsg` returned (with `MSG_TRUNC`: the full length of the packet).
    pub(crate) len: usize,
}

impl Slot {
    pub(crate) fn new(size: usize) -> Slot {
        Slot {
            buf: vec![0; size],
            control: [0; CONTROL_WORDS],
            control_len: 0,
            addr: zeroed_sockaddr_ll(),
            len: 0,
        }
    }
}

fn zeroed_sockaddr_ll() -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is a plain C struct of integers and byte arrays; all zeroes is a
    // valid value.
    unsafe { std::mem::zeroed() }
}

fn check(rc: c_int) -> io::Result<c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `socket(AF_PACKET, kind, 0)`, close-on-exec and non-blocking. Protocol 0: nothing is
/// received until [`bind`] names one, so a filter can be attached before the first packet.
pub(crate) fn packet_socket(kind: c_int) -> io::Result<OwnedFd> {
    // SAFETY: a plain system call with integer arguments.
    let fd = check(unsafe {
        libc::socket(
            libc::AF_PACKET,
            kind | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    // SAFETY: `fd` was just returned by socket(2): valid, open, and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt<T>(fd: BorrowedFd<'_>, level: c_int, name: c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live, initialised T and the length passed is exactly its size.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast::<c_void>(),
            size_of::<T>() as socklen_t,
        )
    })
    .map(drop)
}

/// `setsockopt` with an `int` value.
pub(crate) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    value: c_int,
) -> io::Result<()> {
    setsockopt(fd, level, name, &value)
}

#[repr(C)]
struct PacketMreq {
    mr_ifindex: c_int,
    mr_type: u16,
    mr_alen: u16,
    mr_address: [u8; 8],
}

/// Promiscuous mode on `ifindex` for as long as the socket is open.
pub(crate) fn add_promisc(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    let mreq = PacketMreq {
        mr_ifindex: c_int::try_from(ifindex).unwrap_or(0),
        mr_type: PACKET_MR_PROMISC,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq)
}

/// Binds to `ifindex` (0: every interface) for `protocol` (host order).
pub(crate) fn bind(fd: BorrowedFd<'_>, ifindex: u32, protocol: u16) -> io::Result<()> {
    let mut addr = zeroed_sockaddr_ll();
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = c_int::try_from(ifindex).unwrap_or(0);
    // SAFETY: `addr` is a live sockaddr_ll and the length passed is its size.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast::<libc::sockaddr>(),
            size_of::<libc::sockaddr_ll>() as socklen_t,
        )
    })
    .map(drop)
}

/// `PACKET_STATISTICS`: (packets, drops) since the last call (the kernel resets them).
pub(crate) fn packet_stats(fd: BorrowedFd<'_>) -> io::Result<(u32, u32)> {
    let mut stats = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = size_of::<libc::tpacket_stats>() as socklen_t;
    // SAFETY: `stats` and `len` are live and `len` is the size of `stats`.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            SOL_PACKET,
            PACKET_STATISTICS,
            (&mut stats as *mut libc::tpacket_stats).cast::<c_void>(),
            &mut len,
        )
    })?;
    Ok((stats.tp_packets, stats.tp_drops))
}

/// The kernel index of interface `name`.
pub(crate) fn if_index(name: &str) -> io::Result<u32> {
    let c_name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `c_name` is a valid NUL-terminated string that outlives the call.
    match unsafe { libc::if_nametoindex(c_name.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        index => Ok(index),
    }
}

/// The link-layer (ARPHRD_*) type of interface `name` (`SIOCGIFHWADDR`).
pub(crate) fn hardware_type(fd: BorrowedFd<'_>, name: &str) -> io::Result<u16> {
    // SAFETY: ifreq is a plain C struct (name array and a union of plain values); all
    // zeroes is valid.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= request.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    for (slot, byte) in request.ifr_name.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR reads the name and writes the hardware address into `request`,
    // a live ifreq.
    check(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::SIOCGIFHWADDR,
            &mut request as *mut libc::ifreq,
        )
    })?;
    // SAFETY: after SIOCGIFHWADDR the union holds `ifru_hwaddr`, a plain sockaddr.
    Ok(unsafe { request.ifr_ifru.ifru_hwaddr.sa_family })
}

/// Waits until `fd` is readable or `timeout_ms` passes (EINTR just returns).
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout_ms: u16) {
    let mut pollfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd, count 1.
    let _ = unsafe { libc::poll(&mut pollfd, 1, c_int::from(timeout_ms)) };
}

/// One `recvmmsg(MSG_DONTWAIT | MSG_TRUNC)` into `slots` (received at `buf[headroom..]`).
/// Returns how many slots were filled; `Ok(0)` when nothing is waiting.
pub(crate) fn recv_batch(
    fd: BorrowedFd<'_>,
    slots: &mut [Slot],
    headroom: usize,
) -> io::Result<usize> {
    let mut iovecs: Vec<libc::iovec> = slots
        .iter_mut()
        .map(|slot| {
            let data = &mut slot.buf[headroom..];
            libc::iovec {
                iov_base: data.as_mut_ptr().cast::<c_void>(),
                iov_len: data.len(),
            }
        })
        .collect();
    let mut headers: Vec<libc::mmsghdr> = slots
        .iter_mut()
        .zip(iovecs.iter_mut())
        .map(|(slot, iov)| {
            // SAFETY: mmsghdr is a plain C struct of integers and pointers; all zeroes
            // (null pointers, zero lengths) is valid.
            let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
            header.msg_hdr.msg_name = (&mut slot.addr as *mut libc::sockaddr_ll).cast::<c_void>();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as socklen_t;
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = slot.control.as_mut_ptr().cast::<c_void>();
            header.msg_hdr.msg_controllen = size_of::<[u64; CONTROL_WORDS]>();
            header
        })
        .collect();
    let count = u32::try_from(headers.len()).unwrap_or(u32::MAX);
    // SAFETY: every header points into buffers of `slots` and `iovecs`, which are borrowed
    // mutably for the whole call and outlive it; lengths are those of the buffers.
    let rc = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            headers.as_mut_ptr(),
            count,
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        let error = io::Error::last_os_error();
        return match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
            _ => Err(error),
        };
    }
    let filled = usize::try_from(rc).unwrap_or(0);
    for (slot, header) in slots.iter_mut().zip(&headers).take(filled) {
        slot.len = header.msg_len as usize;
        slot.control_len = header.msg_hdr.msg_controllen;
    }
    Ok(filled)
}

/// libpcap's `struct pcap_pkthdr`.
#[repr(C)]
struct PcapPkthdr {
    ts: libc::timeval,
    caplen: u32,
    len: u32,
}

extern "C" {
    // From libpcap, which the `pcap` crate links.
    fn pcap_offline_filter(
        program: *const c_void,
        header: *const PcapPkthdr,
        data: *const u8,
    ) -> c_int;
}

/// Runs a compiled filter over a packet of `wire_len` bytes on the wire of which `data` was
/// captured: libpcap's own interpreter, with the real original length (`len`, `greater`,
/// `less` see the wire length, as in the kernel).
pub(crate) fn offline_filter(program: &pcap::BpfProgram, data: &[u8], wire_len: u32) -> bool {
    let header = PcapPkthdr {
        ts: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        caplen: u32::try_from(data.len()).unwrap_or(u32::MAX),
        len: wire_len.max(u32::try_from(data.len()).unwrap_or(u32::MAX)),
    };
    // SAFETY: `pcap::BpfProgram` is `#[repr(transparent)]` over libpcap's `struct
    // bpf_program`, so a pointer to it is a valid `const struct bpf_program *`; the header
    // and the data (of `caplen` bytes) are live for the call, which only reads them.
    unsafe {
        pcap_offline_filter(
            (program as *const pcap::BpfProgram).cast::<c_void>(),
            &header,
            data.as_ptr(),
        ) > 0
    }
}

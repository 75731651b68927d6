//! Packet sources: a live libpcap handle on one interface (or `any`), a ring-less
//! `AF_PACKET` socket (the `packet-socket` crate, for gVisor), or a pcap/pcapng file,
//! gzip-compressed or not (detected by its magic bytes, not its name).
//!
//! Everything after opening is the same code path: [`Source::next_packet`] yields packets until the
//! end of the file or until the caller stops.

use std::fs::File;
use std::io::{self, Read};
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use pcap::{Active, Capture, Offline, Precision};
use wire::{CapturedPacket, LinkType};

use crate::Error;

/// Live capture parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSettings {
    /// Exact interface name, or `any` (Linux cooked capture).
    pub iface: String,
    /// Bytes kept of each packet.
    pub snaplen: u32,
    /// Kernel capture buffer in bytes.
    pub buffer_bytes: u32,
    /// Promiscuous mode.
    pub promisc: bool,
    /// Deliver packets as they arrive instead of in kernel blocks.
    pub immediate: bool,
    /// Read timeout in milliseconds: how often the capture loop wakes up without traffic.
    pub timeout_ms: i32,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            iface: "any".into(),
            snaplen: 65_536,
            buffer_bytes: 4 * 1024 * 1024,
            promisc: true,
            immediate: true,
            timeout_ms: 50,
        }
    }
}

/// Where packets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSettings {
    /// A live interface, captured by libpcap (packet rings, kernel filter).
    Live(LiveSettings),
    /// A live interface, captured without packet rings: an `AF_PACKET` socket read with
    /// `recvmmsg`, the libpcap filter run in user space.
    RingLess(LiveSettings),
    /// A pcap or pcapng file, possibly gzip-compressed (`-` reads stdin).
    File(PathBuf),
}

/// What translation needs to know about an open source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// The interface.
    pub interface: render::Interface,
    /// The link type of its packets (Ethernet, Linux cooked v1/v2 for `any`, …).
    pub linktype: LinkType,
    /// Whether this is a live capture (drop when full) or a file (wait when full).
    pub live: bool,
    /// Where the filter runs: `libpcap` (kernel, through libpcap), `kernel`, `user-space`,
    /// or `none`.
    pub filter_mode: &'static str,
    /// Why the filter runs in user space, and what else the kernel refused (ring-less path).
    pub notes: Vec<String>,
}

/// Kernel statistics of a live capture (`pcap_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct KernelStats {
    /// Packets the kernel passed the filter (`ps_recv`).
    pub received: u64,
    /// Dropped for lack of buffer space (`ps_drop`).
    pub dropped: u64,
    /// Dropped by the interface or driver (`ps_ifdrop`).
    pub if_dropped: u64,
}

/// What [`Source::next_packet`] returns.
#[derive(Debug)]
pub enum Next<'a> {
    /// A packet, numbered in read order from 0 (the pipeline's packet, borrowed from the
    /// source's buffer all the way to the translator).
    Packet(CapturedPacket<'a>),
    /// No packet within the read timeout (live only).
    Idle,
    /// End of the file.
    End,
}

enum Handle {
    Live(Capture<Active>),
    Socket {
        socket: packet_socket::PacketSocket,
        /// Next slot of the current batch.
        next: usize,
        /// Slots in the current batch.
        count: usize,
    },
    File {
        capture: Capture<Offline>,
        // Decompresses a gzip file into the pipe libpcap reads.
        inflater: Option<JoinHandle<io::Result<u64>>>,
        path: PathBuf,
    },
}

/// An open packet source.
pub struct Source {
    handle: Handle,
    info: SourceInfo,
    /// Live: whether the last read found packets (so the next read need not wait first).
    ready: bool,
    /// Live: longest wait for packets before [`Next::Idle`].
    poll_ms: u16,
    /// Packets returned so far: the next packet's serial number.
    read: u64,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl Source {
    /// Opens the source and installs `filter` (compiled by libpcap; a rejected filter is
    /// [`Error::Filter`] with libpcap's message). `label` names a file source's interface.
    pub fn open(
        settings: &SourceSettings,
        filter: Option<&str>,
        label: &str,
    ) -> Result<Self, Error> {
        let mut source = match settings {
            SourceSettings::Live(live) => Self::open_live(live)?,
            SourceSettings::RingLess(live) => return Self::open_socket(live, filter),
            SourceSettings::File(path) => Self::open_file(path, label)?,
        };
        if let Some(filter) = filter.filter(|f| !f.trim().is_empty()) {
            source.info.filter_mode = "libpcap";
            let result = match &mut source.handle {
                Handle::Live(capture) => capture.filter(filter, true),
                Handle::File { capture, .. } => capture.filter(filter, true),
                Handle::Socket { .. } => Ok(()),
            };
            result.map_err(|error| Error::Filter {
                filter: filter.to_string(),
                message: pcap_message(&error),
            })?;
        }
        Ok(source)
    }

    /// The interface to open (see [`resolve_iface`]) and its local addresses.
    fn resolve_live(live: &LiveSettings) -> Result<(LiveSettings, Vec<IpAddr>), Error> {
        let devices = pcap::Device::list().map_err(|error| Error::Device {
            iface: live.iface.clone(),
            message: pcap_message(&error),
        })?;
        let iface = resolve_iface(&live.iface, &devices)?;
        let addrs: Vec<IpAddr> = if iface == "any" {
            // Every local address: on `any` a packet is local if any interface owns it.
            devices
                .iter()
                .flat_map(|d| d.addresses.iter().map(|a| a.addr))
                .collect()
        } else {
            devices
                .iter()
                .filter(|d| d.name == iface)
                .flat_map(|d| d.addresses.iter().map(|a| a.addr))
                .collect()
        };
        Ok((
            LiveSettings {
                iface,
                ..live.clone()
            },
            addrs,
        ))
    }

    fn open_socket(live: &LiveSettings, filter: Option<&str>) -> Result<Self, Error> {
        let (live, addrs) = Self::resolve_live(live)?;
        let settings = packet_socket::SocketSettings {
            iface: live.iface.clone(),
            snaplen: live.snaplen,
            buffer_bytes: live.buffer_bytes,
            promisc: live.promisc,
            ..packet_socket::SocketSettings::default()
        };
        let socket =
            packet_socket::PacketSocket::open(&settings, filter).map_err(|error| match error {
                packet_socket::Error::Snaplen(_) => Error::Settings(error.to_string()),
                packet_socket::Error::Filter(message) => Error::Filter {
                    filter: filter.unwrap_or_default().to_string(),
                    message,
                },
                other => Error::Device {
                    iface: live.iface.clone(),
                    message: other.to_string(),
                },
            })?;
        let mut notes = Vec::new();
        if let packet_socket::FilterMode::UserSpace { reason } = socket.filter_mode() {
            notes.push(format!("filter in user space: {reason}"));
        }
        notes.extend(socket.notes().iter().cloned());
        Ok(Source {
            ready: true,
            poll_ms: u16::try_from(live.timeout_ms.clamp(1, 1000)).unwrap_or(50),
            read: 0,
            info: SourceInfo {
                interface: render::Interface {
                    index: socket.ifindex(),
                    name: live.iface.clone(),
                    addrs,
                },
                linktype: socket.linktype(),
                live: true,
                filter_mode: socket.filter_mode().as_str(),
                notes,
            },
            handle: Handle::Socket {
                socket,
                next: 0,
                count: 0,
            },
        })
    }

    fn open_live(live: &LiveSettings) -> Result<Self, Error> {
        let device_error = |error: pcap::Error| Error::Device {
            iface: live.iface.clone(),
            message: pcap_message(&error),
        };
        let (live, addrs) = Self::resolve_live(live)?;
        let live = &live;
        let capture = Capture::from_device(live.iface.as_str())
            .map_err(device_error)?
            .snaplen(i32::try_from(live.snaplen).unwrap_or(i32::MAX))
            .buffer_size(i32::try_from(live.buffer_bytes).unwrap_or(i32::MAX))
            .promisc(live.promisc)
            .immediate_mode(live.immediate)
            .timeout(live.timeout_ms.max(1))
            .precision(Precision::Nano)
            .open()
            .map_err(device_error)?
            // With TPACKET_V3 libpcap's own poll waits forever when no packet comes; non-
            // blocking reads plus our own bounded poll keep the loop responsive to stop
            // requests and let pending batches be flushed on time.
            .setnonblock()
            .map_err(device_error)?;
        let linktype = LinkType::from(capture.get_datalink().0);
        Ok(Source {
            ready: true,
            poll_ms: u16::try_from(live.timeout_ms.clamp(1, 1000)).unwrap_or(50),
            read: 0,
            handle: Handle::Live(capture),
            info: SourceInfo {
                interface: render::Interface {
                    index: if_index(&live.iface),
                    name: live.iface.clone(),
                    addrs,
                },
                linktype,
                live: true,
                filter_mode: "none",
                notes: Vec::new(),
            },
        })
    }

    fn open_file(path: &Path, label: &str) -> Result<Self, Error> {
        let read_error = |message: String| Error::Read {
            path: path.to_path_buf(),
            message,
        };
        let gzip = if path == Path::new("-") {
            false
        } else {
            let mut magic = [0u8; 2];
            let mut file = File::open(path).map_err(|e| read_error(e.to_string()))?;
            let n = read_up_to(&mut file, &mut magic).map_err(|e| read_error(e.to_string()))?;
            n == 2 && magic == GZIP_MAGIC
        };
        let (capture, inflater) = if gzip {
            let file = File::open(path).map_err(|e| read_error(e.to_string()))?;
            let (reader, writer) = nix::unistd::pipe().map_err(|e| read_error(e.to_string()))?;
            let inflater = std::thread::Builder::new()
                .name("gunzip".into())
                .spawn(move || {
                    let mut decoder = flate2::read::MultiGzDecoder::new(io::BufReader::new(file));
                    let mut pipe = File::from(writer);
                    io::copy(&mut decoder, &mut pipe)
                })
                .map_err(|e| read_error(e.to_string()))?;
            // libpcap opens the pipe by path, which gives it its own descriptor; ours is
            // closed right after so the end of the data is seen as end of file.
            let via = format!("/proc/self/fd/{}", reader.as_raw_fd());
            let capture = Capture::from_file_with_precision(&via, Precision::Nano);
            drop(reader);
            match capture {
                Ok(capture) => (capture, Some(inflater)),
                Err(error) => {
                    let inflated = inflater.join();
                    let message = match inflated {
                        Ok(Err(io)) if io.kind() != io::ErrorKind::BrokenPipe => {
                            format!("gzip: {io}")
                        }
                        _ => pcap_message(&error),
                    };
                    return Err(read_error(message));
                }
            }
        } else {
            let capture = Capture::from_file_with_precision(path, Precision::Nano)
                .map_err(|e| read_error(pcap_message(&e)))?;
            (capture, None)
        };
        let linktype = LinkType::from(capture.get_datalink().0);
        Ok(Source {
            ready: true,
            poll_ms: 0,
            read: 0,
            handle: Handle::File {
                capture,
                inflater,
                path: path.to_path_buf(),
            },
            info: SourceInfo {
                interface: render::Interface {
                    index: 0,
                    name: label.to_string(),
                    addrs: Vec::new(),
                },
                linktype,
                live: false,
                filter_mode: "none",
                notes: Vec::new(),
            },
        })
    }

    /// What translation needs to know.
    pub fn info(&self) -> &SourceInfo {
        &self.info
    }

    /// The next packet, [`Next::Idle`] after a live read timeout, or [`Next::End`].
    pub fn next_packet(&mut self) -> Result<Next<'_>, Error> {
        let result = match &mut self.handle {
            Handle::Live(capture) => {
                // Polled here, not in the match below, because the packet borrows the handle.
                if !self.ready {
                    wait_readable(capture.as_fd(), self.poll_ms);
                    self.ready = true;
                    return Ok(Next::Idle);
                }
                capture.next_packet()
            }
            Handle::File { capture, .. } => capture.next_packet(),
            Handle::Socket {
                socket,
                next,
                count,
            } => {
                // One read per call at most: a batch the filter rejects entirely returns
                // Idle, so the capture loop still sees stop requests and rotates files
                // under a flood of filtered-out traffic.
                let mut read = false;
                loop {
                    if *next < *count {
                        let index = *next;
                        *next += 1;
                        if socket.packet(index).is_none() {
                            continue;
                        }
                        return Ok(socket.packet(index).map_or(Next::Idle, |packet| {
                            let num = self.read;
                            self.read += 1;
                            Next::Packet(CapturedPacket {
                                num,
                                ts_sec: packet.ts_sec,
                                ts_nsec: packet.ts_nsec,
                                wire_len: packet.wire_len,
                                data: packet.data,
                            })
                        }));
                    }
                    if read {
                        return Ok(Next::Idle);
                    }
                    read = true;
                    *next = 0;
                    *count = socket.recv(self.poll_ms).map_err(|error| Error::Capture {
                        iface: self.info.interface.name.clone(),
                        message: error.to_string(),
                    })?;
                    if *count == 0 {
                        return Ok(Next::Idle);
                    }
                }
            }
        };
        if matches!(result, Err(pcap::Error::TimeoutExpired)) {
            self.ready = false;
        }
        match result {
            Ok(packet) => {
                let header = packet.header;
                // Opened with nanosecond precision: tv_usec holds nanoseconds.
                let num = self.read;
                self.read += 1;
                Ok(Next::Packet(CapturedPacket {
                    num,
                    ts_sec: header.ts.tv_sec,
                    ts_nsec: u32::try_from(header.ts.tv_usec)
                        .unwrap_or(0)
                        .min(999_999_999),
                    wire_len: header.len,
                    data: packet.data,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => Ok(Next::Idle),
            Err(pcap::Error::NoMorePackets) => Ok(Next::End),
            Err(error) => Err(Error::Capture {
                iface: self.info.interface.name.clone(),
                message: pcap_message(&error),
            }),
        }
    }

    /// Kernel statistics (live captures only).
    pub fn kernel_stats(&mut self) -> Option<KernelStats> {
        match &mut self.handle {
            Handle::Live(capture) => capture.stats().ok().map(|s| KernelStats {
                received: u64::from(s.received),
                dropped: u64::from(s.dropped),
                if_dropped: u64::from(s.if_dropped),
            }),
            Handle::Socket { socket, .. } => {
                socket.stats().map(|(received, dropped)| KernelStats {
                    received,
                    dropped,
                    if_dropped: 0,
                })
            }
            Handle::File { .. } => None,
        }
    }

    /// Closes the source; for a gzip file, reports a decompression error (a truncated or
    /// corrupt `.gz`) that libpcap would only have seen as an early end of file.
    pub fn close(self) -> Result<(), Error> {
        if let Handle::File {
            capture,
            inflater: Some(inflater),
            path,
        } = self.handle
        {
            drop(capture);
            match inflater.join() {
                Ok(Ok(_)) => {}
                // libpcap stopped reading first (e.g. shutdown): not an error of the file.
                Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Ok(Err(e)) => {
                    return Err(Error::Read {
                        path,
                        message: format!("gzip: {e}"),
                    })
                }
                Err(_) => {
                    return Err(Error::Read {
                        path,
                        message: "gzip reader failed".into(),
                    })
                }
            }
        }
        Ok(())
    }
}

/// Waits until `fd` is readable or `timeout_ms` passes (errors, e.g. EINTR, just return).
fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, timeout_ms: u16) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let _ = poll(&mut fds, PollTimeout::from(timeout_ms));
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The interface to open: `any`, an exact name, or — for `pcapd` run on its own with the
/// shared `PCAP_IFACE` prefix (e.g. the default `eth`) — the only interface whose name
/// starts with it (optionally after `ipvlan-`). Several matches are an error: `tcpdumpw`
/// runs one `pcapd` per interface.
fn resolve_iface(wanted: &str, devices: &[pcap::Device]) -> Result<String, Error> {
    if wanted == "any" || devices.iter().any(|d| d.name == wanted) {
        return Ok(wanted.to_string());
    }
    let matching: Vec<&str> = devices
        .iter()
        .map(|d| d.name.as_str())
        .filter(|name| {
            name.strip_prefix("ipvlan-")
                .unwrap_or(name)
                .starts_with(wanted)
        })
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).to_string()),
        [] => {
            let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
            Err(Error::Device {
                iface: wanted.to_string(),
                message: format!("no such interface; libpcap sees: {}", names.join(", ")),
            })
        }
        several => Err(Error::Device {
            iface: wanted.to_string(),
            message: format!(
                "the prefix matches several interfaces ({}): name one, or use 'any'",
                several.join(", ")
            ),
        }),
    }
}

/// libpcap's own message, without the crate's wrapping.
fn pcap_message(error: &pcap::Error) -> String {
    match error {
        pcap::Error::PcapError(message) => message.clone(),
        other => other.to_string(),
    }
}

/// The kernel's index of `iface` (0 when unknown, e.g. `any`).
fn if_index(iface: &str) -> u32 {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/ifindex"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

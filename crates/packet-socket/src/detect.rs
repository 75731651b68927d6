//! Which capture path to use: libpcap with packet rings, or ring-less `AF_PACKET` reads.

use std::io;
use std::os::fd::AsFd;

use serde::Serialize;

use crate::sys;

/// A capture path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CapturePath {
    /// libpcap with `TPACKET_V3` rings and kernel filters (tcpdump writes `.pcap` files).
    #[serde(rename = "ring")]
    Ring,
    /// `AF_PACKET` sockets read with `recvmmsg`, libpcap filters run in user space (pcapd
    /// writes `.pcap` files).
    #[serde(rename = "ring-less")]
    RingLess,
}

impl CapturePath {
    /// `ring` or `ring-less`.
    pub fn as_str(self) -> &'static str {
        match self {
            CapturePath::Ring => "ring",
            CapturePath::RingLess => "ring-less",
        }
    }
}

impl std::fmt::Display for CapturePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decision and its reasons, logged once at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detection {
    /// The path.
    pub path: CapturePath,
    /// Why, in one sentence.
    pub reason: String,
    /// Whether `PCAP_COMPAT=true` forced it.
    pub forced: bool,
    /// The probe's error (`setsockopt(PACKET_VERSION)` refused, or the socket not opened).
    pub probe_error: Option<String>,
    /// A sign of gVisor in `/proc/version`, if any (a hint only: the probe decides).
    pub gvisor_hint: Option<String>,
}

/// Probes for packet rings: opens an `AF_PACKET` socket and sets `PACKET_VERSION` to
/// `TPACKET_V3`, which libpcap needs before it can map a ring. `Ok` when the kernel accepts.
pub fn probe_rings() -> io::Result<()> {
    let fd = sys::packet_socket(libc::SOCK_RAW)?;
    sys::setsockopt_int(
        fd.as_fd(),
        sys::SOL_PACKET,
        sys::PACKET_VERSION,
        sys::TPACKET_V3,
    )
}

/// gVisor's `/proc/version` is a fixed, recognisable text (`Linux version 4.4.0 #1 SMP Sun
/// Jan 10 15:06:54 PST 2016`); `dmesg` is not readable there.
pub fn gvisor_hint() -> Option<String> {
    let version = std::fs::read_to_string("/proc/version").ok()?;
    let version = version.trim();
    let gvisor =
        version.contains("gVisor") || version.contains("#1 SMP Sun Jan 10 15:06:54 PST 2016");
    gvisor.then(|| format!("/proc/version looks like gVisor: {version}"))
}

/// Decides the capture path: `forced` (`PCAP_COMPAT=true`) takes the ring-less path without
/// probing; otherwise [`probe_rings`] decides. A refused option (`ENOPROTOOPT`, `EINVAL`,
/// `EPERM`, `EOPNOTSUPP` …) means no rings; a packet socket that cannot be opened at all
/// (no `CAP_NET_RAW`) keeps the ring path, whose libpcap error then says what is missing.
pub fn detect(forced: bool) -> Detection {
    let gvisor_hint = gvisor_hint();
    if forced {
        return Detection {
            path: CapturePath::RingLess,
            reason: "forced by PCAP_COMPAT=true".into(),
            forced,
            probe_error: None,
            gvisor_hint,
        };
    }
    let fd = match sys::packet_socket(libc::SOCK_RAW) {
        Ok(fd) => fd,
        Err(error) => {
            return Detection {
                path: CapturePath::Ring,
                reason: format!(
                    "cannot probe: no packet socket ({}); the ring path reports the capture error",
                    errno_text(&error)
                ),
                forced,
                probe_error: Some(errno_text(&error)),
                gvisor_hint,
            }
        }
    };
    match sys::setsockopt_int(
        fd.as_fd(),
        sys::SOL_PACKET,
        sys::PACKET_VERSION,
        sys::TPACKET_V3,
    ) {
        Ok(()) => Detection {
            path: CapturePath::Ring,
            reason: "packet rings available: setsockopt(PACKET_VERSION, TPACKET_V3) accepted"
                .into(),
            forced,
            probe_error: None,
            gvisor_hint,
        },
        Err(error) => Detection {
            path: CapturePath::RingLess,
            reason: format!(
                "probe failed: setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3) refused with {}",
                errno_text(&error)
            ),
            forced,
            probe_error: Some(errno_text(&error)),
            gvisor_hint,
        },
    }
}

/// `ENOPROTOOPT (Protocol not available)`.
pub(crate) fn errno_text(error: &io::Error) -> String {
    let name = match error.raw_os_error() {
        Some(libc::ENOPROTOOPT) => "ENOPROTOOPT",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::EPERM) => "EPERM",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP",
        Some(libc::EAFNOSUPPORT) => "EAFNOSUPPORT",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::EBUSY) => "EBUSY",
        _ => return error.to_string(),
    };
    let text = error.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    format!("{name} ({text})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forced_takes_the_ring_less_path_without_probing() {
        let d = detect(true);
        assert_eq!(d.path, CapturePath::RingLess);
        assert!(d.forced && d.reason.contains("PCAP_COMPAT=true"), "{d:?}");
        assert_eq!(d.probe_error, None);
    }

    #[test]
    fn errno_names() {
        let e = io::Error::from_raw_os_error(libc::ENOPROTOOPT);
        assert_eq!(errno_text(&e), "ENOPROTOOPT (Protocol not available)");
        assert_eq!(
            serde_json_like(CapturePath::RingLess),
            "ring-less".to_string()
        );
    }

    fn serde_json_like(path: CapturePath) -> String {
        path.to_string()
    }
}

//! An accept error is not the end of the probe.
//!
//! Before the fix `accept_pending` returned `EMFILE` as an error and `run` ended the probe
//! with it; pcap-init gave the probe up after 5 quick failures and the startup probe failed
//! while capture was fine. This binary holds one test only: it exhausts its own file
//! descriptors, which would disturb other tests running in the same process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// getrlimit/setrlimit/poll through libc: nix is built here without its `resource` and
// `poll` features.
#![allow(unsafe_code)]

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use nix::libc;

#[test]
fn issue_14_descriptors_exhausted_the_probe_keeps_the_connection_queued_and_carries_on() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    // The kernel completes the handshake; wait until the connection is queued.
    let queued = std::time::Instant::now();
    while !ready_to_accept(&listener) {
        assert!(queued.elapsed().as_secs() < 10, "connection never queued");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    // Use up every descriptor below a lowered limit: accept(2) now fails with EMFILE.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    let saved = limit;
    let null = std::fs::File::open("/dev/null").unwrap();
    let lowered = libc::rlimit {
        rlim_cur: (null.as_raw_fd() as u64 + 64).min(saved.rlim_cur),
        rlim_max: saved.rlim_max,
    };
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
    let mut hogs = Vec::new();
    while let Ok(fd) = null.try_clone() {
        hogs.push(fd);
    }
    let (accepted, error) = hc_probe::accept_pending(&listener);
    let errno = error.as_ref().and_then(|e| e.raw_os_error());
    // Give the descriptors back before asserting, so a failure can still be reported.
    drop(hogs);
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &saved) }, 0);
    assert_eq!(accepted, 0);
    assert_eq!(errno, Some(libc::EMFILE), "{error:?}");

    // The probe is still there, and the queued connection is accepted once it can be.
    let (accepted, error) = hc_probe::accept_pending(&listener);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(accepted, 1);
}

fn ready_to_accept(listener: &TcpListener) -> bool {
    let mut poll = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    unsafe { libc::poll(&mut poll, 1, 0) == 1 }
}

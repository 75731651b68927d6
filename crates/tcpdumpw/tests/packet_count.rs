//! `PCAP_PACKET_COUNT` under tcpdumpw, on the libpcap path (tcpdump gets `-c`, pcapd stops
//! itself) and on the ring-less path (pcapd alone, under the seccomp filter reproducing
//! gVisor's limits), with real traffic in a network namespace: each output holds exactly N
//! packets, the run ends when every child has its N, nothing is restarted, and tcpdumpw
//! stays up (and ready) until SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::Sidecar;
use testbed::TestNet;

fn packet_count_under_tcpdumpw(gvisor: bool) {
    let net = TestNet::new(if gvisor { "tdw-count-rl" } else { "tdw-count" }).unwrap();
    let mut sidecar = Sidecar::start_with_path(
        net.app(),
        &[
            ("PCAP_IFACE", "eth"),
            ("PCAP_JSON", "true"),
            ("PCAP_ROTATE_SECS", "0"),
            ("PCAP_FILTER", "icmp"),
            ("PCAP_PACKET_COUNT", "6"),
        ],
        gvisor,
    );
    sidecar.wait_ready();
    net.peer().ping("198.51.100.1", 10).unwrap();
    sidecar.wait_log(
        "capture run 1 complete: every interface captured PCAP_PACKET_COUNT=6",
        1,
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        sidecar.child.try_wait().unwrap().is_none(),
        "tcpdumpw stays up"
    );
    assert!(sidecar.is_ready(), "and ready");
    let status = sidecar.terminate();
    assert!(status.success(), "{status:?}\n{}", sidecar.log_text());
    let text = sidecar.log_text();
    assert!(!text.contains("restarting"), "nothing restarted:\n{text}");
    let pcaps = sidecar.files("pcap");
    assert_eq!(pcaps.len(), 1, "{pcaps:?}\n{text}");
    assert_eq!(
        testbed::tshark::count(&pcaps[0]).unwrap(),
        6,
        "{:?}",
        pcaps[0]
    );
    let jsons = sidecar.files("json");
    let packets: usize = jsons
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
        .sum();
    assert_eq!(packets, 6, "{jsons:?}");
}

#[test]
fn packet_count_on_the_libpcap_path() {
    packet_count_under_tcpdumpw(false);
}

#[test]
fn packet_count_on_the_ring_less_path() {
    packet_count_under_tcpdumpw(true);
}

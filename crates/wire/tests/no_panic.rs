#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The no-panic guarantee over the `pnet_packet` views: every view that `new_checked` accepts
//! answers every getter, on every cut of real packets and on those packets with any header
//! byte set to values that make length fields lie (header lengths past the buffer, below the
//! minimum, zero; option lengths 0 and 255). `pnet_packet`'s own option and payload accessors
//! index by those fields as sent, so a getter that reached them unchecked panics here.

use std::hint::black_box;

use wire::{arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, pcapfile, sll, sll2, tcp, udp};

/// Builds every view over `b` and calls every getter (results are kept alive with
/// `black_box` so nothing is optimised away).
fn exercise(b: &[u8]) {
    if let Ok(f) = ethernet::Frame::new_checked(b) {
        black_box((f.dst(), f.src(), f.ethertype(), f.ethertype_raw(), f.tags()));
        black_box((f.vlan_ids().count(), f.header_len(), f.payload()));
    }
    if let Ok(p) = sll::Packet::new_checked(b) {
        black_box((p.packet_type(), p.hardware_type(), p.addr(), p.protocol()));
        black_box((p.protocol_raw(), p.payload()));
    }
    if let Ok(p) = sll2::Packet::new_checked(b) {
        black_box((
            p.protocol(),
            p.protocol_raw(),
            p.ifindex(),
            p.hardware_type(),
        ));
        black_box((p.packet_type(), p.addr(), p.payload()));
    }
    if let Ok(p) = arp::Packet::new_checked(b) {
        black_box((p.hardware_type(), p.protocol_type(), p.operation()));
        black_box((p.operation_raw(), p.sender_hw(), p.sender_proto()));
        black_box((
            p.target_hw(),
            p.target_proto(),
            p.sender_ip(),
            p.target_ip(),
        ));
    }
    if let Ok(p) = ipv4::Packet::new_checked(b) {
        black_box((p.version(), p.ihl(), p.header_len(), p.tos(), p.total_len()));
        black_box((p.effective_len(), p.ident(), p.evil(), p.dont_frag()));
        black_box((p.more_frags(), p.frag_offset(), p.is_fragment(), p.ttl()));
        black_box((
            p.protocol(),
            p.checksum(),
            p.src(),
            p.dst(),
            p.options_raw(),
        ));
        black_box((p.options().count(), p.is_truncated(), p.payload()));
    }
    if let Ok(p) = ipv6::Packet::new_checked(b) {
        black_box((
            p.version(),
            p.traffic_class(),
            p.flow_label(),
            p.payload_len(),
        ));
        black_box((p.next_header(), p.hop_limit(), p.src(), p.dst()));
        black_box((p.effective_len(), p.extensions().count(), p.fragment()));
        black_box((p.chain_error(), p.protocol(), p.is_truncated(), p.payload()));
    }
    if let Ok(p) = tcp::Packet::new_checked(b) {
        black_box((
            p.src_port(),
            p.dst_port(),
            p.seq(),
            p.ack(),
            p.data_offset(),
        ));
        black_box((
            p.header_len(),
            p.flags(),
            p.window(),
            p.checksum(),
            p.urgent(),
        ));
        black_box((p.options_raw(), p.payload()));
        for o in p.options().flatten() {
            black_box((o.name(), o.sack_blocks().count()));
        }
    }
    if let Ok(p) = udp::Packet::new_checked(b) {
        black_box((p.src_port(), p.dst_port(), p.len(), p.checksum()));
        black_box((p.is_truncated(), p.payload()));
    }
    if let Ok(p) = icmpv4::Packet::new_checked(b) {
        black_box((
            p.msg_type(),
            p.code(),
            p.checksum(),
            p.has_id_seq(),
            p.ident(),
        ));
        black_box((
            p.seq(),
            p.gateway(),
            p.pointer(),
            p.next_hop_mtu(),
            p.is_error(),
        ));
        black_box((p.payload(), p.type_code().to_string()));
    }
    if let Ok(p) = icmpv6::Packet::new_checked(b) {
        black_box((p.msg_type(), p.code(), p.checksum(), p.is_echo(), p.ident()));
        black_box((p.seq(), p.mtu(), p.is_error(), p.payload(), p.nd_target()));
        black_box((p.redirect_dst(), p.na_flags(), p.ra_fields()));
        black_box(p.type_code().to_string());
        for o in p.nd_options().flatten() {
            black_box((o.name(), o.link_addr()));
        }
    }
}

/// Every packet of the Ethernet and Linux cooked v1/v2 captures in testdata.
fn packets() -> Vec<Vec<u8>> {
    let files: [&[u8]; 3] = [
        include_bytes!("../testdata/veth.pcap"),
        include_bytes!("../testdata/any-sll.pcap"),
        include_bytes!("../testdata/any-sll2.pcap"),
    ];
    files
        .into_iter()
        .flat_map(|file| pcapfile::File::new(file).unwrap().records())
        .map(|r| r.unwrap().data.to_vec())
        .collect()
}

/// Where each layer can start in those packets: the link header, IPv4/ARP/IPv6 after
/// Ethernet, SLL and SLL2, after a VLAN tag, TCP/UDP/ICMP after IPv4 on each, after IPv6.
const LAYER_STARTS: [usize; 10] = [0, 14, 16, 18, 20, 34, 36, 40, 54, 62];

/// Values that break length and type fields: zero, tiny, IHL/data offset 5 and 15, version 4/6
/// with odd lengths, the VLAN/extension-header types, all bits.
const LIES: [u8; 12] = [
    0x00, 0x01, 0x02, 0x05, 0x0f, 0x3a, 0x45, 0x4f, 0x60, 0x81, 0xf0, 0xff,
];

#[test]
fn every_view_at_every_offset_of_every_cut() {
    let mut views = 0usize;
    for p in packets() {
        for cut in 0..=p.len() {
            let b = &p[..cut];
            for at in 0..=b.len() {
                exercise(&b[at..]);
                views += 1;
            }
        }
    }
    assert!(views > 100_000, "the capture was read ({views} slices)");
}

#[test]
fn every_header_byte_set_to_lying_values() {
    let mut accepted = 0usize;
    for p in packets() {
        for pos in 0..p.len().min(120) {
            for v in LIES {
                let mut m = p.clone();
                m[pos] = v;
                for at in LAYER_STARTS {
                    if let Some(b) = m.get(at..) {
                        exercise(b);
                        // The same with the tail cut, where lengths now point past the end.
                        exercise(&b[..b.len() / 2]);
                        accepted += usize::from(tcp::Packet::new_checked(b).is_ok());
                    }
                }
            }
        }
    }
    assert!(
        accepted > 1000,
        "mutated TCP headers were decoded ({accepted})"
    );
}

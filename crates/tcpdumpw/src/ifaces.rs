//! Which network interfaces get a capture, and why.
//!
//! The rule is the original's, minus its loopback bug: with `PCAP_IFACE=p`, an interface is
//! captured when its name is `p` followed by a digit (`eth0`, `eth1.100`), optionally after
//! `ipvlan-` (`ipvlan-eth0`); `p` is a literal prefix, not a regex. `PCAP_IFACE=any` captures
//! through the `any` pseudo-device alone. Loopback is captured only with `PCAP_LOOPBACK=true`.
//! Interfaces that are down are skipped until they come up (tcpdump cannot open them).
//!
//! [`scan`] lists the interfaces of the current network namespace; [`choose`] is the pure
//! decision, so the rule is unit-tested without namespaces.

use nix::ifaddrs::getifaddrs;
use nix::net::if_::{if_nametoindex, InterfaceFlags};
use serde::Serialize;

/// Name of libpcap's pseudo-device that captures on every interface.
pub const ANY: &str = "any";

/// One interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceInfo {
    /// Its name (`eth0`).
    pub name: String,
    /// Its index (0 for the `any` pseudo-device).
    pub index: u32,
    /// Administratively up.
    pub up: bool,
    /// A loopback interface.
    pub loopback: bool,
}

/// The decision about one interface, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub index: u32,
    /// Whether it gets a capture.
    pub selected: bool,
    /// Why (or why not).
    pub reason: String,
}

/// Lists the interfaces of this process's network namespace, sorted by name.
pub fn scan() -> std::io::Result<Vec<IfaceInfo>> {
    let mut infos: Vec<IfaceInfo> = Vec::new();
    for entry in getifaddrs().map_err(std::io::Error::from)? {
        // getifaddrs gives one entry per address (plus the AF_PACKET one): keep the first.
        if infos.iter().any(|i| i.name == entry.interface_name) {
            continue;
        }
        // An interface that vanished in between has no index: it is simply not listed.
        let Ok(index) = if_nametoindex(entry.interface_name.as_str()) else {
            continue;
        };
        infos.push(IfaceInfo {
            index,
            up: entry.flags.contains(InterfaceFlags::IFF_UP),
            loopback: entry.flags.contains(InterfaceFlags::IFF_LOOPBACK),
            name: entry.interface_name,
        });
    }
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(infos)
}

/// Does `name` match the prefix rule (`p` + digit, optionally after `ipvlan-`)?
pub fn matches_prefix(prefix: &str, name: &str) -> bool {
    let digit_after = |text: &str| {
        text.strip_prefix(prefix)
            .is_some_and(|tail| tail.starts_with(|c: char| c.is_ascii_digit()))
    };
    digit_after(name) || name.strip_prefix("ipvlan-").is_some_and(digit_after)
}

/// Decides, for every interface, whether it is captured (`prefix` is `PCAP_IFACE`,
/// `loopback` is `PCAP_LOOPBACK`).
pub fn choose(prefix: &str, loopback: bool, interfaces: &[IfaceInfo]) -> Vec<Choice> {
    if prefix.eq_ignore_ascii_case(ANY) {
        return vec![Choice {
            name: ANY.to_string(),
            index: 0,
            selected: true,
            reason: "PCAP_IFACE=any: the pseudo-device captures every interface, loopback included"
                .to_string(),
        }];
    }
    interfaces
        .iter()
        .map(|iface| {
            let (selected, reason) = if iface.loopback {
                if !loopback {
                    (false, "loopback, and PCAP_LOOPBACK=false".to_string())
                } else if iface.up {
                    (true, "loopback, and PCAP_LOOPBACK=true".to_string())
                } else {
                    (false, "loopback, but down".to_string())
                }
            } else if matches_prefix(prefix, &iface.name) {
                if iface.up {
                    (
                        true,
                        format!("matches PCAP_IFACE={prefix} followed by a digit"),
                    )
                } else {
                    (
                        false,
                        format!("matches PCAP_IFACE={prefix} but is down (captured once up)"),
                    )
                }
            } else {
                (
                    false,
                    format!("does not match PCAP_IFACE={prefix} followed by a digit"),
                )
            };
            Choice {
                name: iface.name.clone(),
                index: iface.index,
                selected,
                reason,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, up: bool, loopback: bool) -> IfaceInfo {
        IfaceInfo {
            name: name.to_string(),
            index: 1,
            up,
            loopback,
        }
    }

    fn selected(choices: &[Choice]) -> Vec<&str> {
        choices
            .iter()
            .filter(|c| c.selected)
            .map(|c| c.name.as_str())
            .collect()
    }

    #[test]
    fn prefix_must_be_followed_by_a_digit() {
        for name in ["eth0", "eth12", "eth0.100", "ipvlan-eth0", "ipvlan-eth3"] {
            assert!(matches_prefix("eth", name), "{name}");
        }
        for name in [
            "eth",
            "ethx",
            "veth0",
            "lo",
            "ipvlan-eth",
            "xipvlan-eth0",
            "ens4",
        ] {
            assert!(!matches_prefix("eth", name), "{name}");
        }
        // A literal prefix: regex characters mean nothing.
        assert!(!matches_prefix("e.h", "eth0"));
        assert!(matches_prefix("ens", "ens4"));
    }

    #[test]
    fn loopback_only_when_asked_and_down_interfaces_wait() {
        let all = [
            iface("docker0", true, false),
            iface("eth0", true, false),
            iface("eth1", false, false),
            iface("lo", true, true),
        ];
        let without = choose("eth", false, &all);
        assert_eq!(selected(&without), vec!["eth0"]);
        let reasons: Vec<&str> = without.iter().map(|c| c.reason.as_str()).collect();
        assert!(reasons[0].contains("does not match"), "{reasons:?}");
        assert!(reasons[2].contains("down"), "{reasons:?}");
        assert!(reasons[3].contains("PCAP_LOOPBACK=false"), "{reasons:?}");
        let with = choose("eth", true, &all);
        assert_eq!(selected(&with), vec!["eth0", "lo"]);
    }

    #[test]
    fn any_is_the_pseudo_device_alone() {
        let all = [iface("eth0", true, false), iface("lo", true, true)];
        for prefix in ["any", "ANY"] {
            let choices = choose(prefix, false, &all);
            assert_eq!(selected(&choices), vec!["any"]);
            assert_eq!(choices.len(), 1);
        }
    }

    #[test]
    fn scan_lists_loopback_of_this_namespace() {
        let interfaces = scan().unwrap();
        let lo = interfaces.iter().find(|i| i.loopback);
        assert!(lo.is_some_and(|lo| lo.index > 0), "{interfaces:?}");
    }
}

//! `PCAP_TRIGGER`: what makes the flight recorder persist the window around an event.
//!
//! A comma-separated list of items, each `kind` or `kind:argument`, parsed strictly (an
//! unknown or malformed item stops start-up and names the item):
//!
//! | item | fires on |
//! |---|---|
//! | `http:5xx`, `http:4xx`, … | an HTTP/1.1 or HTTP/2 response whose status is in the class |
//! | `http:503` | an HTTP response with exactly this status (100..=599) |
//! | `grpc:!0` | a gRPC status other than 0 (OK) |
//! | `grpc:14` | a gRPC status equal to the code (0..=16) |
//! | `latency:>2s` | an HTTP response later than this after its request (`ms` or `s`) |
//! | `tcp:rst-after-data` | a TCP reset on a connection that carried payload |
//! | `tcp:syn-timeout` | a SYN sent again: no SYN-ACK within the connect's first timeout |
//! | `tcp:rst-burst[:N/Ss]` | N TCP resets within S seconds (default 10/5s), any connections |
//! | `tcp:retransmission-burst[:N/Ss]` | N retransmissions within S seconds (default 20/5s) |
//! | `tcp:zero-window-burst[:N/Ss]` | N zero-window segments within S seconds (default 10/5s) |
//! | `dns:servfail`, `dns:nxdomain` | a DNS response with that rcode |
//! | `icmp:unreachable` | an ICMP (v4 or v6) destination unreachable |
//! | `manual` | the signal (SIGUSR2) or the loopback endpoint only |

use std::fmt;
use std::time::Duration;

/// One trigger of `PCAP_TRIGGER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An HTTP response status in `[low, high]` (a class is `x00..=x99`).
    HttpStatus {
        /// Lowest matching status.
        low: u16,
        /// Highest matching status.
        high: u16,
    },
    /// A gRPC status: `None` matches every non-zero status.
    Grpc(Option<u32>),
    /// An HTTP exchange slower than this.
    Latency(Duration),
    /// A TCP RST on a connection that carried payload.
    TcpRstAfterData,
    /// A retransmitted SYN: the connect got no SYN-ACK within its first timeout.
    SynTimeout,
    /// `count` events of `kind` within `within` (packet time), over all connections.
    Burst {
        /// What is counted.
        kind: BurstKind,
        /// How many.
        count: u32,
        /// Within how long.
        within: Duration,
    },
    /// A DNS response with this rcode (2 SERVFAIL, 3 NXDOMAIN).
    DnsRcode(u8),
    /// ICMP/ICMPv6 destination unreachable.
    IcmpUnreachable,
    /// Only the manual trigger (signal or loopback endpoint).
    Manual,
}

/// The accepted form, as shown in errors and the README.
pub const ACCEPTED: &str = "a comma list of http:5xx|http:<code>, grpc:!0|grpc:<code>, latency:>NNms|>Ns, tcp:rst-after-data, tcp:syn-timeout, tcp:rst-burst|retransmission-burst|zero-window-burst[:N/Ss], dns:servfail|dns:nxdomain, icmp:unreachable, manual";

impl Trigger {
    /// A short name for file names and log lines (`[a-z0-9]` only).
    pub fn kind(&self) -> String {
        match self {
            Trigger::HttpStatus { low, high } if low == high => format!("http{low}"),
            Trigger::HttpStatus { low, .. } => format!("http{}xx", low / 100),
            Trigger::Grpc(None) => "grpc".into(),
            Trigger::Grpc(Some(code)) => format!("grpc{code}"),
            Trigger::Latency(_) => "latency".into(),
            Trigger::TcpRstAfterData => "tcprst".into(),
            Trigger::SynTimeout => "syntimeout".into(),
            Trigger::Burst { kind, .. } => format!("{}burst", kind.short()),
            Trigger::DnsRcode(2) => "servfail".into(),
            Trigger::DnsRcode(3) => "nxdomain".into(),
            Trigger::DnsRcode(n) => format!("dns{n}"),
            Trigger::IcmpUnreachable => "unreachable".into(),
            Trigger::Manual => "manual".into(),
        }
    }

    fn parse(item: &str) -> Result<Trigger, String> {
        let lower = item.to_ascii_lowercase();
        let (kind, arg) = match lower.split_once(':') {
            Some((k, a)) => (k.trim(), Some(a.trim())),
            None => (lower.trim(), None),
        };
        let bad = |why: &str| format!("item {item:?}: {why}");
        match (kind, arg) {
            ("manual", None) => Ok(Trigger::Manual),
            ("http", Some(a)) => {
                if let Some(class) = a.strip_suffix("xx") {
                    match class.parse::<u16>() {
                        Ok(c @ 1..=5) if class.len() == 1 => Ok(Trigger::HttpStatus {
                            low: c * 100,
                            high: c * 100 + 99,
                        }),
                        _ => Err(bad("the status class must be 1xx..5xx")),
                    }
                } else {
                    match a.parse::<u16>() {
                        Ok(code @ 100..=599) if a.len() == 3 => Ok(Trigger::HttpStatus {
                            low: code,
                            high: code,
                        }),
                        _ => Err(bad("expected a status class (5xx) or a code 100..=599")),
                    }
                }
            }
            ("grpc", Some("!0")) => Ok(Trigger::Grpc(None)),
            ("grpc", Some(a)) => match a.parse::<u32>() {
                Ok(code @ 1..=16) if !a.starts_with('+') => Ok(Trigger::Grpc(Some(code))),
                _ => Err(bad("expected !0 or a gRPC status code 1..=16")),
            },
            ("latency", Some(a)) => {
                let a = a
                    .strip_prefix('>')
                    .ok_or_else(|| bad("expected >N ms or >N s, e.g. latency:>2s"))?;
                let (number, unit_ms) = if let Some(n) = a.strip_suffix("ms") {
                    (n, 1)
                } else if let Some(n) = a.strip_suffix('s') {
                    (n, 1000)
                } else {
                    return Err(bad("the threshold needs a unit: ms or s"));
                };
                match number.parse::<u64>() {
                    Ok(n) if n > 0 && !number.starts_with('+') && n * unit_ms <= 3_600_000 => {
                        Ok(Trigger::Latency(Duration::from_millis(n * unit_ms)))
                    }
                    _ => Err(bad("the threshold must be a whole number, 1 ms..=3600 s")),
                }
            }
            ("tcp", Some("rst-after-data")) => Ok(Trigger::TcpRstAfterData),
            ("tcp", Some("syn-timeout")) => Ok(Trigger::SynTimeout),
            ("tcp", Some(a)) if BurstKind::parse(a).is_some() => {
                let (name, spec) = a.split_once(':').unwrap_or((a, ""));
                let kind = BurstKind::parse(name).ok_or_else(|| bad("unknown condition"))?;
                if spec.is_empty() {
                    let (count, secs) = kind.default();
                    return Ok(Trigger::Burst {
                        kind,
                        count,
                        within: Duration::from_secs(secs),
                    });
                }
                let parsed = spec.split_once('/').and_then(|(n, s)| {
                    let n = n
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (2..=100_000).contains(n))?;
                    let s = s.strip_suffix('s')?.parse::<u64>().ok()?;
                    (1..=3_600).contains(&s).then_some((n, s))
                });
                match parsed {
                    Some((count, secs)) if !spec.contains('+') => Ok(Trigger::Burst {
                        kind,
                        count,
                        within: Duration::from_secs(secs),
                    }),
                    _ => Err(bad(
                        "a burst is N/Ss: 2..=100000 events within 1..=3600 s, e.g. 20/10s",
                    )),
                }
            }
            ("dns", Some("servfail")) => Ok(Trigger::DnsRcode(2)),
            ("dns", Some("nxdomain")) => Ok(Trigger::DnsRcode(3)),
            ("icmp", Some("unreachable")) => Ok(Trigger::IcmpUnreachable),
            ("tcp" | "dns" | "icmp", Some(_)) => Err(bad("unknown condition")),
            ("http" | "grpc" | "latency", None) => Err(bad("missing the condition after ':'")),
            ("manual", Some(_)) => Err(bad("manual takes no condition")),
            _ => Err(bad("unknown trigger kind")),
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::HttpStatus { low, high } if low == high => write!(f, "http:{low}"),
            Trigger::HttpStatus { low, .. } => write!(f, "http:{}xx", low / 100),
            Trigger::Grpc(None) => f.write_str("grpc:!0"),
            Trigger::Grpc(Some(code)) => write!(f, "grpc:{code}"),
            Trigger::Latency(d) => write!(f, "latency:>{}ms", d.as_millis()),
            Trigger::TcpRstAfterData => f.write_str("tcp:rst-after-data"),
            Trigger::SynTimeout => f.write_str("tcp:syn-timeout"),
            Trigger::Burst {
                kind,
                count,
                within,
            } => write!(f, "tcp:{}:{count}/{}s", kind.name(), within.as_secs()),
            Trigger::DnsRcode(2) => f.write_str("dns:servfail"),
            Trigger::DnsRcode(3) => f.write_str("dns:nxdomain"),
            Trigger::DnsRcode(n) => write!(f, "dns:{n}"),
            Trigger::IcmpUnreachable => f.write_str("icmp:unreachable"),
            Trigger::Manual => f.write_str("manual"),
        }
    }
}

/// What a burst trigger counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BurstKind {
    /// TCP resets.
    Rst,
    /// TCP retransmissions.
    Retransmission,
    /// Zero-window segments.
    ZeroWindow,
}

impl BurstKind {
    fn parse(text: &str) -> Option<BurstKind> {
        match text.split(':').next()? {
            "rst-burst" => Some(BurstKind::Rst),
            "retransmission-burst" => Some(BurstKind::Retransmission),
            "zero-window-burst" => Some(BurstKind::ZeroWindow),
            _ => None,
        }
    }

    /// The item's spelling (`rst-burst`).
    pub fn name(self) -> &'static str {
        match self {
            BurstKind::Rst => "rst-burst",
            BurstKind::Retransmission => "retransmission-burst",
            BurstKind::ZeroWindow => "zero-window-burst",
        }
    }

    fn short(self) -> &'static str {
        match self {
            BurstKind::Rst => "rst",
            BurstKind::Retransmission => "retrans",
            BurstKind::ZeroWindow => "zerowindow",
        }
    }

    /// Count and seconds when the item gives none.
    fn default(self) -> (u32, u64) {
        match self {
            BurstKind::Rst | BurstKind::ZeroWindow => (10, 5),
            BurstKind::Retransmission => (20, 5),
        }
    }
}

/// Parses `PCAP_TRIGGER`: every item must be valid; duplicates are dropped.
pub fn parse_triggers(raw: &str) -> Result<Vec<Trigger>, String> {
    let mut triggers = Vec::new();
    for item in raw.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err("empty item in the list".into());
        }
        let trigger = Trigger::parse(item)?;
        if !triggers.contains(&trigger) {
            triggers.push(trigger);
        }
    }
    Ok(triggers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_item() {
        let t = parse_triggers(
            " http:5xx, HTTP:429 ,grpc:!0,grpc:14,latency:>2s,latency:>250ms,tcp:rst-after-data,tcp:syn-timeout,tcp:rst-burst,tcp:retransmission-burst:50/10s,dns:servfail,dns:nxdomain,icmp:unreachable,manual",
        )
        .unwrap();
        assert_eq!(
            t,
            vec![
                Trigger::HttpStatus {
                    low: 500,
                    high: 599
                },
                Trigger::HttpStatus {
                    low: 429,
                    high: 429
                },
                Trigger::Grpc(None),
                Trigger::Grpc(Some(14)),
                Trigger::Latency(Duration::from_secs(2)),
                Trigger::Latency(Duration::from_millis(250)),
                Trigger::TcpRstAfterData,
                Trigger::SynTimeout,
                Trigger::Burst {
                    kind: BurstKind::Rst,
                    count: 10,
                    within: Duration::from_secs(5)
                },
                Trigger::Burst {
                    kind: BurstKind::Retransmission,
                    count: 50,
                    within: Duration::from_secs(10)
                },
                Trigger::DnsRcode(2),
                Trigger::DnsRcode(3),
                Trigger::IcmpUnreachable,
                Trigger::Manual,
            ]
        );
        let kinds: Vec<String> = t.iter().map(Trigger::kind).collect();
        assert!(kinds.iter().all(|k| k
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())));
        for trigger in &t {
            assert_eq!(
                parse_triggers(&trigger.to_string()).unwrap(),
                vec![*trigger]
            );
        }
    }

    #[test]
    fn a_bad_item_is_named() {
        for (raw, item) in [
            ("http:5xx,http:6xx", "http:6xx"),
            ("http:50", "http:50"),
            ("http", "http"),
            ("grpc:0", "grpc:0"),
            ("grpc:17", "grpc:17"),
            ("latency:2s", "latency:2s"),
            ("latency:>2", "latency:>2"),
            ("latency:>0ms", "latency:>0ms"),
            ("tcp:rst", "tcp:rst"),
            ("tcp:rst-burst:1/5s", "tcp:rst-burst:1/5s"),
            ("tcp:rst-burst:10/0s", "tcp:rst-burst:10/0s"),
            ("tcp:zero-window-burst:10", "tcp:zero-window-burst:10"),
            ("dns:refused", "dns:refused"),
            ("manual:now", "manual:now"),
            ("http:5xx,disk-full", "disk-full"),
        ] {
            let error = parse_triggers(raw).unwrap_err();
            assert!(error.contains(&format!("{item:?}")), "{raw}: {error}");
        }
        assert!(parse_triggers("http:5xx,,manual").is_err());
    }
}

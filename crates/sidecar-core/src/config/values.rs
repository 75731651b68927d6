//! Typed values of configuration variables and their strict, friendly parsers.
//!
//! Parsers take an already trimmed, non-empty string and return either the value or a short
//! description of what was wrong; [`super::Config`] adds the variable's name and accepted form.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Serialize;

/// A list variable that may also say "no restriction" (`ALL` / `ANY`, and `DISABLED` where the
/// original README uses it for the same meaning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection<T> {
    /// No restriction from this variable.
    All,
    /// Only these items (never empty, in the order given, duplicates removed).
    Only(Vec<T>),
}

impl<T> Selection<T> {
    /// The items, or `None` for [`Selection::All`].
    pub fn items(&self) -> Option<&[T]> {
        match self {
            Selection::All => None,
            Selection::Only(items) => Some(items),
        }
    }
}

impl<T: fmt::Display> fmt::Display for Selection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selection::All => f.write_str("ALL"),
            Selection::Only(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
        }
    }
}

/// Is `value` one of the given sentinels (case-insensitive)?
pub fn is_sentinel(value: &str, sentinels: &[&str]) -> bool {
    sentinels.iter().any(|s| value.eq_ignore_ascii_case(s))
}

/// Parses a comma-separated list: items trimmed, empty items skipped, each parsed by `item`,
/// duplicates dropped (first one wins). Sentinels give [`Selection::All`]; mixing a sentinel
/// with items is an error (it would be ambiguous).
pub fn parse_selection<T: PartialEq>(
    value: &str,
    sentinels: &[&str],
    item: impl Fn(&str) -> Result<T, String>,
) -> Result<Selection<T>, String> {
    let tokens: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.is_empty() {
        return Err("no items".into());
    }
    if tokens.iter().all(|t| is_sentinel(t, sentinels)) {
        return Ok(Selection::All);
    }
    let mut items = Vec::with_capacity(tokens.len());
    for token in tokens {
        if is_sentinel(token, sentinels) {
            return Err(format!("'{token}' cannot be combined with other items"));
        }
        let parsed = item(token)?;
        if !items.contains(&parsed) {
            items.push(parsed);
        }
    }
    Ok(Selection::Only(items))
}

/// `true/false/1/0/yes/no`, any case.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err("not a boolean".into()),
    }
}

/// An unsigned integer within `min..=max`.
pub fn parse_u64_in(value: &str, min: u64, max: u64) -> Result<u64, String> {
    let number: u64 = value
        .parse()
        .map_err(|_| "not a whole number".to_string())?;
    if number < min || number > max {
        return Err(format!("{number} is outside {min}..={max}"));
    }
    Ok(number)
}

/// Network-layer protocols of `PCAP_L3_PROTOS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum L3Proto {
    /// IPv4 (`ip`).
    Ipv4,
    /// IPv6 (`ip6`).
    Ipv6,
    /// ARP (`arp`).
    Arp,
}

impl FromStr for L3Proto {
    type Err = String;
    fn from_str(token: &str) -> Result<Self, String> {
        match token.to_ascii_lowercase().as_str() {
            "ip" | "ip4" | "ipv4" | "4" | "0x04" | "0x0800" => Ok(L3Proto::Ipv4),
            "ip6" | "ipv6" | "41" | "0x29" | "0x86dd" => Ok(L3Proto::Ipv6),
            "arp" | "0x0806" => Ok(L3Proto::Arp),
            _ => Err(format!("unknown network protocol '{token}'")),
        }
    }
}

impl fmt::Display for L3Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            L3Proto::Ipv4 => "ipv4",
            L3Proto::Ipv6 => "ipv6",
            L3Proto::Arp => "arp",
        })
    }
}

/// Transport-layer protocols of `PCAP_L4_PROTOS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum L4Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP for IPv4.
    Icmp,
    /// ICMPv6.
    Icmp6,
}

impl FromStr for L4Proto {
    type Err = String;
    fn from_str(token: &str) -> Result<Self, String> {
        match token.to_ascii_lowercase().as_str() {
            "tcp" | "6" | "0x06" => Ok(L4Proto::Tcp),
            "udp" | "17" | "0x11" => Ok(L4Proto::Udp),
            "icmp" | "icmp4" | "icmpv4" | "1" | "0x01" => Ok(L4Proto::Icmp),
            "icmp6" | "icmpv6" | "58" | "0x3a" => Ok(L4Proto::Icmp6),
            _ => Err(format!("unknown transport protocol '{token}'")),
        }
    }
}

impl fmt::Display for L4Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            L4Proto::Tcp => "tcp",
            L4Proto::Udp => "udp",
            L4Proto::Icmp => "icmp",
            L4Proto::Icmp6 => "icmp6",
        })
    }
}

/// TCP flags of `PCAP_TCP_FLAGS`; a segment matches when it has any of the listed flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TcpFlag {
    /// FIN.
    Fin,
    /// SYN.
    Syn,
    /// RST.
    Rst,
    /// PSH (libpcap calls it `tcp-push`).
    Psh,
    /// ACK.
    Ack,
    /// URG.
    Urg,
    /// ECE.
    Ece,
    /// CWR.
    Cwr,
}

impl TcpFlag {
    /// The flag's bit in the TCP header's flags byte.
    pub fn bit(self) -> u8 {
        match self {
            TcpFlag::Fin => 0x01,
            TcpFlag::Syn => 0x02,
            TcpFlag::Rst => 0x04,
            TcpFlag::Psh => 0x08,
            TcpFlag::Ack => 0x10,
            TcpFlag::Urg => 0x20,
            TcpFlag::Ece => 0x40,
            TcpFlag::Cwr => 0x80,
        }
    }
}

impl FromStr for TcpFlag {
    type Err = String;
    fn from_str(token: &str) -> Result<Self, String> {
        match token.to_ascii_lowercase().as_str() {
            "fin" => Ok(TcpFlag::Fin),
            "syn" => Ok(TcpFlag::Syn),
            "rst" => Ok(TcpFlag::Rst),
            "psh" | "push" => Ok(TcpFlag::Psh),
            "ack" => Ok(TcpFlag::Ack),
            "urg" => Ok(TcpFlag::Urg),
            "ece" => Ok(TcpFlag::Ece),
            "cwr" => Ok(TcpFlag::Cwr),
            _ => Err(format!("unknown TCP flag '{token}'")),
        }
    }
}

impl fmt::Display for TcpFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpFlag::Fin => "fin",
            TcpFlag::Syn => "syn",
            TcpFlag::Rst => "rst",
            TcpFlag::Psh => "psh",
            TcpFlag::Ack => "ack",
            TcpFlag::Urg => "urg",
            TcpFlag::Ece => "ece",
            TcpFlag::Cwr => "cwr",
        })
    }
}

/// Well-known service names accepted in `PCAP_PORTS`, resolved here so the filter never
/// depends on the image's `/etc/services`.
pub const SERVICE_PORTS: &[(&str, u16)] = &[
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("dns", 53),
    ("domain", 53),
    ("http", 80),
    ("pop3", 110),
    ("ntp", 123),
    ("imap", 143),
    ("snmp", 161),
    ("ldap", 389),
    ("https", 443),
    ("smtps", 465),
    ("submission", 587),
    ("ldaps", 636),
    ("imaps", 993),
    ("pop3s", 995),
    ("mysql", 3306),
    ("postgres", 5432),
    ("postgresql", 5432),
    ("redis", 6379),
    ("http-alt", 8080),
];

/// A port or an inclusive port range of `PCAP_PORTS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    /// First port.
    pub start: u16,
    /// Last port (equal to `start` for a single port).
    pub end: u16,
}

impl PortRange {
    /// Is this a single port?
    pub fn is_single(&self) -> bool {
        self.start == self.end
    }
}

fn parse_port(token: &str) -> Result<u16, String> {
    if let Some((_, port)) = SERVICE_PORTS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(token))
    {
        return Ok(*port);
    }
    match token.parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        Ok(port) => Err(format!("port {port} is outside 1..=65535")),
        Err(_) => Err(format!(
            "'{token}' is not a port number or known service name"
        )),
    }
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(token: &str) -> Result<Self, String> {
        let (start, end) = match token.split_once('-') {
            Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => {
                (parse_port(a.trim())?, parse_port(b.trim())?)
            }
            Some(_) => return Err(format!("'{token}' is not a port range like 8000-8080")),
            None => {
                let port = parse_port(token)?;
                (port, port)
            }
        };
        if start > end {
            return Err(format!("range '{token}' ends before it starts"));
        }
        Ok(PortRange { start, end })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// Address family of an [`IpNet`], used to keep `PCAP_IPV4` and `PCAP_IPV6` honest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// An address or a network in CIDR notation; host bits must be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    /// The network address (host bits zero).
    pub addr: IpAddr,
    /// Prefix length; 32 or 128 for a single address.
    pub prefix: u8,
}

impl IpNet {
    /// Is this a single host address?
    pub fn is_host(&self) -> bool {
        self.prefix == self.max_prefix()
    }

    fn max_prefix(&self) -> u8 {
        if self.addr.is_ipv4() {
            32
        } else {
            128
        }
    }

    /// Parses `addr` or `addr/prefix` of the given family.
    pub fn parse(token: &str, family: Family) -> Result<Self, String> {
        let (addr_text, prefix_text) = match token.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (token, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| format!("'{addr_text}' is not an IP address"))?;
        match (family, addr) {
            (Family::V4, IpAddr::V6(_)) => {
                return Err(format!("'{token}' is IPv6; put it in PCAP_IPV6"))
            }
            (Family::V6, IpAddr::V4(_)) => {
                return Err(format!("'{token}' is IPv4; put it in PCAP_IPV4"))
            }
            _ => {}
        }
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("'{p}' is not a prefix length 0..={max}")),
            },
        };
        let net = IpNet { addr, prefix };
        let masked = net.network();
        if masked != addr {
            return Err(format!(
                "'{token}' has host bits set; the network is {masked}/{prefix}"
            ));
        }
        Ok(net)
    }

    /// The address with every host bit cleared.
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// A DNS name (RFC 1123 labels; a trailing dot is allowed and dropped).
pub fn parse_hostname(token: &str) -> Result<String, String> {
    let name = token.strip_suffix('.').unwrap_or(token);
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
        return Err(format!("'{token}' is not a host name"));
    }
    Ok(name.to_ascii_lowercase())
}

/// A Cloud Storage bucket name (the naming rules of GCS, without the `gs://` scheme).
pub fn parse_bucket(value: &str) -> Result<String, String> {
    if value.starts_with("gs://") {
        return Err("give the bucket name without 'gs://'".into());
    }
    let max = if value.contains('.') { 222 } else { 63 };
    let ok_chars = value.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
    });
    let ends_ok = value
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && value
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if value.len() < 3 || value.len() > max || !ok_chars || !ends_ok {
        return Err("not a valid bucket name".into());
    }
    Ok(value.to_string())
}

/// An object-name prefix: `/`-separated segments, none empty, `.` or `..`, no control
/// characters. Leading and trailing slashes are dropped.
pub fn parse_object_prefix(value: &str) -> Result<String, String> {
    let trimmed = value.trim_matches('/');
    if trimmed.is_empty() {
        return Err("empty prefix".into());
    }
    for segment in trimmed.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!("bad path segment '{segment}'"));
        }
        if segment.chars().any(|c| c.is_control() || c == '\\') {
            return Err(format!("segment '{segment}' has a forbidden character"));
        }
    }
    Ok(trimmed.to_string())
}

/// An HTTP header name (RFC 9110 token characters), lowercased.
pub fn parse_header_name(token: &str) -> Result<String, String> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if token.bytes().all(tchar) {
        Ok(token.to_ascii_lowercase())
    } else {
        Err(format!("'{token}' is not an HTTP header name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_accept_the_documented_spellings() {
        for yes in ["true", "TRUE", "True", "1", "yes", "YES"] {
            assert_eq!(parse_bool(yes), Ok(true), "{yes}");
        }
        for no in ["false", "FALSE", "0", "no", "No"] {
            assert_eq!(parse_bool(no), Ok(false), "{no}");
        }
        for bad in ["t", "on", "2", "yes please"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selection_trims_dedups_and_rejects_mixed_sentinels() {
        let parsed = parse_selection(" tcp , udp,,TCP ", &["ALL", "ANY"], L4Proto::from_str);
        assert_eq!(
            parsed,
            Ok(Selection::Only(vec![L4Proto::Tcp, L4Proto::Udp]))
        );
        assert_eq!(
            parse_selection("any", &["ALL", "ANY"], L4Proto::from_str),
            Ok(Selection::All)
        );
        assert!(parse_selection("tcp,ALL", &["ALL", "ANY"], L4Proto::from_str).is_err());
        assert!(parse_selection(",,", &["ALL"], L4Proto::from_str).is_err());
    }

    #[test]
    fn ports_ranges_and_service_names() {
        assert_eq!("80".parse(), Ok(PortRange { start: 80, end: 80 }));
        assert_eq!(
            "https".parse(),
            Ok(PortRange {
                start: 443,
                end: 443
            })
        );
        assert_eq!(
            "8000-8080".parse(),
            Ok(PortRange {
                start: 8000,
                end: 8080
            })
        );
        for bad in ["0", "70000", "-1", "abc", "90-80", "80-", "1.5"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cidrs_reject_host_bits_and_wrong_family() {
        let net = IpNet::parse("10.1.0.0/16", Family::V4).unwrap();
        assert_eq!(net.to_string(), "10.1.0.0/16");
        assert!(IpNet::parse("10.0.0.5", Family::V4).unwrap().is_host());
        let err = IpNet::parse("10.0.0.1/8", Family::V4).unwrap_err();
        assert!(err.contains("10.0.0.0/8"), "{err}");
        assert!(IpNet::parse("::1", Family::V4).is_err());
        assert!(IpNet::parse("10.0.0.0/33", Family::V4).is_err());
        assert_eq!(
            IpNet::parse("2001:db8::/32", Family::V6)
                .unwrap()
                .to_string(),
            "2001:db8::/32"
        );
        assert!(IpNet::parse("2001:db8::1/32", Family::V6).is_err());
        assert!(IpNet::parse("0.0.0.0/0", Family::V4).is_ok());
    }

    #[test]
    fn names_buckets_prefixes_headers() {
        assert_eq!(
            parse_hostname("Metadata.Google.Internal."),
            Ok("metadata.google.internal".into())
        );
        assert!(parse_hostname("bad host").is_err());
        assert!(parse_hostname("-x.com").is_err());
        assert_eq!(parse_bucket("my-bucket_1"), Ok("my-bucket_1".into()));
        assert!(parse_bucket("gs://my-bucket").is_err());
        assert!(parse_bucket("My-Bucket").is_err());
        assert!(parse_bucket("ab").is_err());
        assert_eq!(parse_object_prefix("/a/b/"), Ok("a/b".into()));
        assert!(parse_object_prefix("a/../b").is_err());
        assert!(parse_object_prefix("a//b").is_err());
        assert_eq!(parse_header_name("X-Api-Key"), Ok("x-api-key".into()));
        assert!(parse_header_name("bad header").is_err());
    }

    #[test]
    fn tcp_flag_bits_are_the_header_bits() {
        let all: u8 = [
            TcpFlag::Fin,
            TcpFlag::Syn,
            TcpFlag::Rst,
            TcpFlag::Psh,
            TcpFlag::Ack,
            TcpFlag::Urg,
            TcpFlag::Ece,
            TcpFlag::Cwr,
        ]
        .iter()
        .fold(0, |acc, f| {
            assert_eq!(acc & f.bit(), 0, "bits are distinct");
            acc | f.bit()
        });
        assert_eq!(all, 0xff);
        assert_eq!("push".parse(), Ok(TcpFlag::Psh));
        assert!("tcp-foo".parse::<TcpFlag>().is_err());
    }
}

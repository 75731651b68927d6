//! The sidecar's own traffic, left out of the capture when `PCAP_EXCLUDE_SELF=true`.
//!
//! Exactly what is excluded:
//! - always: the metadata server's HTTP service, TCP port 80 of `169.254.169.254`
//!   (`tcp port 80 and host 169.254.169.254`: tokens, project and instance data). Not the whole
//!   address: the same address is the DNS resolver of Cloud Run and GCE, and the
//!   application's DNS lookups are worth capturing;
//! - the endpoints the caller passes ([`ExcludedEndpoint`]), each resolved to addresses:
//!   with a port, only TCP segments to or from those addresses with that port on either side
//!   (`tcp port P and (host A or …)`); without a port, all IP traffic to or from those
//!   addresses (`ip host A` / `ip6 host A`; the qualifier keeps ARP visible).
//!
//! [`self_endpoints`] lists what the daemons talk to: `GCE_METADATA_HOST` when set (default
//! port 80), and with `PCAP_GCS_BUCKET` the Cloud Storage API (`storage.googleapis.com:443`, or
//! `STORAGE_EMULATOR_HOST` when set). Limits: the application's own traffic with the
//! same endpoints is hidden too, and a name is excluded only through the addresses it
//! resolved to (re-resolved on refresh), so a connection to another address of the same
//! service stays visible.

use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;
use sidecar_core::config::values::parse_hostname;

use crate::resolve::{resolve_name, Resolver};
use crate::FilterError;
use crate::FilterSpec;

/// The metadata server's fixed address.
pub const METADATA_SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254));
/// The Cloud Storage JSON API host (also used by gcsfuse).
pub const STORAGE_API_HOST: &str = "storage.googleapis.com";

/// Something the sidecar talks to, to be left out of the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExcludedEndpoint {
    /// The variable that named it, for errors (`PCAP_EXCLUDE_SELF` for built-in endpoints).
    pub variable: &'static str,
    /// A host name or an address literal.
    pub host: String,
    /// `None`: all IP traffic with the host; `Some(p)`: TCP with port `p` on either side.
    pub port: Option<u16>,
    /// What it is, for the log line.
    pub purpose: &'static str,
}

impl ExcludedEndpoint {
    /// The metadata server's HTTP service at its fixed address (TCP port 80).
    pub fn metadata_server() -> Self {
        ExcludedEndpoint {
            variable: "PCAP_EXCLUDE_SELF",
            host: METADATA_SERVER.to_string(),
            port: Some(80),
            purpose: "metadata server",
        }
    }

    /// The Cloud Storage API, HTTPS only.
    pub fn cloud_storage() -> Self {
        ExcludedEndpoint {
            variable: "PCAP_EXCLUDE_SELF",
            host: STORAGE_API_HOST.to_string(),
            port: Some(443),
            purpose: "Cloud Storage uploads",
        }
    }

    /// Parses `host`, `host:port`, `[v6addr]:port`, a bare IPv6 address, or a URL
    /// (`http://host[:port][/path]`, whose scheme gives the default port). A value without a
    /// port gets `default_port`.
    pub fn parse(
        variable: &'static str,
        value: &str,
        default_port: Option<u16>,
        purpose: &'static str,
    ) -> Result<Self, FilterError> {
        let bad = |reason: &str| FilterError::BadEndpoint {
            variable,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = value.trim();
        let (rest, default_port) = if let Some(rest) = trimmed.strip_prefix("http://") {
            (rest, Some(80))
        } else if let Some(rest) = trimmed.strip_prefix("https://") {
            (rest, Some(443))
        } else if trimmed.contains("://") {
            return Err(bad("only http:// and https:// URLs are understood"));
        } else {
            (trimmed, default_port)
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port_text) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("unclosed '['"))?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(bad("junk after ']'")),
                },
            }
        } else if authority.parse::<IpAddr>().is_ok() {
            // A bare IPv6 address has colons but no port.
            (authority, None)
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port_text {
            None => default_port,
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port > 0 => Some(port),
                _ => return Err(bad("the port is not a number 1-65535")),
            },
        };
        let host = if let Ok(addr) = host.parse::<IpAddr>() {
            addr.to_string()
        } else {
            parse_hostname(host).map_err(|reason| bad(&reason))?
        };
        Ok(ExcludedEndpoint {
            variable,
            host,
            port,
            purpose,
        })
    }
}

/// The endpoints the daemons talk to besides `169.254.169.254` (which [`crate::plan`] always
/// excludes), read from the configuration and `env` (the process environment in production):
/// - `GCE_METADATA_HOST` when set (another metadata address or an emulator; default port 80);
/// - with `PCAP_GCS_BUCKET`: the Cloud Storage API on TCP 443, where both gcsfuse and the JSON
///   API upload; `STORAGE_EMULATOR_HOST` (a test setup) replaces it when set.
///
/// Empty when `PCAP_EXCLUDE_SELF=false`.
pub fn self_endpoints(
    spec: &FilterSpec,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ExcludedEndpoint>, FilterError> {
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let mut endpoints = Vec::new();
    if !spec.exclude_self {
        return Ok(endpoints);
    }
    if let Some(host) = set("GCE_METADATA_HOST") {
        endpoints.push(ExcludedEndpoint::parse(
            "GCE_METADATA_HOST",
            &host,
            Some(80),
            "metadata server",
        )?);
    }
    if spec.gcs_bucket.is_some() {
        match set("STORAGE_EMULATOR_HOST") {
            Some(emulator) => endpoints.push(ExcludedEndpoint::parse(
                "STORAGE_EMULATOR_HOST",
                &emulator,
                Some(80),
                "Cloud Storage uploads",
            )?),
            None => endpoints.push(ExcludedEndpoint::cloud_storage()),
        }
    }
    Ok(endpoints)
}

/// An excluded endpoint with the addresses it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excluded {
    /// What it is.
    pub purpose: &'static str,
    /// The host as given.
    pub host: String,
    /// `None`: every protocol and port; `Some(p)`: TCP port `p`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The addresses excluded (sorted).
    pub addrs: Vec<IpAddr>,
    /// Why the host has no addresses yet (its name did not resolve). Not fatal: capturing
    /// the sidecar's own traffic beats capturing nothing, and the periodic refresh retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<String>,
}

/// Resolves the endpoints (the metadata server first), merging duplicates.
pub(crate) fn resolve_endpoints(
    resolver: &dyn Resolver,
    extra: &[ExcludedEndpoint],
) -> Result<Vec<Excluded>, FilterError> {
    let mut out: Vec<Excluded> = Vec::new();
    for endpoint in std::iter::once(&ExcludedEndpoint::metadata_server()).chain(extra) {
        if out
            .iter()
            .any(|e| e.host == endpoint.host && e.port == endpoint.port)
        {
            continue;
        }
        let (addrs, unresolved) = match endpoint.host.parse::<IpAddr>() {
            Ok(addr) => (vec![addr], None),
            Err(_) => match resolve_name(resolver, endpoint.variable, &endpoint.host) {
                Ok(resolved) => (resolved.addrs, None),
                Err(error) => (Vec::new(), Some(error.to_string())),
            },
        };
        out.push(Excluded {
            purpose: endpoint.purpose,
            host: endpoint.host.clone(),
            port: endpoint.port,
            addrs,
            unresolved,
        });
    }
    Ok(out)
}

/// `not (…)` for the excluded endpoints, or `None` when there is nothing to exclude.
pub(crate) fn exclusion_text(excluded: &[Excluded]) -> Option<String> {
    // Addresses excluded on every port; a port-specific term for them would be redundant.
    let mut whole: Vec<IpAddr> = Vec::new();
    for e in excluded.iter().filter(|e| e.port.is_none()) {
        for addr in &e.addrs {
            if !whole.contains(addr) {
                whole.push(*addr);
            }
        }
    }
    let mut terms: Vec<String> = whole
        .iter()
        .map(|addr| match addr {
            IpAddr::V4(_) => format!("ip host {addr}"),
            IpAddr::V6(_) => format!("ip6 host {addr}"),
        })
        .collect();
    // One term per port, in order of first appearance, keeps the text short and stable.
    let mut ports: Vec<(u16, Vec<IpAddr>)> = Vec::new();
    for e in excluded {
        let Some(port) = e.port else { continue };
        let index = match ports.iter().position(|(p, _)| *p == port) {
            Some(index) => index,
            None => {
                ports.push((port, Vec::new()));
                ports.len() - 1
            }
        };
        let addrs = &mut ports[index].1;
        for addr in &e.addrs {
            if !whole.contains(addr) && !addrs.contains(addr) {
                addrs.push(*addr);
            }
        }
    }
    for (port, addrs) in ports.into_iter().filter(|(_, a)| !a.is_empty()) {
        let hosts: Vec<String> = addrs.iter().map(|a| format!("host {a}")).collect();
        if hosts.len() == 1 {
            terms.push(format!("tcp port {port} and {}", hosts.join("")));
        } else {
            terms.push(format!("tcp port {port} and ({})", hosts.join(" or ")));
        }
    }
    match terms.len() {
        0 => None,
        1 => Some(format!("not ({})", terms.join(""))),
        _ => {
            let terms: Vec<String> = terms
                .iter()
                .map(|t| {
                    if t.contains(" and ") {
                        format!("({t})")
                    } else {
                        t.clone()
                    }
                })
                .collect();
            Some(format!("not ({})", terms.join(" or ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(value: &str) -> Result<ExcludedEndpoint, FilterError> {
        ExcludedEndpoint::parse("GCE_METADATA_HOST", value, Some(80), "metadata server")
    }

    #[test]
    fn endpoints_parse_hosts_ports_and_urls() {
        let cases: &[(&str, &str, Option<u16>)] = &[
            (
                "metadata.google.internal",
                "metadata.google.internal",
                Some(80),
            ),
            ("127.0.0.1:8080", "127.0.0.1", Some(8080)),
            ("http://localhost:9023/storage/v1", "localhost", Some(9023)),
            (
                "https://Storage.Example.com/x",
                "storage.example.com",
                Some(443),
            ),
            ("[::1]:8080", "::1", Some(8080)),
            ("[2001:db8::1]", "2001:db8::1", Some(80)),
            ("2001:db8::1", "2001:db8::1", Some(80)),
        ];
        for (value, host, port) in cases {
            let e = endpoint(value).unwrap();
            assert_eq!((e.host.as_str(), e.port), (*host, *port), "{value}");
        }
        for bad in [
            "ftp://x",
            "host:0",
            "host:http",
            "[::1",
            "bad host",
            "[::1]x",
        ] {
            let err = endpoint(bad).unwrap_err();
            assert_eq!(err.variable(), "GCE_METADATA_HOST", "{bad}");
            assert_eq!(err.value(), bad);
        }
    }

    #[test]
    fn exclusion_groups_ports_and_skips_redundant_addresses() {
        let excluded = vec![
            Excluded {
                purpose: "metadata server",
                host: "169.254.169.254".into(),
                port: Some(80),
                addrs: vec![METADATA_SERVER],
                unresolved: None,
            },
            Excluded {
                purpose: "test",
                host: "2001:db8::9".into(),
                port: None,
                addrs: vec!["2001:db8::9".parse().unwrap()],
                unresolved: None,
            },
            Excluded {
                purpose: "Cloud Storage uploads",
                host: STORAGE_API_HOST.into(),
                port: Some(443),
                addrs: vec![
                    "142.250.1.1".parse().unwrap(),
                    "2a00:1450::1".parse().unwrap(),
                ],
                unresolved: None,
            },
            Excluded {
                purpose: "metadata server",
                host: "metadata.google.internal".into(),
                port: Some(80),
                addrs: vec![METADATA_SERVER],
                unresolved: None,
            },
        ];
        assert_eq!(
            exclusion_text(&excluded).unwrap(),
            "not (ip6 host 2001:db8::9 or (tcp port 80 and host 169.254.169.254) \
             or (tcp port 443 and (host 142.250.1.1 or host 2a00:1450::1)))"
        );
        assert_eq!(
            exclusion_text(&excluded[..1]).unwrap(),
            "not (tcp port 80 and host 169.254.169.254)"
        );
        assert_eq!(exclusion_text(&[]), None);
    }
}

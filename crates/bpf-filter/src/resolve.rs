//! Host names → addresses, through an injectable [`Resolver`] so tests do not depend on DNS.
//!
//! Results are sorted and deduplicated: resolvers rotate their answers, and a mere reordering
//! must neither change the filter text nor count as a change on refresh.

use std::io;
use std::net::{IpAddr, ToSocketAddrs};

use serde::Serialize;

use crate::FilterError;

/// Turns a host name into its addresses (A and AAAA).
pub trait Resolver {
    /// Every address of `name`; an empty list counts as "does not resolve".
    fn resolve(&self, name: &str) -> io::Result<Vec<IpAddr>>;
}

/// The system resolver (`getaddrinfo`: `/etc/hosts`, then DNS per `/etc/resolv.conf`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        // Port 0: only the addresses matter.
        Ok((name, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
    }
}

impl<F> Resolver for F
where
    F: Fn(&str) -> io::Result<Vec<IpAddr>>,
{
    fn resolve(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        self(name)
    }
}

/// One name and the addresses it resolved to (sorted, IPv4 first, no duplicates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedHost {
    /// The name as configured.
    pub name: String,
    /// Its addresses.
    pub addrs: Vec<IpAddr>,
}

/// Resolves `name`; no address at all is an error naming `variable`.
pub fn resolve_name(
    resolver: &dyn Resolver,
    variable: &'static str,
    name: &str,
) -> Result<ResolvedHost, FilterError> {
    let unresolved = |reason: String| FilterError::Unresolved {
        variable,
        name: name.to_string(),
        reason,
    };
    let mut addrs = resolver
        .resolve(name)
        .map_err(|e| unresolved(e.to_string()))?;
    if addrs.is_empty() {
        return Err(unresolved("no A or AAAA record".into()));
    }
    addrs.sort_unstable();
    addrs.dedup();
    Ok(ResolvedHost {
        name: name.to_string(),
        addrs,
    })
}

/// Resolves every name of `PCAP_HOSTS`, in the configured order.
pub fn resolve_hosts(
    resolver: &dyn Resolver,
    names: &[String],
) -> Result<Vec<ResolvedHost>, FilterError> {
    names
        .iter()
        .map(|name| resolve_name(resolver, "PCAP_HOSTS", name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_sorted_and_deduplicated() {
        let resolver = |_: &str| -> io::Result<Vec<IpAddr>> {
            Ok(vec![
                "2001:db8::1".parse().unwrap(),
                "10.0.0.2".parse().unwrap(),
                "10.0.0.1".parse().unwrap(),
                "10.0.0.2".parse().unwrap(),
            ])
        };
        let host = resolve_name(&resolver, "PCAP_HOSTS", "a.example").unwrap();
        let text: Vec<String> = host.addrs.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["10.0.0.1", "10.0.0.2", "2001:db8::1"]);
    }

    #[test]
    fn no_address_is_an_error_naming_the_variable_and_the_name() {
        let empty = |_: &str| -> io::Result<Vec<IpAddr>> { Ok(Vec::new()) };
        let err = resolve_name(&empty, "PCAP_HOSTS", "typo.example").unwrap_err();
        assert_eq!(err.variable(), "PCAP_HOSTS");
        assert_eq!(err.value(), "typo.example");
        let failing = |_: &str| -> io::Result<Vec<IpAddr>> {
            Err(io::Error::new(io::ErrorKind::NotFound, "NXDOMAIN"))
        };
        let err = resolve_hosts(&failing, &["x.example".into()]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("PCAP_HOSTS") && text.contains("x.example") && text.contains("NXDOMAIN"),
            "{text}"
        );
    }

    #[test]
    fn the_system_resolver_reads_literals_and_etc_hosts() {
        let host = resolve_name(&SystemResolver, "PCAP_HOSTS", "127.0.0.1").unwrap();
        assert_eq!(host.addrs, vec![IpAddr::from([127, 0, 0, 1])]);
        let local = resolve_name(&SystemResolver, "PCAP_HOSTS", "localhost").unwrap();
        assert!(local.addrs.iter().all(|a| a.is_loopback()), "{local:?}");
    }
}

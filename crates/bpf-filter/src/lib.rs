//! The capture's BPF filter: [`FilterSpec`] (the filter variables of the configuration) →
//! filter text → validated by libpcap.
//!
//! - `PCAP_FILTER` set: the text is `(<PCAP_FILTER>)` and the simple filters are ignored.
//! - Otherwise the simple filters (`PCAP_L3_PROTOS`, `PCAP_L4_PROTOS`, `PCAP_PORTS`,
//!   `PCAP_TCP_FLAGS`, `PCAP_IPV4`, `PCAP_IPV6`, `PCAP_HOSTS`) build it, see [`simple`] for the
//!   exact semantics; when none restricts anything the plan matches every packet.
//! - With `PCAP_EXCLUDE_SELF=true` (the default) the sidecar's own traffic is ANDed out with
//!   `not (…)`, see [`exclude`] for exactly what.
//!
//! [`build`] does all of it and compiles the result with libpcap for Ethernet and for the
//! Linux cooked header (`any`), so a bad filter stops start-up with libpcap's message and the
//! variables that produced it. [`FilterPlan::refresh`] re-resolves the host names periodically
//! and says whether the filter must change.
//!
//! ```text
//! defaults  →  (ip or ip6) and (tcp or udp) and not (tcp port 80 and host 169.254.169.254)
//! ```

mod compile;
mod error;
pub mod exclude;
pub mod resolve;
pub mod simple;

use std::fmt;

use serde::Serialize;
use sidecar_core::config::values::{IpNet, L3Proto, L4Proto, PortRange, Selection, TcpFlag};
use sidecar_core::config::Config;

pub use compile::{compile, validate, LinkType, VALIDATED_LINKTYPES};
pub use error::FilterError;
pub use exclude::{self_endpoints, Excluded, ExcludedEndpoint, METADATA_SERVER};
pub use pcap::BpfProgram;
pub use resolve::{ResolvedHost, Resolver, SystemResolver};

/// The configuration a capture filter is built from: the filter variables and nothing else.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterSpec {
    /// `PCAP_FILTER`; `None` when `DISABLED`.
    pub filter: Option<String>,
    /// `PCAP_L3_PROTOS`.
    pub l3_protos: Selection<L3Proto>,
    /// `PCAP_L4_PROTOS`.
    pub l4_protos: Selection<L4Proto>,
    /// `PCAP_IPV4`.
    pub ipv4: Selection<IpNet>,
    /// `PCAP_IPV6`.
    pub ipv6: Selection<IpNet>,
    /// `PCAP_HOSTS`, lowercased.
    pub hosts: Selection<String>,
    /// `PCAP_PORTS`.
    pub ports: Selection<PortRange>,
    /// `PCAP_TCP_FLAGS`.
    pub tcp_flags: Selection<TcpFlag>,
    /// `PCAP_EXCLUDE_SELF`: leave the sidecar's own traffic out.
    pub exclude_self: bool,
    /// `PCAP_GCS_BUCKET`: the API upload's traffic is the sidecar's own.
    pub gcs_bucket: Option<String>,
}

impl From<&Config> for FilterSpec {
    fn from(config: &Config) -> Self {
        FilterSpec {
            filter: config.filter.clone(),
            l3_protos: config.l3_protos.clone(),
            l4_protos: config.l4_protos.clone(),
            ipv4: config.ipv4.clone(),
            ipv6: config.ipv6.clone(),
            hosts: config.hosts.clone(),
            ports: config.ports.clone(),
            tcp_flags: config.tcp_flags.clone(),
            exclude_self: config.exclude_self,
            gcs_bucket: config.gcs_bucket.clone(),
        }
    }
}

/// Where the filter text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterSource {
    /// `PCAP_FILTER`.
    Custom,
    /// The simple filter variables.
    Simple,
    /// No variable restricts the capture: every packet (except the excluded self traffic).
    MatchAll,
}

impl fmt::Display for FilterSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FilterSource::Custom => "PCAP_FILTER",
            FilterSource::Simple => "simple filters",
            FilterSource::MatchAll => "match all",
        })
    }
}

/// The capture filter and how it was made. Serializes to the fields of the start-up log line
/// (`filter`, `source`, `variables`, `excluded`, `resolved_hosts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterPlan {
    /// The final filter for libpcap/tcpdump; empty means every packet.
    #[serde(rename = "filter")]
    pub text: String,
    /// Where it came from.
    pub source: FilterSource,
    /// The variables that shaped it, in group order (`PCAP_EXCLUDE_SELF` last when it did).
    pub variables: Vec<&'static str>,
    /// The excluded self traffic (empty when `PCAP_EXCLUDE_SELF=false`).
    pub excluded: Vec<Excluded>,
    /// `PCAP_HOSTS` names and their addresses (empty when `ALL` or with `PCAP_FILTER`).
    pub resolved_hosts: Vec<ResolvedHost>,
    /// `PCAP_FILTER` as given: [`validate`] compiles it on its own first, so text that only
    /// parses inside the wrapping (`tcp) or (udp`) cannot escape the exclusion.
    #[serde(skip)]
    pub custom: Option<String>,
}

impl FilterPlan {
    /// Re-resolves the host names (`PCAP_HOSTS` and excluded endpoints) and rebuilds the plan.
    /// `Ok(Some(plan))` (already validated) when an address set changed, `Ok(None)` when the
    /// current filter still holds. On error, keep capturing with the current filter: a
    /// resolver hiccup must not stop a running capture.
    pub fn refresh(
        &self,
        spec: &FilterSpec,
        extra_exclusions: &[ExcludedEndpoint],
        resolver: &dyn Resolver,
    ) -> Result<Option<FilterPlan>, FilterError> {
        let fresh = plan(spec, extra_exclusions, resolver)?;
        // Addresses are sorted per name, so equal sets compare equal whatever the DNS order.
        if fresh.resolved_hosts == self.resolved_hosts && fresh.excluded == self.excluded {
            return Ok(None);
        }
        validate(&fresh)?;
        Ok(Some(fresh))
    }

    /// Does this plan depend on DNS (so a periodic refresh is worth it)?
    pub fn has_names(&self) -> bool {
        !self.resolved_hosts.is_empty()
            || self
                .excluded
                .iter()
                .any(|e| e.host.parse::<std::net::IpAddr>().is_err())
    }
}

impl fmt::Display for FilterPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.text.is_empty() {
            f.write_str("<no filter: every packet>")?;
        } else {
            f.write_str(&self.text)?;
        }
        write!(f, " [{}", self.source)?;
        if !self.variables.is_empty() {
            write!(f, " from {}", self.variables.join(", "))?;
        }
        f.write_str("]")
    }
}

/// Builds the filter text for `spec` without asking libpcap (see [`build`]).
///
/// `extra_exclusions` are excluded in addition to the metadata server when
/// `spec.exclude_self` (see [`self_endpoints`]); they are ignored otherwise.
pub fn plan(
    spec: &FilterSpec,
    extra_exclusions: &[ExcludedEndpoint],
    resolver: &dyn Resolver,
) -> Result<FilterPlan, FilterError> {
    let (source, mut conjuncts, mut variables, resolved_hosts) = match &spec.filter {
        Some(custom) => (
            FilterSource::Custom,
            vec![format!("({custom})")],
            vec!["PCAP_FILTER"],
            Vec::new(),
        ),
        None => {
            let hosts = match spec.hosts.items() {
                Some(names) => resolve::resolve_hosts(resolver, names)?,
                None => Vec::new(),
            };
            let simple = simple::build(spec, &hosts)?;
            let source = if simple.conjuncts.is_empty() {
                FilterSource::MatchAll
            } else {
                FilterSource::Simple
            };
            (source, simple.conjuncts, simple.variables, hosts)
        }
    };
    let excluded = if spec.exclude_self {
        exclude::resolve_endpoints(resolver, extra_exclusions)?
    } else {
        Vec::new()
    };
    if let Some(text) = exclude::exclusion_text(&excluded) {
        conjuncts.push(text);
        variables.push("PCAP_EXCLUDE_SELF");
    }
    Ok(FilterPlan {
        text: conjuncts.join(" and "),
        source,
        variables,
        excluded,
        resolved_hosts,
        custom: spec.filter.clone(),
    })
}

/// Builds the filter for `spec` and checks that libpcap compiles it: [`plan`], then
/// [`validate`].
pub fn build(
    spec: &FilterSpec,
    extra_exclusions: &[ExcludedEndpoint],
    resolver: &dyn Resolver,
) -> Result<FilterPlan, FilterError> {
    let plan = plan(spec, extra_exclusions, resolver)?;
    validate(&plan)?;
    Ok(plan)
}

#[cfg(test)]
mod tests;

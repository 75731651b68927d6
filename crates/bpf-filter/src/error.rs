//! Why a capture filter could not be built: every error names the variable(s) behind it and
//! the offending value, so start-up can report one actionable line.

/// A capture filter that cannot be built or that libpcap rejects.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A host name did not resolve to any address. Failing is deliberate: a typo must not
    /// silently widen the capture (dropping the name) or empty it.
    #[error(
        "{variable}: host name '{name}' does not resolve: {reason}{}",
        unresolved_hint(variable)
    )]
    Unresolved {
        /// `PCAP_HOSTS`, or the variable that named an excluded endpoint.
        variable: &'static str,
        /// The name as configured.
        name: String,
        /// The resolver's message.
        reason: String,
    },
    /// An endpoint to exclude is not `host`, `host:port`, `[v6]:port` or a URL.
    #[error("{variable}={value:?} is not a host, host:port or URL: {reason}")]
    BadEndpoint {
        /// The variable that named the endpoint (e.g. `GCE_METADATA_HOST`).
        variable: &'static str,
        /// The value as given.
        value: String,
        /// What was wrong.
        reason: String,
    },
    /// Valid variables that together can never match a packet: start-up stops instead of
    /// capturing nothing.
    #[error("{variable}={value} can never match: {reason}")]
    Contradiction {
        /// The variable whose restriction cannot be met.
        variable: &'static str,
        /// Its value.
        value: String,
        /// Which other setting rules it out.
        reason: String,
    },
    /// libpcap refused the filter text.
    #[error("libpcap rejects the capture filter{}: {message} (filter: {filter})", built_from(.variables))]
    Rejected {
        /// The variables that produced the text (`PCAP_FILTER`, or the simple filters).
        variables: Vec<&'static str>,
        /// The text given to libpcap.
        filter: String,
        /// libpcap's own message.
        message: String,
    },
    /// libpcap could not even be asked (no memory for a handle).
    #[error("libpcap failed: {0}")]
    Libpcap(String),
}

fn unresolved_hint(variable: &str) -> &'static str {
    match variable {
        "PCAP_HOSTS" => "",
        _ => " (needed to exclude the sidecar's own traffic; PCAP_EXCLUDE_SELF=false captures it instead)",
    }
}

fn built_from(variables: &[&str]) -> String {
    if variables.is_empty() {
        String::new()
    } else {
        format!(" built from {}", variables.join(", "))
    }
}

impl FilterError {
    /// The variable(s) to name in a log line, comma-separated.
    pub fn variable(&self) -> String {
        match self {
            FilterError::Unresolved { variable, .. }
            | FilterError::BadEndpoint { variable, .. }
            | FilterError::Contradiction { variable, .. } => (*variable).to_string(),
            FilterError::Rejected { variables, .. } => variables.join(", "),
            FilterError::Libpcap(_) => String::new(),
        }
    }

    /// The offending value (a host name, an endpoint, a variable's value, the filter text).
    pub fn value(&self) -> &str {
        match self {
            FilterError::Unresolved { name, .. } => name,
            FilterError::BadEndpoint { value, .. } | FilterError::Contradiction { value, .. } => {
                value
            }
            FilterError::Rejected { filter, .. } => filter,
            FilterError::Libpcap(_) => "",
        }
    }

    /// Is this the user's configuration (exit code 2) rather than a runtime failure?
    pub fn is_config(&self) -> bool {
        !matches!(self, FilterError::Libpcap(_))
    }
}

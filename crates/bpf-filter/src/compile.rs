//! libpcap's verdict on a filter text: compiled with `pcap_compile` on a dead handle, for
//! every link type the capture can meet.

use std::sync::Mutex;

use pcap::{BpfProgram, Capture, Linktype};
pub use wire::LinkType;

use crate::{FilterError, FilterPlan, FilterSource};

/// Ethernet (`eth*` interfaces) and both Linux cooked headers of the `any` interface (v1 is
/// libpcap's default, v2 what `tcpdump -y LINUX_SLL2` asks for).
pub const VALIDATED_LINKTYPES: &[LinkType] =
    &[LinkType::Ethernet, LinkType::LinuxSll, LinkType::LinuxSll2];

/// Older libpcaps keep parser state in globals; one compilation at a time is cheap insurance.
static COMPILE_LOCK: Mutex<()> = Mutex::new(());

/// Compiles `filter` (optimized) for `linktype`. A rejection is [`FilterError::Rejected`]
/// with libpcap's message and no variables; [`validate`] names them.
pub fn compile(filter: &str, linktype: LinkType) -> Result<BpfProgram, FilterError> {
    let _guard = COMPILE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dead = Capture::dead(Linktype(linktype.number()))
        .map_err(|e| FilterError::Libpcap(e.to_string()))?;
    dead.compile(filter, true)
        .map_err(|e| FilterError::Rejected {
            variables: Vec::new(),
            filter: filter.to_string(),
            message: match e {
                pcap::Error::PcapError(message) => message,
                other => other.to_string(),
            },
        })
}

/// Checks that libpcap compiles the plan's filter for every link type of
/// [`VALIDATED_LINKTYPES`]. `PCAP_FILTER` is compiled on its own first so its errors name it
/// alone; a rejection of the final text names every variable that shaped it.
pub fn validate(plan: &FilterPlan) -> Result<(), FilterError> {
    let mut checks: Vec<(&str, Vec<&'static str>)> = Vec::new();
    if let (FilterSource::Custom, Some(custom)) = (plan.source, &plan.custom) {
        checks.push((custom, vec!["PCAP_FILTER"]));
    }
    checks.push((&plan.text, plan.variables.clone()));
    for (text, variables) in checks {
        for linktype in VALIDATED_LINKTYPES {
            if let Err(error) = compile(text, *linktype) {
                return Err(match error {
                    FilterError::Rejected {
                        filter, message, ..
                    } => FilterError::Rejected {
                        variables,
                        filter,
                        message,
                    },
                    other => other,
                });
            }
        }
    }
    Ok(())
}

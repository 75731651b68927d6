//! A standalone pcapd hosts the manual trigger's endpoint itself (see
//! `sidecar_core::manual_trigger`); under tcpdumpw, tcpdumpw hosts it for every interface.

use std::io;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sidecar_core::log::Severity;
pub use sidecar_core::manual_trigger::Endpoint;

use crate::recorder::{Fired, TriggerSink};
use crate::LogTarget;

struct Host {
    sink: Arc<TriggerSink>,
    logs: LogTarget,
}

impl sidecar_core::manual_trigger::Host for Host {
    fn trigger(&self, reason: &str) {
        self.sink.fire(Fired {
            kind: "manual".into(),
            detail: format!("reason={reason}"),
            at_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            trace: None,
            flow: None,
        });
    }

    fn log(
        &self,
        severity: Severity,
        message: &str,
        fields: &sidecar_core::manual_trigger::Fields,
    ) {
        self.logs.event(severity, message, fields);
    }
}

/// Starts the endpoint on `port`: each trigger fires this pcapd's recorder.
pub fn start(port: u16, sink: Arc<TriggerSink>, logs: LogTarget) -> io::Result<Endpoint> {
    sidecar_core::manual_trigger::start(port, Arc::new(Host { sink, logs }))
}

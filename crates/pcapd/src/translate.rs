//! The `render` crate as the pipeline's translator: one `render::Translator` per worker
//! (each holds the per-connection state of its shard), connections sharded by
//! `render::shard_key`.

use std::sync::Arc;

use pipeline::{PacketView, Translate, Translation};

use crate::recorder::TriggerSink;
use crate::{SourceInfo, TranslatorKind};

/// Translation by the `render` crate.
#[derive(Debug, Clone)]
pub struct RenderKind {
    settings: render::TranslatorSettings,
    /// One state budget and one set of cap counters for all workers.
    limits: Arc<render::Limits>,
    /// The flight recorder's triggers, evaluated on every translated packet.
    triggers: Option<Arc<TriggerSink>>,
}

impl RenderKind {
    /// Translators made with `settings`.
    pub fn new(settings: render::TranslatorSettings) -> Self {
        let limits = Arc::new(render::Limits::new(settings.state_bytes));
        RenderKind {
            settings,
            limits,
            triggers: None,
        }
    }

    /// Translators that also evaluate the flight recorder's triggers.
    pub fn with_triggers(mut self, triggers: Arc<TriggerSink>) -> Self {
        self.triggers = Some(triggers);
        self
    }
}

/// One worker's translator, bound to its source.
pub struct RenderTranslator {
    interface: render::Interface,
    linktype: i32,
    translator: render::Translator,
    triggers: Option<Arc<TriggerSink>>,
}

impl TranslatorKind for RenderKind {
    type Translator = RenderTranslator;

    fn shard_key(&self, linktype: i32, data: &[u8]) -> u64 {
        render::shard_key(linktype, data)
    }

    fn make(&self, source: &SourceInfo, _worker: usize) -> RenderTranslator {
        RenderTranslator {
            interface: render::Interface {
                index: source.interface.index,
                name: source.interface.name.clone(),
                addrs: source.interface.addrs.clone(),
            },
            linktype: source.linktype,
            translator: render::Translator::with_limits(
                self.settings.clone(),
                Arc::clone(&self.limits),
            ),
            triggers: self.triggers.clone(),
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.limits.snapshot()
    }
}

impl Translate for RenderTranslator {
    fn translate(&mut self, packet: &PacketView<'_>, out: &mut Vec<u8>) -> Translation {
        let captured = render::CapturedPacket {
            interface: &self.interface,
            linktype: self.linktype,
            timestamp: packet.timestamp,
            wire_len: packet.wire_len,
            num: packet.num,
            data: packet.data,
        };
        let errors_before = self.translator.counters().decode_errors;
        let outcome = self.translator.translate(&captured, out);
        if let Some(triggers) = &self.triggers {
            let at_ns =
                u64::try_from(packet.timestamp.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0);
            triggers.check(self.translator.notable(), at_ns);
        }
        // Severity ERROR also marks HTTP 5xx, so it does not mean a failed translation; a
        // decode error or a packet that produced no line does.
        if (outcome.bytes == 0 && !outcome.suppressed)
            || self.translator.counters().decode_errors > errors_before
        {
            Translation::Error
        } else {
            Translation::Ok
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.translator.finish(out);
    }
}

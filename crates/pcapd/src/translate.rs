//! The `render` crate as the pipeline's translator: one `render::Translator` per worker
//! (each holds the per-connection state of its shard); the capture thread shards
//! connections by `render::shard_key`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pipeline::{Factory, Packet, Translate, Translation};

use crate::recorder::TriggerSink;
use crate::SourceInfo;

/// Makes the workers' `render` translators for one source.
pub struct Translators {
    settings: render::TranslatorSettings,
    /// One state budget and one set of cap counters for all workers.
    limits: Arc<render::Limits>,
    /// The flight recorder's triggers, evaluated on every translated packet.
    triggers: Option<Arc<TriggerSink>>,
    interface: Arc<render::Interface>,
    linktype: i32,
}

impl Translators {
    /// Translators with `settings` for the packets of `source`; with `triggers`, they also
    /// evaluate the flight recorder's triggers.
    pub fn new(
        settings: render::TranslatorSettings,
        source: &SourceInfo,
        triggers: Option<Arc<TriggerSink>>,
    ) -> Self {
        let limits = Arc::new(render::Limits::new(settings.state_bytes));
        Translators {
            settings,
            limits,
            triggers,
            interface: Arc::new(render::Interface {
                index: source.interface.index,
                name: source.interface.name.clone(),
                addrs: source.interface.addrs.clone(),
            }),
            linktype: source.linktype,
        }
    }
}

/// One worker's translator, bound to its source.
pub struct RenderTranslator {
    interface: Arc<render::Interface>,
    linktype: i32,
    translator: render::Translator,
    triggers: Option<Arc<TriggerSink>>,
}

impl Factory for Translators {
    type Translator = RenderTranslator;

    fn make(&self, _worker: usize) -> RenderTranslator {
        RenderTranslator {
            interface: Arc::clone(&self.interface),
            linktype: self.linktype,
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
    fn translate(&mut self, packet: &Packet<'_>, out: &mut Vec<u8>) -> Translation {
        let timestamp =
            DateTime::<Utc>::from_timestamp(packet.ts_sec, packet.ts_nsec).unwrap_or_default();
        // The packet plus what `render` needs of its source (interface, link type).
        let captured = render::CapturedPacket {
            interface: &self.interface,
            linktype: self.linktype,
            timestamp,
            wire_len: packet.wire_len,
            num: packet.num,
            data: packet.data,
        };
        let outcome = self.translator.translate(&captured, out);
        if let Some(triggers) = &self.triggers {
            let at_ns = u64::try_from(timestamp.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0);
            triggers.check(self.translator.notable(), at_ns);
        }
        // Severity ERROR also marks HTTP 5xx, so it does not mean a failed translation; a
        // decode error or a packet that produced no line does.
        if (outcome.bytes == 0 && !outcome.suppressed) || outcome.decode_error {
            Translation::Error
        } else {
            Translation::Ok
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.translator.finish(out);
    }
}

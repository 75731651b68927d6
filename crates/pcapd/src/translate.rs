//! The `render` crate as the pipeline's translator: one `render::Translator` per worker
//! (each holds the per-connection state of its shard); the capture thread shards
//! connections by `render::shard_key`.

use std::sync::Arc;

use pipeline::{Factory, Translate, Translation};
use wire::CapturedPacket;

use crate::recorder::TriggerSink;
use crate::SourceInfo;

/// Makes the workers' `render` translators for one source.
pub struct Translators {
    settings: render::TranslatorSettings,
    /// One state budget and one set of cap counters for all workers.
    limits: Arc<render::Limits>,
    /// The flight recorder's triggers, evaluated on every translated packet.
    triggers: Option<Arc<TriggerSink>>,
    source: Arc<render::Source>,
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
            source: Arc::new(render::Source {
                interface: source.interface.clone(),
                linktype: source.linktype,
            }),
        }
    }
}

/// One worker's translator, bound to its source.
pub struct RenderTranslator {
    source: Arc<render::Source>,
    translator: render::Translator,
    triggers: Option<Arc<TriggerSink>>,
}

impl Factory for Translators {
    type Translator = RenderTranslator;

    fn make(&self, _worker: usize) -> RenderTranslator {
        RenderTranslator {
            source: Arc::clone(&self.source),
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
    fn translate(&mut self, packet: &CapturedPacket<'_>, out: &mut Vec<u8>) -> Translation {
        let outcome = self.translator.translate(&self.source, packet, out);
        if let Some(triggers) = &self.triggers {
            triggers.check(self.translator.notable(), packet.timestamp_ns());
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

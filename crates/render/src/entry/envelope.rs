//! The entry's envelope: `pcap`, `timestamp`, `meta`, `iface`, `error`, and Cloud Logging's
//! labels and operation.

use analyze::flow::FlowKind;
use analyze::DecodeError;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::{Disp, Entry};
use crate::fast;
use crate::fields as f;
use crate::TranslatorSettings;

pub(super) struct Pcap<'a> {
    pub(super) e: &'a Entry<'a>,
    pub(super) debug: bool,
}

impl Serialize for Pcap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if self.debug {
            m.serialize_entry(f::ID, &self.e.cached.run_id)?;
            m.serialize_entry(f::CTX, &self.e.cached.log_name)?;
        }
        m.serialize_entry(f::NUM, &fast::dec(self.e.packet.num))?;
        m.serialize_entry(f::DATE, &fast::rfc3339(&self.e.timestamp))?;
        m.end()
    }
}

pub(super) struct Timestamp {
    pub(super) seconds: i64,
    pub(super) nanos: u32,
}

f::serialize_with_keys!([] Timestamp {
    seconds: f::SECONDS,
    nanos: f::NANOS,
});

pub(super) struct Meta<'a> {
    pub(super) e: &'a Entry<'a>,
    pub(super) debug: bool,
    pub(super) trunc: bool,
}

impl Serialize for Meta<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::TRUNC, &self.trunc)?;
        m.serialize_entry(f::LEN, &self.e.packet.wire_len)?;
        m.serialize_entry(f::CAP_LEN, &self.e.packet.data.len())?;
        if self.debug {
            m.serialize_entry(f::LINKTYPE, &self.e.source.linktype.number())?;
        }
        m.end()
    }
}

pub(super) struct Iface<'a>(pub(super) &'a crate::Interface);

impl Serialize for Iface<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::INDEX, &self.0.index)?;
        m.serialize_entry(f::NAME, &self.0.name)?;
        if !self.0.addrs.is_empty() {
            m.serialize_entry(f::ADDRS, &Addrs(&self.0.addrs))?;
        }
        m.end()
    }
}

struct Addrs<'a>(&'a [std::net::IpAddr]);

impl Serialize for Addrs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(Disp))
    }
}

pub(super) struct ErrorJson<'a>(pub(super) &'a DecodeError);

impl Serialize for ErrorJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry(f::LAYER, self.0.layer.name())?;
        m.serialize_entry(f::KIND, self.0.kind.as_str())?;
        m.serialize_entry(f::OFFSET, &self.0.offset)?;
        m.end()
    }
}

pub(super) struct Labels<'a> {
    pub(super) settings: &'a TranslatorSettings,
    pub(super) iface: &'a str,
    pub(super) debug: bool,
}

impl Serialize for Labels<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.settings;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::LABEL_SIDECAR, cloud_logging::SIDECAR_LABEL)?;
        m.serialize_entry(f::LABEL_MODULE, f::MODULE)?;
        if self.debug {
            m.serialize_entry(f::LABEL_TOOL, f::TOOL)?;
            m.serialize_entry(f::LABEL_IFACE, self.iface)?;
            m.serialize_entry(f::LABEL_ID, &st.run_id)?;
            m.serialize_entry(f::LABEL_NAME, &st.log_name)?;
        }
        m.end()
    }
}

/// The first 8 characters of a run id's last part (`pcapd/<uuid>` → the uuid's first 8).
fn short_run(run_id: &str) -> &str {
    let last = run_id.rsplit('/').next().unwrap_or(run_id);
    let mut end = last.len().min(8);
    while !last.is_char_boundary(end) {
        end -= 1;
    }
    last.get(..end).unwrap_or(last)
}

pub(super) struct Operation<'a> {
    pub(super) e: &'a Entry<'a>,
    pub(super) id: u64,
    pub(super) kind: FlowKind,
    pub(super) debug: bool,
}

impl Serialize for Operation<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.e.settings;
        let mut m = s.serialize_map(None)?;
        if self.debug {
            m.serialize_entry(
                f::ID,
                &Disp(format_args!(
                    "{}/iface/{}/flow/{}:{}",
                    st.run_id,
                    self.e.source.interface.name,
                    self.kind.name(),
                    self.id
                )),
            )?;
        } else {
            // INFO: the run's first 8 characters are enough to tell runs apart.
            m.serialize_entry(
                f::ID,
                &Disp(format_args!(
                    "{}/{}/{}:{}",
                    short_run(&st.run_id),
                    self.e.source.interface.name,
                    self.kind.name(),
                    self.id
                )),
            )?;
        }
        if self.debug {
            m.serialize_entry(f::PRODUCER, &self.e.cached.log_name)?;
        }
        if self.e.flow.first {
            m.serialize_entry(f::FIRST, &true)?;
        }
        if self.e.flow.last {
            m.serialize_entry(f::LAST, &true)?;
        }
        m.end()
    }
}

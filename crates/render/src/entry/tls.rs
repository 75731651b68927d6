//! `TLS`: records and hellos.

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use wire::tls;

use super::{Disp, Lossy};
use crate::fields as f;

/// TLS records listed per packet.
const MAX_TLS_RECORDS: usize = 16;

pub(super) struct TlsJson<'a> {
    pub(super) p: &'a [u8],
    pub(super) debug: bool,
}

impl TlsJson<'_> {
    fn hello(&self) -> Option<tls::Hello<'_>> {
        tls::records(self.p)
            .take(MAX_TLS_RECORDS)
            .find_map(|r| r.handshake().and_then(|h| h.hello()))
    }

    pub(super) fn has_hello(&self) -> bool {
        self.hello().is_some()
    }
}

impl Serialize for TlsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if self.debug {
            for (key, ct) in [
                (f::HANDSHAKE, tls::ContentType::Handshake),
                (f::CHANGE_CIPHER_SPEC, tls::ContentType::ChangeCipherSpec),
                (f::ALERT, tls::ContentType::Alert),
                (f::APP_DATA, tls::ContentType::ApplicationData),
                (f::HEARTBEAT, tls::ContentType::Heartbeat),
            ] {
                if tls::records(self.p)
                    .take(MAX_TLS_RECORDS)
                    .any(|r| r.content_type() == ct)
                {
                    m.serialize_entry(key, &TlsRecords(self.p, ct))?;
                }
            }
        }
        if let Some(h) = self.hello() {
            let key = if h.client {
                f::CLIENT_HELLO
            } else {
                f::SERVER_HELLO
            };
            m.serialize_entry(key, &HelloJson(h, self.debug))?;
        }
        m.end()
    }
}

struct TlsRecords<'a>(&'a [u8], tls::ContentType);

impl Serialize for TlsRecords<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for r in tls::records(self.0)
            .take(MAX_TLS_RECORDS)
            .filter(|r| r.content_type() == self.1)
        {
            seq.serialize_element(&TlsRecord(r))?;
        }
        seq.end()
    }
}

struct TlsRecord<'a>(tls::Record<'a>);

impl Serialize for TlsRecord<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::VERSION, tls::version_name(r.version()))?;
        m.serialize_entry(f::CONTENT_TYPE, r.content_type().name())?;
        m.serialize_entry(f::LENGTH, &r.length())?;
        if let Some(h) = r.handshake() {
            m.serialize_entry(f::MESSAGE, tls::handshake_name(h.msg_type()))?;
        }
        if let Some((level, desc)) = r.alert() {
            m.serialize_entry(f::LEVEL, &level)?;
            m.serialize_entry(f::DESCRIPTION, &desc)?;
        }
        if r.is_partial() {
            m.serialize_entry(f::PARTIAL, &true)?;
        }
        m.end()
    }
}

struct HelloJson<'a>(tls::Hello<'a>, bool);

impl Serialize for HelloJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = &self.0;
        let mut m = s.serialize_map(None)?;
        if let Some(sni) = h.server_name {
            m.serialize_entry(f::SNI, &Disp(Lossy(sni)))?;
        }
        if h.alpn().next().is_some() {
            m.serialize_entry(f::ALPN, &Alpn(*h))?;
        }
        if !h.client {
            m.serialize_entry(f::VERSION, tls::version_name(h.selected_version()))?;
        }
        if !self.1 {
            return m.end();
        }
        m.serialize_entry(f::LEGACY_VERSION, tls::version_name(h.legacy_version))?;
        if h.client {
            m.serialize_entry(f::VERSIONS, &Versions(*h))?;
            m.serialize_entry(f::CIPHERS, &h.cipher_suites)?;
        } else if let Some(c) = h.cipher_suite {
            m.serialize_entry(f::CIPHER, &Disp(format_args!("0x{c:04x}")))?;
        }
        m.serialize_entry(f::EXTENSIONS, &h.extensions)?;
        if h.partial {
            m.serialize_entry(f::PARTIAL, &true)?;
        }
        m.end()
    }
}

struct Alpn<'a>(tls::Hello<'a>);

impl Serialize for Alpn<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.alpn().take(16).map(|a| Disp(Lossy(a))))
    }
}

struct Versions<'a>(tls::Hello<'a>);

impl Serialize for Versions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .versions()
                .take(16)
                .filter(|v| tls::version_name(*v) != "GREASE")
                .map(tls::version_name),
        )
    }
}

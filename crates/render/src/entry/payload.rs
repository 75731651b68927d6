//! `L7` of an opaque payload: its length and, in DEBUG, a sample.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::Disp;
use crate::fields as f;

/// Bytes of an opaque payload sampled in DEBUG.
const SAMPLE_BYTES: usize = 64;

pub(super) struct Opaque<'a> {
    pub(super) p: &'a [u8],
    pub(super) debug: bool,
    pub(super) redact: &'a crate::redact::Redactor,
    pub(super) tcp: bool,
}

fn printable(b: &[u8]) -> Option<&str> {
    let s = match std::str::from_utf8(b) {
        Ok(s) => s,
        // A sample cut inside a multi-byte character is still text.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(b.get(..e.valid_up_to())?).ok()?,
        Err(_) => return None,
    };
    s.chars()
        .all(|c| !c.is_control() || matches!(c, '\r' | '\n' | '\t'))
        .then_some(s)
}

impl Serialize for Opaque<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::LENGTH, &self.p.len())?;
        if self.debug {
            let sample = self.p.get(..SAMPLE_BYTES).unwrap_or(self.p);
            match printable(sample) {
                Some(text) => {
                    // A capture that starts inside a header block: no secret in the sample.
                    m.serialize_entry(f::SAMPLE, &self.redact.sample(text))?;
                    m.serialize_entry(f::ENCODING, "text")?;
                }
                // Unrecognised binary TCP payload may be the middle of an HTTP/2 header
                // block (HPACK literals carry secret values as they are, or Huffman-coded):
                // its bytes are not shown. The .pcap files have them.
                None if self.tcp => m.serialize_entry(f::ENCODING, "binary")?,
                None => {
                    m.serialize_entry(f::SAMPLE, &Disp(wire::hex(sample)))?;
                    m.serialize_entry(f::ENCODING, "hex")?;
                }
            }
        }
        m.end()
    }
}

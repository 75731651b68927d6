//! TLS (RFC 8446, RFC 5246) record headers and the first handshake messages: ClientHello
//! (server name RFC 6066, ALPN RFC 7301, supported_versions) and ServerHello (selected
//! version, cipher suite, ALPN).
//!
//! Records are recognised by content, on any port, only when the header is strictly valid
//! (content type 20–24, major version 3, minor ≤ 4, length ≤ 2^14 + 2048) so that random
//! payloads are not mistaken for TLS. A record cut by the segment boundary is reported with
//! the bytes that are present; handshake fields beyond them are simply absent.

use crate::bytes::{be16, slice, tail, u8_at};

mod field {
    pub const CONTENT_TYPE: usize = 0;
    pub const VERSION: usize = 1;
    pub const LENGTH: usize = 3;
    pub const HEADER_LEN: usize = 5;
}

/// Length of a record header.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// Largest legal record body (TLSCiphertext: 2^14 + 2048).
pub const MAX_RECORD_LEN: usize = 16384 + 2048;

/// Record content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// 20.
    ChangeCipherSpec,
    /// 21.
    Alert,
    /// 22.
    Handshake,
    /// 23.
    ApplicationData,
    /// 24.
    Heartbeat,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for ContentType {
    fn from(v: u8) -> Self {
        match v {
            20 => ContentType::ChangeCipherSpec,
            21 => ContentType::Alert,
            22 => ContentType::Handshake,
            23 => ContentType::ApplicationData,
            24 => ContentType::Heartbeat,
            n => ContentType::Unknown(n),
        }
    }
}

impl ContentType {
    /// Name as the original printed it.
    pub fn name(self) -> &'static str {
        match self {
            ContentType::ChangeCipherSpec => "ChangeCipherSpec",
            ContentType::Alert => "Alert",
            ContentType::Handshake => "Handshake",
            ContentType::ApplicationData => "ApplicationData",
            ContentType::Heartbeat => "Heartbeat",
            ContentType::Unknown(_) => "Unknown",
        }
    }
}

/// Name of a protocol version (`TLS 1.2`, …; GREASE values per RFC 8701).
pub fn version_name(v: u16) -> &'static str {
    match v {
        0x0300 => "SSL 3.0",
        0x0301 => "TLS 1.0",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        v if v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff) => "GREASE",
        _ => "Unknown",
    }
}

/// True when `payload` starts with a plausible TLS record header.
pub fn looks_like_tls(payload: &[u8]) -> bool {
    payload.len() >= field::HEADER_LEN && Record::header_valid(payload)
}

/// One record, possibly cut short by the end of the segment.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    buf: &'a [u8],
}

impl<'a> Record<'a> {
    fn header_valid(b: &[u8]) -> bool {
        matches!(u8_at(b, field::CONTENT_TYPE), 20..=24)
            && u8_at(b, field::VERSION) == 3
            && u8_at(b, field::VERSION + 1) <= 4
            && usize::from(be16(b, field::LENGTH)) <= MAX_RECORD_LEN
    }

    /// Content type.
    pub fn content_type(&self) -> ContentType {
        ContentType::from(u8_at(self.buf, field::CONTENT_TYPE))
    }

    /// Record-layer version.
    pub fn version(&self) -> u16 {
        be16(self.buf, field::VERSION)
    }

    /// Declared body length.
    pub fn length(&self) -> u16 {
        be16(self.buf, field::LENGTH)
    }

    /// The body bytes present in this segment.
    pub fn fragment(&self) -> &'a [u8] {
        slice(
            self.buf,
            field::HEADER_LEN,
            field::HEADER_LEN + usize::from(self.length()),
        )
    }

    /// True when the segment ends before the record does.
    pub fn is_partial(&self) -> bool {
        self.fragment().len() < usize::from(self.length())
    }

    /// The handshake message at the start of a handshake record (the first one: later ones
    /// are usually encrypted in TLS 1.3 anyway).
    pub fn handshake(&self) -> Option<Handshake<'a>> {
        if self.content_type() != ContentType::Handshake {
            return None;
        }
        let f = self.fragment();
        if f.len() < 4 {
            return None;
        }
        Some(Handshake { buf: f })
    }

    /// Alert level and description, when this is an unencrypted alert.
    pub fn alert(&self) -> Option<(u8, u8)> {
        let f = self.fragment();
        (self.content_type() == ContentType::Alert && f.len() == 2)
            .then(|| (u8_at(f, 0), u8_at(f, 1)))
    }
}

/// Iterator over the records at the start of a payload; stops at the first invalid header.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    buf: &'a [u8],
}

/// The records of a TCP payload.
pub fn records(payload: &[u8]) -> Records<'_> {
    Records { buf: payload }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if !looks_like_tls(self.buf) {
            return None;
        }
        let r = Record { buf: self.buf };
        self.buf = tail(self.buf, field::HEADER_LEN + usize::from(r.length()));
        Some(r)
    }
}

/// A handshake message (possibly partial).
#[derive(Debug, Clone, Copy)]
pub struct Handshake<'a> {
    buf: &'a [u8],
}

/// Name of a handshake message type.
pub fn handshake_name(t: u8) -> &'static str {
    match t {
        0 => "HelloRequest",
        1 => "ClientHello",
        2 => "ServerHello",
        4 => "NewSessionTicket",
        5 => "EndOfEarlyData",
        8 => "EncryptedExtensions",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        15 => "CertificateVerify",
        16 => "ClientKeyExchange",
        20 => "Finished",
        24 => "KeyUpdate",
        _ => "Unknown",
    }
}

impl<'a> Handshake<'a> {
    /// Message type.
    pub fn msg_type(&self) -> u8 {
        u8_at(self.buf, 0)
    }

    /// Declared body length.
    pub fn length(&self) -> u32 {
        (u32::from(u8_at(self.buf, 1)) << 16) | u32::from(be16(self.buf, 2))
    }

    fn body(&self) -> &'a [u8] {
        slice(self.buf, 4, 4 + self.length() as usize)
    }

    /// The hello fields, for ClientHello and ServerHello.
    pub fn hello(&self) -> Option<Hello<'a>> {
        let client = match self.msg_type() {
            1 => true,
            2 => false,
            _ => return None,
        };
        let body = self.body();
        let mut h = Hello::parse(body, client);
        // The segment may end exactly at a field boundary: still partial.
        h.partial |= body.len() < self.length() as usize;
        Some(h)
    }
}

/// What a ClientHello or ServerHello says, as far as the captured bytes go.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hello<'a> {
    /// ClientHello (true) or ServerHello.
    pub client: bool,
    /// legacy_version.
    pub legacy_version: u16,
    /// Number of offered cipher suites (ClientHello).
    pub cipher_suites: u16,
    /// Selected cipher suite (ServerHello).
    pub cipher_suite: Option<u16>,
    /// server_name (SNI), first host name.
    pub server_name: Option<&'a [u8]>,
    /// ALPN protocol list (length-prefixed entries).
    alpn: &'a [u8],
    /// supported_versions list (ClientHello) or the selected one (ServerHello).
    versions: &'a [u8],
    /// Number of extensions read.
    pub extensions: u16,
    /// True when the message ended before all of it was read.
    pub partial: bool,
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at + n)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| u8_at(s, 0))
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| be16(s, 0))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

impl<'a> Hello<'a> {
    fn parse(body: &'a [u8], client: bool) -> Self {
        let mut h = Hello {
            client,
            ..Hello::default()
        };
        h.partial = h.parse_inner(body).is_none();
        h
    }

    fn parse_inner(&mut self, body: &'a [u8]) -> Option<()> {
        let mut c = Cursor { b: body, at: 0 };
        self.legacy_version = c.u16()?;
        c.take(32)?; // random
        c.vec8()?; // session id
        if self.client {
            self.cipher_suites = (c.vec16()?.len() / 2) as u16;
            c.vec8()?; // compression methods
        } else {
            self.cipher_suite = Some(c.u16()?);
            c.u8()?; // compression method
        }
        if c.at == body.len() {
            return Some(()); // no extensions
        }
        let exts = c.vec16()?;
        let mut e = Cursor { b: exts, at: 0 };
        while e.at < exts.len() {
            let kind = e.u16()?;
            let data = e.vec16()?;
            self.extensions = self.extensions.saturating_add(1);
            let mut d = Cursor { b: data, at: 0 };
            match kind {
                0 if self.client => {
                    // server_name_list: (type u8, host_name vec16)*
                    let list = d.vec16()?;
                    let mut l = Cursor { b: list, at: 0 };
                    if l.u8()? == 0 {
                        self.server_name = Some(l.vec16()?);
                    }
                }
                16 => self.alpn = d.vec16()?,
                43 if self.client => self.versions = d.vec8()?,
                43 => self.versions = d.take(2)?,
                _ => {}
            }
        }
        Some(())
    }

    /// ALPN protocols (offered by the client, or the one selected by the server).
    pub fn alpn(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut c = Cursor {
            b: self.alpn,
            at: 0,
        };
        std::iter::from_fn(move || c.vec8())
    }

    /// supported_versions values (ClientHello: offered, GREASE included; ServerHello: the
    /// selected version).
    pub fn versions(&self) -> impl Iterator<Item = u16> + 'a {
        self.versions.chunks_exact(2).map(|c| be16(c, 0))
    }

    /// The negotiated version of a ServerHello: supported_versions when present (TLS 1.3),
    /// else legacy_version.
    pub fn selected_version(&self) -> u16 {
        self.versions().next().unwrap_or(self.legacy_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::veth;

    // Packet 78 of testdata/veth.pcap: the ClientHello of `openssl s_client -servername
    // tls.example.test -alpn h2,http/1.1` (TCP payload after 14+20+32 header bytes).
    fn client_hello() -> &'static [u8] {
        &veth(78)[66..]
    }

    #[test]
    fn client_hello_fields() {
        let recs: Vec<_> = records(client_hello()).collect();
        assert_eq!(recs.len(), 1);
        let r = recs[0];
        assert_eq!(r.content_type(), ContentType::Handshake);
        assert_eq!(version_name(r.version()), "TLS 1.0");
        assert!(!r.is_partial());
        let hs = r.handshake().unwrap();
        assert_eq!(handshake_name(hs.msg_type()), "ClientHello");
        let h = hs.hello().unwrap();
        assert!(h.client && !h.partial);
        assert_eq!(h.legacy_version, 0x0303);
        assert_eq!(h.server_name, Some(&b"tls.example.test"[..]));
        assert_eq!(
            h.alpn().collect::<Vec<_>>(),
            vec![&b"h2"[..], &b"http/1.1"[..]]
        );
        assert!(h.versions().any(|v| v == 0x0304));
        assert!(h.cipher_suites > 0);
    }

    #[test]
    fn server_hello_selects_tls13() {
        // Packet 80: the server's first flight starts with the ServerHello.
        let r = records(&veth(80)[66..]).next().unwrap();
        let h = r.handshake().unwrap().hello().unwrap();
        assert!(!h.client);
        assert_eq!(version_name(h.selected_version()), "TLS 1.3");
        assert!(h.cipher_suite.is_some());
    }

    #[test]
    fn every_cut_is_safe() {
        let full = client_hello();
        for n in 0..full.len() {
            for r in records(&full[..n]) {
                if let Some(h) = r.handshake().and_then(|h| h.hello()) {
                    let _ = (h.alpn().count(), h.versions().count(), h.server_name);
                    assert!(h.partial || n == full.len());
                }
            }
        }
    }

    #[test]
    fn rejects_non_tls() {
        assert!(!looks_like_tls(b"GET / HTTP/1.1\r\n"));
        assert!(!looks_like_tls(&[0x16, 0x03, 0x05, 0, 1]));
        assert!(!looks_like_tls(&[0x16, 0x03, 0x01, 0xff, 0xff]));
        assert!(looks_like_tls(&[0x17, 0x03, 0x03, 0x00, 0x10]));
        assert_eq!(version_name(0x1a1a), "GREASE");
        assert_eq!(
            records(&[0x15, 0x03, 0x03, 0, 2, 2, 40])
                .next()
                .unwrap()
                .alert(),
            Some((2, 40))
        );
    }
}

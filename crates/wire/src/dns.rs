//! DNS messages (RFC 1035, RFC 6891 EDNS): header, questions and resource records of every
//! section, with record data decoded for A, AAAA, NS, CNAME, PTR, MX, TXT, SOA, SRV, CAA and
//! OPT; SVCB/HTTPS and other types are kept raw.
//!
//! Names are validated once when a question or record is read — compression pointers must
//! point backwards (RFC 1035 §4.1.4 pointers refer to a *prior* occurrence), at most
//! [`MAX_POINTERS`] are followed and a name is at most 255 bytes — so a [`Name`] prints
//! without allocating and cannot loop.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::bytes::{be16, be32, ipv4, ipv6, slice, tail, u8_at};
use crate::{Error, ErrorKind, Result};

mod field {
    pub const ID: usize = 0;
    pub const FLAGS: usize = 2;
    pub const QDCOUNT: usize = 4;
    pub const ANCOUNT: usize = 6;
    pub const NSCOUNT: usize = 8;
    pub const ARCOUNT: usize = 10;
    pub const HEADER_LEN: usize = 12;
}

/// Length of the header.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// Compression pointers followed in one name before it counts as a loop.
pub const MAX_POINTERS: usize = 32;
/// Maximum wire length of a name (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;

/// A checked view of a DNS message (the 12-byte header is present).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    buf: &'a [u8],
}

/// Operation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// 0.
    Query,
    /// 1 (obsolete).
    IQuery,
    /// 2.
    Status,
    /// 4.
    Notify,
    /// 5.
    Update,
    /// 6 (RFC 8490).
    Dso,
    /// Anything else.
    Unknown(u8),
}

impl Opcode {
    /// Name as the original printed it.
    pub fn name(self) -> &'static str {
        match self {
            Opcode::Query => "Query",
            Opcode::IQuery => "IQuery",
            Opcode::Status => "Status",
            Opcode::Notify => "Notify",
            Opcode::Update => "Update",
            Opcode::Dso => "DSO",
            Opcode::Unknown(_) => "Unknown",
        }
    }
}

/// Response code (header part; EDNS extends it with the OPT record's upper bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rcode(pub u16);

impl Rcode {
    /// Name as the original printed it (gopacket's texts).
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "No Error",
            1 => "Format Error",
            2 => "Server Failure",
            3 => "Non-Existent Domain",
            4 => "Not Implemented",
            5 => "Query Refused",
            6 => "Name Exists when it should not",
            7 => "RR Set Exists when it should not",
            8 => "RR Set that should exist does not",
            9 => "Server Not Authoritative for zone",
            10 => "Name not contained in zone",
            11 => "DSO-TYPE Not Implemented",
            16 => "Bad OPT Version",
            17 => "Key not recognized",
            18 => "Signature out of time window",
            19 => "Bad TKEY Mode",
            20 => "Duplicate key name",
            21 => "Algorithm not supported",
            22 => "Bad Truncation",
            23 => "Bad/missing Server Cookie",
            _ => "Unknown",
        }
    }

    /// Short mnemonic (RFC 6895 names): `NOERROR`, `NXDOMAIN`, `SERVFAIL`, …
    pub fn mnemonic(self) -> &'static str {
        match self.0 {
            0 => "NOERROR",
            1 => "FORMERR",
            2 => "SERVFAIL",
            3 => "NXDOMAIN",
            4 => "NOTIMP",
            5 => "REFUSED",
            6 => "YXDOMAIN",
            7 => "YXRRSET",
            8 => "NXRRSET",
            9 => "NOTAUTH",
            10 => "NOTZONE",
            16 => "BADVERS",
            23 => "BADCOOKIE",
            _ => "RCODE",
        }
    }
}

/// Record and query types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// 1.
    A,
    /// 2.
    Ns,
    /// 5.
    Cname,
    /// 6.
    Soa,
    /// 12.
    Ptr,
    /// 13.
    Hinfo,
    /// 15.
    Mx,
    /// 16.
    Txt,
    /// 28.
    Aaaa,
    /// 33.
    Srv,
    /// 35.
    Naptr,
    /// 41.
    Opt,
    /// 43.
    Ds,
    /// 46.
    Rrsig,
    /// 47.
    Nsec,
    /// 48.
    Dnskey,
    /// 50.
    Nsec3,
    /// 64.
    Svcb,
    /// 65.
    Https,
    /// 99.
    Spf,
    /// 252.
    Axfr,
    /// 255.
    Any,
    /// 257.
    Caa,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for Type {
    fn from(v: u16) -> Self {
        match v {
            1 => Type::A,
            2 => Type::Ns,
            5 => Type::Cname,
            6 => Type::Soa,
            12 => Type::Ptr,
            13 => Type::Hinfo,
            15 => Type::Mx,
            16 => Type::Txt,
            28 => Type::Aaaa,
            33 => Type::Srv,
            35 => Type::Naptr,
            41 => Type::Opt,
            43 => Type::Ds,
            46 => Type::Rrsig,
            47 => Type::Nsec,
            48 => Type::Dnskey,
            50 => Type::Nsec3,
            64 => Type::Svcb,
            65 => Type::Https,
            99 => Type::Spf,
            252 => Type::Axfr,
            255 => Type::Any,
            257 => Type::Caa,
            n => Type::Unknown(n),
        }
    }
}

impl Type {
    /// Mnemonic (`A`, `AAAA`, …; `Unknown` for others).
    pub fn name(self) -> &'static str {
        match self {
            Type::A => "A",
            Type::Ns => "NS",
            Type::Cname => "CNAME",
            Type::Soa => "SOA",
            Type::Ptr => "PTR",
            Type::Hinfo => "HINFO",
            Type::Mx => "MX",
            Type::Txt => "TXT",
            Type::Aaaa => "AAAA",
            Type::Srv => "SRV",
            Type::Naptr => "NAPTR",
            Type::Opt => "OPT",
            Type::Ds => "DS",
            Type::Rrsig => "RRSIG",
            Type::Nsec => "NSEC",
            Type::Dnskey => "DNSKEY",
            Type::Nsec3 => "NSEC3",
            Type::Svcb => "SVCB",
            Type::Https => "HTTPS",
            Type::Spf => "SPF",
            Type::Axfr => "AXFR",
            Type::Any => "ANY",
            Type::Caa => "CAA",
            Type::Unknown(_) => "Unknown",
        }
    }
}

/// Name of a class value (mDNS's top bit — cache-flush / unicast-response — masked off).
pub fn class_name(class: u16) -> &'static str {
    match class & 0x7fff {
        1 => "IN",
        3 => "CH",
        4 => "HS",
        254 => "NONE",
        255 => "ANY",
        _ => "Unknown",
    }
}

impl<'a> Message<'a> {
    /// Checks that the header is present.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < field::HEADER_LEN {
            return Err(Error::new(ErrorKind::Truncated, buf.len()));
        }
        Ok(Message { buf })
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Transaction id.
    pub fn id(&self) -> u16 {
        be16(self.buf, field::ID)
    }

    /// Raw flags word.
    pub fn flags(&self) -> u16 {
        be16(self.buf, field::FLAGS)
    }

    /// QR: a response.
    pub fn is_response(&self) -> bool {
        self.flags() & 0x8000 != 0
    }

    /// Operation code.
    pub fn opcode(&self) -> Opcode {
        match ((self.flags() >> 11) & 0xf) as u8 {
            0 => Opcode::Query,
            1 => Opcode::IQuery,
            2 => Opcode::Status,
            4 => Opcode::Notify,
            5 => Opcode::Update,
            6 => Opcode::Dso,
            n => Opcode::Unknown(n),
        }
    }

    /// AA: authoritative answer.
    pub fn authoritative(&self) -> bool {
        self.flags() & 0x0400 != 0
    }

    /// TC: truncated (by the server, not the capture).
    pub fn truncated_flag(&self) -> bool {
        self.flags() & 0x0200 != 0
    }

    /// RD: recursion desired.
    pub fn recursion_desired(&self) -> bool {
        self.flags() & 0x0100 != 0
    }

    /// RA: recursion available.
    pub fn recursion_available(&self) -> bool {
        self.flags() & 0x0080 != 0
    }

    /// AD: authentic data (RFC 4035).
    pub fn authentic_data(&self) -> bool {
        self.flags() & 0x0020 != 0
    }

    /// CD: checking disabled (RFC 4035).
    pub fn checking_disabled(&self) -> bool {
        self.flags() & 0x0010 != 0
    }

    /// Response code from the header (4 bits).
    pub fn rcode(&self) -> Rcode {
        Rcode(self.flags() & 0xf)
    }

    /// Question count.
    pub fn qdcount(&self) -> u16 {
        be16(self.buf, field::QDCOUNT)
    }

    /// Answer count.
    pub fn ancount(&self) -> u16 {
        be16(self.buf, field::ANCOUNT)
    }

    /// Authority count.
    pub fn nscount(&self) -> u16 {
        be16(self.buf, field::NSCOUNT)
    }

    /// Additional count.
    pub fn arcount(&self) -> u16 {
        be16(self.buf, field::ARCOUNT)
    }

    /// The questions; stops at the first malformed one.
    pub fn questions(&self) -> Questions<'a> {
        Questions {
            msg: self.buf,
            at: field::HEADER_LEN,
            left: self.qdcount(),
            done: false,
        }
    }

    /// The records of the answer, authority and additional sections, in order; stops at the
    /// first malformed one (including a malformed question before them).
    pub fn records(&self) -> Records<'a> {
        let mut q = self.questions();
        let mut err = None;
        for r in q.by_ref() {
            if let Err(e) = r {
                err = Some(e);
            }
        }
        Records {
            msg: self.buf,
            at: q.at,
            left: [self.ancount(), self.nscount(), self.arcount()],
            error: err,
            done: false,
        }
    }
}

/// A validated (possibly compressed) domain name inside a message. `Display` prints it in
/// presentation form without the trailing dot (the root is `.`); unprintable bytes are
/// escaped as `\DDD`.
#[derive(Clone, Copy)]
pub struct Name<'a> {
    msg: &'a [u8],
    at: usize,
}

/// Walks a name from `at`, calling `label` for each label. Returns the offset just after the
/// name's in-place part (where the next field starts).
fn walk_name<'a>(msg: &'a [u8], at: usize, mut label: impl FnMut(&'a [u8])) -> Result<usize> {
    let mut pos = at;
    let mut end = None;
    let mut jumps = 0;
    let mut total = 1; // the root label's length byte
    loop {
        let Some(&len) = msg.get(pos) else {
            return Err(Error::new(ErrorKind::Truncated, pos));
        };
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok(end.unwrap_or(pos + 1));
                }
                let n = usize::from(len);
                let Some(bytes) = msg.get(pos + 1..pos + 1 + n) else {
                    return Err(Error::new(ErrorKind::Truncated, pos));
                };
                total += n + 1;
                if total > MAX_NAME_LEN {
                    return Err(Error::new(ErrorKind::BadName, pos));
                }
                label(bytes);
                pos += 1 + n;
            }
            0xc0 => {
                let Some(&low) = msg.get(pos + 1) else {
                    return Err(Error::new(ErrorKind::Truncated, pos));
                };
                let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                jumps += 1;
                if target >= pos || jumps > MAX_POINTERS {
                    return Err(Error::new(ErrorKind::BadPointer, pos));
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(Error::new(ErrorKind::BadName, pos)),
        }
    }
}

impl<'a> Name<'a> {
    /// Validates the name at `at` and returns it with the offset after its in-place part.
    pub fn parse(msg: &'a [u8], at: usize) -> Result<(Self, usize)> {
        let end = walk_name(msg, at, |_| ())?;
        Ok((Name { msg, at }, end))
    }

    /// The labels, outermost last (`www`, `example`, `com`).
    pub fn for_each_label(&self, f: impl FnMut(&'a [u8])) {
        // Validated in `parse`: the walk cannot fail here.
        let _ = walk_name(self.msg, self.at, f);
    }

    /// True for the root name.
    pub fn is_root(&self) -> bool {
        let mut any = false;
        self.for_each_label(|_| any = true);
        !any
    }
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut result = Ok(());
        let mut first = true;
        self.for_each_label(|label| {
            if result.is_err() {
                return;
            }
            if !first {
                result = f.write_str(".");
            }
            first = false;
            for &b in label {
                if result.is_err() {
                    return;
                }
                result = match b {
                    b'.' => f.write_str("\\."),
                    b'\\' => f.write_str("\\\\"),
                    0x21..=0x7e => f.write_str(std::str::from_utf8(&[b]).unwrap_or("?")),
                    _ => write!(f, "\\{b:03}"),
                };
            }
        });
        result?;
        if first {
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// One question.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// QNAME.
    pub name: Name<'a>,
    /// QTYPE.
    pub qtype: Type,
    /// QTYPE as a number.
    pub qtype_raw: u16,
    /// QCLASS (mDNS sets the top bit for unicast responses).
    pub qclass: u16,
}

/// Iterator over questions.
#[derive(Debug, Clone)]
pub struct Questions<'a> {
    msg: &'a [u8],
    at: usize,
    left: u16,
    done: bool,
}

impl<'a> Iterator for Questions<'a> {
    type Item = Result<Question<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = Name::parse(self.msg, self.at).and_then(|(name, end)| {
            if end + 4 > self.msg.len() {
                return Err(Error::new(ErrorKind::Truncated, end));
            }
            self.at = end + 4;
            let qtype_raw = be16(self.msg, end);
            Ok(Question {
                name,
                qtype: Type::from(qtype_raw),
                qtype_raw,
                qclass: be16(self.msg, end + 2),
            })
        });
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

/// Which section a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Answer section.
    Answer,
    /// Authority section.
    Authority,
    /// Additional section.
    Additional,
}

/// One resource record.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Section of the record.
    pub section: Section,
    /// Owner name.
    pub name: Name<'a>,
    /// Type.
    pub rtype: Type,
    /// Type as a number.
    pub rtype_raw: u16,
    /// Class (for OPT: the requester's UDP payload size).
    pub class: u16,
    /// TTL (for OPT: extended rcode, version and flags).
    pub ttl: u32,
    msg: &'a [u8],
    rdata_at: usize,
    rdata_len: usize,
}

/// Decoded record data.
#[derive(Debug, Clone, Copy)]
pub enum RData<'a> {
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// Name server.
    Ns(Name<'a>),
    /// Canonical name.
    Cname(Name<'a>),
    /// Pointer.
    Ptr(Name<'a>),
    /// Mail exchange.
    Mx {
        /// Preference.
        preference: u16,
        /// Exchange host.
        exchange: Name<'a>,
    },
    /// Text: a sequence of character strings.
    Txt(CharStrings<'a>),
    /// Start of authority.
    Soa {
        /// Primary name server.
        mname: Name<'a>,
        /// Responsible mailbox.
        rname: Name<'a>,
        /// Serial.
        serial: u32,
        /// Refresh (s).
        refresh: u32,
        /// Retry (s).
        retry: u32,
        /// Expire (s).
        expire: u32,
        /// Minimum / negative TTL (s).
        minimum: u32,
    },
    /// Service location (RFC 2782).
    Srv {
        /// Priority.
        priority: u16,
        /// Weight.
        weight: u16,
        /// Port.
        port: u16,
        /// Target host.
        target: Name<'a>,
    },
    /// Certification authority authorization (RFC 8659).
    Caa {
        /// Flags (128 = critical).
        flags: u8,
        /// Property tag (`issue`, `issuewild`, `iodef`).
        tag: &'a [u8],
        /// Property value.
        value: &'a [u8],
    },
    /// EDNS pseudo-record (RFC 6891).
    Opt(Opt<'a>),
    /// Anything else, undecoded (SVCB/HTTPS included).
    Raw(&'a [u8]),
}

/// EDNS parameters carried by an OPT record.
#[derive(Debug, Clone, Copy)]
pub struct Opt<'a> {
    /// Requester's UDP payload size.
    pub udp_payload_size: u16,
    /// Upper 8 bits of the extended rcode.
    pub ext_rcode: u8,
    /// EDNS version.
    pub version: u8,
    /// DNSSEC OK.
    pub dnssec_ok: bool,
    /// Options as (code, data).
    pub options: OptOptions<'a>,
}

/// Iterator over EDNS options (code, data); stops at one that runs past the record.
#[derive(Debug, Clone, Copy)]
pub struct OptOptions<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for OptOptions<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.len() < 4 {
            return None;
        }
        let code = be16(self.buf, 0);
        let len = usize::from(be16(self.buf, 2));
        let data = self.buf.get(4..4 + len)?;
        self.buf = tail(self.buf, 4 + len);
        Some((code, data))
    }
}

/// Name of an EDNS option code.
pub fn edns_option_name(code: u16) -> &'static str {
    match code {
        3 => "NSID",
        5 => "DAU",
        6 => "DHU",
        7 => "N3U",
        8 => "ECS",
        9 => "EXPIRE",
        10 => "COOKIE",
        11 => "TCP-KEEPALIVE",
        12 => "PADDING",
        13 => "CHAIN",
        14 => "KEY-TAG",
        15 => "EDE",
        _ => "Unknown",
    }
}

/// Iterator over the character strings of TXT data; stops at one that runs past the data.
#[derive(Debug, Clone, Copy)]
pub struct CharStrings<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for CharStrings<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<Self::Item> {
        let (&len, rest) = self.buf.split_first()?;
        let s = rest.get(..usize::from(len))?;
        self.buf = tail(rest, usize::from(len));
        Some(s)
    }
}

impl<'a> Record<'a> {
    /// The raw record data.
    pub fn rdata(&self) -> &'a [u8] {
        slice(self.msg, self.rdata_at, self.rdata_at + self.rdata_len)
    }

    /// Offset of the record data in the message.
    pub fn rdata_offset(&self) -> usize {
        self.rdata_at
    }

    /// A name inside the record data that must end within it.
    fn name_in_rdata(&self, at: usize) -> Result<(Name<'a>, usize)> {
        let (name, end) = Name::parse(self.msg, at)?;
        if end > self.rdata_at + self.rdata_len {
            return Err(Error::new(ErrorKind::BadLength, at));
        }
        Ok((name, end))
    }

    /// Decodes the record data according to the type.
    pub fn data(&self) -> Result<RData<'a>> {
        let d = self.rdata();
        let at = self.rdata_at;
        let bad = Error::new(ErrorKind::BadLength, at);
        Ok(match self.rtype {
            Type::A if d.len() == 4 => RData::A(ipv4(d, 0)),
            Type::Aaaa if d.len() == 16 => RData::Aaaa(ipv6(d, 0)),
            Type::A | Type::Aaaa => return Err(bad),
            Type::Ns => RData::Ns(self.name_in_rdata(at)?.0),
            Type::Cname => RData::Cname(self.name_in_rdata(at)?.0),
            Type::Ptr => RData::Ptr(self.name_in_rdata(at)?.0),
            Type::Mx => {
                if d.len() < 3 {
                    return Err(bad);
                }
                RData::Mx {
                    preference: be16(d, 0),
                    exchange: self.name_in_rdata(at + 2)?.0,
                }
            }
            Type::Txt | Type::Spf => RData::Txt(CharStrings { buf: d }),
            Type::Soa => {
                let (mname, end) = self.name_in_rdata(at)?;
                let (rname, end) = self.name_in_rdata(end)?;
                if end + 20 > at + d.len() {
                    return Err(bad);
                }
                RData::Soa {
                    mname,
                    rname,
                    serial: be32(self.msg, end),
                    refresh: be32(self.msg, end + 4),
                    retry: be32(self.msg, end + 8),
                    expire: be32(self.msg, end + 12),
                    minimum: be32(self.msg, end + 16),
                }
            }
            Type::Srv => {
                if d.len() < 7 {
                    return Err(bad);
                }
                RData::Srv {
                    priority: be16(d, 0),
                    weight: be16(d, 2),
                    port: be16(d, 4),
                    target: self.name_in_rdata(at + 6)?.0,
                }
            }
            Type::Caa => {
                let tag_len = usize::from(u8_at(d, 1));
                if d.len() < 2 + tag_len {
                    return Err(bad);
                }
                RData::Caa {
                    flags: u8_at(d, 0),
                    tag: slice(d, 2, 2 + tag_len),
                    value: tail(d, 2 + tag_len),
                }
            }
            Type::Opt => RData::Opt(Opt {
                udp_payload_size: self.class,
                ext_rcode: (self.ttl >> 24) as u8,
                version: (self.ttl >> 16) as u8,
                dnssec_ok: self.ttl & 0x8000 != 0,
                options: OptOptions { buf: d },
            }),
            _ => RData::Raw(d),
        })
    }
}

/// Iterator over the records of all three sections.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    msg: &'a [u8],
    at: usize,
    left: [u16; 3],
    error: Option<Error>,
    done: bool,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(e) = self.error.take() {
            self.done = true;
            return Some(Err(e));
        }
        let (section, left) = match self.left {
            [n, _, _] if n > 0 => (Section::Answer, self.left.get_mut(0)),
            [_, n, _] if n > 0 => (Section::Authority, self.left.get_mut(1)),
            [_, _, n] if n > 0 => (Section::Additional, self.left.get_mut(2)),
            _ => return None,
        };
        if let Some(left) = left {
            *left -= 1;
        }
        let r = Name::parse(self.msg, self.at).and_then(|(name, end)| {
            if end + 10 > self.msg.len() {
                return Err(Error::new(ErrorKind::Truncated, end));
            }
            let rdata_len = usize::from(be16(self.msg, end + 8));
            let rdata_at = end + 10;
            if rdata_at + rdata_len > self.msg.len() {
                return Err(Error::new(ErrorKind::Truncated, end + 8));
            }
            self.at = rdata_at + rdata_len;
            let rtype_raw = be16(self.msg, end);
            Ok(Record {
                section,
                name,
                rtype: Type::from(rtype_raw),
                rtype_raw,
                class: be16(self.msg, end + 2),
                ttl: be32(self.msg, end + 4),
                msg: self.msg,
                rdata_at,
                rdata_len,
            })
        });
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::veth_udp_payload;

    fn msg(n: usize) -> Message<'static> {
        Message::new_checked(veth_udp_payload(n)).unwrap()
    }

    fn answers(m: &Message<'_>) -> Vec<String> {
        m.records()
            .map(|r| {
                let r = r.unwrap();
                let data = match r.data().unwrap() {
                    RData::A(a) => a.to_string(),
                    RData::Aaaa(a) => a.to_string(),
                    RData::Ns(n) | RData::Cname(n) | RData::Ptr(n) => n.to_string(),
                    RData::Mx {
                        preference,
                        exchange,
                    } => format!("{preference} {exchange}"),
                    RData::Txt(t) => t
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<Vec<_>>()
                        .join("|"),
                    RData::Soa {
                        mname,
                        rname,
                        serial,
                        minimum,
                        ..
                    } => {
                        format!("{mname} {rname} {serial} {minimum}")
                    }
                    RData::Srv {
                        priority,
                        weight,
                        port,
                        target,
                    } => {
                        format!("{priority} {weight} {port} {target}")
                    }
                    RData::Caa { flags, tag, value } => format!(
                        "{flags} {} {}",
                        String::from_utf8_lossy(tag),
                        String::from_utf8_lossy(value)
                    ),
                    RData::Opt(o) => format!(
                        "udp={} v={} do={}",
                        o.udp_payload_size, o.version, o.dnssec_ok
                    ),
                    RData::Raw(d) => format!("raw {}", d.len()),
                };
                format!("{:?} {} {} {}", r.section, r.name, r.rtype.name(), data)
            })
            .collect()
    }

    #[test]
    fn query_with_edns() {
        // dig's A query for www.example.test (packet 20).
        let m = msg(20);
        assert_eq!(m.id(), 11728);
        assert!(!m.is_response() && m.recursion_desired());
        assert_eq!(m.opcode(), Opcode::Query);
        assert_eq!(
            (m.qdcount(), m.ancount(), m.nscount(), m.arcount()),
            (1, 0, 0, 1)
        );
        let q: Vec<_> = m.questions().collect::<Result<_>>().unwrap();
        assert_eq!(q[0].name.to_string(), "www.example.test");
        assert_eq!(q[0].qtype, Type::A);
        assert_eq!(class_name(q[0].qclass), "IN");
        let r: Vec<_> = m.records().collect::<Result<_>>().unwrap();
        assert_eq!(r[0].section, Section::Additional);
        assert!(r[0].name.is_root());
        assert_eq!(r[0].name.to_string(), ".");
        let RData::Opt(opt) = r[0].data().unwrap() else {
            panic!()
        };
        assert_eq!(opt.udp_payload_size, 1232);
        let opts: Vec<_> = opt.options.collect();
        assert_eq!(opts.len(), 1);
        assert_eq!(edns_option_name(opts[0].0), "COOKIE");
    }

    #[test]
    fn answers_of_every_kind() {
        assert_eq!(answers(&msg(21))[0], "Answer www.example.test A 10.77.0.9");
        assert_eq!(answers(&msg(23))[0], "Answer www.example.test AAAA fd77::9");
        let cname = answers(&msg(25));
        assert_eq!(cname[0], "Answer alias.example.test CNAME www.example.test");
        assert_eq!(cname[1], "Answer www.example.test A 10.77.0.9");
        assert_eq!(
            answers(&msg(27))[0],
            "Answer example.test MX 10 mail.example.test"
        );
        assert_eq!(
            answers(&msg(29))[0],
            "Answer example.test TXT v=spf1 -all|second string"
        );
        assert_eq!(
            answers(&msg(31))[0],
            "Answer _sip._udp.example.test SRV 1 2 5060 sip.example.test"
        );
        assert_eq!(
            answers(&msg(33))[0],
            "Answer 9.0.77.10.in-addr.arpa PTR www.example.test"
        );
        assert_eq!(
            answers(&msg(35))[0],
            "Answer example.test CAA 0 issue letsencrypt.org"
        );
        let soa = answers(&msg(37));
        assert!(
            soa[0].starts_with(
                "Answer example.test SOA ns.example.test hostmaster.example.test 2024010101"
            ),
            "{soa:?}"
        );
        let nx = msg(39);
        assert_eq!(nx.rcode().name(), "Non-Existent Domain");
        assert_eq!(nx.rcode().mnemonic(), "NXDOMAIN");
        assert_eq!(nx.ancount(), 0);
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        for n in [21, 25, 29, 31, 35, 37] {
            let full = veth_udp_payload(n);
            for cut in 0..full.len() {
                let Ok(m) = Message::new_checked(&full[..cut]) else {
                    assert!(cut < 12);
                    continue;
                };
                let ok = m
                    .questions()
                    .chain(m.questions())
                    .filter(|q| q.is_ok())
                    .count();
                assert!(ok <= 2);
                let recs: Vec<_> = m.records().collect();
                assert!(recs.len() <= usize::from(m.ancount() + m.nscount() + m.arcount()) + 1);
                if let Some(Err(e)) = recs.last() {
                    assert!(e.offset <= cut + 1, "{e:?} cut {cut}");
                }
                for r in recs.into_iter().flatten() {
                    let _ = r.data().map(|d| format!("{d:?}"));
                }
            }
        }
    }

    #[test]
    fn pointer_loops_and_forward_pointers() {
        let mut m = vec![0u8; 12];
        m[5] = 1; // one question
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]); // points at itself
        let e = Message::new_checked(&m)
            .unwrap()
            .questions()
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadPointer);
        let mut m = vec![0u8; 12];
        m[5] = 1;
        m.extend_from_slice(&[0xc0, 40, 0, 1, 0, 1]); // forward / outside
        assert!(Message::new_checked(&m)
            .unwrap()
            .questions()
            .next()
            .unwrap()
            .is_err());
        // Two labels pointing at each other through a chain: a -> b -> a.
        let mut m = vec![0u8; 12];
        m[5] = 1;
        m.extend_from_slice(&[1, b'a', 0xc0, 14, 0, 1, 0, 1]);
        m[14] = 1; // label at 14 ... then pointer at 16 -> 14: backwards but cyclic
        let r = Message::new_checked(&m)
            .unwrap()
            .questions()
            .next()
            .unwrap();
        assert!(r.is_err(), "{r:?}");
        // Reserved label type 0x40.
        let mut m = vec![0u8; 12];
        m[5] = 1;
        m.extend_from_slice(&[0x41, 0, 0, 1, 0, 1]);
        assert_eq!(
            Message::new_checked(&m)
                .unwrap()
                .questions()
                .next()
                .unwrap()
                .unwrap_err()
                .kind,
            ErrorKind::BadName
        );
    }

    #[test]
    fn long_names_and_escapes() {
        let mut m = vec![0u8; 12];
        m[5] = 1;
        for _ in 0..5 {
            m.push(63);
            m.extend_from_slice(&[b'x'; 63]);
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        let e = Message::new_checked(&m)
            .unwrap()
            .questions()
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadName);
        let mut m = vec![0u8; 12];
        m[5] = 1;
        m.extend_from_slice(&[4, b'a', b'.', 0x07, b'\\', 0, 0, 1, 0, 1]);
        let q = Message::new_checked(&m)
            .unwrap()
            .questions()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(q.name.to_string(), "a\\.\\007\\\\");
    }

    #[test]
    fn counts_larger_than_the_message() {
        let mut m = veth_udp_payload(21).to_vec();
        m[6] = 0xff; // 65k answers claimed
        m[7] = 0xff;
        let recs: Vec<_> = Message::new_checked(&m).unwrap().records().collect();
        assert!(recs.len() < 10);
        assert!(recs.last().unwrap().is_err());
    }
}

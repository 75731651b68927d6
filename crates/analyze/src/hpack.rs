//! HPACK (RFC 7541) header-block decoding for passive analysis.
//!
//! A [`Decoder`] holds one direction's dynamic table. Unlike an endpoint's decoder it must
//! cope with not having seen the whole connection:
//!
//! - a capture that starts mid-connection ([`Decoder::unsynced`]) does not know the entries
//!   the dynamic table already held; a reference to an index past the entries it saw being
//!   added is reported as [`Field::Unknown`] instead of failing the block, and decoding goes
//!   on (static-table and literal fields still decode);
//! - a field whose *name* is unknown has its value dropped too: it might be a secret header
//!   (`cookie`, `authorization`) and could not be redacted;
//! - the table size is capped at [`MAX_TABLE_SIZE`] whatever the peer's SETTINGS or size
//!   updates say (memory stays bounded per connection);
//! - a block that fails to decode (bad integer, bad Huffman code, overlong string) leaves
//!   the table in an unknown state: the decoder forgets it and becomes unsynced.
//!
//! Huffman decoding uses the RFC 7541 Appendix B code as a table ([`HUFFMAN`]) walked as a
//! binary tree built once.

use std::collections::VecDeque;
use std::sync::OnceLock;

/// Dynamic table size until the encoder says otherwise (RFC 7540 §6.5.2 default).
pub const DEFAULT_TABLE_SIZE: usize = 4096;
/// Largest dynamic table kept, whatever the connection announces.
pub const MAX_TABLE_SIZE: usize = 64 * 1024;
/// Most fields decoded per block (the rest are counted, not kept).
pub const MAX_FIELDS: usize = 128;
/// Longest name or value kept (longer ones are cut; the table accounts their real size).
pub const MAX_STRING: usize = 16 * 1024;
/// Most decoded bytes of a header list kept per block, in RFC 7541 §4.1 accounting (name +
/// value + 32 per field), in the spirit of SETTINGS_MAX_HEADER_LIST_SIZE: a block of
/// references to one large dynamic entry would otherwise decode to megabytes ("HPACK bomb").
/// Fields past it are decoded for the table but their values are never copied.
pub const MAX_HEADER_LIST: usize = 64 * 1024;

/// Per-entry overhead in table-size accounting (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

/// A decoded field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// Name (lowercase in HTTP/2, kept as sent) and value.
    Known(String, Vec<u8>),
    /// A reference to a dynamic-table entry this decoder never saw (capture started
    /// mid-connection, or the table was lost): the HPACK index. The value is unknown or was
    /// dropped because its name is unknown.
    Unknown(u32),
}

/// Why a block could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpackError {
    /// The block ends inside a field.
    Truncated,
    /// An integer over 2^32.
    IntegerOverflow,
    /// Index 0, or an index past the static table and every possible dynamic entry.
    BadIndex,
    /// An invalid Huffman code, EOS, or bad padding.
    Huffman,
    /// A dynamic table size update after the first field of a block (RFC 7541 §4.2).
    LateSizeUpdate,
}

impl HpackError {
    /// Name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            HpackError::Truncated => "HPACK_TRUNCATED",
            HpackError::IntegerOverflow => "HPACK_INTEGER_OVERFLOW",
            HpackError::BadIndex => "HPACK_BAD_INDEX",
            HpackError::Huffman => "HPACK_BAD_HUFFMAN",
            HpackError::LateSizeUpdate => "HPACK_LATE_SIZE_UPDATE",
        }
    }
}

/// A decoded header block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Block {
    /// Fields in order (at most [`MAX_FIELDS`], at most [`MAX_HEADER_LIST`] decoded bytes).
    pub fields: Vec<Field>,
    /// Fields decoded for the table but not kept (past [`MAX_FIELDS`], past the decoded-size
    /// cap, or past the segment's [`Budget`]).
    pub omitted: usize,
    /// Decoded size of the whole list (RFC 7541 §4.1 accounting), kept fields or not.
    pub list_size: usize,
    /// Fields were dropped because the list went over [`MAX_HEADER_LIST`] or the segment's
    /// byte budget.
    pub list_truncated: bool,
    /// Indexed references not resolved because the segment's reference budget was spent.
    pub references_skipped: usize,
    /// The error that stopped decoding (fields before it are kept).
    pub error: Option<HpackError>,
}

/// What one segment may decode across all its header blocks: hostile segments hold
/// thousands of small blocks, each within the per-block caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Decoded bytes kept (RFC 7541 accounting).
    pub bytes: usize,
    /// Fields kept.
    pub fields: usize,
    /// Indexed references resolved (a reference costs a table lookup even when not kept).
    pub references: usize,
}

impl Budget {
    /// Per segment: twice one block's caps, and a few thousand references.
    pub const SEGMENT: Budget = Budget {
        bytes: 2 * MAX_HEADER_LIST,
        fields: 4 * MAX_FIELDS,
        references: 4096,
    };
}

impl Default for Budget {
    fn default() -> Self {
        Budget::SEGMENT
    }
}

impl Block {
    /// Known fields as `(name, value)`.
    pub fn known(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields.iter().filter_map(|f| match f {
            Field::Known(n, v) => Some((n.as_str(), v.as_slice())),
            Field::Unknown(_) => None,
        })
    }

    /// First value of a field.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.known().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The HPACK indexes that could not be resolved.
    pub fn unknown(&self) -> impl Iterator<Item = u32> + '_ {
        self.fields.iter().filter_map(|f| match f {
            Field::Unknown(i) => Some(*i),
            Field::Known(..) => None,
        })
    }
}

#[derive(Debug, Clone)]
struct Entry {
    /// `None` for an entry whose name (and so value) is unknown.
    name: Option<Box<str>>,
    value: Box<[u8]>,
    /// Its size in table accounting (the real one, even when cut).
    size: usize,
}

/// One direction's HPACK decoding state (bounded by [`MAX_TABLE_SIZE`] plus per-entry
/// overhead).
#[derive(Debug, Clone)]
pub struct Decoder {
    table: VecDeque<Entry>,
    size: usize,
    max: usize,
    /// The dynamic table may hold entries this decoder never saw.
    pub unsynced: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(false)
    }
}

impl Decoder {
    /// A decoder for a connection seen from its start (`unsynced == false`) or joined
    /// mid-way.
    pub fn new(unsynced: bool) -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max: DEFAULT_TABLE_SIZE,
            unsynced,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when the dynamic table is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Table size in RFC 7541 accounting.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Heap bytes the table holds, for the state budget: O(1), from the RFC 7541 size,
    /// which is at least what the entries store (values cut at [`MAX_STRING`] count whole).
    pub fn heap_bytes(&self) -> usize {
        self.table.capacity() * std::mem::size_of::<Entry>() + self.size
    }

    /// Forgets the table (after a block that could not be decoded, or a lost block).
    pub fn lose_sync(&mut self) {
        self.table = VecDeque::new();
        self.size = 0;
        self.unsynced = true;
    }

    fn set_max(&mut self, max: usize) {
        self.max = max.min(MAX_TABLE_SIZE);
        self.evict(0);
    }

    fn evict(&mut self, room: usize) {
        while self.size + room > self.max {
            match self.table.pop_back() {
                Some(e) => self.size -= e.size,
                None => break,
            }
        }
    }

    fn insert(&mut self, name: Option<&str>, name_len: usize, value: &[u8]) {
        let size = name_len + value.len() + ENTRY_OVERHEAD;
        if size > self.max {
            // RFC 7541 §4.4: an entry larger than the table empties it.
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        self.table.push_front(Entry {
            name: name.map(Box::from),
            value: value.into(),
            size,
        });
        self.size += size;
    }

    /// The `(name, value)` at HPACK `index`: `Ok(None)` for an unknown dynamic entry.
    fn lookup(&self, index: u64) -> Result<Option<(&str, &[u8])>, HpackError> {
        let i = usize::try_from(index).map_err(|_| HpackError::BadIndex)?;
        if i == 0 {
            return Err(HpackError::BadIndex);
        }
        if let Some((n, v)) = STATIC.get(i - 1) {
            return Ok(Some((n, v.as_bytes())));
        }
        let d = i - STATIC.len() - 1;
        match self.table.get(d) {
            Some(Entry {
                name: Some(n),
                value,
                ..
            }) => Ok(Some((n, value))),
            Some(_) => Ok(None),
            // Past what was seen: unknown when the table may hold older entries; else
            // invalid, unless it could not exist in any table of the maximum size.
            None if self.unsynced && d < MAX_TABLE_SIZE / ENTRY_OVERHEAD => Ok(None),
            None => Err(HpackError::BadIndex),
        }
    }

    /// Decodes one complete header block, updating the dynamic table.
    pub fn decode(&mut self, buf: &[u8]) -> Block {
        let mut budget = Budget::SEGMENT;
        self.decode_within(buf, &mut budget)
    }

    /// [`Self::decode`] spending from a segment's `budget`: fields past it are decoded for
    /// the table (the table stays in sync) but not kept.
    pub fn decode_within(&mut self, mut buf: &[u8], budget: &mut Budget) -> Block {
        let mut block = Block::default();
        let mut kept = 0usize;
        while let Some(&b) = buf.first() {
            if let Err(e) = self.field(&mut buf, b, &mut block, &mut kept, budget) {
                block.error = Some(e);
                self.lose_sync();
                break;
            }
        }
        block
    }

    /// Whether a field of decoded `size` may be kept; counts it either way. Decided before
    /// any value is copied.
    fn admit(block: &mut Block, kept: &mut usize, budget: &mut Budget, size: usize) -> bool {
        block.list_size = block.list_size.saturating_add(size);
        let over_size = *kept + size > MAX_HEADER_LIST || size > budget.bytes;
        if block.fields.len() >= MAX_FIELDS || budget.fields == 0 || over_size {
            block.omitted += 1;
            block.list_truncated |= over_size;
            return false;
        }
        *kept += size;
        budget.bytes -= size;
        budget.fields -= 1;
        true
    }

    fn field(
        &mut self,
        buf: &mut &[u8],
        b: u8,
        block: &mut Block,
        kept: &mut usize,
        budget: &mut Budget,
    ) -> Result<(), HpackError> {
        if b & 0x80 != 0 {
            // §6.1 indexed field: it does not change the table, so past the budget it is
            // skipped without even a lookup.
            let idx = integer(buf, 7)?;
            if budget.references == 0 {
                block.references_skipped += 1;
                block.omitted += 1;
                return Ok(());
            }
            budget.references -= 1;
            match self.lookup(idx)? {
                Some((n, v)) => {
                    if Self::admit(block, kept, budget, n.len() + v.len() + ENTRY_OVERHEAD) {
                        block.fields.push(Field::Known(n.to_string(), v.to_vec()));
                    }
                }
                None => {
                    if Self::admit(block, kept, budget, ENTRY_OVERHEAD) {
                        block
                            .fields
                            .push(Field::Unknown(u32::try_from(idx).unwrap_or(u32::MAX)));
                    }
                }
            }
            return Ok(());
        }
        if b & 0xe0 == 0x20 {
            // §6.3 dynamic table size update: only before the first field.
            if !block.fields.is_empty() {
                return Err(HpackError::LateSizeUpdate);
            }
            let size = integer(buf, 5)?;
            self.set_max(usize::try_from(size).unwrap_or(usize::MAX));
            return Ok(());
        }
        // §6.2 literals: with incremental indexing (01), without (0000), never (0001).
        let (prefix, index) = if b & 0xc0 == 0x40 {
            (6, true)
        } else {
            (4, false)
        };
        let name_idx = integer(buf, prefix)?;
        let (name, name_len): (Option<String>, usize) = if name_idx == 0 {
            let (n, len) = string(buf)?;
            (Some(String::from_utf8_lossy(&n).into_owned()), len)
        } else {
            match self.lookup(name_idx)? {
                Some((n, _)) => (Some(n.to_string()), n.len()),
                None => (None, 0),
            }
        };
        let (value, value_len) = string(buf)?;
        if index {
            // The real size counts (it drives eviction); a cut value is stored cut.
            let pad = value_len.saturating_sub(value.len());
            self.insert(name.as_deref(), name_len + pad, &value);
        }
        let size = name_len + value_len + ENTRY_OVERHEAD;
        if Self::admit(block, kept, budget, size) {
            block.fields.push(match name {
                Some(n) => Field::Known(n, value),
                None => Field::Unknown(u32::try_from(name_idx).unwrap_or(u32::MAX)),
            });
        }
        Ok(())
    }
}

/// §5.1 integer with an `n`-bit prefix; advances `buf`.
pub fn integer(buf: &mut &[u8], n: u32) -> Result<u64, HpackError> {
    let (&first, rest) = buf.split_first().ok_or(HpackError::Truncated)?;
    let mask = ((1u16 << n.min(8)) - 1) as u8;
    let mut v = u64::from(first & mask);
    *buf = rest;
    if v < u64::from(mask) {
        return Ok(v);
    }
    let mut shift = 0u32;
    loop {
        let (&b, rest) = buf.split_first().ok_or(HpackError::Truncated)?;
        *buf = rest;
        v += u64::from(b & 0x7f) << shift;
        if v > u64::from(u32::MAX) {
            return Err(HpackError::IntegerOverflow);
        }
        if b & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
    }
}

/// §5.2 string literal; advances `buf`. Returns the (possibly cut at [`MAX_STRING`])
/// decoded bytes and the full decoded length.
pub fn string(buf: &mut &[u8]) -> Result<(Vec<u8>, usize), HpackError> {
    let huff = buf.first().is_some_and(|b| b & 0x80 != 0);
    let len = usize::try_from(integer(buf, 7)?).map_err(|_| HpackError::Truncated)?;
    if len > buf.len() {
        return Err(HpackError::Truncated);
    }
    let (raw, rest) = buf.split_at(len);
    *buf = rest;
    if huff {
        let mut out = Vec::with_capacity(len.min(MAX_STRING));
        let full = huffman_decode(raw, &mut out)?;
        Ok((out, full))
    } else {
        Ok((raw.get(..len.min(MAX_STRING)).unwrap_or(raw).to_vec(), len))
    }
}

/// Node of the Huffman tree: children indexes, or a leaf `LEAF | symbol`.
const LEAF: u16 = 0x8000;
const NONE: u16 = 0;

fn tree() -> &'static [[u16; 2]] {
    static TREE: OnceLock<Vec<[u16; 2]>> = OnceLock::new();
    TREE.get_or_init(|| {
        let mut t: Vec<[u16; 2]> = vec![[NONE, NONE]];
        for (sym, &(code, len)) in HUFFMAN.iter().enumerate() {
            let mut node = 0usize;
            for i in (0..u32::from(len)).rev() {
                let bit = ((code >> i) & 1) as usize;
                let last = i == 0;
                let next = t
                    .get(node)
                    .and_then(|n| n.get(bit))
                    .copied()
                    .unwrap_or(NONE);
                if last {
                    if let Some(slot) = t.get_mut(node).and_then(|n| n.get_mut(bit)) {
                        *slot = LEAF | sym as u16;
                    }
                } else if next == NONE {
                    let new = t.len() as u16;
                    t.push([NONE, NONE]);
                    if let Some(slot) = t.get_mut(node).and_then(|n| n.get_mut(bit)) {
                        *slot = new;
                    }
                    node = usize::from(new);
                } else {
                    node = usize::from(next);
                }
            }
        }
        t
    })
}

/// Decodes Huffman-coded `raw` into `out` (at most [`MAX_STRING`] bytes kept); returns the
/// full decoded length. Padding must be fewer than 8 one bits (§5.2).
pub fn huffman_decode(raw: &[u8], out: &mut Vec<u8>) -> Result<usize, HpackError> {
    let t = tree();
    let mut node = 0usize;
    let mut depth = 0u32;
    let mut all_ones = true;
    let mut n = 0usize;
    for &byte in raw {
        for i in (0..8).rev() {
            let bit = usize::from((byte >> i) & 1);
            let next = t
                .get(node)
                .and_then(|x| x.get(bit))
                .copied()
                .unwrap_or(NONE);
            if next == NONE {
                // Only EOS's path (all ones past 29 bits) is missing from the tree.
                return Err(HpackError::Huffman);
            }
            depth += 1;
            all_ones &= bit == 1;
            if next & LEAF != 0 {
                if out.len() < MAX_STRING {
                    out.push((next & 0xff) as u8);
                }
                n += 1;
                node = 0;
                depth = 0;
                all_ones = true;
            } else {
                node = usize::from(next);
            }
        }
    }
    if depth > 7 || !all_ones {
        return Err(HpackError::Huffman);
    }
    Ok(n)
}

/// RFC 7541 Appendix A.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// RFC 7541 Appendix B: (code, bit length) of each symbol 0..=255 (EOS, 30 one bits, is left
/// out: it must never be decoded).
const HUFFMAN: [(u32, u8); 256] = [
    (0x1ff8, 13),
    (0x7fffd8, 23),
    (0xfffffe2, 28),
    (0xfffffe3, 28),
    (0xfffffe4, 28),
    (0xfffffe5, 28),
    (0xfffffe6, 28),
    (0xfffffe7, 28),
    (0xfffffe8, 28),
    (0xffffea, 24),
    (0x3ffffffc, 30),
    (0xfffffe9, 28),
    (0xfffffea, 28),
    (0x3ffffffd, 30),
    (0xfffffeb, 28),
    (0xfffffec, 28),
    (0xfffffed, 28),
    (0xfffffee, 28),
    (0xfffffef, 28),
    (0xffffff0, 28),
    (0xffffff1, 28),
    (0xffffff2, 28),
    (0x3ffffffe, 30),
    (0xffffff3, 28),
    (0xffffff4, 28),
    (0xffffff5, 28),
    (0xffffff6, 28),
    (0xffffff7, 28),
    (0xffffff8, 28),
    (0xffffff9, 28),
    (0xffffffa, 28),
    (0xffffffb, 28),
    (0x14, 6),
    (0x3f8, 10),
    (0x3f9, 10),
    (0xffa, 12),
    (0x1ff9, 13),
    (0x15, 6),
    (0xf8, 8),
    (0x7fa, 11),
    (0x3fa, 10),
    (0x3fb, 10),
    (0xf9, 8),
    (0x7fb, 11),
    (0xfa, 8),
    (0x16, 6),
    (0x17, 6),
    (0x18, 6),
    (0x0, 5),
    (0x1, 5),
    (0x2, 5),
    (0x19, 6),
    (0x1a, 6),
    (0x1b, 6),
    (0x1c, 6),
    (0x1d, 6),
    (0x1e, 6),
    (0x1f, 6),
    (0x5c, 7),
    (0xfb, 8),
    (0x7ffc, 15),
    (0x20, 6),
    (0xffb, 12),
    (0x3fc, 10),
    (0x1ffa, 13),
    (0x21, 6),
    (0x5d, 7),
    (0x5e, 7),
    (0x5f, 7),
    (0x60, 7),
    (0x61, 7),
    (0x62, 7),
    (0x63, 7),
    (0x64, 7),
    (0x65, 7),
    (0x66, 7),
    (0x67, 7),
    (0x68, 7),
    (0x69, 7),
    (0x6a, 7),
    (0x6b, 7),
    (0x6c, 7),
    (0x6d, 7),
    (0x6e, 7),
    (0x6f, 7),
    (0x70, 7),
    (0x71, 7),
    (0x72, 7),
    (0xfc, 8),
    (0x73, 7),
    (0xfd, 8),
    (0x1ffb, 13),
    (0x7fff0, 19),
    (0x1ffc, 13),
    (0x3ffc, 14),
    (0x22, 6),
    (0x7ffd, 15),
    (0x3, 5),
    (0x23, 6),
    (0x4, 5),
    (0x24, 6),
    (0x5, 5),
    (0x25, 6),
    (0x26, 6),
    (0x27, 6),
    (0x6, 5),
    (0x74, 7),
    (0x75, 7),
    (0x28, 6),
    (0x29, 6),
    (0x2a, 6),
    (0x7, 5),
    (0x2b, 6),
    (0x76, 7),
    (0x2c, 6),
    (0x8, 5),
    (0x9, 5),
    (0x2d, 6),
    (0x77, 7),
    (0x78, 7),
    (0x79, 7),
    (0x7a, 7),
    (0x7b, 7),
    (0x7ffe, 15),
    (0x7fc, 11),
    (0x3ffd, 14),
    (0x1ffd, 13),
    (0xffffffc, 28),
    (0xfffe6, 20),
    (0x3fffd2, 22),
    (0xfffe7, 20),
    (0xfffe8, 20),
    (0x3fffd3, 22),
    (0x3fffd4, 22),
    (0x3fffd5, 22),
    (0x7fffd9, 23),
    (0x3fffd6, 22),
    (0x7fffda, 23),
    (0x7fffdb, 23),
    (0x7fffdc, 23),
    (0x7fffdd, 23),
    (0x7fffde, 23),
    (0xffffeb, 24),
    (0x7fffdf, 23),
    (0xffffec, 24),
    (0xffffed, 24),
    (0x3fffd7, 22),
    (0x7fffe0, 23),
    (0xffffee, 24),
    (0x7fffe1, 23),
    (0x7fffe2, 23),
    (0x7fffe3, 23),
    (0x7fffe4, 23),
    (0x1fffdc, 21),
    (0x3fffd8, 22),
    (0x7fffe5, 23),
    (0x3fffd9, 22),
    (0x7fffe6, 23),
    (0x7fffe7, 23),
    (0xffffef, 24),
    (0x3fffda, 22),
    (0x1fffdd, 21),
    (0xfffe9, 20),
    (0x3fffdb, 22),
    (0x3fffdc, 22),
    (0x7fffe8, 23),
    (0x7fffe9, 23),
    (0x1fffde, 21),
    (0x7fffea, 23),
    (0x3fffdd, 22),
    (0x3fffde, 22),
    (0xfffff0, 24),
    (0x1fffdf, 21),
    (0x3fffdf, 22),
    (0x7fffeb, 23),
    (0x7fffec, 23),
    (0x1fffe0, 21),
    (0x1fffe1, 21),
    (0x3fffe0, 22),
    (0x1fffe2, 21),
    (0x7fffed, 23),
    (0x3fffe1, 22),
    (0x7fffee, 23),
    (0x7fffef, 23),
    (0xfffea, 20),
    (0x3fffe2, 22),
    (0x3fffe3, 22),
    (0x3fffe4, 22),
    (0x7ffff0, 23),
    (0x3fffe5, 22),
    (0x3fffe6, 22),
    (0x7ffff1, 23),
    (0x3ffffe0, 26),
    (0x3ffffe1, 26),
    (0xfffeb, 20),
    (0x7fff1, 19),
    (0x3fffe7, 22),
    (0x7ffff2, 23),
    (0x3fffe8, 22),
    (0x1ffffec, 25),
    (0x3ffffe2, 26),
    (0x3ffffe3, 26),
    (0x3ffffe4, 26),
    (0x7ffffde, 27),
    (0x7ffffdf, 27),
    (0x3ffffe5, 26),
    (0xfffff1, 24),
    (0x1ffffed, 25),
    (0x7fff2, 19),
    (0x1fffe3, 21),
    (0x3ffffe6, 26),
    (0x7ffffe0, 27),
    (0x7ffffe1, 27),
    (0x3ffffe7, 26),
    (0x7ffffe2, 27),
    (0xfffff2, 24),
    (0x1fffe4, 21),
    (0x1fffe5, 21),
    (0x3ffffe8, 26),
    (0x3ffffe9, 26),
    (0xffffffd, 28),
    (0x7ffffe3, 27),
    (0x7ffffe4, 27),
    (0x7ffffe5, 27),
    (0xfffec, 20),
    (0xfffff3, 24),
    (0xfffed, 20),
    (0x1fffe6, 21),
    (0x3fffe9, 22),
    (0x1fffe7, 21),
    (0x1fffe8, 21),
    (0x7ffff3, 23),
    (0x3fffea, 22),
    (0x3fffeb, 22),
    (0x1ffffee, 25),
    (0x1ffffef, 25),
    (0xfffff4, 24),
    (0xfffff5, 24),
    (0x3ffffea, 26),
    (0x7ffff4, 23),
    (0x3ffffeb, 26),
    (0x7ffffe6, 27),
    (0x3ffffec, 26),
    (0x3ffffed, 26),
    (0x7ffffe7, 27),
    (0x7ffffe8, 27),
    (0x7ffffe9, 27),
    (0x7ffffea, 27),
    (0x7ffffeb, 27),
    (0xffffffe, 28),
    (0x7ffffec, 27),
    (0x7ffffed, 27),
    (0x7ffffee, 27),
    (0x7ffffef, 27),
    (0x7fffff0, 27),
    (0x3ffffee, 26),
];

#[cfg(test)]
mod tests {
    use super::*;
    use testbed::synth::hpack_literal as encode_literal;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn known(b: &Block) -> Vec<(String, String)> {
        b.known()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v).into_owned()))
            .collect()
    }

    #[test]
    fn integers_rfc_c1() {
        assert_eq!(integer(&mut &[0b0000_1010u8][..], 5), Ok(10));
        assert_eq!(integer(&mut &[0x1f, 0x9a, 0x0a][..], 5), Ok(1337));
        assert_eq!(integer(&mut &[0x2a][..], 8), Ok(42));
        assert_eq!(
            integer(&mut &[0x1f, 0x9a][..], 5),
            Err(HpackError::Truncated)
        );
        assert_eq!(
            integer(&mut &[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f][..], 5),
            Err(HpackError::IntegerOverflow)
        );
    }

    /// RFC 7541 C.4: requests with Huffman coding, one decoder across three blocks.
    #[test]
    fn rfc_c4_huffman_requests() {
        let mut d = Decoder::default();
        let b = d.decode(&hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"));
        assert_eq!(b.error, None);
        assert_eq!(
            known(&b),
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(d.size(), 57);
        let b = d.decode(&hex("8286 84be 5886 a8eb 1064 9cbf"));
        assert_eq!(b.get("cache-control"), Some(&b"no-cache"[..]));
        assert_eq!(b.get(":authority"), Some(&b"www.example.com"[..]));
        let b = d.decode(&hex(
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ));
        assert_eq!(b.get("custom-key"), Some(&b"custom-value"[..]));
        assert_eq!(b.get(":scheme"), Some(&b"https"[..]));
        assert_eq!(d.size(), 164);
        assert_eq!(d.len(), 3);
    }

    /// RFC 7541 C.6: responses with Huffman coding and a 256-byte table (eviction).
    #[test]
    fn rfc_c6_eviction() {
        let mut d = Decoder::default();
        d.set_max(256);
        d.decode(&hex(
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        ));
        assert_eq!(d.size(), 222);
        let b = d.decode(&hex("4883 640e ffc1 c0bf"));
        assert_eq!(b.get(":status"), Some(&b"307"[..]));
        assert_eq!(b.get("location"), Some(&b"https://www.example.com"[..]));
        assert_eq!(d.size(), 222);
    }

    #[test]
    fn unsynced_marks_unknown_dynamic_refs_and_drops_unknown_named_values() {
        let mut d = Decoder::new(true);
        // Indexed 62 (unknown), static :method GET, literal with indexing of name index
        // 63 (unknown) = "secret", literal new name.
        let mut blk = vec![0xbe, 0x82, 0x7f, 0x00, 6];
        blk.extend_from_slice(b"secret");
        blk.extend_from_slice(&[0x00, 1, b'x', 1, b'y']);
        let b = d.decode(&blk);
        assert_eq!(b.error, None);
        assert_eq!(b.unknown().collect::<Vec<_>>(), [62, 63]);
        assert_eq!(
            known(&b),
            [(":method".into(), "GET".into()), ("x".into(), "y".into())]
        );
        assert!(!format!("{b:?}").contains("secret"));
        // Entries added after joining are known at their indexes.
        let b = d.decode(&[0x40, 1, b'k', 1, b'v', 0xbe, 0xbf]);
        assert_eq!(b.get("k"), Some(&b"v"[..]));
        assert_eq!(
            b.fields.get(1),
            Some(&Field::Known("k".into(), b"v".to_vec()))
        );
        assert_eq!(b.fields.get(2), Some(&Field::Unknown(63)));
        // A synced decoder calls the same reference an error.
        let mut s = Decoder::new(false);
        assert_eq!(s.decode(&[0xbe]).error, Some(HpackError::BadIndex));
        assert!(s.unsynced, "a failed block loses the table");
    }

    #[test]
    fn bad_huffman_and_caps() {
        let mut out = Vec::new();
        // EOS (30 ones) is an error; so is padding of 8+ bits or with a zero.
        assert_eq!(
            huffman_decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(HpackError::Huffman)
        );
        assert_eq!(huffman_decode(&[0x00], &mut out), Err(HpackError::Huffman));
        // Size updates are capped.
        let mut d = Decoder::default();
        d.decode(&[0x3f, 0xe1, 0xff, 0x03]);
        assert_eq!(d.max, MAX_TABLE_SIZE);
        for i in 0..5000u32 {
            let v = i.to_string();
            let mut blk = vec![0x40, 4, b'n', b'a', b'm', b'e', v.len() as u8];
            blk.extend_from_slice(v.as_bytes());
            d.decode(&blk);
            assert!(d.size() <= MAX_TABLE_SIZE);
        }
        // An update after a field is an error.
        let mut d = Decoder::default();
        assert_eq!(
            d.decode(&[0x82, 0x20]).error,
            Some(HpackError::LateSizeUpdate)
        );
    }

    /// Random blocks (fixed seed) never panic and never grow the table past its cap.
    #[test]
    fn random_blocks_never_panic() {
        let mut rng = testbed::rng::Rng::new(0x1234_5678_9abc_def1);
        let mut d = [Decoder::new(false), Decoder::new(true)];
        for i in 0..50_000 {
            let len = (i % 64) + 1;
            let mut blk = vec![0u8; len];
            rng.fill(&mut blk);
            let dec = &mut d[i % 2];
            let b = dec.decode(&blk);
            assert!(b.fields.len() <= MAX_FIELDS);
            assert!(dec.size() <= MAX_TABLE_SIZE);
        }
    }

    /// 128 one-byte references to a 16 KB entry decode to 2 MB unless the
    /// decoded list is capped; the cap must not desynchronise the table.
    #[test]
    fn hpack_bomb_is_capped_before_copying_and_the_table_stays_in_sync() {
        let mut d = Decoder::default();
        let mut first = vec![0x3f, 0xe1, 0xff, 0x03];
        encode_literal(&mut first, "x-bomb", &[b'a'; 16_000], true);
        let b = d.decode(&first);
        assert_eq!(b.error, None);
        assert_eq!(d.len(), 1);
        let bomb = [0xbe; 128];
        let b = d.decode(&bomb);
        assert_eq!(b.error, None);
        let kept: usize = b
            .known()
            .map(|(n, v)| n.len() + v.len() + ENTRY_OVERHEAD)
            .sum();
        assert!(kept <= MAX_HEADER_LIST, "{kept}");
        assert_eq!(b.fields.len(), MAX_HEADER_LIST / (16_000 + 6 + 32));
        assert_eq!(b.omitted, 128 - b.fields.len());
        assert!(b.list_truncated);
        assert_eq!(b.list_size, 128 * (16_000 + 6 + 32));
        // A segment's budget spans blocks: the second block keeps what the first left.
        let mut budget = Budget::SEGMENT;
        let kept_first = d.decode_within(&bomb, &mut budget).fields.len();
        let kept_second = d.decode_within(&bomb, &mut budget).fields.len();
        let kept_third = d.decode_within(&bomb, &mut budget).fields.len();
        assert_eq!(kept_first, kept_second);
        assert_eq!(kept_third, 0, "{budget:?}");
        // References past the budget are skipped, not looked up.
        budget.references = 0;
        let b = d.decode_within(&bomb, &mut budget);
        assert_eq!(b.references_skipped, 128);
        assert!(b.fields.is_empty());
        // The table is still in sync: a new literal and the old entry resolve.
        let b = d.decode(&[0x40, 1, b'k', 1, b'v', 0xbe, 0xbf]);
        assert_eq!(b.get("k"), Some(&b"v"[..]));
        assert_eq!(b.fields.len(), 3);
        assert!(!d.unsynced);
    }
}

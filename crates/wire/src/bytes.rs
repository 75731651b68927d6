//! Bounds-checked reads. Every getter of every view reads through these, so a getter can never
//! panic, even on a buffer shorter than its `check_len` promised (it then reads zeros).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

#[inline]
pub(crate) fn u8_at(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at.wrapping_add(2)) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at.wrapping_add(4)) {
        Some(&[w, x, y, z]) => u32::from_be_bytes([w, x, y, z]),
        _ => 0,
    }
}

#[inline]
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at.wrapping_add(4)) {
        Some(&[w, x, y, z]) => u32::from_le_bytes([w, x, y, z]),
        _ => 0,
    }
}

#[inline]
pub(crate) fn ipv4(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::from(be32(b, at))
}

#[inline]
pub(crate) fn ipv6(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    if let Some(s) = b.get(at..at.wrapping_add(16)) {
        a.copy_from_slice(s);
    }
    Ipv6Addr::from(a)
}

/// `b[from..to]` clamped to the buffer: never panics, returns what exists.
#[inline]
pub(crate) fn slice(b: &[u8], from: usize, to: usize) -> &[u8] {
    let to = to.min(b.len());
    b.get(from.min(to)..to).unwrap_or(&[])
}

/// `b[from..]`, empty when `from` is past the end.
#[inline]
pub(crate) fn tail(b: &[u8], from: usize) -> &[u8] {
    b.get(from..).unwrap_or(&[])
}

/// Lowercase hex of a byte string, written without allocating (`Display`).
#[derive(Clone, Copy)]
pub struct Hex<'a>(pub &'a [u8]);

/// Wraps bytes so that `Display` prints them as lowercase hex.
pub fn hex(b: &[u8]) -> Hex<'_> {
    Hex(b)
}

fn digit(n: u8) -> u8 {
    if n < 10 {
        b'0' + n
    } else {
        b'a' + (n & 0xf) - 10
    }
}

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        for chunk in self.0.chunks(32) {
            let mut n = 0;
            for &byte in chunk {
                if let Some(pair) = buf.get_mut(n..n + 2) {
                    pair.copy_from_slice(&[digit(byte >> 4), digit(byte & 0xf)]);
                }
                n += 2;
            }
            // Only ASCII hex digits were written.
            f.write_str(std::str::from_utf8(slice(&buf, 0, n)).unwrap_or(""))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_never_panic() {
        let b = [1u8, 2, 3];
        assert_eq!(be16(&b, 1), 0x0203);
        assert_eq!(be16(&b, 2), 0);
        assert_eq!(be32(&b, usize::MAX), 0);
        assert_eq!(slice(&b, 2, 10), &[3]);
        assert_eq!(slice(&b, 5, 1), &[] as &[u8]);
        assert_eq!(tail(&b, 9), &[] as &[u8]);
        assert_eq!(hex(&[0x00, 0xab, 0x10]).to_string(), "00ab10");
        assert_eq!(hex(&[0x5a; 40]).to_string().len(), 80);
    }
}

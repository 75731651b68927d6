//! Allocation-free, `core::fmt`-free formatting of the values every entry carries (IPv4
//! addresses, decimal ids, the date): `Display` goes through `core::fmt`'s machinery, which
//! showed up as a third of the translation time in profiles.

use std::fmt::{self, Write};
use std::net::{IpAddr, Ipv4Addr};

use serde::{Serialize, Serializer};

/// A short string built on the stack.
#[derive(Clone, Copy)]
pub(crate) struct StackStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackStr<N> {
    pub(crate) fn new() -> Self {
        StackStr {
            buf: [0; N],
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let end = (self.len + bytes.len()).min(N);
        if let (Some(dst), Some(src)) =
            (self.buf.get_mut(self.len..end), bytes.get(..end - self.len))
        {
            dst.copy_from_slice(src);
        }
        self.len = end;
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only whole UTF-8 strings are pushed (ASCII digits, or `fmt` output that fit).
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl<const N: usize> Write for StackStr<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.len + s.len() > N {
            return Err(fmt::Error);
        }
        self.push(s.as_bytes());
        Ok(())
    }
}

impl<const N: usize> Serialize for StackStr<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<const N: usize> fmt::Display for StackStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Up to 3 digits of a byte.
fn push_u8<const N: usize>(out: &mut StackStr<N>, v: u8) {
    if v >= 100 {
        out.push(&[b'0' + v / 100, b'0' + (v / 10) % 10, b'0' + v % 10]);
    } else if v >= 10 {
        out.push(&[b'0' + v / 10, b'0' + v % 10]);
    } else {
        out.push(&[b'0' + v]);
    }
}

fn push_ipv4<const N: usize>(out: &mut StackStr<N>, a: Ipv4Addr) {
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b".");
        }
        push_u8(out, o);
    }
}

/// An address as text (IPv6 falls back to std's formatting, into the stack buffer).
pub(crate) fn ip(a: IpAddr) -> StackStr<48> {
    let mut s = StackStr::new();
    match a {
        IpAddr::V4(v4) => push_ipv4(&mut s, v4),
        IpAddr::V6(v6) => {
            let _ = write!(s, "{v6}");
        }
    }
    s
}

/// `a->b` for two addresses.
pub(crate) fn ip_arrow(a: IpAddr, b: IpAddr) -> StackStr<100> {
    let mut s = StackStr::new();
    s.push(ip(a).as_str().as_bytes());
    s.push(b"->");
    s.push(ip(b).as_str().as_bytes());
    s
}

/// A decimal number as text.
pub(crate) fn dec(n: u64) -> StackStr<20> {
    let mut s = StackStr::new();
    s.push(itoa::Buffer::new().format(n).as_bytes());
    s
}

/// `a->b` for two ports.
pub(crate) fn port_arrow(a: u16, b: u16) -> StackStr<16> {
    let mut s = StackStr::new();
    let mut buf = itoa::Buffer::new();
    s.push(buf.format(a).as_bytes());
    s.push(b"->");
    s.push(buf.format(b).as_bytes());
    s
}

fn push_2(out: &mut StackStr<30>, v: u32) {
    out.push(&[b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8]);
}

/// RFC 3339 UTC with exactly nine fractional digits (`2025-01-20T10:15:30.123456789Z`):
/// fixed width, so the text sorts like the time.
pub(crate) fn rfc3339(t: &chrono::DateTime<chrono::Utc>) -> StackStr<30> {
    use chrono::{Datelike, Timelike};
    let mut s = StackStr::new();
    let year = t.year();
    if (0..=9999).contains(&year) {
        let y = year as u32;
        push_2(&mut s, y / 100);
        push_2(&mut s, y % 100);
    } else {
        let _ = write!(s, "{year:04}");
    }
    s.push(b"-");
    push_2(&mut s, t.month());
    s.push(b"-");
    push_2(&mut s, t.day());
    s.push(b"T");
    push_2(&mut s, t.hour());
    s.push(b":");
    push_2(&mut s, t.minute());
    s.push(b":");
    // Leap seconds are carried in the nanoseconds by chrono: keep the width fixed.
    push_2(&mut s, t.second());
    s.push(b".");
    let nanos = t.timestamp_subsec_nanos() % 1_000_000_000;
    let mut digits = [b'0'; 9];
    let mut n = nanos;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    s.push(&digits);
    s.push(b"Z");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_like_std() {
        for a in ["0.0.0.0", "10.77.0.1", "255.255.255.255", "192.168.100.9"] {
            assert_eq!(ip(a.parse().unwrap()).as_str(), a);
        }
        assert_eq!(ip("fd77::1".parse().unwrap()).as_str(), "fd77::1");
        let long = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
        assert_eq!(
            ip(long.parse().unwrap()).as_str(),
            long.parse::<IpAddr>().unwrap().to_string()
        );
        assert_eq!(dec(u64::MAX).as_str(), u64::MAX.to_string());
        assert_eq!(port_arrow(1, 65535).as_str(), "1->65535");
        let t = chrono::Utc
            .timestamp_opt(1_737_368_130, 123_456_789)
            .unwrap();
        assert_eq!(rfc3339(&t).as_str(), "2025-01-20T10:15:30.123456789Z");
        let t = chrono::Utc.timestamp_opt(0, 5).unwrap();
        assert_eq!(rfc3339(&t).as_str(), "1970-01-01T00:00:00.000000005Z");
    }
}

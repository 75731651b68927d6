//! Redaction of secret HTTP header values: `Authorization`,
//! `Proxy-Authorization`, `Cookie`, `Set-Cookie` and the names of
//! `TranslatorSettings::redact_headers` are replaced by [`MARKER`] in parsed headers, in the
//! raw message sample, and in text samples of opaque payloads (a capture that starts inside
//! a header block).

use std::borrow::Cow;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// What a secret value is replaced by.
pub(crate) const MARKER: &str = crate::fields::REDACTED;

const ALWAYS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Parsed header fields as the `headers` object (HTTP/1.1 and HTTP/2): names as sent, values
/// grouped by name in order of first appearance, secret values replaced by [`MARKER`].
pub(crate) struct HeaderFields<'a, N, V> {
    pub fields: &'a [(N, V)],
    pub redact: &'a Redactor,
    /// Group names in any case: HTTP/1.1 names are case-insensitive; HTTP/2 names are
    /// lowercase on the wire and grouped as decoded.
    pub ignore_case: bool,
}

impl<N: AsRef<str>, V: AsRef<[u8]>> Serialize for HeaderFields<'_, N, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let same = |a: &str, b: &str| {
            if self.ignore_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        let mut m = s.serialize_map(None)?;
        for (i, (name, _)) in self.fields.iter().enumerate() {
            let name = name.as_ref();
            if self
                .fields
                .iter()
                .take(i)
                .any(|(n, _)| same(n.as_ref(), name))
            {
                continue;
            }
            let secret = self.redact.is_secret(name);
            let values: Vec<Cow<'_, str>> = self
                .fields
                .iter()
                .filter(|(n, _)| same(n.as_ref(), name))
                .map(|(_, v)| {
                    if secret {
                        Cow::Borrowed(MARKER)
                    } else {
                        String::from_utf8_lossy(v.as_ref())
                    }
                })
                .collect();
            m.serialize_entry(name, &values)?;
        }
        m.end()
    }
}

/// The set of header names whose values never leave the translator.
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    extra: Vec<String>,
}

impl Redactor {
    pub(crate) fn new(extra: &[String]) -> Self {
        Redactor {
            extra: extra
                .iter()
                .map(|n| n.trim().to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    /// `name` (any case, surrounding blanks ignored) is a secret header.
    pub(crate) fn is_secret(&self, name: &str) -> bool {
        let name = name.trim();
        ALWAYS.iter().any(|n| name.eq_ignore_ascii_case(n))
            || self.extra.iter().any(|n| name.eq_ignore_ascii_case(n))
    }

    /// `text` with the value of every `Name: value` line naming a secret header (and its
    /// obsolete folded continuation lines) replaced by the marker.
    pub(crate) fn lines<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let needs = text.split('\n').any(|l| self.secret_line(l));
        if !needs {
            return Cow::Borrowed(text);
        }
        Cow::Owned(self.lines_after(text, false))
    }

    /// A text sample of a payload that may start anywhere (a capture joined mid-message, a
    /// lost segment): its first line may be the end of a secret value, or of a secret
    /// header's name ("ization: Bearer …"), so it is replaced by the marker unless it is an
    /// HTTP start line or names a secret header whole; lines folded under it too. The other
    /// lines as [`Self::lines`].
    pub(crate) fn sample<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let (first, rest) = match text.split_once('\n') {
            Some((f, r)) => (f, Some(r)),
            None => (text, None),
        };
        let body = first.strip_suffix('\r').unwrap_or(first);
        let named_secret = body.split_once(':').is_some_and(|(n, _)| self.is_secret(n));
        if body.is_empty() || named_secret || is_start_line(body) {
            return self.lines(text);
        }
        let mut out = String::from(MARKER);
        if first.ends_with('\r') {
            out.push('\r');
        }
        if let Some(rest) = rest {
            out.push('\n');
            out.push_str(&self.lines_after(rest, true));
        }
        Cow::Owned(out)
    }

    /// [`Self::lines`], the text following a secret line when `in_secret`.
    fn lines_after(&self, text: &str, mut in_secret: bool) -> String {
        let mut out = String::with_capacity(text.len());
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let (body, cr) = match line.strip_suffix('\r') {
                Some(b) => (b, "\r"),
                None => (line, ""),
            };
            let folded = body.starts_with([' ', '\t']);
            if folded && in_secret {
                out.push(' ');
                out.push_str(MARKER);
                out.push_str(cr);
                continue;
            }
            in_secret = false;
            match body.split_once(':') {
                Some((name, _)) if self.is_secret(name) => {
                    in_secret = true;
                    out.push_str(name);
                    out.push_str(": ");
                    out.push_str(MARKER);
                }
                _ => out.push_str(body),
            }
            out.push_str(cr);
        }
        out
    }

    fn secret_line(&self, line: &str) -> bool {
        line.split_once(':').is_some_and(|(n, _)| self.is_secret(n))
            || line.starts_with([' ', '\t'])
    }

    /// A raw HTTP message sample as text: its header part (the first `header_len` bytes)
    /// redacted line by line, the body part as it is (lossy UTF-8).
    pub(crate) fn raw(&self, raw: &[u8], header_len: usize) -> String {
        let cut = header_len.min(raw.len());
        let (head, body) = raw.split_at(cut);
        let head = String::from_utf8_lossy(head);
        let mut out = self.lines(&head).into_owned();
        out.push_str(&String::from_utf8_lossy(body));
        out
    }
}

/// An HTTP/1.x request line (`METHOD target HTTP/1.x`) or status line (`HTTP/1.x …`): no
/// header value can be in it.
fn is_start_line(line: &str) -> bool {
    if line.starts_with("HTTP/1.") {
        return true;
    }
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or_default();
    let version = line.rsplit(' ').next().unwrap_or_default();
    !method.is_empty()
        && method.len() <= 20
        && method.bytes().all(|b| b.is_ascii_uppercase() || b == b'-')
        && line.matches(' ').count() == 2
        && version.starts_with("HTTP/1.")
        && version.len() == 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_secret_headers_are_replaced() {
        let r = Redactor::new(&["X-Api-Key".into()]);
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\nauthorization: Bearer S1\r\n  folded S2\r\nCookie:S3\r\nx-api-key: S4\r\nAccept: */*\r\n\r\nbody";
        let out = r.raw(raw, raw.len() - 4);
        for s in ["S1", "S2", "S3", "S4"] {
            assert!(!out.contains(s), "{s} in {out}");
        }
        assert!(out.contains("authorization: [REDACTED]\r\n"));
        assert!(out.contains("Accept: */*\r\n"));
        assert!(out.ends_with("\r\n\r\nbody"));
        assert!(r.is_secret(" Set-Cookie"));
        assert!(!r.is_secret("Accept"));
        assert!(matches!(r.lines("plain text"), Cow::Borrowed(_)));
    }

    #[test]
    fn samples_that_may_start_mid_value_lose_their_first_line() {
        let r = Redactor::new(&["X-Api-Key".into()]);
        // Starts inside a secret header's name, then inside a value with a folded line.
        for text in [
            "ization: Bearer S1\r\nAccept: */*\r\n",
            "S1-rest\r\n  folded S2\r\nAccept: */*",
            "only-part-of-a-value S1",
        ] {
            let out = r.sample(text);
            assert!(!out.contains("S1") && !out.contains("S2"), "{out}");
            assert!(out.starts_with(MARKER), "{out}");
        }
        assert_eq!(
            r.sample("ization: x\r\nAccept: */*\r\n"),
            "[REDACTED]\r\nAccept: */*\r\n"
        );
        // Start lines and whole secret header lines keep their shape.
        assert_eq!(
            r.sample("GET / HTTP/1.1\r\nHost: h"),
            "GET / HTTP/1.1\r\nHost: h"
        );
        assert_eq!(r.sample("HTTP/1.1 200 OK\r\n"), "HTTP/1.1 200 OK\r\n");
        assert_eq!(
            r.sample("x-api-key: S4\r\nA: b"),
            "x-api-key: [REDACTED]\r\nA: b"
        );
    }

    #[test]
    fn header_fields_group_by_name_and_redact_secrets() {
        let r = Redactor::new(&["x-api-key".into()]);
        let fields: [(&str, &[u8]); 5] = [
            ("X-Dup", b"one"),
            ("Cookie", b"c=1"),
            ("x-dup", b"two"),
            ("cookie", b"d=2"),
            ("X-Api-Key", b"k"),
        ];
        let json = |ignore_case| {
            serde_json::to_string(&HeaderFields {
                fields: &fields,
                redact: &r,
                ignore_case,
            })
            .unwrap_or_default()
        };
        // HTTP/1.1: names in any case are one header, spelled as first sent.
        assert_eq!(
            json(true),
            r#"{"X-Dup":["one","two"],"Cookie":["[REDACTED]","[REDACTED]"],"X-Api-Key":["[REDACTED]"]}"#
        );
        // HTTP/2: grouped as decoded.
        assert_eq!(
            json(false),
            r#"{"X-Dup":["one"],"Cookie":["[REDACTED]"],"x-dup":["two"],"cookie":["[REDACTED]"],"X-Api-Key":["[REDACTED]"]}"#
        );
    }
}

//! Redaction of secret HTTP header values: `Authorization`,
//! `Proxy-Authorization`, `Cookie`, `Set-Cookie` and the names of
//! `TranslatorSettings::redact_headers` are replaced by [`MARKER`] in parsed headers, in the
//! raw message sample, and in text samples of opaque payloads (a capture that starts inside
//! a header block).

use std::borrow::Cow;

/// What a secret value is replaced by.
pub(crate) const MARKER: &str = crate::fields::REDACTED;

const ALWAYS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

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
        let mut out = String::with_capacity(text.len());
        let mut in_secret = false;
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
        Cow::Owned(out)
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
}

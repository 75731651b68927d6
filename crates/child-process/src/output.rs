//! A child's stdout/stderr: inherited, discarded, or wrapped into Cloud Logging lines.
//!
//! Wrapped streams are read line by line on a thread per stream. A line that is already a
//! JSON object (another daemon of ours) is written through unchanged; any other line (tcpdump,
//! gcsfuse) becomes a structured line with the program's name, at a severity guessed from its
//! words. Lines are capped in length so a binary stream cannot grow memory.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sidecar_core::log::{self, Severity};

/// Longest line kept; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 16 * 1024;
const RECENT_LINES: usize = 20;

/// What to do with one of the child's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamHandling {
    /// The child writes straight into ours (fastest; for streams already in our format).
    Inherit,
    /// Read and re-emit as log lines (see the module docs).
    Wrap,
    /// Discard.
    Null,
}

impl StreamHandling {
    pub(crate) fn stdio(self) -> Stdio {
        match self {
            StreamHandling::Inherit => Stdio::inherit(),
            StreamHandling::Wrap => Stdio::piped(),
            StreamHandling::Null => Stdio::null(),
        }
    }
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A line a child printed, as sent to a tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// The child's name.
    pub program: String,
    /// Its stream.
    pub stream: Stream,
    /// The text, without the newline.
    pub text: String,
}

/// The last lines of a child, for the "why did it die" report.
#[derive(Debug, Default)]
pub(crate) struct Recent(VecDeque<String>);

impl Recent {
    fn push(&mut self, line: &str) {
        if self.0.len() == RECENT_LINES {
            self.0.pop_front();
        }
        self.0.push_back(line.to_string());
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

#[derive(Serialize)]
struct ChildLine<'a> {
    program: &'a str,
    stream: Stream,
}

/// Severity of a foreign log line, from its words.
pub fn guess_severity(line: &str) -> Severity {
    let lower = line.to_ascii_lowercase();
    if ["fatal", "panic", "critical"]
        .iter()
        .any(|w| lower.contains(w))
    {
        Severity::Critical
    } else if [
        "error",
        "failed",
        "cannot",
        "can't",
        "permission denied",
        "no such",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        Severity::Error
    } else if lower.contains("warn") {
        Severity::Warning
    } else {
        Severity::Info
    }
}

fn is_json_object(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.starts_with('{')
        && trimmed.ends_with('}')
        && serde_json::from_str::<serde_json::Value>(trimmed).is_ok_and(|v| v.is_object())
}

/// Re-emits one line of `program`'s output on our stdout.
pub fn emit(program: &str, stream: Stream, line: &str) {
    if is_json_object(line) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.trim().as_bytes());
        let _ = out.write_all(b"\n");
    } else if !line.trim().is_empty() {
        log::event(
            guess_severity(line),
            line.trim_end(),
            &ChildLine { program, stream },
        );
    }
}

pub(crate) fn forward(
    program: &str,
    stream: Stream,
    pipe: impl Read + Send + 'static,
    tap: Option<Sender<OutputLine>>,
    recent: Arc<Mutex<Recent>>,
    quiet: Option<fn(&str) -> bool>,
) {
    let name = program.to_string();
    let program = program.to_string();
    let spawned = std::thread::Builder::new()
        .name(format!("{name}-{stream:?}"))
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut buffer = Vec::with_capacity(256);
            loop {
                buffer.clear();
                match read_capped_line(&mut reader, &mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&buffer);
                let text = text.trim_end_matches(['\n', '\r']);
                if quiet.is_none_or(|quiet| !quiet(text)) {
                    if let Ok(mut recent) = recent.lock() {
                        recent.push(text);
                    }
                    emit(&program, stream, text);
                }
                if let Some(tap) = &tap {
                    let _ = tap.send(OutputLine {
                        program: program.clone(),
                        stream,
                        text: text.to_string(),
                    });
                }
            }
        });
    if let Err(error) = spawned {
        log::error(&format!("cannot read the output of {name}: {error}"));
    }
}

/// Reads one line, keeping at most [`MAX_LINE`] bytes of it. Returns bytes consumed.
fn read_capped_line(reader: &mut impl BufRead, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut consumed = 0;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(consumed);
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let room = MAX_LINE.saturating_sub(buffer.len());
        buffer.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len();
        reader.consume(used);
        consumed += used;
        if done {
            return Ok(consumed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_from_words() {
        assert_eq!(
            guess_severity("tcpdump: listening on eth0, link-type EN10MB"),
            Severity::Info
        );
        assert_eq!(
            guess_severity("tcpdump: eth9: No such device exists"),
            Severity::Error
        );
        assert_eq!(guess_severity("WARNING: low disk"), Severity::Warning);
        assert_eq!(guess_severity("panic: runtime error"), Severity::Critical);
    }

    #[test]
    fn json_objects_are_recognised() {
        assert!(is_json_object(r#"{"severity":"INFO","message":"x"}"#));
        assert!(!is_json_object("{not json}"));
        assert!(!is_json_object("[1,2]"));
        assert!(!is_json_object("plain text"));
    }

    #[test]
    fn long_lines_are_capped_and_the_rest_skipped() {
        let mut data = vec![b'a'; MAX_LINE * 3];
        data.extend_from_slice(b"\nnext\n");
        let mut reader = BufReader::with_capacity(1000, &data[..]);
        let mut line = Vec::new();
        read_capped_line(&mut reader, &mut line).unwrap();
        assert_eq!(line.len(), MAX_LINE);
        line.clear();
        read_capped_line(&mut reader, &mut line).unwrap();
        assert_eq!(line, b"next\n");
    }

    #[test]
    fn recent_keeps_the_last_lines() {
        let mut recent = Recent::default();
        for i in 0..30 {
            recent.push(&i.to_string());
        }
        let lines = recent.lines();
        assert_eq!(lines.len(), RECENT_LINES);
        assert_eq!(lines.last().map(String::as_str), Some("29"));
    }
}

//! Cloud Logging structured log lines: one JSON object per line on stdout.
//!
//! Every line has `severity` (Cloud Logging's names), `message`, `timestamp` (RFC 3339, UTC,
//! nanoseconds) and `logging.googleapis.com/labels` with `sidecar`, `module` and `version`
//! (`0.1.0+<git revision>`); an event's own fields are merged at the top level so Cloud
//! Logging shows them in `jsonPayload`.
//!
//! A daemon calls [`init`] once with its module name, then [`info`], [`warning`], … or
//! [`event`] with a serializable struct of fields. A line is formatted into one buffer and
//! written with a single `write_all` under the stdout lock, so lines never interleave.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use serde::Serialize;
use serde_json::{Map, Value};

pub use cloud_logging::{Severity, LABELS_KEY, SIDECAR_LABEL};

struct Logger {
    module: &'static str,
    min: Severity,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Set when stdout carries data (pcapd's `--read` writes packet lines there).
static TO_STDERR: AtomicBool = AtomicBool::new(false);

/// Sends this process's log lines to stderr from now on.
pub fn to_stderr() {
    TO_STDERR.store(true, Ordering::Relaxed);
}

/// Sets the module label of this process's lines and whether DEBUG lines are written.
/// Later calls are ignored: the first configuration wins.
pub fn init(module: &'static str, debug: bool) {
    let min = if debug {
        Severity::Debug
    } else {
        Severity::Info
    };
    let _ = LOGGER.set(Logger { module, min });
}

fn logger() -> &'static Logger {
    LOGGER.get_or_init(|| Logger {
        module: "unknown",
        min: Severity::Info,
    })
}

/// Whether lines of this severity are written.
pub fn enabled(severity: Severity) -> bool {
    severity >= logger().min
}

/// Formats one line (without the trailing newline).
///
/// `fields` must serialize to a JSON object (or unit / null for none); keys that collide with
/// the envelope (`severity`, `message`, `timestamp`, labels) are ignored so an event can never
/// forge them.
pub fn format_line<F: Serialize + ?Sized>(
    module: &str,
    severity: Severity,
    message: &str,
    fields: &F,
    timestamp: chrono::DateTime<chrono::Utc>,
) -> String {
    let mut object = Map::new();
    object.insert("severity".into(), Value::from(severity.as_str()));
    object.insert("message".into(), Value::from(message));
    object.insert(
        "timestamp".into(),
        Value::from(timestamp.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)),
    );
    let mut labels = Map::new();
    labels.insert("sidecar".into(), Value::from(SIDECAR_LABEL));
    labels.insert("module".into(), Value::from(module));
    // Every line, so the first one too, says which build wrote it.
    labels.insert("version".into(), Value::from(crate::version::LABEL));
    object.insert(LABELS_KEY.into(), Value::Object(labels));
    match serde_json::to_value(fields) {
        Ok(Value::Object(extra)) => {
            for (key, value) in extra {
                object.entry(key).or_insert(value);
            }
        }
        Ok(Value::Null) => {}
        Ok(other) => {
            object.insert("data".into(), other);
        }
        Err(error) => {
            object.insert(
                "log_error".into(),
                Value::from(format!("fields not serializable: {error}")),
            );
        }
    }
    Value::Object(object).to_string()
}

/// Writes one line with fields from `fields` (a struct or map that serializes to an object).
pub fn event<F: Serialize + ?Sized>(severity: Severity, message: &str, fields: &F) {
    let logger = logger();
    if severity < logger.min {
        return;
    }
    let mut line = format_line(logger.module, severity, message, fields, chrono::Utc::now());
    line.push('\n');
    // A closed stdout must not take the daemon down; there is nowhere else to report it.
    let _ = if TO_STDERR.load(Ordering::Relaxed) {
        std::io::stderr().lock().write_all(line.as_bytes())
    } else {
        std::io::stdout().lock().write_all(line.as_bytes())
    };
}

/// A DEBUG line without fields.
pub fn debug(message: &str) {
    event(Severity::Debug, message, &());
}

/// An INFO line without fields.
pub fn info(message: &str) {
    event(Severity::Info, message, &());
}

/// A NOTICE line without fields.
pub fn notice(message: &str) {
    event(Severity::Notice, message, &());
}

/// A WARNING line without fields.
pub fn warning(message: &str) {
    event(Severity::Warning, message, &());
}

/// An ERROR line without fields.
pub fn error(message: &str) {
    event(Severity::Error, message, &());
}

/// A CRITICAL line without fields.
pub fn critical(message: &str) {
    event(Severity::Critical, message, &());
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[derive(Serialize)]
    struct Exported {
        file: &'static str,
        bytes: u64,
        severity: &'static str,
    }

    fn parse(line: &str) -> Map<String, Value> {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => map,
            other => panic!("not a JSON object: {line} ({other:?})"),
        }
    }

    #[test]
    fn line_has_cloud_logging_envelope_and_fields() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let line = format_line(
            "pcap-fsnotify",
            Severity::Warning,
            "export \"failed\"\nretrying",
            &Exported {
                file: "eth0_part_20260102T030405Z.pcap",
                bytes: 42,
                severity: "forged",
            },
            at,
        );
        assert!(!line.contains('\n'), "one line: {line}");
        let map = parse(&line);
        assert_eq!(map["severity"], "WARNING");
        assert_eq!(map["message"], "export \"failed\"\nretrying");
        assert_eq!(map["timestamp"], "2026-01-02T03:04:05.000000000Z");
        assert_eq!(map[LABELS_KEY]["sidecar"], SIDECAR_LABEL);
        assert_eq!(map[LABELS_KEY]["module"], "pcap-fsnotify");
        assert_eq!(map["file"], "eth0_part_20260102T030405Z.pcap");
        assert_eq!(map["bytes"], 42);
    }

    #[test]
    fn every_severity_is_a_cloud_logging_name() {
        let allowed = ["DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"];
        for severity in [
            Severity::Debug,
            Severity::Info,
            Severity::Notice,
            Severity::Warning,
            Severity::Error,
            Severity::Critical,
        ] {
            let line = format_line("m", severity, "x", &(), chrono::Utc::now());
            let map = parse(&line);
            assert!(allowed.contains(&map["severity"].as_str().unwrap()));
            assert_eq!(
                serde_json::to_value(severity).unwrap(),
                map["severity"],
                "serde name matches as_str"
            );
        }
    }

    #[test]
    fn non_object_fields_are_kept_under_data() {
        let line = format_line("m", Severity::Info, "x", &[1, 2], chrono::Utc::now());
        assert_eq!(parse(&line)["data"], serde_json::json!([1, 2]));
    }
}

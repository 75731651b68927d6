//! Where objects go: `<PCAP_GCS_PREFIX/>PROJECT_ID/SERVICE_NAME/GCP_REGION/REVISION_NAME/
//! INSTANCE_STARTUP_TIMESTAMP/INSTANCE_ID/`, the README's hierarchy.
//!
//! A missing value becomes a placeholder (`unknown-project`, …) so a path never has an empty
//! segment, and a value can never add segments of its own (`/` is replaced).

use std::fmt;

use chrono::{DateTime, Utc};

/// The values that make up the path; `None` or empty values get placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathParts {
    /// `PCAP_GCS_PREFIX`, already validated.
    pub prefix: Option<String>,
    /// Project id.
    pub project: Option<String>,
    /// Service name (`K_SERVICE`).
    pub service: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Revision (`K_REVISION`).
    pub revision: Option<String>,
    /// When the instance (the sidecar) started.
    pub startup: DateTime<Utc>,
    /// Instance id.
    pub instance: Option<String>,
}

/// The object path of one instance's files, without leading or trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketPath(String);

fn segment(value: &Option<String>, placeholder: &str) -> String {
    let cleaned: String = value
        .as_deref()
        .unwrap_or("")
        .trim()
        .chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => placeholder.to_string(),
        _ => cleaned,
    }
}

impl BucketPath {
    /// Builds the path from its parts.
    pub fn new(parts: &PathParts) -> Self {
        let mut segments = Vec::with_capacity(7);
        if let Some(prefix) = parts.prefix.as_deref().filter(|p| !p.is_empty()) {
            segments.push(prefix.trim_matches('/').to_string());
        }
        segments.push(segment(&parts.project, "unknown-project"));
        segments.push(segment(&parts.service, "unknown-service"));
        segments.push(segment(&parts.region, "unknown-region"));
        segments.push(segment(&parts.revision, "unknown-revision"));
        segments.push(parts.startup.format("%Y%m%dT%H%M%SZ").to_string());
        segments.push(segment(&parts.instance, "unknown-instance"));
        BucketPath(segments.join("/"))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of an object holding `file_name`.
    pub fn object_name(&self, file_name: &str) -> String {
        format!("{}/{}", self.0, file_name)
    }

    /// `gs://<bucket>/<path>`, as printed in the "PCAP files available at" line.
    pub fn gs_url(&self, bucket: &str) -> String {
        format!("gs://{bucket}/{}", self.0)
    }
}

impl fmt::Display for BucketPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn startup() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 7, 8, 9).unwrap()
    }

    #[test]
    fn full_hierarchy_with_prefix() {
        let path = BucketPath::new(&PathParts {
            prefix: Some("captures/team-a".into()),
            project: Some("my-project".into()),
            service: Some("checkout".into()),
            region: Some("us-central1".into()),
            revision: Some("checkout-00042-abc".into()),
            startup: startup(),
            instance: Some("00bf4bf02d".into()),
        });
        assert_eq!(
            path.as_str(),
            "captures/team-a/my-project/checkout/us-central1/checkout-00042-abc/20261126T070809Z/00bf4bf02d"
        );
        assert_eq!(path.gs_url("bkt"), format!("gs://bkt/{}", path.as_str()));
        assert!(path
            .object_name("eth0_part_x.pcap.gz")
            .ends_with("/00bf4bf02d/eth0_part_x.pcap.gz"));
    }

    #[test]
    fn missing_values_get_placeholders_and_slashes_cannot_add_segments() {
        let path = BucketPath::new(&PathParts {
            project: Some("  ".into()),
            service: Some("a/b".into()),
            region: Some("..".into()),
            startup: startup(),
            ..PathParts::default()
        });
        assert_eq!(
            path.as_str(),
            "unknown-project/a_b/unknown-region/unknown-revision/20261126T070809Z/unknown-instance"
        );
        assert!(path.as_str().split('/').all(|s| !s.is_empty()));
    }
}

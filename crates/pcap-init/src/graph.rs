//! The process graph: which programs `pcap-init` starts, in what order, when each counts as
//! ready, how it restarts and when it stops. Read from `supervisor/processes.toml` (embedded
//! at build time) or the file `PCAP_SUPERVISOR_FILE` names.

use std::collections::BTreeMap;
use std::time::Duration;

use child_process::{RestartPolicy, StreamHandling};
use serde::Deserialize;

/// The built-in graph.
pub const DEFAULT_GRAPH: &str = include_str!("../../../supervisor/processes.toml");

/// Errors in a graph file or in expanding it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum GraphError {
    /// Not valid TOML or not the expected shape.
    #[error("process graph: {0}")]
    Syntax(String),
    /// A rule the file breaks.
    #[error("process graph: program {program:?}: {problem}")]
    Invalid {
        /// The program.
        program: String,
        /// What is wrong.
        problem: String,
    },
    /// `${NAME}` names nothing.
    #[error("process graph: program {program:?}: unknown variable ${{{name}}}")]
    UnknownVariable {
        /// The program.
        program: String,
        /// The variable.
        name: String,
    },
}

/// When a program is part of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    /// Always.
    Always,
    /// Only with a bucket and `PCAP_GCS_FUSE=true`.
    Fuse,
}

/// What "ready" means for a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadyKind {
    /// As soon as it is started.
    None,
    /// `path` is a mount point in `/proc/self/mountinfo`.
    Mount,
    /// The readiness file `path` (in `PCAP_RUN_DIR`) is raised by a live process.
    File,
}

/// A readiness condition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    /// Kind of condition.
    pub kind: ReadyKind,
    /// Mount point or readiness-file name.
    #[serde(default)]
    pub path: String,
    /// How long to wait before start-up fails.
    #[serde(default = "default_ready_timeout")]
    pub timeout_secs: u64,
    /// What to check when it times out (part of the error).
    #[serde(default)]
    pub hint: String,
}

fn default_ready_timeout() -> u64 {
    30
}

impl Default for Ready {
    fn default() -> Self {
        Ready {
            kind: ReadyKind::None,
            path: String::new(),
            timeout_secs: default_ready_timeout(),
            hint: String::new(),
        }
    }
}

/// Restart settings of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    /// Consecutive quick failures before giving up.
    pub max_failures: u32,
}

/// Output handling in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// Already Cloud Logging lines.
    Inherit,
    /// Plain text to wrap.
    Wrap,
}

/// One program of the graph, as written (before `${…}` expansion).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// Unique name.
    pub name: String,
    /// Condition.
    #[serde(default = "always")]
    pub when: When,
    /// Program and arguments.
    pub command: Vec<String>,
    /// Output handling.
    #[serde(default = "inherit")]
    pub output: Output,
    /// Readiness.
    #[serde(default)]
    pub ready: Ready,
    /// Restarts.
    #[serde(default = "default_restart")]
    pub restart: Restart,
    /// Position in the stop sequence (lowest first).
    pub stop_order: u32,
    /// Started once more when shutdown finds it waiting for a restart, so that it drains
    /// (the exporter: otherwise a crash just before SIGTERM leaves every file unexported
    /// and unreported).
    #[serde(default)]
    pub drain: bool,
}

fn always() -> When {
    When::Always
}

fn inherit() -> Output {
    Output::Inherit
}

fn default_restart() -> Restart {
    Restart { max_failures: 5 }
}

impl Program {
    /// The restart policy.
    pub fn restart_policy(&self) -> RestartPolicy {
        RestartPolicy {
            max_failures: self.restart.max_failures,
            ..RestartPolicy::default()
        }
    }

    /// How its stdout and stderr are handled.
    pub fn stream_handling(&self) -> StreamHandling {
        match self.output {
            Output::Inherit => StreamHandling::Inherit,
            Output::Wrap => StreamHandling::Wrap,
        }
    }

    /// Readiness timeout.
    pub fn ready_timeout(&self) -> Duration {
        Duration::from_secs(self.ready.timeout_secs)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    program: Vec<Program>,
}

/// The parsed graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessGraph {
    /// Programs in start order.
    pub programs: Vec<Program>,
}

impl ProcessGraph {
    /// Parses and validates a graph file.
    pub fn parse(text: &str) -> Result<Self, GraphError> {
        let file: File = toml::from_str(text).map_err(|e| GraphError::Syntax(e.to_string()))?;
        let mut seen = std::collections::BTreeSet::new();
        for program in &file.program {
            let invalid = |problem: &str| GraphError::Invalid {
                program: program.name.clone(),
                problem: problem.to_string(),
            };
            if program.name.is_empty() || !seen.insert(program.name.clone()) {
                return Err(invalid("names must be unique and non-empty"));
            }
            if program.command.is_empty() || program.command[0].is_empty() {
                return Err(invalid("command is empty"));
            }
            if program.ready.kind != ReadyKind::None && program.ready.path.is_empty() {
                return Err(invalid("ready needs a path"));
            }
            if program.ready.kind == ReadyKind::File && program.ready.path.contains('/') {
                return Err(invalid("a readiness file is a name inside PCAP_RUN_DIR"));
            }
        }
        Ok(ProcessGraph {
            programs: file.program,
        })
    }

    /// Programs in stop order (lowest `stop_order` first; ties in reverse start order).
    pub fn stop_sequence(&self) -> Vec<&Program> {
        let mut order: Vec<(usize, &Program)> = self.programs.iter().enumerate().collect();
        order.sort_by_key(|(index, p)| (p.stop_order, std::cmp::Reverse(*index)));
        order.into_iter().map(|(_, p)| p).collect()
    }
}

/// Replaces every `${NAME}` in `text` with its value in `vars`.
pub fn expand(
    program: &str,
    text: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, GraphError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| GraphError::Invalid {
            program: program.to_string(),
            problem: format!("unterminated ${{ in {text:?}"),
        })?;
        let name = &after[..end];
        let value = vars.get(name).ok_or_else(|| GraphError::UnknownVariable {
            program: program.to_string(),
            name: name.to_string(),
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_graph_parses_in_the_contract_order() {
        let graph = ProcessGraph::parse(DEFAULT_GRAPH).unwrap();
        let start: Vec<&str> = graph.programs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(start, ["gcsfuse", "pcap-fsnotify", "tcpdumpw", "hc-probe"]);
        let stop: Vec<&str> = graph
            .stop_sequence()
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(stop, ["tcpdumpw", "pcap-fsnotify", "hc-probe", "gcsfuse"]);
        let gcsfuse = &graph.programs[0];
        assert_eq!(gcsfuse.when, When::Fuse);
        assert_eq!(gcsfuse.ready.kind, ReadyKind::Mount);
        assert_eq!(gcsfuse.output, Output::Wrap);
        assert!(gcsfuse.ready.hint.contains("storage"));
    }

    #[test]
    fn bad_graphs_are_rejected_with_the_program_named() {
        let duplicate = r#"
            [[program]]
            name = "a"
            command = ["x"]
            stop_order = 1
            [[program]]
            name = "a"
            command = ["y"]
            stop_order = 2
        "#;
        assert!(matches!(
            ProcessGraph::parse(duplicate),
            Err(GraphError::Invalid { program, .. }) if program == "a"
        ));
        let no_path = r#"
            [[program]]
            name = "m"
            command = ["mount"]
            ready = { kind = "mount" }
            stop_order = 1
        "#;
        assert!(ProcessGraph::parse(no_path).is_err());
        assert!(matches!(
            ProcessGraph::parse(
                "[[program]]\nname = \"x\"\ncommand = [\"a\"]\nstop_order = 1\ntypo = 2\n"
            ),
            Err(GraphError::Syntax(_))
        ));
    }

    #[test]
    fn expansion_replaces_known_variables_only() {
        let vars: BTreeMap<String, String> = [("GCS_MOUNT", "/pcap"), ("PCAP_GCS_BUCKET", "b")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            expand("g", "${PCAP_GCS_BUCKET}:${GCS_MOUNT}/x", &vars).unwrap(),
            "b:/pcap/x"
        );
        assert_eq!(
            expand("g", "${NOPE}", &vars),
            Err(GraphError::UnknownVariable {
                program: "g".into(),
                name: "NOPE".into()
            })
        );
        assert!(expand("g", "${GCS_MOUNT", &vars).is_err());
    }
}

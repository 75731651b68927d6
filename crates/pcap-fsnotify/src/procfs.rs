//! Which files of a directory some process still has open for writing, read from `/proc`.
//!
//! inotify's close-after-write event says a writer closed a file, but a file found at start-up
//! (after a restart), or one whose event was lost to a queue overflow, has no event: for
//! those the only honest answer to "is it complete?" is whether anyone still holds it open
//! for writing.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// What `/proc` says about the writers of one directory's files.
#[derive(Debug, Clone, Default)]
pub struct OpenFiles {
    /// Files (canonical paths) some process has open with write access.
    pub paths: HashSet<PathBuf>,
    /// Why the answer is incomplete (`/proc` or a process's `fd` directory could not be
    /// read), if it is: then no file can be called closed from this snapshot.
    pub unknown: Option<String>,
}

impl OpenFiles {
    /// Whether `path` (canonical) may still be open for writing: listed, or the snapshot
    /// could not see every process.
    pub fn may_be_open(&self, path: &Path) -> bool {
        self.unknown.is_some() || self.paths.contains(path)
    }

    /// Whether `path` (canonical) is known to be open for writing.
    pub fn contains(&self, path: &Path) -> bool {
        self.paths.contains(path)
    }
}

/// Files directly inside `dir` that any process has open with write access.
pub fn open_for_writing(dir: &Path) -> OpenFiles {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut open = OpenFiles::default();
    let processes = match fs::read_dir("/proc") {
        Ok(processes) => processes,
        Err(error) => {
            open.unknown = Some(format!("/proc: {error}"));
            return open;
        }
    };
    for process in processes.flatten() {
        let pid = process.file_name();
        if !pid.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // Processes and descriptors come and go while we look: a process that has gone
        // holds nothing open. Any other error (no permission, hidepid) leaves the answer
        // unknown, and an unknown writer must not make a file count as complete.
        let fds = match fs::read_dir(process.path().join("fd")) {
            Ok(fds) => fds,
            Err(error) if gone(&error) => continue,
            Err(error) => {
                if open.unknown.is_none() {
                    open.unknown = Some(format!("/proc/{}/fd: {error}", pid.to_string_lossy()));
                }
                continue;
            }
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            if target.parent() != Some(dir.as_path()) || open.paths.contains(&target) {
                continue;
            }
            let info = process.path().join("fdinfo").join(fd.file_name());
            if fs::read_to_string(info).is_ok_and(|text| writable(&text)) {
                open.paths.insert(target);
            }
        }
    }
    open
}

/// The process (or the descriptor) went away while we looked.
fn gone(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::NotFound || error.raw_os_error() == Some(nix::libc::ESRCH)
}

/// Whether an fdinfo text's `flags:` (octal) has write access (O_WRONLY or O_RDWR).
fn writable(fdinfo: &str) -> bool {
    fdinfo
        .lines()
        .find_map(|line| line.strip_prefix("flags:"))
        .and_then(|flags| u32::from_str_radix(flags.trim(), 8).ok())
        .is_some_and(|flags| flags & 0o3 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sees_writers_not_readers() {
        let dir = tempfile::tempdir().unwrap();
        let written = dir.path().join("w");
        let read = dir.path().join("r");
        fs::write(&read, b"x").unwrap();
        let mut writer = fs::File::create(&written).unwrap();
        writer.write_all(b"x").unwrap();
        let _reader = fs::File::open(&read).unwrap();
        let open = open_for_writing(dir.path());
        let canonical = dir.path().canonicalize().unwrap();
        assert!(open.contains(&canonical.join("w")), "{open:?}");
        assert!(!open.contains(&canonical.join("r")));
        assert!(open.unknown.is_none(), "{open:?}");
        drop(writer);
        assert!(open_for_writing(dir.path()).paths.is_empty());
    }

    #[test]
    fn parses_fdinfo_flags() {
        assert!(writable("pos:\t0\nflags:\t0100001\nmnt_id:\t1\n"));
        assert!(writable("flags:\t02\n"));
        assert!(!writable("pos:\t0\nflags:\t0100000\n"));
        assert!(!writable("garbage"));
    }
}

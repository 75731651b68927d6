//! Which files of a directory some process still has open for writing, read from `/proc`.
//!
//! inotify's close-after-write event says a writer closed a file, but a file found at start-up
//! (after a restart), or one whose event was lost to a queue overflow, has no event: for
//! those the only honest answer to "is it complete?" is whether anyone still holds it open
//! for writing.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Files directly inside `dir` that any process has open with write access.
pub fn open_for_writing(dir: &Path) -> HashSet<PathBuf> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut open = HashSet::new();
    let Ok(processes) = fs::read_dir("/proc") else {
        return open;
    };
    for process in processes.flatten() {
        let pid = process.file_name();
        if !pid.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // Processes and descriptors come and go while we look: every error just skips.
        let Ok(fds) = fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            if target.parent() != Some(dir.as_path()) || open.contains(&target) {
                continue;
            }
            let info = process.path().join("fdinfo").join(fd.file_name());
            if fs::read_to_string(info).is_ok_and(|text| writable(&text)) {
                open.insert(target);
            }
        }
    }
    open
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
        drop(writer);
        assert!(open_for_writing(dir.path()).is_empty());
    }

    #[test]
    fn parses_fdinfo_flags() {
        assert!(writable("pos:\t0\nflags:\t0100001\nmnt_id:\t1\n"));
        assert!(writable("flags:\t02\n"));
        assert!(!writable("pos:\t0\nflags:\t0100000\n"));
        assert!(!writable("garbage"));
    }
}

//! A FUSE mount of an emulator bucket made with `rclone mount`.
//!
//! Stands in for the Cloud Run GCS volume (gcsfuse): files written under the
//! mount point become objects in the [`GcsEmulator`]'s bucket when closed.
//! Readiness and unmount are checked in `/proc/self/mountinfo`, not by sleeping.

use crate::{log_tail, run, wait_for, ChildGuard, Error, GcsEmulator, Result};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MOUNT_TIMEOUT: Duration = Duration::from_secs(30);
const UNMOUNT_TIMEOUT: Duration = Duration::from_secs(20);
const LOG_TAIL: usize = 8 * 1024;

/// An `rclone mount` of a bucket; unmounted (and rclone reaped) on drop.
#[derive(Debug)]
pub struct FuseMount {
    // Declared first so rclone is killed before its cache dir is removed.
    child: Option<ChildGuard>,
    mountpoint: PathBuf,
    // Remove the mount point directory afterwards only if we created it.
    created_mountpoint: bool,
    work: tempfile::TempDir,
}

impl FuseMount {
    /// Mounts `emulator`'s bucket at `mountpoint` (created if missing) and
    /// waits (bounded) until the mount appears in `/proc/self/mountinfo`.
    ///
    /// Like gcsfuse, a file is uploaded by the time `close` returns (no write cache), a
    /// rename is a server-side copy and a delete; directory listings are cached for 1 s only.
    pub fn rclone(emulator: &GcsEmulator, mountpoint: &Path) -> Result<FuseMount> {
        crate::check_fuse()?;
        let created_mountpoint = !mountpoint.exists();
        std::fs::create_dir_all(mountpoint)
            .map_err(|e| Error::io(format!("creating mount point {}", mountpoint.display()), e))?;
        // Canonical form is what mountinfo shows; resolve it before mounting,
        // while stat() on the directory cannot hang on FUSE.
        let mountpoint = mountpoint
            .canonicalize()
            .map_err(|e| Error::io(format!("resolving {}", mountpoint.display()), e))?;
        if is_mounted(&mountpoint) {
            return Err(Error::InvalidInput(format!(
                "{} is already a mount point",
                mountpoint.display()
            )));
        }
        let work = tempfile::Builder::new()
            .prefix("testbed-rclone-")
            .tempdir()
            .map_err(|e| Error::io("creating the rclone work dir", e))?;
        let mut mount = FuseMount {
            child: None,
            mountpoint,
            created_mountpoint,
            work,
        };
        mount.spawn(emulator)?;
        Ok(mount)
    }

    /// The mount point (canonicalized).
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// The file collecting rclone's output.
    pub fn log_path(&self) -> PathBuf {
        self.work.path().join("rclone.log")
    }

    /// The tail of rclone's log, for failure messages.
    pub fn log(&self) -> String {
        log_tail(&self.log_path(), LOG_TAIL)
    }

    /// Unmounts and waits for rclone to exit; idempotent.
    ///
    /// Tries `fusermount3 -u` first (clean, flushes), then a lazy `umount -l`
    /// if the mount is busy, and finally kills rclone if it lingers.
    pub fn unmount(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let mut result = Ok(());
        if is_mounted(&self.mountpoint) {
            let clean = run(Command::new("fusermount3").arg("-u").arg(&self.mountpoint));
            if let Err(clean_err) = clean {
                if let Err(lazy_err) = run(Command::new("umount").arg("-l").arg(&self.mountpoint)) {
                    result = Err(Error::Process {
                        context: format!(
                            "unmounting {}: {clean_err}; then: {lazy_err}",
                            self.mountpoint.display()
                        ),
                        log: self.log(),
                    });
                }
            }
        }
        // rclone exits by itself once unmounted; kill it only as a last resort.
        if child.wait_timeout(UNMOUNT_TIMEOUT)?.is_none() {
            child.kill()?;
        }
        result?;
        let mountpoint = self.mountpoint.clone();
        wait_for(
            "the rclone mount to disappear from /proc/self/mountinfo",
            UNMOUNT_TIMEOUT,
            Duration::from_millis(50),
            || {
                if is_mounted(&mountpoint) {
                    Err(format!("{} still mounted", mountpoint.display()))
                } else {
                    Ok(())
                }
            },
        )?;
        if self.created_mountpoint {
            // Not recursive: never delete data that is not ours.
            let _ = std::fs::remove_dir(&self.mountpoint);
        }
        Ok(())
    }

    fn spawn(&mut self, emulator: &GcsEmulator) -> Result<()> {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(format!("opening {}", log_path.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::io(format!("duplicating {}", log_path.display()), e))?;
        let mut cmd = Command::new("rclone");
        cmd.arg("mount")
            .arg(format!(":gcs:{}", emulator.bucket()))
            .arg(&self.mountpoint)
            // A private, nonexistent config: never pick up the machine's remotes.
            .arg("--config")
            .arg(self.work.path().join("rclone.conf"))
            .arg("--cache-dir")
            .arg(self.work.path().join("cache"))
            .arg("--gcs-endpoint")
            .arg(format!("{}/storage/v1/", emulator.endpoint()))
            .arg("--gcs-anonymous")
            // gcsfuse's semantics: a file is uploaded while written and the upload completes
            // (or fails) in close(); a rename is a server-side copy, then a delete. rclone's
            // write cache ("writes") uploads after close instead, and rclone 1.60 uploads a
            // file renamed while its upload is queued under the old name.
            .args(["--vfs-cache-mode", "off"])
            // fake-gcs-server reports no MD5 for server-side copies and resumable uploads;
            // rclone would call them corrupted and delete them. Contents are checked by the
            // tests (and CRC32C by the manifest) instead.
            .arg("--ignore-checksum")
            // The emulator changes behind rclone's back; keep caches short.
            .args(["--dir-cache-time", "1s", "--poll-interval", "0"])
            .args(["--log-level", "INFO"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        self.child = Some(ChildGuard::spawn(&mut cmd)?);
        self.wait_mounted()
    }

    fn wait_mounted(&mut self) -> Result<()> {
        let start = Instant::now();
        loop {
            if mount_fstype(&self.mountpoint).as_deref() == Some("fuse.rclone") {
                return Ok(());
            }
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                self.child = None;
                return Err(Error::Process {
                    context: format!("rclone mount exited before mounting ({status})"),
                    log: self.log(),
                });
            }
            if start.elapsed() >= MOUNT_TIMEOUT {
                let log = self.log();
                // Tear down whatever half-started, so no mount or process leaks.
                let _ = self.unmount();
                return Err(Error::Process {
                    context: format!(
                        "{} did not show up as fuse.rclone in /proc/self/mountinfo within {}s",
                        self.mountpoint.display(),
                        MOUNT_TIMEOUT.as_secs()
                    ),
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}

/// Whether `path` is a mount point according to `/proc/self/mountinfo`.
///
/// `path` is made absolute without touching the (possibly hung) mount itself.
pub fn is_mounted(path: &Path) -> bool {
    mount_fstype(path).is_some()
}

/// The filesystem type of the topmost mount at exactly `path` (e.g. `fuse.rclone`),
/// or `None` if `path` is not a mount point.
pub fn mount_fstype(path: &Path) -> Option<String> {
    let wanted = absolute(path);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // Later lines are mounted later, i.e. on top.
    mountinfo
        .lines()
        .rev()
        .filter_map(parse_mountinfo_line)
        .find(|(point, _)| Path::new(point) == wanted)
        .map(|(_, fstype)| fstype)
}

/// Resolves the parent directory only: canonicalizing a FUSE mount point would
/// stat() it, which can block if the FUSE server is stuck.
fn absolute(path: &Path) -> PathBuf {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return path.to_path_buf();
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    match parent.canonicalize() {
        Ok(parent) => parent.join(name),
        Err(_) => path.to_path_buf(),
    }
}

/// Extracts (mount point, fstype) from one mountinfo line:
/// `id parent maj:min root mountpoint opts [optional...] - fstype source superopts`.
fn parse_mountinfo_line(line: &str) -> Option<(String, String)> {
    let mut fields = line.split(' ');
    let mountpoint = fields.nth(4)?;
    let mut rest = fields.skip_while(|f| *f != "-");
    rest.next()?;
    let fstype = rest.next()?;
    Some((unescape(mountpoint), unescape(fstype)))
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escaped_mount_points() {
        let line = "42 27 0:39 / /tmp/with\\040space rw,nosuid - fuse.rclone :gcs:b rw,user_id=0";
        assert_eq!(
            parse_mountinfo_line(line),
            Some(("/tmp/with space".to_string(), "fuse.rclone".to_string()))
        );
        let with_optional = "25 1 0:22 / /sys rw shared:7 master:1 - sysfs sysfs rw";
        assert_eq!(
            parse_mountinfo_line(with_optional),
            Some(("/sys".to_string(), "sysfs".to_string()))
        );
    }

    #[test]
    fn unescape_handles_edges() {
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("tail\\04"), "tail\\04");
        assert_eq!(unescape("\\011x"), "\tx");
    }

    #[test]
    fn root_is_mounted() {
        assert!(is_mounted(Path::new("/")));
        assert!(!is_mounted(Path::new("/definitely/not/a/mount")));
    }
}

//! [`DirectoryDestination`]: a gcsfuse mount or a plain directory.
//!
//! In a plain directory a file is written as `.<name>.partial-<pid>-<n>` in its final
//! directory, synced and closed with both errors checked, then renamed to its final name
//! without replacing anything (`renameat2(RENAME_NOREPLACE)`, or a check-then-rename on
//! filesystems without it).
//!
//! On a bucket mount ([`DirectoryDestination::mounted_bucket`]) the same happens, on these
//! gcsfuse semantics: a file is uploaded when it is synced or closed (whole, as one object
//! write; a failed upload is reported by `fsync`/`close`, both checked); a rename is a
//! server-side copy of that complete object to the final name and a delete of the temporary
//! one (a move in a hierarchical-namespace bucket). The final object therefore appears whole
//! or not at all. Writing the final name directly is not enough: when the exporter is killed
//! mid-write, the kernel closes the file and gcsfuse uploads the bytes written so far under
//! the final name. What a kill leaves is a temporary object, which
//! [`Destination::clean_up`] deletes at the next start (and a killed rename may leave the
//! temporary object beside a complete final one: deleted the same way). Delivery is refused
//! while the mount point is not mounted, so files never land in the container's own
//! filesystem by mistake.
//!
//! Either way the final name only ever shows a complete file, and the size the filesystem
//! reports after closing must be the size written.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};

use crate::encode::{encode, open_source, same_content};
use crate::{check_object_name, Delivery, Destination, Export, ExportError};

/// Delivers into a directory tree rooted at `root`.
#[derive(Debug)]
pub struct DirectoryDestination {
    root: PathBuf,
    counter: AtomicU64,
    require_mount: bool,
}

impl DirectoryDestination {
    /// A destination writing under `root` (which must exist when files are delivered; the
    /// object's own directories are created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirectoryDestination {
            root: root.into(),
            counter: AtomicU64::new(0),
            require_mount: false,
        }
    }

    /// A bucket mounted at `root` (gcsfuse): files are written directly under their final
    /// names, and delivery is refused (a retryable error) while `root` is not a mount point —
    /// an unmounted bucket leaves a plain directory that would silently keep files in the
    /// container instead of the bucket.
    pub fn mounted_bucket(root: impl Into<PathBuf>) -> Self {
        DirectoryDestination {
            require_mount: true,
            ..Self::new(root)
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn write_error(target: &Path) -> impl FnOnce(io::Error) -> ExportError + '_ {
        move |source| ExportError::Write {
            target: target.display().to_string(),
            source,
        }
    }

    /// The final name exists: identical content counts as delivered, anything else is a
    /// conflict (never overwritten).
    fn existing(&self, export: &Export<'_>, target: &Path) -> Result<Delivery, ExportError> {
        let file = File::open(target).map_err(Self::write_error(target))?;
        let stored = file.metadata().map(|m| m.len()).unwrap_or(0);
        match same_content(file, export.source, export.compression) {
            Ok(true) => Ok(Delivery {
                location: target.display().to_string(),
                bytes_read: fs::metadata(export.source).map(|m| m.len()).unwrap_or(0),
                bytes_stored: stored,
                already_present: true,
                crc32c: File::open(target)
                    .and_then(crate::crc32c_of)
                    .map_err(Self::write_error(target))?,
            }),
            Ok(false) => Err(ExportError::Conflict {
                target: target.display().to_string(),
            }),
            Err(source) if source.kind() == io::ErrorKind::NotFound => Err(ExportError::Vanished {
                path: export.source.to_path_buf(),
            }),
            Err(source) => Err(ExportError::Read {
                path: export.source.to_path_buf(),
                source,
            }),
        }
    }
}

impl Destination for DirectoryDestination {
    fn deliver(&self, export: &Export<'_>) -> Result<Delivery, ExportError> {
        check_object_name(export.object)?;
        let target = self.root.join(export.object);
        let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(ExportError::InvalidName {
                name: export.object.to_string(),
                reason: "no file name".into(),
            });
        };
        // Open the source first: an unreadable file must not leave anything behind.
        let source = open_source(export.source)?;
        if self.require_mount && !is_mount_point(&self.root) {
            return Err(ExportError::Write {
                target: self.root.display().to_string(),
                source: io::Error::other("the bucket is not mounted here"),
            });
        }
        fs::create_dir_all(dir).map_err(Self::write_error(dir))?;
        if target.exists() {
            return self.existing(export, &target);
        }
        let temporary = dir.join(format!(
            ".{}{PARTIAL_MARK}{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed)
        ));
        let result = write_file(export, source, &temporary).and_then(|delivery| {
            if export.gate.is_some_and(|gate| !gate.may_commit()) {
                return Err(ExportError::Stopped {
                    target: target.display().to_string(),
                });
            }
            rename_no_replace(&temporary, &target)?;
            check_size(&target, delivery.bytes_stored)?;
            if let (Some(dir), false) = (target.parent(), self.require_mount) {
                // Makes the rename durable on a local disk before the source is deleted.
                let _ = File::open(dir).and_then(|d| d.sync_all());
            }
            Ok(Delivery {
                location: target.display().to_string(),
                ..delivery
            })
        });
        if result.is_err() {
            // Best effort: the temporary name is ours and never the final name.
            let _ = fs::remove_file(&temporary);
        }
        match result {
            Err(ExportError::Conflict { .. }) => self.existing(export, &target),
            other => other,
        }
    }

    fn clean_up(&self, prefix: &str) -> Result<Vec<String>, ExportError> {
        let dir = if prefix.is_empty() {
            self.root.clone()
        } else {
            check_object_name(prefix)?;
            self.root.join(prefix)
        };
        if self.require_mount && !is_mount_point(&self.root) {
            return Err(ExportError::Write {
                target: self.root.display().to_string(),
                source: io::Error::other("the bucket is not mounted here"),
            });
        }
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ExportError::Write {
                    target: dir.display().to_string(),
                    source,
                })
            }
        };
        let mut removed = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_leftover(&name) {
                continue;
            }
            let path = entry.path();
            fs::remove_file(&path).map_err(|source| ExportError::Write {
                target: path.display().to_string(),
                source,
            })?;
            removed.push(path.display().to_string());
        }
        Ok(removed)
    }

    fn describe(&self) -> String {
        if self.require_mount {
            format!("bucket mounted at {}", self.root.display())
        } else {
            format!("directory {}", self.root.display())
        }
    }
}

/// Marks a temporary name: `.<final name>.partial-<pid>-<n>`.
const PARTIAL_MARK: &str = ".partial-";

/// Whether `name` is a temporary name this destination writes (`.<name>.partial-<pid>-<n>`).
fn is_leftover(name: &str) -> bool {
    let Some((head, tail)) = name.rsplit_once(PARTIAL_MARK) else {
        return false;
    };
    let mut numbers = tail.splitn(2, '-');
    let digits =
        |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    head.starts_with('.') && head.len() > 1 && digits(numbers.next()) && digits(numbers.next())
}

/// Creates `path` (never replacing a file), writes the encoded file, syncs and closes it with
/// every error checked, and checks the size the filesystem reports.
fn write_file(
    export: &Export<'_>,
    source: crate::Source,
    path: &Path,
) -> Result<Delivery, ExportError> {
    let name = path.display().to_string();
    let write_error = |source| ExportError::Write {
        target: name.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        // Full packet payloads: readable by the sidecar's user only.
        .mode(0o600)
        .open(path)
        .map_err(write_error)?;
    let mut encoded = encode(source, export.compression);
    encoded.copy_to(&mut file, &name)?;
    file.sync_all().map_err(write_error)?;
    // Dropping a File ignores close(2) errors; gcsfuse reports failed uploads exactly there.
    nix::unistd::close(file).map_err(|errno| write_error(io::Error::from(errno)))?;
    check_size(path, encoded.bytes_out())?;
    Ok(Delivery {
        location: name,
        bytes_read: encoded.bytes_read(),
        bytes_stored: encoded.bytes_out(),
        already_present: false,
        crc32c: encoded.crc32c(),
    })
}

/// On a FUSE mount the size after closing is what the bucket holds: it must be what was
/// written.
fn check_size(path: &Path, written: u64) -> Result<(), ExportError> {
    let stored = fs::metadata(path)
        .map_err(|source| ExportError::Write {
            target: path.display().to_string(),
            source,
        })?
        .len();
    if stored == written {
        Ok(())
    } else {
        Err(ExportError::Integrity {
            target: path.display().to_string(),
            detail: format!("{stored} bytes stored, {written} written"),
        })
    }
}

/// Whether `path` is exactly a mount point in `/proc/self/mountinfo`.
pub fn is_mount_point(path: &Path) -> bool {
    let wanted = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    mountinfo.lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|point| Path::new(&unescape_mountinfo(point)) == wanted)
    })
}

/// Undoes mountinfo's octal escapes (`\040` is a space).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4);
        if bytes[i] == b'\\' {
            if let Some(d) = digits.filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c))) {
                let value = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
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

/// Renames without ever replacing `target`; `Conflict` when it exists.
fn rename_no_replace(from: &Path, target: &Path) -> Result<(), ExportError> {
    let conflict = || ExportError::Conflict {
        target: target.display().to_string(),
    };
    match renameat2(
        AT_FDCWD,
        from,
        AT_FDCWD,
        target,
        RenameFlags::RENAME_NOREPLACE,
    ) {
        Ok(()) => Ok(()),
        Err(Errno::EEXIST) => Err(conflict()),
        // Filesystems without RENAME_NOREPLACE (some FUSE servers, older kernels): the
        // remaining race needs another writer of the same name in the same instant, which
        // names with a per-instance path and a start time do not have.
        Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
            if target.exists() {
                return Err(conflict());
            }
            fs::rename(from, target).map_err(|source| ExportError::Write {
                target: target.display().to_string(),
                source,
            })
        }
        Err(errno) => Err(ExportError::Write {
            target: target.display().to_string(),
            source: io::Error::from(errno),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Compression;
    use std::io::Read;

    fn setup() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("eth0_part_20260101T000000Z.pcap");
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        fs::write(&source, &data).unwrap();
        fs::create_dir(dir.path().join("out")).unwrap();
        (dir, source, data)
    }

    fn only_final_files(dir: &Path) -> Vec<String> {
        let mut names = Vec::new();
        for entry in walk(dir) {
            names.push(entry.strip_prefix(dir).unwrap().display().to_string());
        }
        names.sort();
        names
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    #[test]
    fn delivers_gzip_under_final_name_and_recognises_a_repeat() {
        let (dir, source, data) = setup();
        let destination = DirectoryDestination::new(dir.path().join("out"));
        let export = Export {
            source: &source,
            object: "p/s/eth0_part_20260101T000000Z.pcap.gz",
            compression: Compression::Gzip { level: 6 },
            gate: None,
        };
        let delivery = destination.deliver(&export).unwrap();
        assert!(!delivery.already_present);
        assert_eq!(delivery.bytes_read, data.len() as u64);
        assert_eq!(
            only_final_files(&dir.path().join("out")),
            vec!["p/s/eth0_part_20260101T000000Z.pcap.gz"]
        );
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(
            File::open(
                dir.path()
                    .join("out/p/s/eth0_part_20260101T000000Z.pcap.gz"),
            )
            .unwrap(),
        )
        .read_to_end(&mut back)
        .unwrap();
        assert_eq!(back, data);
        // A second delivery of the same file is recognised, not duplicated or overwritten.
        let again = destination.deliver(&export).unwrap();
        assert!(again.already_present);
        // Other content under that name is a conflict, and the object is untouched.
        fs::write(&source, b"different").unwrap();
        assert!(matches!(
            destination.deliver(&export),
            Err(ExportError::Conflict { .. })
        ));
        let mut still = Vec::new();
        flate2::read::GzDecoder::new(
            File::open(
                dir.path()
                    .join("out/p/s/eth0_part_20260101T000000Z.pcap.gz"),
            )
            .unwrap(),
        )
        .read_to_end(&mut still)
        .unwrap();
        assert_eq!(still, data);
        assert_eq!(only_final_files(&dir.path().join("out")).len(), 1);
    }

    #[test]
    fn only_temporary_names_are_leftovers() {
        assert!(is_leftover(
            ".eth0_part_20260101T000000Z.pcap.gz.partial-12-0"
        ));
        assert!(!is_leftover("eth0_part_20260101T000000Z.pcap.gz"));
        assert!(!is_leftover(".eth0.partial-12"));
        assert!(!is_leftover(".x.partial-a-1"));
        assert!(!is_leftover("x.partial-1-1"));
    }

    #[test]
    fn mount_points_are_read_from_mountinfo() {
        assert!(is_mount_point(Path::new("/")));
        assert!(is_mount_point(Path::new("/proc")));
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mount_point(dir.path()));
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        let (dir, source, _) = setup();
        let destination = DirectoryDestination::mounted_bucket(dir.path().join("out"));
        let error = destination
            .deliver(&Export {
                source: &source,
                object: "eth0_part_20260101T000000Z.pcap",
                compression: Compression::None,
                gate: None,
            })
            .unwrap_err();
        assert!(error.is_retryable() && error.to_string().contains("not mounted"));
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let (dir, source, _) = setup();
        // The root is a file: creating the object's directory fails.
        let root = dir.path().join("not-a-dir");
        fs::write(&root, b"").unwrap();
        let destination = DirectoryDestination::new(&root);
        let error = destination
            .deliver(&Export {
                source: &source,
                object: "a/eth0_part_20260101T000000Z.pcap",
                compression: Compression::None,
                gate: None,
            })
            .unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert!(source.exists());
    }

    #[test]
    fn unreadable_source_is_not_retryable_and_writes_nothing() {
        let (dir, _, _) = setup();
        let bogus = dir.path().join("any_part_20260101T000000Z.pcap");
        fs::create_dir(&bogus).unwrap();
        let destination = DirectoryDestination::new(dir.path().join("out"));
        let error = destination
            .deliver(&Export {
                source: &bogus,
                object: "x/any_part_20260101T000000Z.pcap",
                compression: Compression::None,
                gate: None,
            })
            .unwrap_err();
        assert!(!error.is_retryable());
        assert!(only_final_files(&dir.path().join("out")).is_empty());
    }
}

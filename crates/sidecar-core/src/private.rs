//! Capture and JSON files hold full packet payloads (headers, cookies before redaction in
//! pcap files, bodies): only the sidecar's own user may read them. Files are created 0600,
//! directories 0700 — explicitly where this workspace creates them, and through a umask of
//! 077 for what child programs (`tcpdump`) create.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Mode of capture, JSON and exported files.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the directories holding them.
pub const DIR_MODE: u32 = 0o700;

/// Sets the process umask to 077, so that every file this process and its children create
/// is private whatever mode they ask for. Returns the previous umask.
pub fn restrict_umask() -> u32 {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077)).bits()
}

/// Creates `dir` (and missing parents) with mode 0700, and sets 0700 on `dir` itself when it
/// already existed (an image or an earlier run may have made it 0755).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode != DIR_MODE {
        // An existing directory that cannot be changed (a read-only mount, another owner)
        // is still usable: say so rather than refuse to start.
        if let Err(error) = fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)) {
            crate::log::warning(&format!(
                "cannot make {} private (0700, it is {mode:o}): {error}",
                dir.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_become_private_created_or_not() {
        let root = tempfile::tempdir().unwrap();
        let fresh = root.path().join("a/b");
        private_dir(&fresh).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&fresh), DIR_MODE);
        assert_eq!(mode(&root.path().join("a")), DIR_MODE);
        let old = root.path().join("old");
        fs::create_dir(&old).unwrap();
        fs::set_permissions(&old, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&old).unwrap();
        assert_eq!(mode(&old), DIR_MODE);
    }
}

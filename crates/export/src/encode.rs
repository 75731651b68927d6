//! Reading a capture file once: open it safely, optionally gzip it on the fly, and count and
//! checksum (CRC32C, as Cloud Storage stores it) the bytes that leave.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use flate2::bufread::GzEncoder;

use crate::ExportError;

/// Large reads keep syscalls and (on FUSE) round trips few.
const BUFFER: usize = 256 * 1024;

/// Whether and how a file is compressed on export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Stored as is.
    None,
    /// gzip with this level (1 fastest … 9 smallest).
    Gzip {
        /// zlib level 1..=9.
        level: u32,
    },
}

impl Compression {
    /// The suffix the exported name gets (`.gz` or nothing).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip { .. } => ".gz",
        }
    }
}

/// An opened local file that is known to be a regular file.
#[derive(Debug)]
pub struct Source {
    file: File,
    path: PathBuf,
    len: u64,
}

impl Source {
    /// Its size when opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it was empty when opened.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens `path` for export. Never blocks (a FIFO is refused, not waited on), never follows a
/// symlink, and refuses anything but a regular file.
pub fn open_source(path: &Path) -> Result<Source, ExportError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // O_NONBLOCK: opening a FIFO without a writer would otherwise hang the exporter.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => ExportError::Vanished {
                path: path.to_path_buf(),
            },
            // ELOOP from O_NOFOLLOW.
            _ if source.raw_os_error() == Some(libc::ELOOP) => ExportError::NotAFile {
                path: path.to_path_buf(),
                kind: "symlink",
            },
            _ => ExportError::Read {
                path: path.to_path_buf(),
                source,
            },
        })?;
    let meta = file.metadata().map_err(|source| ExportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let kind = if kind.is_dir() {
            "directory"
        } else if kind.is_fifo() {
            "FIFO"
        } else if kind.is_socket() {
            "socket"
        } else if kind.is_block_device() || kind.is_char_device() {
            "device"
        } else {
            "special file"
        };
        return Err(ExportError::NotAFile {
            path: path.to_path_buf(),
            kind,
        });
    }
    Ok(Source {
        file,
        path: path.to_path_buf(),
        len: meta.len(),
    })
}

/// Counts what the compressor consumes from the file.
struct CountIn<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountIn<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for CountIn<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.count += amount as u64;
        self.inner.consume(amount);
    }
}

enum Inner {
    Plain(CountIn<BufReader<File>>),
    Gzip(Box<GzEncoder<CountIn<BufReader<File>>>>),
}

/// The bytes to store: the file, gzipped or not, with counts and a running CRC32C.
pub struct Encoded {
    inner: Inner,
    path: PathBuf,
    crc32c: u32,
    out: u64,
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoded")
            .field("path", &self.path)
            .field("out", &self.out)
            .finish()
    }
}

/// Starts encoding `source`. Read it to the end (or use [`Encoded::copy_to`]).
pub fn encode(source: Source, compression: Compression) -> Encoded {
    let counted = CountIn {
        inner: BufReader::with_capacity(BUFFER, source.file),
        count: 0,
    };
    let inner = match compression {
        Compression::None => Inner::Plain(counted),
        // GzBuilder writes mtime 0 and no name: the same input and level always give the same
        // bytes, which lets a re-export recognise its own earlier object.
        Compression::Gzip { level } => Inner::Gzip(Box::new(
            flate2::GzBuilder::new().buf_read(counted, flate2::Compression::new(level.min(9))),
        )),
    };
    Encoded {
        inner,
        path: source.path,
        crc32c: 0,
        out: 0,
    }
}

impl Encoded {
    /// Bytes consumed from the local file so far.
    pub fn bytes_read(&self) -> u64 {
        match &self.inner {
            Inner::Plain(counted) => counted.count,
            Inner::Gzip(encoder) => encoder.get_ref().count,
        }
    }

    /// Bytes produced so far.
    pub fn bytes_out(&self) -> u64 {
        self.out
    }

    /// CRC32C (Castagnoli) of the bytes produced so far.
    pub fn crc32c(&self) -> u32 {
        self.crc32c
    }

    /// The local file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies everything to `writer`, telling read failures (the local file) from write
    /// failures (the destination, named `target`). Returns the bytes written.
    pub fn copy_to(&mut self, writer: &mut dyn Write, target: &str) -> Result<u64, ExportError> {
        let mut buffer = vec![0u8; BUFFER];
        loop {
            let n = match self.read(&mut buffer) {
                Ok(0) => return Ok(self.out),
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ExportError::Read {
                        path: self.path.clone(),
                        source,
                    })
                }
            };
            writer
                .write_all(&buffer[..n])
                .map_err(|source| ExportError::Write {
                    target: target.to_string(),
                    source,
                })?;
        }
    }
}

impl Read for Encoded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.inner {
            Inner::Plain(counted) => counted.read(buf)?,
            Inner::Gzip(encoder) => encoder.read(buf)?,
        };
        self.crc32c = crc32c::crc32c_append(self.crc32c, &buf[..n]);
        self.out += n as u64;
        Ok(n)
    }
}

/// Whether `existing` holds exactly what exporting `source` with `compression` would store
/// (decompressed and compared, so a different gzip level still counts as the same content).
pub(crate) fn same_content(
    existing: impl Read,
    source: &Path,
    compression: Compression,
) -> io::Result<bool> {
    let local = BufReader::with_capacity(BUFFER, File::open(source)?);
    match compression {
        Compression::None => streams_equal(existing, local),
        Compression::Gzip { .. } => {
            let decoder = flate2::read::MultiGzDecoder::new(BufReader::new(existing));
            match streams_equal(decoder, local) {
                // A corrupt or non-gzip object is simply not the same content.
                Err(error) if error.kind() == io::ErrorKind::InvalidInput => Ok(false),
                Err(error) if error.kind() == io::ErrorKind::InvalidData => Ok(false),
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
                other => other,
            }
        }
    }
}

fn streams_equal(mut a: impl Read, mut b: impl Read) -> io::Result<bool> {
    let mut buf_a = vec![0u8; 64 * 1024];
    let mut buf_b = vec![0u8; 64 * 1024];
    loop {
        let n = read_full(&mut a, &mut buf_a)?;
        let m = read_full(&mut b, &mut buf_b)?;
        if n != m || buf_a[..n] != buf_b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the stream ends.
pub(crate) fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> (PathBuf, Vec<u8>) {
        let path = dir.join("eth0_part_20260101T000000Z.pcap");
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i.wrapping_mul(2_654_435_761) >> 7).to_le_bytes())
            .take(1_000_000)
            .collect();
        std::fs::write(&path, &data).unwrap();
        (path, data)
    }

    #[test]
    fn gzip_round_trips_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let (path, data) = sample(dir.path());
        let mut encoded = encode(open_source(&path).unwrap(), Compression::Gzip { level: 1 });
        let mut out = Vec::new();
        encoded.copy_to(&mut out, "memory").unwrap();
        assert_eq!(encoded.bytes_read(), data.len() as u64);
        assert_eq!(encoded.bytes_out(), out.len() as u64);
        assert_eq!(encoded.crc32c(), crc32c::crc32c(&out));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        // Deterministic: the same input gives the same bytes.
        let mut again = Vec::new();
        encode(open_source(&path).unwrap(), Compression::Gzip { level: 1 })
            .copy_to(&mut again, "memory")
            .unwrap();
        assert_eq!(again, out);
        assert!(same_content(&out[..], &path, Compression::Gzip { level: 6 }).unwrap());
        assert!(!same_content(&out[..10], &path, Compression::Gzip { level: 1 }).unwrap());
        assert!(same_content(&data[..], &path, Compression::None).unwrap());
        assert!(!same_content(&data[1..], &path, Compression::None).unwrap());
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            open_source(&fifo),
            Err(ExportError::NotAFile { kind: "FIFO", .. })
        ));
        assert!(matches!(
            open_source(dir.path()),
            Err(ExportError::NotAFile {
                kind: "directory",
                ..
            })
        ));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        assert!(matches!(
            open_source(&link),
            Err(ExportError::NotAFile {
                kind: "symlink",
                ..
            })
        ));
        assert!(matches!(
            open_source(&dir.path().join("gone")),
            Err(ExportError::Vanished { .. })
        ));
    }
}

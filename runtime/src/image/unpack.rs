//! Unpacks one layer tar (gzip, zstd or plain, sniffed from the first bytes) into an empty directory,
//! treating the tar as hostile:
//!
//! - Entry paths are normalised (leading `/` and `./` stripped, `.` components dropped); a `..`
//!   component rejects the layer. The layer's `/` entry only sets the root directory's metadata.
//! - Nothing is written through a symlink: every parent component is checked with
//!   `symlink_metadata` (and remembered once checked) and must be a real directory; files are
//!   created with `O_NOFOLLOW | O_EXCL` after removing whatever the same tar wrote there before.
//! - Symlink targets are data and may point anywhere; hardlinks must name a non-directory that this
//!   layer already unpacked (linked without following symlinks).
//! - Character and block devices are skipped (a container gets its `/dev` from the runtime); FIFOs
//!   are created. setuid/setgid bits are kept on regular files only; the sticky bit is kept.
//! - Sizes are capped ([`UnpackLimits`]): per entry, in total (uncompressed), and in entry count.
//! - Whiteouts become overlayfs whiteouts: `.wh.NAME` → a 0/0 character device `NAME`, and
//!   `.wh..wh..opq` → the `trusted.overlay.opaque=y` xattr on its directory (both need root).
//! - Ownership (lchown), modes, mtimes and `user.*`/`security.capability` xattrs are kept; other
//!   xattrs are skipped. Directory modes and mtimes are applied last, since writing children changes
//!   a directory's mtime.
//! - No per-file fsync: the caller syncs the filesystem once before renaming the directory into
//!   place, so a partial unpack is never visible under its final name.

use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use filetime::FileTime;
use sha2::{Digest as _, Sha256};

use super::digest::Digest;

/// Errors of unpacking one layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnpackError {
    #[error("reading the layer: {0}")]
    Read(#[source] io::Error),
    #[error("entry {path:?}: {reason}")]
    Hostile { path: String, reason: String },
    #[error("entry {path:?}: {source}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("layer exceeds {what} limit of {limit}")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("uncompressed layer digest is {actual}, expected {expected}")]
    DiffIdMismatch { expected: String, actual: String },
}

/// Caps on what one layer may contain.
#[derive(Debug, Clone, Copy)]
pub struct UnpackLimits {
    /// Uncompressed bytes of the whole tar stream.
    pub max_total_bytes: u64,
    /// Bytes of one file.
    pub max_entry_bytes: u64,
    /// Number of entries.
    pub max_entries: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            max_total_bytes: 64 << 30,
            max_entry_bytes: 16 << 30,
            max_entries: 2_000_000,
        }
    }
}

/// What an unpack did.
#[derive(Debug, Clone, Default)]
pub struct UnpackStats {
    /// Uncompressed tar bytes read.
    pub tar_bytes: u64,
    pub entries: u64,
    /// Device nodes skipped.
    pub skipped_devices: u64,
    /// sha256 of the uncompressed stream (the layer's diff-id).
    pub diff_id: String,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const COPY_BUF: usize = 1 << 20;

/// Unpacks the (possibly compressed) layer stream `input` into the existing empty directory `dest`.
/// With `expected_diff_id`, a stream whose uncompressed sha256 differs is an error.
pub fn unpack(
    input: impl Read,
    dest: &Path,
    limits: &UnpackLimits,
    expected_diff_id: Option<&str>,
) -> Result<UnpackStats, UnpackError> {
    let mut input = BufReader::with_capacity(256 << 10, input);
    let head = input.fill_buf().map_err(UnpackError::Read)?;
    let decoded: Box<dyn Read> = if head.starts_with(GZIP_MAGIC) {
        Box::new(flate2::bufread::MultiGzDecoder::new(input))
    } else if head.starts_with(ZSTD_MAGIC) {
        Box::new(zstd::stream::read::Decoder::with_buffer(input).map_err(UnpackError::Read)?)
    } else {
        Box::new(input)
    };
    let mut counted = HashingReader {
        inner: decoded,
        hasher: Sha256::new(),
        bytes: 0,
        limit: limits.max_total_bytes,
        over: false,
    };
    let real_end = Rc::new(Cell::new(None));
    let mut padded = PadReader {
        inner: &mut counted,
        pos: 0,
        real_end: real_end.clone(),
        padding: 0,
    };
    let mut u = Unpacker {
        root: dest.to_path_buf(),
        limits: *limits,
        checked_dirs: HashSet::new(),
        dirs: Vec::new(),
        stats: UnpackStats::default(),
        buf: vec![0; COPY_BUF],
        data_end: 0,
    };
    let res = u.run(&mut padded);
    if counted.over {
        return Err(UnpackError::TooLarge {
            what: "total size",
            limit: limits.max_total_bytes,
        });
    }
    res?;
    if let Some(end) = real_end.get()
        && end < u.data_end
    {
        return Err(UnpackError::Read(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the layer ends inside a file's data",
        )));
    }
    // The diff-id covers the whole stream, including the end-of-archive padding.
    io::copy(&mut counted, &mut io::sink()).map_err(|e| {
        if counted.over {
            UnpackError::TooLarge {
                what: "total size",
                limit: limits.max_total_bytes,
            }
        } else {
            UnpackError::Read(e)
        }
    })?;
    u.stats.tar_bytes = counted.bytes;
    u.stats.diff_id = Digest::from_hasher(counted.hasher).to_string();
    if let Some(expected) = expected_diff_id
        && expected != u.stats.diff_id
    {
        return Err(UnpackError::DiffIdMismatch {
            expected: expected.to_string(),
            actual: u.stats.diff_id,
        });
    }
    Ok(u.stats)
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    limit: u64,
    over: bool,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        if self.bytes > self.limit {
            self.over = true;
            return Err(io::Error::other("layer too large"));
        }
        Ok(n)
    }
}

/// Some writers (umoci 0.4) end the tar right after the last file's data, without padding or the
/// end-of-archive blocks. After the real end this reader serves up to [`MAX_PADDING`] zero bytes so
/// the tar parser sees a proper end, and records where the real stream ended: the unpacker then
/// checks that no entry's data reached past it, so truncated file data is still an error.
struct PadReader<R> {
    inner: R,
    pos: u64,
    real_end: Rc<Cell<Option<u64>>>,
    padding: usize,
}

const MAX_PADDING: usize = 511 + 1024;

impl<R: Read> Read for PadReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.real_end.get().is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.pos += n as u64;
                return Ok(n);
            }
            self.real_end.set(Some(self.pos));
        }
        let n = buf.len().min(MAX_PADDING - self.padding);
        buf[..n].fill(0);
        self.padding += n;
        Ok(n)
    }
}

struct Unpacker {
    root: PathBuf,
    limits: UnpackLimits,
    /// Relative directories known to be real directories (created or checked by us).
    checked_dirs: HashSet<PathBuf>,
    /// Directories whose mode and mtime are applied at the end.
    dirs: Vec<(PathBuf, u32, u64)>,
    stats: UnpackStats,
    buf: Vec<u8>,
    /// Where the data of the furthest entry ends in the stream.
    data_end: u64,
}

fn hostile(path: &Path, reason: impl Into<String>) -> UnpackError {
    UnpackError::Hostile {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Normalises a tar path: strips `/` and `./`, drops `.`, rejects `..`. Empty means the root.
pub fn normalize_entry_path(raw: &[u8]) -> Result<PathBuf, String> {
    if raw.contains(&0) {
        return Err("NUL in path".into());
    }
    if raw.len() > 4096 {
        return Err("path longer than 4096 bytes".into());
    }
    let mut out = PathBuf::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir => return Err("`..` component".into()),
            Component::Prefix(_) => return Err("path prefix".into()),
        }
    }
    Ok(out)
}

impl Unpacker {
    fn run(&mut self, input: &mut impl Read) -> Result<(), UnpackError> {
        let mut archive = tar::Archive::new(input);
        let entries = archive.entries().map_err(UnpackError::Read)?;
        for entry in entries {
            let mut entry = entry.map_err(UnpackError::Read)?;
            self.stats.entries += 1;
            if self.stats.entries > self.limits.max_entries {
                return Err(UnpackError::TooLarge {
                    what: "entry count",
                    limit: self.limits.max_entries,
                });
            }
            self.entry(&mut entry)?;
        }
        self.finish_dirs()
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let rel = normalize_entry_path(&raw)
            .map_err(|r| hostile(Path::new(OsStr::from_bytes(&raw)), r))?;
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().map_err(UnpackError::Read)? & 0o7777;
        let uid = header.uid().map_err(UnpackError::Read)?;
        let gid = header.gid().map_err(UnpackError::Read)?;
        let mtime = header.mtime().unwrap_or(0);
        let size = entry.size();
        self.data_end = self
            .data_end
            .max(entry.raw_file_position().saturating_add(size));
        if size > self.limits.max_entry_bytes {
            return Err(UnpackError::TooLarge {
                what: "entry size",
                limit: self.limits.max_entry_bytes,
            });
        }
        let uid = u32::try_from(uid).map_err(|_| hostile(&rel, "uid out of range"))?;
        let gid = u32::try_from(gid).map_err(|_| hostile(&rel, "gid out of range"))?;

        if rel.as_os_str().is_empty() {
            // The layer's `/` entry (umoci writes one): only the root's metadata.
            if kind.is_dir() {
                self.chown(&self.root.clone(), &rel, uid, gid)?;
                self.dirs.push((PathBuf::new(), mode, mtime));
            }
            return Ok(());
        }
        let name = rel.file_name().unwrap_or_default().as_bytes();
        if let Some(hidden) = name.strip_prefix(WHITEOUT.as_bytes()) {
            return self.whiteout(&rel, hidden);
        }
        let path = self.prepare_parent(&rel)?;
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        self.remove_existing(&path, &rel)?;
                        fs::create_dir(&path).map_err(write_err(&rel))?;
                    }
                    Err(_) => fs::create_dir(&path).map_err(write_err(&rel))?,
                }
                self.checked_dirs.insert(rel.clone());
                self.chown(&path, &rel, uid, gid)?;
                self.xattrs(entry, &path, &rel)?;
                self.dirs.push((rel, mode & !0o6000, mtime));
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                self.remove_existing(&path, &rel)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&path)
                    .map_err(write_err(&rel))?;
                self.copy(entry, &mut file, &rel)?;
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(write_err(&rel))?;
                // chown clears setuid/setgid, so the mode comes after it.
                file.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(write_err(&rel))?;
                let t = FileTime::from_unix_time(mtime as i64, 0);
                filetime::set_file_handle_times(&file, Some(t), Some(t))
                    .map_err(write_err(&rel))?;
                drop(file);
                self.xattrs(entry, &path, &rel)?;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| hostile(&rel, "symlink without target"))?
                    .into_owned();
                if target.len() > 4096 || target.contains(&0) {
                    return Err(hostile(&rel, "bad symlink target"));
                }
                self.remove_existing(&path, &rel)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .map_err(write_err(&rel))?;
                self.chown(&path, &rel, uid, gid)?;
                self.times(&path, &rel, mtime)?;
                self.xattrs(entry, &path, &rel)?;
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| hostile(&rel, "hardlink without target"))?
                    .into_owned();
                let target_rel = normalize_entry_path(&target).map_err(|r| hostile(&rel, r))?;
                if target_rel.as_os_str().is_empty() {
                    return Err(hostile(&rel, "hardlink to the layer root"));
                }
                let target_path = self.existing_parent(&target_rel)?;
                match fs::symlink_metadata(&target_path) {
                    Ok(m) if !m.is_dir() => {}
                    _ => return Err(hostile(&rel, "hardlink target is not a file of this layer")),
                }
                if target_path == path {
                    return Ok(());
                }
                self.remove_existing(&path, &rel)?;
                fs::hard_link(&target_path, &path).map_err(write_err(&rel))?;
            }
            T::Fifo => {
                self.remove_existing(&path, &rel)?;
                nix::unistd::mkfifo(
                    &path,
                    nix::sys::stat::Mode::from_bits_truncate(mode & 0o1777),
                )
                .map_err(|e| write_err(&rel)(io::Error::from(e)))?;
                self.chown(&path, &rel, uid, gid)?;
                self.times(&path, &rel, mtime)?;
            }
            T::Char | T::Block => self.stats.skipped_devices += 1,
            // PAX/GNU metadata records are consumed by the tar crate; anything else is ignored.
            _ => {}
        }
        Ok(())
    }

    /// Makes sure every parent of `rel` is a real directory (creating missing ones) and returns
    /// the absolute path of `rel`.
    fn prepare_parent(&mut self, rel: &Path) -> Result<PathBuf, UnpackError> {
        let mut cur = PathBuf::new();
        if let Some(parent) = rel.parent() {
            for c in parent.components() {
                cur.push(c);
                if self.checked_dirs.contains(&cur) {
                    continue;
                }
                let abs = self.root.join(&cur);
                match fs::symlink_metadata(&abs) {
                    Ok(m) if m.is_dir() => {}
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(hostile(rel, "a parent directory is a symlink"));
                    }
                    Ok(_) => return Err(hostile(rel, "a parent is not a directory")),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        fs::create_dir(&abs).map_err(write_err(rel))?;
                    }
                    Err(e) => return Err(write_err(rel)(e)),
                }
                self.checked_dirs.insert(cur.clone());
            }
        }
        Ok(self.root.join(rel))
    }

    /// Like `prepare_parent` but creates nothing (for hardlink targets).
    fn existing_parent(&self, rel: &Path) -> Result<PathBuf, UnpackError> {
        let mut cur = PathBuf::new();
        if let Some(parent) = rel.parent() {
            for c in parent.components() {
                cur.push(c);
                if self.checked_dirs.contains(&cur) {
                    continue;
                }
                match fs::symlink_metadata(self.root.join(&cur)) {
                    Ok(m) if m.is_dir() => {}
                    _ => return Err(hostile(rel, "hardlink target is not inside this layer")),
                }
            }
        }
        Ok(self.root.join(rel))
    }

    fn remove_existing(&mut self, path: &Path, rel: &Path) -> Result<(), UnpackError> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                fs::remove_dir_all(path).map_err(write_err(rel))?;
                // Whatever we knew below it is gone.
                self.checked_dirs.retain(|d| !d.starts_with(rel));
                self.dirs.retain(|(d, _, _)| !d.starts_with(rel));
            }
            Ok(_) => fs::remove_file(path).map_err(write_err(rel))?,
            Err(_) => {}
        }
        Ok(())
    }

    fn whiteout(&mut self, rel: &Path, hidden: &[u8]) -> Result<(), UnpackError> {
        let dir_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if rel.file_name().map(|n| n.as_bytes()) == Some(OPAQUE.as_bytes()) {
            let dir = if dir_rel.as_os_str().is_empty() {
                self.root.clone()
            } else {
                let d = self.prepare_parent(&dir_rel.join("x"))?;
                d.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            return xattr::set(&dir, "trusted.overlay.opaque", b"y").map_err(write_err(rel));
        }
        if hidden.starts_with(WHITEOUT.as_bytes()) {
            // Other `.wh..wh.` markers (hardlink bookkeeping of old aufs layers) mean nothing here.
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/') {
            return Err(hostile(rel, "bad whiteout name"));
        }
        let target_rel = dir_rel.join(OsStr::from_bytes(hidden));
        let path = self.prepare_parent(&target_rel)?;
        self.remove_existing(&path, &target_rel)?;
        nix::sys::stat::mknod(
            &path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .map_err(|e| write_err(rel)(io::Error::from(e)))
    }

    fn copy<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        file: &mut File,
        rel: &Path,
    ) -> Result<(), UnpackError> {
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(UnpackError::Read(e)),
            };
            file.write_all(&self.buf[..n]).map_err(write_err(rel))?;
        }
    }

    fn chown(&self, path: &Path, rel: &Path, uid: u32, gid: u32) -> Result<(), UnpackError> {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(write_err(rel))
    }

    fn times(&self, path: &Path, rel: &Path, mtime: u64) -> Result<(), UnpackError> {
        let t = FileTime::from_unix_time(mtime as i64, 0);
        filetime::set_symlink_file_times(path, t, t).map_err(write_err(rel))
    }

    fn xattrs<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
        rel: &Path,
    ) -> Result<(), UnpackError> {
        let Ok(Some(exts)) = entry.pax_extensions() else {
            return Ok(());
        };
        for ext in exts.flatten() {
            let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                continue;
            };
            if !(name.starts_with(b"user.") || name == b"security.capability") {
                continue;
            }
            if let Err(e) = xattr::set(path, OsStr::from_bytes(name), ext.value_bytes()) {
                // A filesystem without user xattrs loses them; that is not worth failing a pull.
                tracing::debug!(path = %rel.display(), error = %e, "xattr skipped");
            }
        }
        Ok(())
    }

    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        for (rel, mode, mtime) in std::mem::take(&mut self.dirs) {
            let path = self.root.join(&rel);
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(write_err(&rel))?;
            self.times(&path, &rel, mtime)?;
        }
        Ok(())
    }
}

fn write_err(rel: &Path) -> impl FnOnce(io::Error) -> UnpackError {
    let path = rel.display().to_string();
    move |source| UnpackError::Write { path, source }
}

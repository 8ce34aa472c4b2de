//! CRI container logs: `<RFC3339Nano> <stdout|stderr> <F|P> <text>` lines, as the kubelet and
//! `kubectl logs` read them. A line longer than [`MAX_LINE`] is split into `P` (partial) records
//! ended by an `F` one; output that ends without a newline is flushed as `F` when its stream closes.
//!
//! Invariants: each record is written with one `write` call (a concurrent reader never sees half a
//! record except at the file's end); rotation renames `log` → `log.1` → … → `log.N` (the oldest is
//! dropped) and starts a new `log`, so a follower notices the live file was replaced by its inode.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::ContainerError;

/// Longest line content in one record (containerd's default).
pub const MAX_LINE: usize = 16 * 1024;

/// Which output a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Writes CRI records for both streams of one container, rotating by size.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
    pending: [Vec<u8>; 2],
    /// The record being written, kept so that logging a line allocates nothing once warm. Never
    /// much more than [`MAX_LINE`]: `push` splits longer lines.
    rec: Vec<u8>,
}

impl LogWriter {
    /// Opens (appending to) `path`.
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> Result<Self, ContainerError> {
        let file = open_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_size: if max_size == 0 { 10 << 20 } else { max_size },
            max_files: if max_files == 0 { 4 } else { max_files },
            pending: [Vec::new(), Vec::new()],
            rec: Vec::new(),
        })
    }

    /// Logs a chunk of output read from `stream`.
    #[allow(unsafe_code)] // SAFETY: see `shim` on the hot section: plain code, placed together.
    #[unsafe(link_section = ".text.hot.k1s_shim")]
    pub fn push(&mut self, stream: Stream, mut data: &[u8]) {
        let i = stream as usize;
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(n) if self.pending[i].len() + n <= MAX_LINE => {
                    let mut line = std::mem::take(&mut self.pending[i]);
                    line.extend_from_slice(&data[..n]);
                    self.record(stream, true, &line);
                    line.clear();
                    self.pending[i] = line;
                    data = &data[n + 1..];
                }
                _ => {
                    let room = MAX_LINE - self.pending[i].len();
                    let take = room.min(data.len());
                    self.pending[i].extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.pending[i].len() == MAX_LINE {
                        let line = std::mem::take(&mut self.pending[i]);
                        self.record(stream, false, &line);
                    }
                }
            }
        }
    }

    /// Flushes an unterminated last line of `stream` (its pipe closed).
    pub fn close_stream(&mut self, stream: Stream) {
        let line = std::mem::take(&mut self.pending[stream as usize]);
        if !line.is_empty() {
            self.record(stream, true, &line);
        }
    }

    #[allow(unsafe_code)] // SAFETY: see `shim` on the hot section: plain code, placed together.
    #[unsafe(link_section = ".text.hot.k1s_shim")]
    fn record(&mut self, stream: Stream, full: bool, text: &[u8]) {
        let rec = &mut self.rec;
        rec.clear();
        rec.extend_from_slice(&super::timestamp::now());
        rec.push(b' ');
        rec.extend_from_slice(stream.name().as_bytes());
        rec.extend_from_slice(if full { b" F " } else { b" P " });
        rec.extend_from_slice(text);
        rec.push(b'\n');
        // A full disk loses log lines, never the container: errors are dropped here.
        if write_all(&self.file, rec) {
            self.size += rec.len() as u64;
        }
        if self.size >= self.max_size {
            self.rotate();
        }
    }

    fn rotate(&mut self) {
        let name = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        let _ = std::fs::remove_file(name(self.max_files));
        for n in (1..self.max_files).rev() {
            let _ = std::fs::rename(name(n), name(n + 1));
        }
        let _ = std::fs::rename(&self.path, name(1));
        if let Ok(f) = open_append(&self.path) {
            self.file = f;
            self.size = 0;
        }
    }
}

/// Writes all of `data` (an append-mode file takes it in one call unless a signal or a full disk
/// interrupts); whether it all went. Straight to `write(2)`, which the shim's steady state keeps
/// to (see [`super::timestamp`]).
#[allow(unsafe_code)] // SAFETY: see `shim` on the hot section: plain code, placed together.
#[unsafe(link_section = ".text.hot.k1s_shim")]
fn write_all(file: &File, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(file, data) {
            Ok(0) => return false,
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

fn open_append(path: &Path) -> Result<File, ContainerError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| ContainerError::io("open log", path, e))
}

/// One parsed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: &'a str,
    pub stream: Stream,
    pub partial: bool,
    pub text: &'a [u8],
}

/// Parses one record (without its newline).
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut it = line.splitn(4, |&b| b == b' ');
    let time = std::str::from_utf8(it.next()?).ok()?;
    let stream = match it.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let partial = match it.next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(Record {
        time,
        stream,
        partial,
        text: it.next().unwrap_or_default(),
    })
}

/// Reads a log file from a byte offset, following rotation by inode.
pub struct LogReader {
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    offset: u64,
    carry: Vec<u8>,
}

impl LogReader {
    /// A reader of `path` starting at `offset`.
    pub fn new(path: &Path, offset: u64) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
            ino: 0,
            offset,
            carry: Vec::new(),
        }
    }

    /// Byte offset of the next unread record in the current file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Calls `f` for each complete record appended since the last call; returns how many.
    pub fn poll(&mut self, mut f: impl FnMut(&Record<'_>)) -> Result<usize, ContainerError> {
        let mut count = 0;
        loop {
            if self.file.is_none() {
                match File::open(&self.path) {
                    Ok(mut file) => {
                        self.ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
                        file.seek(SeekFrom::Start(self.offset))
                            .map_err(|e| ContainerError::io("seek log", &self.path, e))?;
                        self.file = Some(file);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(count),
                    Err(e) => return Err(ContainerError::io("open log", &self.path, e)),
                }
            }
            let Some(file) = self.file.as_mut() else {
                return Ok(count);
            };
            let mut buf = [0u8; 8192];
            let n = file
                .read(&mut buf)
                .map_err(|e| ContainerError::io("read log", &self.path, e))?;
            if n == 0 {
                // At the end: if the live file was rotated away, continue with the new one.
                let rotated = std::fs::metadata(&self.path).is_ok_and(|m| m.ino() != self.ino);
                if !rotated {
                    return Ok(count);
                }
                self.file = None;
                self.offset = 0;
                self.carry.clear();
                continue;
            }
            self.carry.extend_from_slice(&buf[..n]);
            let mut start = 0;
            while let Some(p) = self.carry[start..].iter().position(|&b| b == b'\n') {
                let line = &self.carry[start..start + p];
                if let Some(rec) = parse(line) {
                    f(&rec);
                    count += 1;
                }
                start += p + 1;
            }
            self.offset += start as u64;
            self.carry.drain(..start);
            // A record is at most MAX_LINE plus its prefix: anything longer is garbage.
            if self.carry.len() > 2 * MAX_LINE {
                self.offset += self.carry.len() as u64;
                self.carry.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(path: &Path) -> Vec<(Stream, bool, Vec<u8>)> {
        let mut out = Vec::new();
        LogReader::new(path, 0)
            .poll(|r| out.push((r.stream, r.partial, r.text.to_vec())))
            .unwrap();
        out
    }

    #[test]
    fn lines_partials_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, 1 << 20, 2).unwrap();
        w.push(Stream::Stdout, b"hello\nwor");
        w.push(Stream::Stderr, b"oops\n");
        w.push(Stream::Stdout, b"ld\n");
        let long = vec![b'x'; MAX_LINE + 10];
        w.push(Stream::Stdout, &long);
        w.push(Stream::Stdout, b"\ntail");
        w.close_stream(Stream::Stdout);
        let recs = records(&path);
        assert_eq!(recs[0], (Stream::Stdout, false, b"hello".to_vec()));
        assert_eq!(recs[1], (Stream::Stderr, false, b"oops".to_vec()));
        assert_eq!(recs[2], (Stream::Stdout, false, b"world".to_vec()));
        assert_eq!(recs[3], (Stream::Stdout, true, vec![b'x'; MAX_LINE]));
        assert_eq!(recs[4], (Stream::Stdout, false, vec![b'x'; 10]));
        assert_eq!(recs[5], (Stream::Stdout, false, b"tail".to_vec()));
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.ends_with("Z stdout F hello"), "{first}");

        let mut reader = LogReader::new(&path, 0);
        let mut seen = reader.poll(|_| {}).unwrap();
        let mut w = LogWriter::open(&path, 200, 2).unwrap();
        for i in 0..20 {
            w.push(Stream::Stdout, format!("line {i}\n").as_bytes());
            seen += reader.poll(|_| {}).unwrap();
        }
        assert!(dir.path().join("c.log.2").exists());
        assert!(!dir.path().join("c.log.3").exists());
        assert_eq!(seen, 6 + 20);
        assert!(parse(b"garbage").is_none());
    }
}

//! Giving back what the shim's start-up touched: once the shim has been idle for a while, it
//! drops its page-table entries for clean, read-only, file-backed pages (the `k1s` executable's
//! text and read-only data, libc's text) and returns free heap pages to the kernel. Pages the
//! steady-state loop needs again (polling, draining logs) refault on demand from the page cache;
//! the rest, set-up code that ran once, stops counting in the shim's RSS.
//!
//! Invariants:
//! - `MADV_DONTNEED` is applied only to mappings that are file-backed (the name is an absolute
//!   path), not writable, and whose `smaps` shows `Anonymous: 0 kB`. A private mapping that was
//!   ever written (copy-on-write pages, e.g. relocated `.data.rel.ro` made read-only again after
//!   relocation) has anonymous pages and is skipped: dropping those would replace their contents
//!   with the file's. So dropping is always lossless: every dropped page is identical to the file.
//! - The shim is single-threaded and maps nothing between reading `smaps` and `madvise`, so no
//!   mapping can turn writable or gain anonymous pages in between.
//! - Failures are ignored: shedding is an optimisation, the shim's work never depends on it.

use std::io::{BufRead, BufReader};

/// One mapping of `/proc/self/smaps` that may be shed.
#[derive(Debug, PartialEq, Eq)]
struct Region {
    start: usize,
    end: usize,
}

/// Drops the shim's clean file-backed read-only pages and trims the heap; returns the bytes of
/// address space advised (mapped, not necessarily resident).
pub(super) fn shed() -> usize {
    let Ok(f) = std::fs::File::open("/proc/self/smaps") else {
        return 0;
    };
    let regions = sheddable(BufReader::new(f));
    let mut advised = 0;
    for r in &regions {
        if dont_need(r) {
            advised += r.end - r.start;
        }
    }
    trim_heap();
    advised
}

/// The mappings of an `smaps` listing that are safe to drop (see the module's invariants).
fn sheddable(smaps: impl BufRead) -> Vec<Region> {
    let mut out = Vec::new();
    // The mapping being read, if its kind may be shed, and whether an `Anonymous: 0 kB` line
    // proved it clean (a mapping without that line is kept).
    let mut cur: Option<(Region, bool)> = None;
    for line in smaps.lines() {
        let Ok(line) = line else { break };
        if let Some((region, ok)) = header(&line) {
            out.extend(cur.take().filter(|c| c.1).map(|c| c.0));
            cur = ok.then_some((region, false));
        } else if let Some(kb) = line.strip_prefix("Anonymous:")
            && let Some((_, clean)) = cur.as_mut()
        {
            *clean = kb.trim().strip_suffix("kB").map(str::trim) == Some("0");
        }
    }
    out.extend(cur.filter(|c| c.1).map(|c| c.0));
    out
}

/// Parses an `smaps` mapping header (`start-end perms offset dev inode [path]`): the region and
/// whether its kind may be shed (readable, not writable, backed by a file). `None` for field lines.
fn header(line: &str) -> Option<(Region, bool)> {
    let mut fields = line.split_ascii_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?.as_bytes();
    if perms.len() != 4 || end <= start {
        return None;
    }
    let (_offset, _dev, _inode) = (fields.next()?, fields.next()?, fields.next()?);
    let file_backed = fields.next().is_some_and(|p| p.starts_with('/'));
    let ok = perms[0] == b'r' && perms[1] == b'-' && file_backed;
    Some((Region { start, end }, ok))
}

/// `madvise(MADV_DONTNEED)` over one region; whether the kernel accepted it.
#[allow(unsafe_code)]
fn dont_need(r: &Region) -> bool {
    // SAFETY: the region is a whole mapping of this process, read-only, file-backed and without
    // anonymous (copy-on-write) pages (checked by `sheddable`), so dropping its pages discards
    // nothing: later accesses refault the same bytes from the file. No Rust object owns this
    // memory as mutable, and the single-threaded shim maps nothing in between.
    let rc = unsafe {
        libc::madvise(
            r.start as *mut libc::c_void,
            r.end - r.start,
            libc::MADV_DONTNEED,
        )
    };
    rc == 0
}

/// Returns free heap memory to the kernel (glibc's allocator, which the shim uses; a no-op for
/// memory held by any other allocator).
#[cfg(target_env = "gnu")]
#[allow(unsafe_code)]
fn trim_heap() {
    // SAFETY: malloc_trim only releases memory that glibc's allocator holds as free.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(target_env = "gnu"))]
fn trim_heap() {}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
00400000-00600000 r--p 00000000 fe:01 123 /usr/bin/k1s
Size:               2048 kB
Rss:                 900 kB
Anonymous:             0 kB
00600000-00800000 r-xp 00200000 fe:01 123 /usr/bin/k1s
Anonymous:             0 kB
00800000-00900000 r--p 00400000 fe:01 123 /usr/bin/k1s
Anonymous:            12 kB
00900000-00a00000 rw-p 00500000 fe:01 123 /usr/bin/k1s
Anonymous:             0 kB
00a00000-00b00000 rw-p 00000000 00:00 0 [heap]
Anonymous:           360 kB
7f0000000000-7f0000001000 r--p 00000000 00:00 0
Anonymous:             0 kB
7f0000001000-7f0000002000 ---p 00000000 fe:01 9 /usr/lib/libc.so.6
Anonymous:             0 kB
7f0000002000-7f0000003000 r-xs 00000000 fe:01 9 /usr/lib/libc.so.6
Anonymous:             0 kB
7ffd00000000-7ffd00001000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
7f0000004000-7f0000005000 r-xp 00000000 fe:01 9 /usr/lib/x.so
";

    #[test]
    fn only_clean_read_only_file_mappings_are_shed() {
        let got = sheddable(SMAPS.as_bytes());
        let want = [
            (0x400000, 0x600000), // read-only data, no anonymous pages
            (0x600000, 0x800000), // text
            // 0x800000: relocated (COW'd) read-only data, kept
            // 0x900000: writable, kept; heap, anonymous and inaccessible mappings, vdso: kept
            (0x7f0000002000, 0x7f0000003000), // shared read-only file mapping
        ];
        // The last mapping has no `Anonymous:` line, so nothing proves it clean: kept.
        let want: Vec<Region> = want
            .iter()
            .map(|&(start, end)| Region { start, end })
            .collect();
        assert_eq!(got, want);
    }
}

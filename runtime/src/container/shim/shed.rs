//! Giving back what the shim's start-up touched: once the shim has been idle for a while, it
//! drops its page-table entries for clean, read-only, file-backed pages (the `k1s` executable's
//! text and read-only data, libc's text) and returns free heap pages to the kernel. Pages the
//! steady-state loop needs again (polling, draining logs) refault on demand from the page cache;
//! the rest, set-up code that ran once, stops counting in the shim's RSS.
//!
//! Invariants:
//! - `MADV_DONTNEED` is applied only within mappings that are file-backed (the name is an absolute
//!   path) and not writable: whole mappings whose `smaps` shows `Anonymous: 0 kB`, and in the
//!   others (a private mapping that was written once, e.g. relocated read-only data: its
//!   copy-on-write pages are anonymous) only the pages `/proc/self/pagemap` shows present and
//!   file-backed. Dropping a copy-on-write page would replace its contents with the file's; so
//!   dropping is always lossless: every dropped page is identical to the file.
//! - The shim is single-threaded and between reading `smaps`/`pagemap` and `madvise` it only
//!   allocates (which maps or grows anonymous writable memory, never a file mapping), so no
//!   planned mapping can turn writable or gain anonymous pages in between.
//! - Failures are ignored: shedding is an optimisation, the shim's work never depends on it.

use std::io::{BufRead, BufReader};

/// An address range of this process (a whole mapping, or a run of pages in one).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Region {
    start: usize,
    end: usize,
}

/// Drops the shim's clean file-backed read-only pages and trims the heap; returns the bytes of
/// address space advised (mapped, not necessarily resident).
///
/// Everything that allocates or parses runs first and fills `plan` (kept by the caller, so no
/// memory is freed afterwards); then [`drop_all`], in the shim's hot section, only calls
/// `madvise`. So the code that runs after the pages are gone, and refaults them, is that loop
/// and the shim's own steady state, not the parsing that found them.
pub(super) fn shed(plan: &mut Vec<Region>) -> usize {
    trim_heap();
    plan.clear();
    let Ok(f) = std::fs::File::open("/proc/self/smaps") else {
        return 0;
    };
    let pagemap = std::fs::File::open("/proc/self/pagemap").ok();
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| usize::try_from(p).ok())
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096);
    for (r, clean) in sheddable(BufReader::new(f)) {
        if clean {
            plan.push(r);
        } else if let Some(pagemap) = &pagemap {
            file_pages(pagemap, &r, page, plan);
        }
    }
    // Closed now, so no code runs after the drop that need not.
    drop(pagemap);
    drop_all(plan)
}

/// `madvise(MADV_DONTNEED)` over each region; the bytes the kernel accepted.
#[allow(unsafe_code)] // SAFETY: see `shim` on the hot section: plain code, placed together.
#[unsafe(link_section = ".text.hot.k1s_shim")]
fn drop_all(plan: &[Region]) -> usize {
    let mut advised = 0;
    for r in plan {
        if dont_need(r) {
            advised += r.end - r.start;
        }
    }
    advised
}

/// The read-only file-backed mappings of an `smaps` listing, each with whether an
/// `Anonymous: 0 kB` line proved it free of copy-on-write pages.
fn sheddable(smaps: impl BufRead) -> Vec<(Region, bool)> {
    let mut out = Vec::new();
    let mut cur: Option<(Region, bool)> = None;
    for line in smaps.lines() {
        let Ok(line) = line else { break };
        if let Some((region, ok)) = header(&line) {
            out.extend(cur.take());
            cur = ok.then_some((region, false));
        } else if let Some(kb) = line.strip_prefix("Anonymous:")
            && let Some((_, clean)) = cur.as_mut()
        {
            *clean = kb.trim().strip_suffix("kB").map(str::trim) == Some("0");
        }
    }
    out.extend(cur);
    out
}

/// Mappings larger than this are left alone by the page-by-page path (bounds its buffer: 8 bytes
/// of pagemap a page).
const MAX_PAGES: usize = 1 << 16;
/// `/proc/PID/pagemap` entry bits: page present, and page file-backed (or shared anonymous,
/// which a read-only file mapping has none of).
const PM_PRESENT: u64 = 1 << 63;
const PM_FILE: u64 = 1 << 61;

/// Adds to `plan` the runs of pages of `r` that `pagemap` shows present and file-backed.
fn file_pages(pagemap: &std::fs::File, r: &Region, page: usize, plan: &mut Vec<Region>) {
    use std::os::unix::fs::FileExt;
    let pages = (r.end - r.start) / page;
    if pages > MAX_PAGES {
        return;
    }
    let mut buf = vec![0u8; pages * 8];
    if pagemap
        .read_exact_at(&mut buf, (r.start / page * 8) as u64)
        .is_err()
    {
        return;
    }
    let entries: Vec<u64> = buf
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    plan.extend(file_runs(&entries).into_iter().map(|(from, to)| Region {
        start: r.start + from * page,
        end: r.start + to * page,
    }));
}

/// Runs `[from, to)` of pagemap entries that are present file pages.
fn file_runs(entries: &[u64]) -> Vec<(usize, usize)> {
    let file = |e: &u64| e & PM_PRESENT != 0 && e & PM_FILE != 0;
    let mut runs = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        if !file(&entries[i]) {
            i += 1;
            continue;
        }
        let end = entries[i..]
            .iter()
            .position(|e| !file(e))
            .map_or(entries.len(), |n| i + n);
        runs.push((i, end));
        i = end;
    }
    runs
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
#[unsafe(link_section = ".text.hot.k1s_shim")]
fn dont_need(r: &Region) -> bool {
    // SAFETY: the region lies in a read-only, file-backed mapping of this process and holds no
    // anonymous (copy-on-write) page (the whole mapping per `smaps`, or page by page per
    // `pagemap`), so dropping its pages discards nothing: later accesses refault the same bytes
    // from the file. No Rust object owns this
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
    fn only_read_only_file_mappings_are_shed() {
        let got = sheddable(SMAPS.as_bytes());
        let want = [
            (0x400000, 0x600000, true), // read-only data, no anonymous pages
            (0x600000, 0x800000, true), // text
            // Relocated read-only data with copy-on-write pages: page by page.
            (0x800000, 0x900000, false),
            // 0x900000: writable; heap, anonymous and inaccessible mappings, vdso: never.
            (0x7f0000002000, 0x7f0000003000, true), // shared read-only file mapping
            // No `Anonymous:` line, so nothing proves it clean: page by page.
            (0x7f0000004000, 0x7f0000005000, false),
        ];
        let want: Vec<(Region, bool)> = want
            .iter()
            .map(|&(start, end, clean)| (Region { start, end }, clean))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn page_by_page_only_present_file_pages() {
        let (p, f) = (PM_PRESENT, PM_FILE);
        // file, file, COW'd (present, anonymous), absent, swapped-out anonymous, file, absent
        // with a stray file bit.
        let entries = [p | f, p | f | 5, p, 0, 1 << 62, p | f, f];
        assert_eq!(file_runs(&entries), vec![(0, 2), (5, 6)]);
        assert_eq!(file_runs(&[]), vec![]);
        assert_eq!(file_runs(&[p | f; 3]), vec![(0, 3)]);
    }
}

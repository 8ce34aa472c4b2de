//! Where a process's memory is, from `/proc/PID/smaps_rollup` and `/proc/PID/smaps`.
//!
//! Invariants: only reads `/proc`; a mapping whose name is absent is counted as `[anon]`;
//! figures are KiB as the kernel prints them, summed per mapping name and permissions, so the
//! several mappings of one file with the same permissions (e.g. text split by a guard) add up.

use std::collections::HashMap;

use anyhow::{Context, Result};

/// One named mapping's resident memory, summed over every range with that name and permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The file name (last path component) or the kernel's `[heap]`/`[stack]`/`[anon]`, then
    /// the permissions.
    pub name: String,
    /// Resident KiB.
    pub rss: u64,
    /// Anonymous KiB (private pages not backed by the file).
    pub anonymous: u64,
    /// Private dirty KiB.
    pub private_dirty: u64,
    /// How many ranges were summed.
    pub ranges: u32,
}

/// A `KEY:  N kB` field of a `/proc` file.
pub fn kb_field(path: &str, key: &str) -> Result<u64> {
    let text = std::fs::read_to_string(path).with_context(|| path.to_string())?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("{key} in {path}"))
}

/// The mappings of `smaps` text, largest resident first.
pub fn mappings(smaps: &str) -> Vec<Mapping> {
    let mut order: Vec<Mapping> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut cur: Option<usize> = None;
    for l in smaps.lines() {
        let mut f = l.split_whitespace();
        let Some(first) = f.next() else { continue };
        // A header line starts with an address range; field lines start with `Key:`.
        if first.contains('-') && !first.ends_with(':') {
            let perms = f.next().unwrap_or("");
            let name = f.nth(3).unwrap_or("[anon]");
            let short = name.rsplit('/').next().unwrap_or(name);
            let key = format!("{short} {perms}");
            let i = *index.entry(key.clone()).or_insert_with(|| {
                order.push(Mapping {
                    name: key,
                    rss: 0,
                    anonymous: 0,
                    private_dirty: 0,
                    ranges: 0,
                });
                order.len() - 1
            });
            order[i].ranges += 1;
            cur = Some(i);
        } else if let Some(i) = cur {
            let v: u64 = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            let m = &mut order[i];
            match first {
                "Rss:" => m.rss += v,
                "Anonymous:" => m.anonymous += v,
                "Private_Dirty:" => m.private_dirty += v,
                _ => {}
            }
        }
    }
    order.sort_by_key(|m| std::cmp::Reverse(m.rss));
    order
}

/// Prints the `smaps_rollup` totals of `pid` and its `top` largest mappings, each line prefixed.
pub fn print_breakdown(prefix: &str, pid: u32, top: usize) -> Result<()> {
    let rollup = format!("/proc/{pid}/smaps_rollup");
    let mut line = format!("{prefix} smaps_rollup KiB:");
    for key in [
        "Rss:",
        "Pss:",
        "Pss_Anon:",
        "Pss_File:",
        "Shared_Clean:",
        "Private_Clean:",
        "Private_Dirty:",
    ] {
        line += &format!(" {} {}", key.trim_end_matches(':'), kb_field(&rollup, key)?);
    }
    // Each thread has a stack and, under jemalloc, a thread cache.
    line += &format!(
        "; threads {}",
        kb_field(&format!("/proc/{pid}/status"), "Threads:")?
    );
    println!("{line}");
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    for m in mappings(&smaps).iter().take(top) {
        println!(
            "{prefix}   {:<28} Rss {:>6} KiB  Anonymous {:>6} KiB  Private_Dirty {:>6} KiB  ({} ranges)",
            m.name, m.rss, m.anonymous, m.private_dirty, m.ranges
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
00400000-00600000 r-xp 00000000 fe:01 123 /usr/bin/k1s
Rss:                 300 kB
Anonymous:             0 kB
Private_Dirty:         0 kB
00800000-00900000 r-xp 00400000 fe:01 123 /usr/bin/k1s
Rss:                 200 kB
Anonymous:             4 kB
Private_Dirty:         4 kB
7f0000000000-7f0000100000 rw-p 00000000 00:00 0 
Rss:                 700 kB
Anonymous:           700 kB
Private_Dirty:       700 kB
7ffd0000-7ffd1000 rw-p 00000000 00:00 0 [stack]
Rss:                   8 kB
Anonymous:             8 kB
Private_Dirty:         8 kB
";

    #[test]
    fn sums_ranges_of_one_file_and_sorts_by_rss() {
        let m = mappings(SAMPLE);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].name, "[anon] rw-p");
        assert_eq!((m[0].rss, m[0].anonymous, m[0].ranges), (700, 700, 1));
        assert_eq!(m[1].name, "k1s r-xp");
        assert_eq!((m[1].rss, m[1].anonymous, m[1].ranges), (500, 4, 2));
        assert_eq!(m[2].name, "[stack] rw-p");
    }

    #[test]
    fn garbage_gives_no_mappings() {
        assert!(mappings("Rss: 5 kB\nnonsense\n\n").is_empty());
    }
}

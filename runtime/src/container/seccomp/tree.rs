//! A compact form of a syscall-number filter: seccompiler emits five instructions per listed
//! syscall (≈ 1,500 for `RuntimeDefault`), a chain that every denied syscall walks to its end
//! and that the kernel walks once per syscall number when it loads the filter (to build its
//! always-allowed cache). The same verdicts as a binary search over the syscall numbers take
//! ≈ 10 instructions a call and a few hundred in all.
//!
//! Invariants:
//! - Only seccompiler's exact output for rules without argument conditions is rewritten: its
//!   architecture check (`ld arch; jeq ARCH,1,0; ret KILL`), `ld nr`, one block
//!   `jeq NR,0,1; ja 1; ja 2; ret MATCH; ret MISMATCH` per syscall, then `ret MISMATCH`. That
//!   program returns MATCH exactly for the listed numbers, MISMATCH for every other number; any
//!   other shape makes [`compact`] return `None` and the original is used.
//! - The compact program keeps the original's architecture check verbatim.
//! - Tests check both programs give the same verdict for every syscall number, with a small BPF
//!   interpreter.

use seccompiler::{BpfProgram, sock_filter};

const LD_W_ABS: u16 = 0x20;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;
/// `offsetof(struct seccomp_data, nr)` and `arch`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;

/// The binary-search equivalent of `prog`, or `None` if `prog` is not of the expected shape.
pub(super) fn compact(prog: &[sock_filter]) -> Option<BpfProgram> {
    let (prologue, rest) = prog.split_at_checked(3)?;
    let arch_check = prologue[0] == stmt(LD_W_ABS, ARCH_OFFSET)
        && (prologue[1].code, prologue[1].jt, prologue[1].jf) == (JMP_JEQ_K, 1, 0)
        && prologue[2].code == RET_K;
    let (load, rest) = rest.split_first()?;
    let (last, blocks) = rest.split_last()?;
    if !arch_check || *load != stmt(LD_W_ABS, NR_OFFSET) || last.code != RET_K {
        return None;
    }
    let mismatch = last.k;
    let mut matched = None;
    let mut numbers = Vec::with_capacity(blocks.len() / 5);
    if blocks.len() % 5 != 0 {
        return None;
    }
    for b in blocks.chunks_exact(5) {
        let m = *matched.get_or_insert(b[3].k);
        let shape = (b[0].code, b[0].jt, b[0].jf) == (JMP_JEQ_K, 0, 1)
            && b[1] == stmt(JMP_JA, 1)
            && b[2] == stmt(JMP_JA, 2)
            && b[3] == stmt(RET_K, m)
            && b[4] == stmt(RET_K, mismatch);
        if !shape {
            return None;
        }
        numbers.push(b[0].k);
    }
    numbers.sort_unstable();
    numbers.dedup();
    // Runs of equal verdicts: (first syscall number, verdict), ascending, starting at 0.
    let mut runs: Vec<(u32, u32)> = vec![(0, mismatch)];
    if let Some(m) = matched {
        for nr in numbers {
            push_run(&mut runs, nr, m);
            if let Some(next) = nr.checked_add(1) {
                push_run(&mut runs, next, mismatch);
            }
        }
    }
    let mut out = prologue.to_vec();
    out.push(load.clone());
    search(&runs, &mut out);
    Some(out)
}

/// Sets the verdict from `nr` on (runs are built in ascending order): replaces the last run if it
/// starts at `nr`, then merges it with the one before if their verdicts are equal.
fn push_run(runs: &mut Vec<(u32, u32)>, nr: u32, verdict: u32) {
    if runs.last().is_some_and(|r| r.0 == nr) {
        runs.pop();
    }
    if runs.last().is_none_or(|r| r.1 != verdict) {
        runs.push((nr, verdict));
    }
}

/// Appends the search over `runs` (non-empty): a leaf returns its verdict, an inner node jumps
/// to its upper half when the number is at least the upper half's first.
fn search(runs: &[(u32, u32)], out: &mut Vec<sock_filter>) {
    if let [(_, verdict)] = runs {
        out.push(stmt(RET_K, *verdict));
        return;
    }
    let (low, high) = runs.split_at(runs.len() / 2);
    let mut lower = Vec::new();
    search(low, &mut lower);
    let jge = out.len();
    out.push(jump(JMP_JGE_K, high[0].0, 0, 0));
    match u8::try_from(lower.len()) {
        // Conditional jumps reach 255 ahead; past that, through an unconditional jump.
        Ok(skip) => out[jge].jt = skip,
        Err(_) => {
            out[jge].jf = 1;
            out.push(jump(JMP_JA, lower.len() as u32, 0, 0));
        }
    }
    out.extend(lower);
    search(high, out);
}

/// The verdict of `prog` for syscall `nr` on `arch`; `None` if it runs off its end or uses an
/// instruction the filters here do not (the tests' reference interpreter).
#[cfg(test)]
fn run(prog: &[sock_filter], nr: u32, arch: u32) -> Option<u32> {
    const BPF_CLASS: u16 = 0x07;
    const BPF_LD: u16 = 0x00;
    const BPF_JMP: u16 = 0x05;
    const BPF_RET: u16 = 0x06;
    const JMP_JGT_K: u16 = 0x25;
    const JMP_JSET_K: u16 = 0x45;
    let mut acc = 0u32;
    let mut pc = 0usize;
    // Classic BPF only jumps forward, so this ends within `prog.len()` steps.
    loop {
        let ins = prog.get(pc)?;
        pc += 1;
        match ins.code & BPF_CLASS {
            BPF_LD if ins.code == LD_W_ABS => {
                acc = match ins.k {
                    NR_OFFSET => nr,
                    ARCH_OFFSET => arch,
                    _ => return None,
                }
            }
            BPF_RET if ins.code == RET_K => return Some(ins.k),
            BPF_JMP => {
                let taken = match ins.code {
                    JMP_JA => {
                        pc = pc.checked_add(ins.k as usize)?;
                        continue;
                    }
                    JMP_JEQ_K => acc == ins.k,
                    JMP_JGT_K => acc > ins.k,
                    JMP_JGE_K => acc >= ins.k,
                    JMP_JSET_K => acc & ins.k != 0,
                    _ => return None,
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            _ => return None,
        }
    }
}

fn stmt(code: u16, k: u32) -> sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::seccomp::linear_runtime_default;

    #[test]
    fn the_tree_gives_every_syscall_the_same_verdict() {
        let linear = linear_runtime_default();
        let tree = compact(&linear).expect("seccompiler's shape");
        assert!(
            tree.len() * 3 < linear.len(),
            "{} vs {}",
            tree.len(),
            linear.len()
        );
        let arch = linear[1].k;
        let mut allowed = 0;
        for a in [arch, 0, arch ^ 1] {
            for nr in (0..4096).chain([0x4000_0000, 0x4000_0000 + 59, u32::MAX]) {
                let want = run(&linear, nr, a).unwrap();
                assert_eq!(run(&tree, nr, a), Some(want), "nr {nr} arch {a:#x}");
                allowed += u32::from(want == libc::SECCOMP_RET_ALLOW);
            }
        }
        // Some allowed and some denied: the comparison above saw both verdicts.
        assert!(allowed > 250 && allowed < 1024, "{allowed}");
        // Long jumps go through JA: a search tree with more than 255 instructions per half.
        let many: Vec<(u32, u32)> = (0..600).map(|i| (i, i % 2)).collect();
        let mut big = vec![stmt(LD_W_ABS, NR_OFFSET)];
        search(&many, &mut big);
        for nr in 0..700 {
            assert_eq!(run(&big, nr, 0), Some(nr.min(599) % 2), "nr {nr}");
        }
    }

    #[test]
    fn a_deny_list_with_syscall_zero() {
        let doc = br#"{"c": {"mismatch_action": "allow", "match_action": {"errno": 13},
            "filter": [{"syscall": "read"}, {"syscall": "write"}, {"syscall": "exit_group"}]}}"#;
        let arch = std::env::consts::ARCH.try_into().unwrap();
        let linear = seccompiler::compile_from_json(&doc[..], arch)
            .unwrap()
            .remove("c")
            .unwrap();
        let tree = compact(&linear).unwrap();
        let mut denied = 0;
        for nr in 0..1024 {
            let want = run(&linear, nr, linear[1].k).unwrap();
            assert_eq!(run(&tree, nr, linear[1].k), Some(want), "nr {nr}");
            denied += u32::from(want != libc::SECCOMP_RET_ALLOW);
        }
        assert_eq!(denied, 3);
    }

    #[test]
    fn other_shapes_are_left_alone() {
        let mut linear = linear_runtime_default();
        // An argument load (offset 16) is outside the supported set.
        linear.insert(3, stmt(LD_W_ABS, 16));
        assert!(compact(&linear).is_none());
        assert!(compact(&linear[..2]).is_none());
    }
}

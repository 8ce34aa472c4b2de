//! Seccomp filters: containerd's `RuntimeDefault` allowlist (anything else fails with `EPERM`),
//! and `Localhost` profiles in the OCI/Docker JSON format.
//!
//! Filters are compiled with seccompiler through its JSON front end, which maps syscall names to
//! this architecture's numbers; names this architecture lacks (the `*32`/`*_time64` variants of
//! 32-bit ABIs that profiles list, or legacy calls such as `open` on aarch64) are dropped, as
//! libseccomp does (one recompile per dropped name: the default list has none on x86_64).
//! seccompiler's program (one compare per syscall) is then rewritten as a binary search with the
//! same verdict for every syscall number ([`tree`]), which loads and runs faster.
//!
//! Simplifications against containerd, stated so nobody relies on them: argument conditions are not
//! compiled (`clone`, `clone3`, `socket`, `personality` are allowed outright; profile rules with
//! `args` are skipped, which only makes a profile stricter), and a profile may use one action for
//! its listed syscalls besides its default action.

use std::collections::BTreeSet;

use caps::{Capability, CapsHashSet};
use seccompiler::BpfProgram;
use serde::Deserialize;

use super::ContainerError;
use super::spec::SeccompProfile;

mod tree;

/// Syscalls containerd's default profile allows to every container, without the 32-bit-only ABI
/// variants (`*32`, `*_time64`, `socketcall`, ...): seccompiler targets 64-bit architectures only.
const DEFAULT_ALLOW: &str = "accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown clock_adjtime \
clock_getres clock_gettime clock_nanosleep clone clone3 close close_range connect \
copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old \
epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit \
exit_group faccessat faccessat2 fadvise64 fallocate fanotify_mark fchdir fchmod fchmodat \
fchmodat2 fchown fchownat fcntl fdatasync fgetxattr flistxattr flock fork fremovexattr \
fsetxattr fstat fstatfs fsync ftruncate futex futex_requeue futex_wait futex_waitv futex_wake \
futimesat getcpu getcwd getdents getdents64 getegid geteuid getgid getgroups getitimer \
getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresuid getrlimit \
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday \
getuid getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl \
io_destroy io_getevents io_pgetevents ioprio_get ioprio_set io_setup io_submit kill \
landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lgetxattr link linkat \
listen listxattr llistxattr lremovexattr lseek lsetxattr lstat madvise membarrier memfd_create \
memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mprotect \
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedsend mq_unlink mremap msgctl msgget \
msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat open \
openat openat2 pause personality pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free \
pkey_mprotect poll ppoll prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 \
ptrace pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recvfrom recvmmsg \
recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq \
rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend \
rt_sigtimedwait rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam \
sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval \
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select \
semctl semget semop semtimedop sendfile sendmmsg sendmsg sendto setfsgid setfsuid setgid \
setgroups setitimer setpgid setpriority setregid setresgid setresuid setreuid setrlimit \
set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setxattr shmat shmctl \
shmdt shmget shutdown sigaltstack signalfd signalfd4 socket socketpair splice stat statfs statx \
symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete \
timer_getoverrun timer_gettime timer_settime timerfd_create timerfd_gettime timerfd_settime \
times tkill truncate umask uname unlink unlinkat utime utimensat utimes vfork vmsplice wait4 \
waitid write writev arch_prctl modify_ldt";

/// Syscalls the default profile allows only with a capability.
const BY_CAP: &[(Capability, &str)] = &[
    (
        Capability::CAP_SYS_ADMIN,
        "bpf fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr \
         move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns \
         syslog umount umount2 unshare",
    ),
    (Capability::CAP_SYS_BOOT, "reboot"),
    (Capability::CAP_SYS_CHROOT, "chroot"),
    (
        Capability::CAP_SYS_MODULE,
        "delete_module init_module finit_module",
    ),
    (Capability::CAP_SYS_PACCT, "acct"),
    (
        Capability::CAP_SYS_PTRACE,
        "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev",
    ),
    (Capability::CAP_SYS_RAWIO, "iopl ioperm"),
    (
        Capability::CAP_SYS_TIME,
        "settimeofday stime clock_settime clock_settime64",
    ),
    (Capability::CAP_SYS_TTY_CONFIG, "vhangup"),
    (
        Capability::CAP_SYS_NICE,
        "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
    ),
    (Capability::CAP_SYSLOG, "syslog"),
];

/// One seccompiler action, in its JSON spelling.
fn action_json(action: &str, errno: Option<u32>) -> Result<serde_json::Value, ContainerError> {
    Ok(match action {
        "SCMP_ACT_ALLOW" => "allow".into(),
        "SCMP_ACT_ERRNO" => serde_json::json!({ "errno": errno.unwrap_or(libc::EPERM as u32) }),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => "kill_thread".into(),
        "SCMP_ACT_KILL_PROCESS" => "kill_process".into(),
        "SCMP_ACT_TRAP" => "trap".into(),
        "SCMP_ACT_LOG" => "log".into(),
        other => {
            return Err(ContainerError::Seccomp(format!(
                "unsupported seccomp action {other}"
            )));
        }
    })
}

/// Compiles `names` with `matched`/`mismatch` actions, dropping names unknown on this arch.
fn compile(
    mut names: BTreeSet<String>,
    matched: serde_json::Value,
    mismatch: serde_json::Value,
) -> Result<BpfProgram, ContainerError> {
    let arch: seccompiler::TargetArch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| ContainerError::Seccomp(format!("{e:?}")))?;
    // Bounded: each round removes one name.
    loop {
        let filter: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({ "syscall": n }))
            .collect();
        let doc = serde_json::json!({ "c": {
            "mismatch_action": mismatch, "match_action": matched, "filter": filter,
        }});
        let bytes = serde_json::to_vec(&doc).map_err(|e| ContainerError::Seccomp(e.to_string()))?;
        match seccompiler::compile_from_json(bytes.as_slice(), arch) {
            Ok(mut map) => {
                let linear = map
                    .remove("c")
                    .ok_or_else(|| ContainerError::Seccomp("no filter compiled".into()))?;
                return Ok(tree::compact(&linear).unwrap_or(linear));
            }
            // The front end's error type is private: its message names the unknown syscall.
            Err(e @ seccompiler::Error::JsonFrontend(_)) => {
                let text = e.to_string();
                let marker = "Invalid syscall name: ";
                let unknown = text
                    .find(marker)
                    .and_then(|at| text[at + marker.len()..].split(' ').next())
                    .map(str::to_string);
                match unknown {
                    Some(name) if names.remove(&name) => {}
                    _ => return Err(ContainerError::Seccomp(text)),
                }
            }
            Err(e) => return Err(ContainerError::Seccomp(e.to_string())),
        }
    }
}

/// The syscalls `RuntimeDefault` allows a container with `caps`.
fn runtime_default_names(caps: &CapsHashSet) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = DEFAULT_ALLOW.split_whitespace().map(String::from).collect();
    for (cap, list) in BY_CAP {
        if caps.contains(cap) {
            names.extend(list.split_whitespace().map(String::from));
        }
    }
    names
}

/// `RuntimeDefault` for a container with `caps` as an OCI runtime spec's `linux.seccomp` (what
/// k1s compiles, for giving runc or crun the same filter in a benchmark).
pub fn runtime_default_oci(caps: &CapsHashSet) -> serde_json::Value {
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "syscalls": [{
            "names": runtime_default_names(caps),
            "action": "SCMP_ACT_ALLOW",
        }],
    })
}

/// The BPF program for `profile`, or `None` for `Unconfined`.
pub fn program(
    profile: &SeccompProfile,
    caps: &CapsHashSet,
) -> Result<Option<BpfProgram>, ContainerError> {
    match profile {
        SeccompProfile::Unconfined => Ok(None),
        SeccompProfile::RuntimeDefault => {
            let eperm = serde_json::json!({ "errno": libc::EPERM });
            compile(runtime_default_names(caps), "allow".into(), eperm).map(Some)
        }
        SeccompProfile::Localhost(path) => {
            let meta = std::fs::metadata(path)
                .map_err(|e| ContainerError::Seccomp(format!("{}: {e}", path.display())))?;
            if meta.len() > 4 << 20 {
                return Err(ContainerError::Seccomp(format!(
                    "{}: too large",
                    path.display()
                )));
            }
            let text = std::fs::read(path)
                .map_err(|e| ContainerError::Seccomp(format!("{}: {e}", path.display())))?;
            let profile: OciProfile = serde_json::from_slice(&text)
                .map_err(|e| ContainerError::Seccomp(format!("{}: {e}", path.display())))?;
            localhost(&profile).map(Some)
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciProfile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    syscalls: Vec<OciRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciRule {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<serde_json::Value>>,
}

fn localhost(p: &OciProfile) -> Result<BpfProgram, ContainerError> {
    let mismatch = action_json(&p.default_action, p.default_errno_ret)?;
    let mut matched: Option<serde_json::Value> = None;
    let mut names = BTreeSet::new();
    for rule in &p.syscalls {
        if rule.args.as_ref().is_some_and(|a| !a.is_empty()) {
            continue;
        }
        let action = action_json(&rule.action, rule.errno_ret)?;
        if action == mismatch {
            continue;
        }
        match &matched {
            Some(m) if *m != action => {
                return Err(ContainerError::Seccomp(
                    "profiles with more than one non-default action are not supported".into(),
                ));
            }
            _ => matched = Some(action),
        }
        names.extend(rule.names.iter().cloned());
        names.extend(rule.name.iter().cloned());
    }
    let Some(matched) = matched else {
        return Err(ContainerError::Seccomp(
            "profile lists no syscall with an action other than the default".into(),
        ));
    };
    compile(names, matched, mismatch)
}

/// seccompiler's own program for `RuntimeDefault` with the default capabilities (the reference
/// the compact form is checked against).
#[cfg(test)]
fn linear_runtime_default() -> BpfProgram {
    let caps = super::capabilities::compute(false, &[], &[]).unwrap();
    let filter: Vec<_> = runtime_default_names(&caps)
        .iter()
        .map(|n| serde_json::json!({ "syscall": n }))
        .collect();
    let doc = serde_json::json!({ "c": {
        "mismatch_action": { "errno": libc::EPERM }, "match_action": "allow", "filter": filter,
    }});
    let arch = std::env::consts::ARCH.try_into().unwrap();
    let mut map =
        seccompiler::compile_from_json(serde_json::to_vec(&doc).unwrap().as_slice(), arch).unwrap();
    map.remove("c").unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_compiles() {
        let caps = super::super::capabilities::compute(false, &[], &[]).unwrap();
        let prog = program(&SeccompProfile::RuntimeDefault, &caps)
            .unwrap()
            .unwrap();
        // The compact form: a binary search, far below seccompiler's ≈ 1,500 instructions.
        assert!(prog.len() > 100 && prog.len() < 500, "{}", prog.len());
        assert!(
            program(&SeccompProfile::Unconfined, &caps)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn localhost_profile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(
            &path,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat","nosuch_call"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
        )
        .unwrap();
        let caps = CapsHashSet::new();
        assert!(
            program(&SeccompProfile::Localhost(path.clone()), &caps)
                .unwrap()
                .is_some()
        );
        std::fs::write(&path, "{not json").unwrap();
        assert!(program(&SeccompProfile::Localhost(path), &caps).is_err());
    }
}

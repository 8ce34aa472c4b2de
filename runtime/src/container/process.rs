//! A container process's identity and confinement, applied in the last steps before `execve`, for
//! the container's init and for exec'd processes alike: rlimits (clamped to the host's hard
//! limits), no_new_privs, seccomp, supplementary groups, gid, uid, capabilities, working
//! directory, `PATH` look-up, environment.
//!
//! A [`Plan`] is computed in the shim before forking (so mistakes in the spec fail `create`, not
//! later), then [`Plan::exec`] runs in the forked child and only returns on failure.
//!
//! Order matters: the bounding set is limited and seccomp installed while the process still has
//! every capability (a filter without no_new_privs needs `CAP_SYS_ADMIN`); `PR_SET_KEEPCAPS` keeps
//! the permitted set across the uid change; the capability sets are set after it.

use std::ffi::CString;
use std::path::Path;

use caps::CapsHashSet;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::unistd::{Gid, Uid};
use seccompiler::BpfProgram;

use super::ContainerError;
use super::spec::{ContainerSpec, Rlimit};
use super::user::{self, Identity};
use super::{capabilities, seccomp};

/// Everything needed to turn a forked child into the container process.
#[derive(Debug, Clone)]
pub struct Plan {
    pub args: Vec<String>,
    pub env: Vec<CString>,
    pub cwd: String,
    pub identity: Identity,
    pub caps: CapsHashSet,
    pub seccomp: Option<BpfProgram>,
    pub no_new_privs: bool,
    pub rlimits: Vec<Rlimit>,
    /// Look `argv[0]` up in this `PATH`.
    path_env: Vec<String>,
}

impl Plan {
    /// The plan for running `args` with extra `env` in the container described by `spec`.
    pub fn new(
        spec: &ContainerSpec,
        args: &[String],
        env: &[String],
    ) -> Result<Self, ContainerError> {
        if args.is_empty() || args[0].is_empty() {
            return Err(ContainerError::Spec("no command to run".into()));
        }
        let identity = user::resolve(&spec.layers, &spec.user, &spec.supplemental_groups)?;
        let caps = capabilities::compute(spec.privileged, &spec.cap_add, &spec.cap_drop)?;
        let seccomp = if spec.privileged {
            None
        } else {
            seccomp::program(&spec.seccomp, &caps)?
        };
        let mut vars = super::spec::merge_env(&spec.env, env);
        let has = |vars: &[String], k: &str| vars.iter().any(|e| e.starts_with(&format!("{k}=")));
        if !has(&vars, "PATH") {
            vars.insert(
                0,
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            );
        }
        if !has(&vars, "HOSTNAME") && !spec.hostname.is_empty() {
            vars.push(format!("HOSTNAME={}", spec.hostname));
        }
        if !has(&vars, "HOME") {
            vars.push(format!("HOME={}", identity.home));
        }
        let env = vars
            .iter()
            .map(|e| CString::new(e.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ContainerError::Spec("NUL byte in env".into()))?;
        if args.iter().any(|a| a.contains('\0')) {
            return Err(ContainerError::Spec("NUL byte in command".into()));
        }
        let cwd = if spec.working_dir.is_empty() {
            "/".to_string()
        } else {
            spec.working_dir.clone()
        };
        Ok(Self {
            args: args.to_vec(),
            env,
            cwd,
            identity,
            caps,
            seccomp,
            no_new_privs: spec.no_new_privs,
            rlimits: spec.rlimits.clone(),
            path_env: vars,
        })
    }

    /// Applies everything and `execve`s; returns only the reason it could not.
    pub fn exec(&self) -> ContainerError {
        match self.apply() {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    fn apply(&self) -> Result<std::convert::Infallible, ContainerError> {
        let setup = |what: &str, e: nix::Error| ContainerError::Setup(format!("{what}: {e}"));
        for r in &self.rlimits {
            set_rlimit(r)?;
        }
        if self.no_new_privs {
            nix::sys::prctl::set_no_new_privs().map_err(|e| setup("no_new_privs", e))?;
        }
        if let Some(prog) = &self.seccomp {
            install_seccomp(prog)?;
        }
        capabilities::limit_bounding(&self.caps)?;
        nix::sys::prctl::set_keepcaps(true).map_err(|e| setup("keepcaps", e))?;
        let id = &self.identity;
        let groups: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&groups).map_err(|e| setup("setgroups", e))?;
        let gid = Gid::from_raw(id.gid);
        nix::unistd::setresgid(gid, gid, gid).map_err(|e| setup("setgid", e))?;
        let uid = Uid::from_raw(id.uid);
        nix::unistd::setresuid(uid, uid, uid).map_err(|e| setup("setuid", e))?;
        capabilities::apply(&self.caps)?;
        nix::unistd::chdir(Path::new(&self.cwd))
            .map_err(|e| ContainerError::Setup(format!("chdir {}: {e}", self.cwd)))?;
        let argv0 = &self.args[0];
        let prog = user::find_in_path(Path::new("/"), argv0, &self.path_env).ok_or_else(|| {
            ContainerError::Failed(format!(
                "exec: {argv0:?}: executable file not found in $PATH"
            ))
        })?;
        let prog_c = CString::new(prog.as_bytes())
            .map_err(|_| ContainerError::Spec("NUL byte in command".into()))?;
        let argv = self
            .args
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ContainerError::Spec("NUL byte in command".into()))?;
        match nix::unistd::execve(&prog_c, &argv, &self.env) {
            Ok(never) => match never {},
            Err(e) => Err(ContainerError::Failed(format!(
                "exec: {prog}: {}",
                e.desc()
            ))),
        }
    }
}

fn resource(name: &str) -> Option<Resource> {
    let name = name.trim_start_matches("RLIMIT_").to_ascii_uppercase();
    Some(match name.as_str() {
        "AS" => Resource::RLIMIT_AS,
        "CORE" => Resource::RLIMIT_CORE,
        "CPU" => Resource::RLIMIT_CPU,
        "DATA" => Resource::RLIMIT_DATA,
        "FSIZE" => Resource::RLIMIT_FSIZE,
        "LOCKS" => Resource::RLIMIT_LOCKS,
        "MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "NICE" => Resource::RLIMIT_NICE,
        "NOFILE" => Resource::RLIMIT_NOFILE,
        "NPROC" => Resource::RLIMIT_NPROC,
        "RSS" => Resource::RLIMIT_RSS,
        "RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RTTIME" => Resource::RLIMIT_RTTIME,
        "SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "STACK" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

/// Sets one rlimit; raising a hard limit needs `CAP_SYS_RESOURCE`, which hosts may withhold, so a
/// refused raise is clamped to the current hard limit instead of failing the container.
pub fn set_rlimit(r: &Rlimit) -> Result<(), ContainerError> {
    let res = resource(&r.kind)
        .ok_or_else(|| ContainerError::Spec(format!("unknown rlimit {:?}", r.kind)))?;
    let hard = r.hard.max(r.soft);
    if setrlimit(res, r.soft, hard).is_ok() {
        return Ok(());
    }
    let (_, cur_hard) =
        getrlimit(res).map_err(|e| ContainerError::Setup(format!("getrlimit: {e}")))?;
    let hard = hard.min(cur_hard);
    setrlimit(res, r.soft.min(hard), hard)
        .map_err(|e| ContainerError::Setup(format!("setrlimit {}: {e}", r.kind)))
}

/// Installs `prog` without forcing no_new_privs (seccompiler's own installer always sets it, which
/// would break setuid binaries in containers that allow privilege escalation).
#[allow(unsafe_code)]
fn install_seccomp(prog: &BpfProgram) -> Result<(), ContainerError> {
    let len =
        u16::try_from(prog.len()).map_err(|_| ContainerError::Seccomp("filter too long".into()))?;
    let fprog = libc::sock_fprog {
        len,
        // seccompiler's sock_filter is the kernel's struct sock_filter, field for field.
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `len` valid filter instructions that outlive the call; the kernel
    // copies them and keeps no reference.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0 as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(ContainerError::Seccomp(format!(
            "install filter: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimit_names_and_clamp() {
        assert!(resource("nofile").is_some() && resource("RLIMIT_NPROC").is_some());
        assert!(resource("bogus").is_none());
        assert!(
            set_rlimit(&Rlimit {
                kind: "bogus".into(),
                soft: 1,
                hard: 1
            })
            .is_err()
        );
    }
}

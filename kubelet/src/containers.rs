//! A pod's container as a runtime [`ContainerSpec`]: argv and env by Kubernetes' rules, working
//! dir, security context (pod-level defaults, container overrides), resources → cgroup limits,
//! the sandbox's namespaces and files, the pod's cgroup parent.
//!
//! Invariant: the runtime id is `<pod uid>_<container name>_<attempt>`: unique per run, valid as
//! a directory and cgroup name, and parseable back (see [`parse_id`]) so a restarted kubelet finds
//! its containers and their restart counts in the runtime alone.

use k1s_runtime::container::{ContainerSpec, Resources, SeccompProfile, merge_command, merge_env};
use k1s_runtime::image::Image;
use k1s_runtime::sandbox::Sandbox;
use serde_json::Value;

use crate::envvars::{self, EnvError};
use crate::node::{parse_bytes, parse_cpu};
use crate::qos::QosClass;

/// The runtime id of attempt `attempt` of container `name` of pod `uid`.
pub fn container_id(uid: &str, name: &str, attempt: u32) -> String {
    format!("{uid}_{name}_{attempt}")
}

/// `(pod uid, container name, attempt)` of a runtime id made by [`container_id`].
pub fn parse_id(id: &str) -> Option<(&str, &str, u32)> {
    let mut it = id.splitn(3, '_');
    let uid = it.next()?;
    let name = it.next()?;
    let attempt = it.next()?.parse().ok()?;
    Some((uid, name, attempt))
}

/// The pod's cgroup parent: `<root>/pod<uid>` for Guaranteed pods, else `<root>/<qos>/pod<uid>`
/// (upstream's `kubepods`, `kubepods/burstable`, `kubepods/besteffort` layout).
pub fn cgroup_parent(root: &str, qos: QosClass, uid: &str) -> String {
    let root = root.trim_matches('/');
    match qos {
        QosClass::Guaranteed => format!("{root}/pod{uid}"),
        QosClass::Burstable => format!("{root}/burstable/pod{uid}"),
        QosClass::BestEffort => format!("{root}/besteffort/pod{uid}"),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn quantity(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Requests and limits as cgroup settings.
pub fn resources(container: &Value) -> Resources {
    let res = &container["resources"];
    let cpu_limit = quantity(&res["limits"]["cpu"]).and_then(|q| parse_cpu(&q));
    Resources {
        // Requests default to limits, as the API server defaults them.
        cpu_request_millis: quantity(&res["requests"]["cpu"])
            .and_then(|q| parse_cpu(&q))
            .or(cpu_limit),
        cpu_limit_millis: cpu_limit,
        memory_limit_bytes: quantity(&res["limits"]["memory"]).and_then(|q| parse_bytes(&q)),
        pids_limit: None,
    }
}

/// The `user` string: container `runAsUser`/`runAsGroup`, else the pod's, else the image's.
fn user(pod: &Value, c: &Value, image_user: &str) -> String {
    let get = |k: &str| {
        c["securityContext"][k]
            .as_i64()
            .or_else(|| pod["spec"]["securityContext"][k].as_i64())
    };
    match (get("runAsUser"), get("runAsGroup")) {
        (Some(u), Some(g)) => format!("{u}:{g}"),
        (Some(u), None) => u.to_string(),
        // A group without a user applies to the image's user.
        (None, Some(g)) => {
            let u = image_user.split(':').next().unwrap_or_default();
            format!("{}:{g}", if u.is_empty() { "0" } else { u })
        }
        (None, None) => image_user.to_string(),
    }
}

fn seccomp(pod: &Value, c: &Value) -> SeccompProfile {
    let p = c["securityContext"]["seccompProfile"]["type"]
        .as_str()
        .or_else(|| pod["spec"]["securityContext"]["seccompProfile"]["type"].as_str());
    match p {
        Some("Unconfined") => SeccompProfile::Unconfined,
        _ => SeccompProfile::RuntimeDefault,
    }
}

/// Everything [`spec`] needs besides the pod and container.
pub struct SpecInput<'a> {
    pub id: String,
    pub image: &'a Image,
    pub sandbox: &'a Sandbox,
    pub cgroup_parent: String,
    pub env_sources: &'a envvars::EnvSources,
}

/// The runtime spec of container `c` of `pod`; `pod` should carry its pod IP (downward API).
pub fn spec(pod: &Value, c: &Value, input: SpecInput) -> Result<ContainerSpec, EnvError> {
    let cfg = &input.image.config;
    let env_pairs = envvars::container_env(pod, c, input.env_sources)?;
    let spec_env: Vec<String> = env_pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let env = merge_env(&cfg.env, &spec_env);
    let command = envvars::expand_all(&strings(&c["command"]), &env);
    let args = envvars::expand_all(&strings(&c["args"]), &env);
    let argv = merge_command(&command, &args, &cfg.entrypoint, &cfg.cmd);
    let sc = &c["securityContext"];
    let working_dir = c["workingDir"]
        .as_str()
        .filter(|w| !w.is_empty())
        .unwrap_or(&cfg.working_dir)
        .to_string();
    let sb = input.sandbox;
    Ok(ContainerSpec {
        id: input.id,
        pod_id: pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        namespaces: sb.namespaces.clone(),
        hostname: sb.hostname.clone(),
        hosts_file: Some(sb.hosts.clone()),
        hostname_file: Some(sb.hostname_file.clone()),
        resolv_conf: Some(sb.resolv_conf.clone()),
        layers: input.image.layers.clone(),
        args: argv,
        env,
        working_dir,
        user: user(pod, c, &cfg.user),
        supplemental_groups: pod["spec"]["securityContext"]["supplementalGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_u64().and_then(|g| u32::try_from(g).ok()))
            .collect(),
        cap_add: strings(&sc["capabilities"]["add"]),
        cap_drop: strings(&sc["capabilities"]["drop"]),
        privileged: sc["privileged"].as_bool().unwrap_or(false),
        no_new_privs: sc["allowPrivilegeEscalation"].as_bool() == Some(false),
        seccomp: seccomp(pod, c),
        readonly_rootfs: sc["readOnlyRootFilesystem"].as_bool().unwrap_or(false),
        tty: c["tty"].as_bool().unwrap_or(false),
        stdin: c["stdin"].as_bool().unwrap_or(false),
        stdin_once: c["stdinOnce"].as_bool().unwrap_or(false),
        resources: resources(c),
        cgroup_parent: input.cgroup_parent,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_round_trip() {
        let id = container_id("0f1e-22", "web-app", 3);
        assert_eq!(parse_id(&id), Some(("0f1e-22", "web-app", 3)));
        assert_eq!(parse_id("garbage"), None);
        assert_eq!(
            cgroup_parent("/k1s/kubepods/", QosClass::BestEffort, "u"),
            "k1s/kubepods/besteffort/podu"
        );
    }

    #[test]
    fn users_and_resources() {
        let pod = json!({"spec": {"securityContext": {"runAsUser": 1000, "runAsGroup": 3000}}});
        let c = json!({"securityContext": {"runAsUser": 2000}});
        assert_eq!(user(&pod, &c, "nobody"), "2000:3000");
        assert_eq!(user(&json!({}), &json!({}), "nobody"), "nobody");
        assert_eq!(
            user(
                &json!({}),
                &json!({"securityContext": {"runAsGroup": 5}}),
                ""
            ),
            "0:5"
        );
        let r = resources(&json!({"resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}));
        assert_eq!(r.cpu_request_millis, Some(500));
        assert_eq!(r.cpu_limit_millis, Some(500));
        assert_eq!(r.memory_limit_bytes, Some(64 << 20));
    }
}

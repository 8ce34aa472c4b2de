//! A pod's `/etc/resolv.conf` by its `dnsPolicy` and `dnsConfig`, as upstream's kubelet writes it.
//!
//! - `ClusterFirst` (the default): the cluster DNS with the namespace's search path and
//!   `ndots:5`, when the server runs cluster DNS; else (and for `hostNetwork` pods) the host's.
//! - `ClusterFirstWithHostNet`: the cluster DNS, also for `hostNetwork` pods.
//! - `Default`: the host's (`None`: the runtime copies it).
//! - `None`: only what `dnsConfig` says.
//!
//! `dnsConfig` nameservers and searches are appended and options override by name; at most 3
//! nameservers and 32 search domains are kept, as upstream's limits. Not yet: merging a
//! `dnsConfig` into the host's file (`Default`, or `ClusterFirst` without cluster DNS).

use std::net::Ipv4Addr;

use serde_json::Value;

/// The cluster DNS pods use: the `kube-dns` Service's ClusterIP and the cluster domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDns {
    pub ip: Ipv4Addr,
    pub domain: String,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// The pod's resolv.conf; `None` means the host's.
pub fn resolv_conf(pod: &Value, cluster: Option<&ClusterDns>) -> Option<String> {
    let spec = &pod["spec"];
    let policy = spec["dnsPolicy"].as_str().unwrap_or("ClusterFirst");
    let host_network = spec["hostNetwork"].as_bool().unwrap_or(false);
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let (mut servers, mut searches, mut options): (Vec<String>, Vec<String>, Vec<String>) =
        match (policy, cluster) {
            ("ClusterFirst", Some(c)) if !host_network => cluster_base(c, ns),
            ("ClusterFirstWithHostNet", Some(c)) => cluster_base(c, ns),
            ("None", _) => (Vec::new(), Vec::new(), Vec::new()),
            // The host's file as it is (a `dnsConfig` is not merged into it yet).
            _ => return None,
        };
    let cfg = &spec["dnsConfig"];
    servers.extend(strings(&cfg["nameservers"]));
    searches.extend(strings(&cfg["searches"]));
    for o in cfg["options"].as_array().into_iter().flatten() {
        let Some(name) = o["name"].as_str() else {
            continue;
        };
        let opt = match o["value"].as_str() {
            Some(v) => format!("{name}:{v}"),
            None => name.to_string(),
        };
        options.retain(|x| x.split(':').next() != Some(name));
        options.push(opt);
    }
    Some(render(&servers, &searches, &options))
}

fn cluster_base(c: &ClusterDns, ns: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let d = &c.domain;
    (
        vec![c.ip.to_string()],
        vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.clone()],
        vec!["ndots:5".to_string()],
    )
}

fn render(servers: &[String], searches: &[String], options: &[String]) -> String {
    let mut out = String::new();
    let searches: Vec<&str> = searches.iter().take(32).map(String::as_str).collect();
    if !searches.is_empty() {
        out.push_str(&format!("search {}\n", searches.join(" ")));
    }
    for s in servers.iter().take(3) {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dns() -> ClusterDns {
        ClusterDns {
            ip: Ipv4Addr::new(10, 43, 0, 10),
            domain: "cluster.local".into(),
        }
    }

    #[test]
    fn policies() {
        let pod = json!({"metadata": {"namespace": "web"}, "spec": {}});
        assert_eq!(
            resolv_conf(&pod, Some(&dns())).unwrap(),
            "search web.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.43.0.10\noptions ndots:5\n"
        );
        assert_eq!(resolv_conf(&pod, None), None);
        let host = json!({"metadata": {"namespace": "web"}, "spec": {"hostNetwork": true}});
        assert_eq!(resolv_conf(&host, Some(&dns())), None);
        let default = json!({"spec": {"dnsPolicy": "Default"}});
        assert_eq!(resolv_conf(&default, Some(&dns())), None);
        let custom = json!({"spec": {"dnsPolicy": "None", "dnsConfig": {
            "nameservers": ["1.1.1.1"], "searches": ["a.example"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}});
        assert_eq!(
            resolv_conf(&custom, None).unwrap(),
            "search a.example\nnameserver 1.1.1.1\noptions ndots:2 edns0\n"
        );
        let merged = json!({"metadata": {"namespace": "x"}, "spec": {"dnsConfig": {
            "options": [{"name": "ndots", "value": "1"}]}}});
        assert!(
            resolv_conf(&merged, Some(&dns()))
                .unwrap()
                .ends_with("options ndots:1\n")
        );
    }
}

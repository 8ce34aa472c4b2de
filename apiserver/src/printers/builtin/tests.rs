use super::*;
use serde_json::json;

fn now() -> Timestamp {
    "2024-06-01T12:00:00Z".parse().unwrap()
}

fn names(group: &str, kind: &str) -> Vec<(String, i32)> {
    builtin_columns(group, kind)
        .unwrap_or_else(|| panic!("no printer for {group}/{kind}"))
        .into_iter()
        .map(|c| (c.name, c.priority))
        .collect()
}

fn shown(group: &str, kind: &str) -> Vec<String> {
    names(group, kind)
        .into_iter()
        .filter(|(_, p)| *p == 0)
        .map(|(n, _)| n.to_uppercase())
        .collect()
}

fn wide_only(group: &str, kind: &str) -> Vec<String> {
    names(group, kind)
        .into_iter()
        .filter(|(_, p)| *p == 1)
        .map(|(n, _)| n.to_uppercase())
        .collect()
}

#[test]
fn column_headers_match_kubectl_get() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "",
            "Pod",
            "NAME READY STATUS RESTARTS AGE",
            "IP NODE NOMINATED NODE READINESS GATES",
        ),
        ("", "Namespace", "NAME STATUS AGE", ""),
        (
            "",
            "Service",
            "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE",
            "SELECTOR",
        ),
        ("", "Endpoints", "NAME ENDPOINTS AGE", ""),
        ("", "ConfigMap", "NAME DATA AGE", ""),
        ("", "Secret", "NAME TYPE DATA AGE", ""),
        ("", "ServiceAccount", "NAME SECRETS AGE", ""),
        (
            "",
            "Event",
            "LAST SEEN TYPE REASON OBJECT MESSAGE",
            "SUBOBJECT SOURCE FIRST SEEN COUNT NAME",
        ),
        (
            "events.k8s.io",
            "Event",
            "LAST SEEN TYPE REASON OBJECT MESSAGE",
            "SUBOBJECT SOURCE FIRST SEEN COUNT NAME",
        ),
        (
            "",
            "Node",
            "NAME STATUS ROLES AGE VERSION",
            "INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME",
        ),
        ("", "ResourceQuota", "NAME REQUEST LIMIT AGE", ""),
        (
            "apps",
            "Deployment",
            "NAME READY UP-TO-DATE AVAILABLE AGE",
            "CONTAINERS IMAGES SELECTOR",
        ),
        (
            "apps",
            "ReplicaSet",
            "NAME DESIRED CURRENT READY AGE",
            "CONTAINERS IMAGES SELECTOR",
        ),
        ("apps", "StatefulSet", "NAME READY AGE", "CONTAINERS IMAGES"),
        (
            "apps",
            "DaemonSet",
            "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE",
            "CONTAINERS IMAGES SELECTOR",
        ),
        (
            "batch",
            "Job",
            "NAME STATUS COMPLETIONS DURATION AGE",
            "CONTAINERS IMAGES SELECTOR",
        ),
        (
            "batch",
            "CronJob",
            "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE",
            "CONTAINERS IMAGES SELECTOR",
        ),
        (
            "discovery.k8s.io",
            "EndpointSlice",
            "NAME ADDRESSTYPE PORTS ENDPOINTS AGE",
            "",
        ),
        ("coordination.k8s.io", "Lease", "NAME HOLDER AGE", ""),
        (
            "rbac.authorization.k8s.io",
            "RoleBinding",
            "NAME ROLE AGE",
            "USERS GROUPS SERVICEACCOUNTS",
        ),
        (
            "storage.k8s.io",
            "StorageClass",
            "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE",
            "",
        ),
        (
            "",
            "PersistentVolumeClaim",
            "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE",
            "VOLUMEMODE",
        ),
    ];
    for (g, k, want, want_wide) in cases {
        assert_eq!(shown(g, k).join(" "), *want, "{g}/{k}");
        assert_eq!(wide_only(g, k).join(" "), *want_wide, "{g}/{k} wide");
    }
}

#[test]
fn kinds_without_printers_use_defaults() {
    for (g, k) in [
        ("", "LimitRange"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("rbac.authorization.k8s.io", "Role"),
        ("example.com", "Widget"),
    ] {
        assert!(builtin_columns(g, k).is_none(), "{g}/{k}");
        let obj = json!({"metadata": {"name": "n", "creationTimestamp": "2024-01-02T03:04:05Z"}});
        assert_eq!(
            builtin_cells(g, k, &obj, now()),
            vec![json!("n"), json!("2024-01-02T03:04:05Z")]
        );
    }
}

#[test]
fn every_printer_has_one_cell_per_column_even_for_empty_objects() {
    for &(g, k) in KINDS {
        let cols = builtin_columns(g, k).unwrap();
        for obj in [
            json!({}),
            json!(null),
            json!({"metadata": 1, "spec": [], "status": "x"}),
        ] {
            assert_eq!(
                builtin_cells(g, k, &obj, now()).len(),
                cols.len(),
                "{g}/{k} {obj}"
            );
        }
        assert_eq!(
            cols.iter().filter(|c| c.format == "name").count(),
            1,
            "{g}/{k}"
        );
    }
}

#[test]
fn column_types_and_descriptions() {
    let pod = builtin_columns("", "Pod").unwrap();
    assert_eq!(pod[3].type_, "string");
    assert!(
        pod[5]
            .description
            .starts_with("podIP address allocated to the pod"),
        "{}",
        pod[5].description
    );
    let rs = builtin_columns("apps", "ReplicaSet").unwrap();
    assert_eq!(rs[1].type_, "integer");
    let age = &rs[4];
    assert_eq!((age.name.as_str(), age.type_.as_str()), ("Age", "string"));
    assert!(
        age.description
            .starts_with("CreationTimestamp is a timestamp"),
        "{}",
        age.description
    );
}

#[test]
fn deployment_cells() {
    let d = json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-05-29T09:00:00Z"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.27"},
                {"name": "log", "image": "busybox"},
            ]}}
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    });
    assert_eq!(
        builtin_cells("apps", "Deployment", &d, now()),
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("3d3h"),
            json!("nginx,log"),
            json!("nginx:1.27,busybox"),
            json!("app=web"),
        ]
    );
}

#[test]
fn service_cells() {
    let svc = json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-06-01T11:59:00Z"},
        "spec": {
            "type": "NodePort",
            "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            "selector": {"app": "web"}
        }
    });
    assert_eq!(
        builtin_cells("", "Service", &svc, now()),
        vec![
            json!("web"),
            json!("NodePort"),
            json!("10.96.0.10"),
            json!("<none>"),
            json!("80:30080/TCP,53/UDP"),
            json!("60s"),
            json!("app=web"),
        ]
    );
    let lb = json!({"spec": {"type": "LoadBalancer"}});
    assert_eq!(
        builtin_cells("", "Service", &lb, now())[3],
        json!("<pending>")
    );
    let lb = json!({"spec": {"type": "LoadBalancer", "externalIPs": ["5.6.7.8"]},
                    "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb.example"}]}}});
    assert_eq!(
        builtin_cells("", "Service", &lb, now())[3],
        json!("1.2.3.4,lb.example,5.6.7.8")
    );
    let en = json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}});
    let cells = builtin_cells("", "Service", &en, now());
    assert_eq!(
        (cells[2].clone(), cells[3].clone(), cells[4].clone()),
        (json!("<none>"), json!("db.example.com"), json!("<none>"))
    );
}

#[test]
fn endpoints_cells() {
    let ep = json!({"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
    ]});
    assert_eq!(
        builtin_cells("", "Endpoints", &ep, now())[1],
        json!("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...")
    );
    assert_eq!(
        builtin_cells("", "Endpoints", &json!({}), now())[1],
        json!("<none>")
    );
    let headless = json!({"subsets": [{"addresses": [{"ip": "fd00::1"}]}]});
    assert_eq!(
        builtin_cells("", "Endpoints", &headless, now())[1],
        json!("fd00::1")
    );
}

#[test]
fn endpoint_slice_cells() {
    let s = json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4",
        "ports": [{"port": 80}, {"name": "https"}, {}, {"port": 9}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]});
    let cells = builtin_cells("discovery.k8s.io", "EndpointSlice", &s, now());
    assert_eq!(
        cells[1..4],
        [
            json!("IPv4"),
            json!("80,https,* + 1 more..."),
            json!("10.0.0.1,10.0.0.2")
        ]
    );
    let empty = builtin_cells("discovery.k8s.io", "EndpointSlice", &json!({}), now());
    assert_eq!(empty[2..4], [json!("<unset>"), json!("<unset>")]);
}

#[test]
fn counts_for_data_kinds() {
    let cm = json!({"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(builtin_cells("", "ConfigMap", &cm, now())[1], json!(3));
    let s = json!({"metadata": {"name": "tok"}, "type": "Opaque", "data": {"a": "MQ=="}});
    assert_eq!(
        builtin_cells("", "Secret", &s, now())[1..3],
        [json!("Opaque"), json!(1)]
    );
    let sa = json!({"metadata": {"name": "default"}});
    assert_eq!(builtin_cells("", "ServiceAccount", &sa, now())[1], json!(0));
    let ns = json!({"metadata": {"name": "kube-system"}, "status": {"phase": "Active"}});
    assert_eq!(
        builtin_cells("", "Namespace", &ns, now())[1],
        json!("Active")
    );
}

#[test]
fn node_cells() {
    let n = json!({
        "metadata": {"name": "k1s", "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master"}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.5"}, {"type": "Hostname", "address": "k1s"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0-k1s", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0"}
        }
    });
    assert_eq!(
        builtin_cells("", "Node", &n, now()),
        vec![
            json!("k1s"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,master"),
            json!("<unknown>"),
            json!("v1.33.0-k1s"),
            json!("192.168.1.5"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("6.1.0"),
            json!("<unknown>"),
        ]
    );
    assert_eq!(
        builtin_cells("", "Node", &json!({}), now())[1..3],
        [json!("Unknown"), json!("<none>")]
    );
}

#[test]
fn event_cells_core_and_events_api() {
    let ev = json!({
        "metadata": {"name": "web.17d"},
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
        "reason": "Pulled", "type": "Normal", "message": "  Pulled image \"nginx\"\n",
        "source": {"component": "kubelet", "host": "node1"},
        "firstTimestamp": "2024-06-01T11:50:00Z", "lastTimestamp": "2024-06-01T11:59:00Z", "count": 4
    });
    assert_eq!(
        builtin_cells("", "Event", &ev, now()),
        vec![
            json!("60s"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/web"),
            json!("spec.containers{app}"),
            json!("kubelet, node1"),
            json!("Pulled image \"nginx\""),
            json!("10m"),
            json!(4),
            json!("web.17d"),
        ]
    );
    let new_style = json!({
        "metadata": {"name": "e2"},
        "regarding": {"kind": "Deployment", "name": "web"},
        "reason": "ScalingReplicaSet", "type": "Normal", "note": "Scaled up",
        "reportingController": "deployment-controller",
        "eventTime": "2024-06-01T11:58:00.000000Z",
        "series": {"count": 7, "lastObservedTime": "2024-06-01T11:59:30.000000Z"}
    });
    assert_eq!(
        builtin_cells("events.k8s.io", "Event", &new_style, now()),
        vec![
            json!("30s"),
            json!("Normal"),
            json!("ScalingReplicaSet"),
            json!("deployment/web"),
            json!(""),
            json!("deployment-controller"),
            json!("Scaled up"),
            json!("2m"),
            json!(7),
            json!("e2"),
        ]
    );
    // A singleton event without timestamps.
    let bare = json!({"involvedObject": {"kind": "Node"}});
    let cells = builtin_cells("", "Event", &bare, now());
    assert_eq!(
        (cells[0].clone(), cells[3].clone(), cells[8].clone()),
        (json!("<unknown>"), json!("node"), json!(1))
    );
}

#[test]
fn workload_cells() {
    let rs = json!({"metadata": {"name": "web-5d"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d"}}},
        "status": {"replicas": 2, "readyReplicas": 1}});
    assert_eq!(
        builtin_cells("apps", "ReplicaSet", &rs, now())[..4],
        [json!("web-5d"), json!(2), json!(2), json!(1)]
    );
    assert_eq!(
        builtin_cells("apps", "ReplicaSet", &rs, now())[7],
        json!("app=web,pod-template-hash=5d")
    );
    let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
    assert_eq!(
        builtin_cells("apps", "StatefulSet", &sts, now())[1],
        json!("3/3")
    );
    let ds = json!({"metadata": {"name": "proxy"}, "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}}},
        "status": {"desiredNumberScheduled": 1, "numberReady": 1}});
    assert_eq!(
        builtin_cells("apps", "DaemonSet", &ds, now())[1..7],
        [
            json!(1),
            json!(0),
            json!(1),
            json!(0),
            json!(0),
            json!("kubernetes.io/os=linux")
        ]
    );
    let job = json!({"metadata": {"name": "pi"}, "spec": {"completions": 1},
        "status": {"succeeded": 1, "startTime": "2024-06-01T11:00:00Z", "completionTime": "2024-06-01T11:00:42Z",
                   "conditions": [{"type": "Complete", "status": "True"}]}});
    assert_eq!(
        builtin_cells("batch", "Job", &job, now())[1..4],
        [json!("Complete"), json!("1/1"), json!("42s")]
    );
    let running =
        json!({"spec": {"parallelism": 3}, "status": {"startTime": "2024-06-01T11:57:00Z"}});
    assert_eq!(
        builtin_cells("batch", "Job", &running, now())[1..4],
        [json!("Running"), json!("0/1 of 3"), json!("3m")]
    );
    let cj = json!({"metadata": {"name": "tick"}, "spec": {"schedule": "*/5 * * * *", "suspend": false}});
    assert_eq!(
        builtin_cells("batch", "CronJob", &cj, now())[1..6],
        [
            json!("*/5 * * * *"),
            json!("<none>"),
            json!("False"),
            json!(0),
            json!("<none>")
        ]
    );
}

#[test]
fn misc_cells() {
    let lease = json!({"metadata": {"name": "k1s"}, "spec": {"holderIdentity": "k1s_abc"}});
    assert_eq!(
        builtin_cells("coordination.k8s.io", "Lease", &lease, now())[1],
        json!("k1s_abc")
    );
    let rq = json!({"metadata": {"name": "q"}, "status": {
        "hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
        "used": {"pods": "3", "requests.cpu": "500m"}}});
    assert_eq!(
        builtin_cells("", "ResourceQuota", &rq, now())[1..3],
        [
            json!("pods: 3/10, requests.cpu: 500m/1"),
            json!("limits.cpu: 0/2")
        ]
    );
    let rb = json!({"metadata": {"name": "rb"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default", "namespace": "ns1"}]});
    let cells = builtin_cells("rbac.authorization.k8s.io", "RoleBinding", &rb, now());
    assert_eq!(cells[1], json!("ClusterRole/view"));
    assert_eq!(
        cells[3..],
        [json!("alice"), json!(""), json!("ns1/default")]
    );
    let sc = json!({"metadata": {"name": "local", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "k1s.io/local"});
    assert_eq!(
        builtin_cells("storage.k8s.io", "StorageClass", &sc, now())[..5],
        [
            json!("local (default)"),
            json!("k1s.io/local"),
            json!("Delete"),
            json!("Immediate"),
            json!(false)
        ]
    );
    let pvc = json!({"metadata": {"name": "data"}, "spec": {"volumeName": "pv1", "storageClassName": "local"},
        "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}});
    assert_eq!(
        builtin_cells("", "PersistentVolumeClaim", &pvc, now())[1..7],
        [
            json!("Bound"),
            json!("pv1"),
            json!("1Gi"),
            json!("RWO,ROX"),
            json!("local"),
            json!("<unset>")
        ]
    );
    let pdb = json!({"spec": {"minAvailable": 1}, "status": {"disruptionsAllowed": 2}});
    assert_eq!(
        builtin_cells("policy", "PodDisruptionBudget", &pdb, now())[1..4],
        [json!("1"), json!("N/A"), json!(2)]
    );
    let cr = json!({"metadata": {"name": "web-7c", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}]}, "revision": 2});
    assert_eq!(
        builtin_cells("apps", "ControllerRevision", &cr, now())[1..3],
        [json!("statefulset.apps/web"), json!(2)]
    );
    let ing = json!({"spec": {"rules": [{"host": "a"}, {}, {"host": "b"}, {"host": "c"}, {"host": "d"}], "tls": [{}]}});
    assert_eq!(
        builtin_cells("networking.k8s.io", "Ingress", &ing, now())[1..5],
        [
            json!("<none>"),
            json!("a,b,c + 2 more..."),
            json!(""),
            json!("80, 443")
        ]
    );
}

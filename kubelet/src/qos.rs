//! A pod's QoS class, as upstream's `GetPodQOS` computes it from its containers' cpu and memory
//! requests and limits.

use serde_json::Value;

use crate::node::{parse_bytes, parse_cpu};

/// `Guaranteed`, `Burstable` or `BestEffort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

fn quantity(name: &str, v: &Value) -> Option<u64> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    if name == "cpu" {
        parse_cpu(&s)
    } else {
        parse_bytes(&s)
    }
}

/// The pod's QoS class.
pub fn of(pod: &Value) -> QosClass {
    let containers = ["containers", "initContainers"]
        .iter()
        .flat_map(|f| pod["spec"][*f].as_array().into_iter().flatten());
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let res = &c["resources"];
        for name in ["cpu", "memory"] {
            let req = quantity(name, &res["requests"][name]).filter(|q| *q > 0);
            let lim = quantity(name, &res["limits"][name]).filter(|q| *q > 0);
            any |= req.is_some() || lim.is_some();
            // Requests default to limits.
            match (req.or(lim), lim) {
                (Some(r), Some(l)) if r == l => {}
                _ => guaranteed = false,
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => QosClass::BestEffort,
        (true, true) => QosClass::Guaranteed,
        (true, false) => QosClass::Burstable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(resources: &[Value]) -> Value {
        let cs: Vec<Value> = resources
            .iter()
            .map(|r| json!({"name": "c", "resources": r}))
            .collect();
        json!({"spec": {"containers": cs}})
    }

    #[test]
    fn classes() {
        assert_eq!(of(&pod(&[json!({})])), QosClass::BestEffort);
        assert_eq!(
            of(&pod(&[json!({"limits": {"cpu": "1", "memory": "1Gi"}})])),
            QosClass::Guaranteed
        );
        assert_eq!(
            of(&pod(&[
                json!({"requests": {"cpu": "1000m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1024Mi"}})
            ])),
            QosClass::Guaranteed
        );
        assert_eq!(
            of(&pod(&[json!({"requests": {"cpu": "100m"}})])),
            QosClass::Burstable
        );
        assert_eq!(
            of(&pod(&[
                json!({"limits": {"cpu": "1", "memory": "1Gi"}}),
                json!({})
            ])),
            QosClass::Burstable
        );
    }
}

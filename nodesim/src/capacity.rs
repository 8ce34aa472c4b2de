//! What each simulated node offers: `--simulated-node-capacity cpu=8,memory=32Gi,pods=110`.

use std::fmt;
use std::str::FromStr;

use k1s_scheduler::quantity::Quantity;

/// Capacity (and allocatable: the simulator reserves nothing) of every simulated node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// A cpu quantity, as written (`8`, `7500m`).
    pub cpu: String,
    /// A memory quantity, as written (`32Gi`).
    pub memory: String,
    /// Maximum pods.
    pub pods: u32,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            cpu: "8".into(),
            memory: "32Gi".into(),
            pods: 110,
        }
    }
}

/// Why a capacity string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    #[error("invalid node capacity entry {0:?}: expected <resource>=<quantity>, e.g. cpu=8")]
    Syntax(String),
    #[error("unknown resource {0:?} in node capacity: expected cpu, memory or pods")]
    UnknownResource(String),
    #[error("resource {0:?} given twice in node capacity")]
    Duplicate(String),
    #[error("invalid {resource} quantity {value:?}: {reason}")]
    Quantity {
        resource: String,
        value: String,
        reason: String,
    },
}

impl FromStr for Capacity {
    type Err = CapacityError;

    /// Parses `cpu=8,memory=32Gi,pods=110`; resources left out keep their defaults.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut cap = Capacity::default();
        let mut seen: Vec<&str> = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (key, value) = entry
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or_else(|| CapacityError::Syntax(entry.to_string()))?;
            if seen.contains(&key) {
                return Err(CapacityError::Duplicate(key.to_string()));
            }
            let bad = |reason: &str| CapacityError::Quantity {
                resource: key.to_string(),
                value: value.to_string(),
                reason: reason.to_string(),
            };
            match key {
                "cpu" | "memory" => {
                    let q = Quantity::parse(value).map_err(|e| bad(&e.to_string()))?;
                    if q.is_negative() || q.milli_value() == 0 {
                        return Err(bad("must be greater than zero"));
                    }
                    if key == "cpu" {
                        cap.cpu = value.to_string();
                    } else {
                        cap.memory = value.to_string();
                    }
                }
                "pods" => {
                    cap.pods = value
                        .parse()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| bad("must be a whole number greater than zero"))?;
                }
                other => return Err(CapacityError::UnknownResource(other.to_string())),
            }
            seen.push(key);
        }
        Ok(cap)
    }
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cpu={},memory={},pods={}",
            self.cpu, self.memory, self.pods
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_partial_specs() {
        let c: Capacity = "cpu=8,memory=32Gi,pods=110".parse().unwrap();
        assert_eq!(c, Capacity::default());
        let c: Capacity = "cpu=500m, pods=10".parse().unwrap();
        assert_eq!(c.cpu, "500m");
        assert_eq!(c.memory, "32Gi");
        assert_eq!(c.pods, 10);
        assert_eq!("".parse::<Capacity>().unwrap(), Capacity::default());
        assert_eq!(
            Capacity::default().to_string(),
            "cpu=8,memory=32Gi,pods=110"
        );
    }

    #[test]
    fn clear_errors() {
        let err = |s: &str| s.parse::<Capacity>().unwrap_err().to_string();
        assert_eq!(
            err("cpu"),
            "invalid node capacity entry \"cpu\": expected <resource>=<quantity>, e.g. cpu=8"
        );
        assert_eq!(
            err("gpu=1"),
            "unknown resource \"gpu\" in node capacity: expected cpu, memory or pods"
        );
        assert_eq!(
            err("cpu=1,cpu=2"),
            "resource \"cpu\" given twice in node capacity"
        );
        assert!(
            err("memory=32GB")
                .starts_with("invalid memory quantity \"32GB\": quantities must match")
        );
        assert_eq!(
            err("cpu=0"),
            "invalid cpu quantity \"0\": must be greater than zero"
        );
        assert_eq!(
            err("pods=1.5"),
            "invalid pods quantity \"1.5\": must be a whole number greater than zero"
        );
        assert!(err("pods=0").contains("greater than zero"));
    }
}

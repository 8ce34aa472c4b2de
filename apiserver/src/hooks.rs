//! Side effects of acknowledged writes that the API server itself owns: serving CRDs.

use serde_json::Value;

use crate::resources::{Resource, StrategyKind};
use crate::state::AppState;

/// Called after a write to `res` changed an object from `old` to `new` (None = absent).
pub fn after_write(state: &AppState, res: &Resource, old: Option<&Value>, new: Option<&Value>) {
    if res.strategy != StrategyKind::Crd {
        return;
    }
    crate::crd::rebuild_table(state);
    if let (Some(crd), None) = (old, new) {
        // The CRD is gone: so are its objects (upstream's customresourcecleanup finalizer).
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if group.is_empty() || plural.is_empty() {
            return;
        }
        let prefix = format!("/registry/{group}/{plural}/");
        let store = state.store().clone();
        tokio::spawn(async move {
            let Ok(list) = store.list(&prefix, Default::default()) else {
                return;
            };
            for kv in list.items {
                let op = k1s_store::WriteOp::Delete {
                    key: kv.key,
                    expected: None,
                };
                if let Err(e) = store.write(op).await {
                    tracing::warn!(error = %e, "removing a custom resource of a deleted CRD failed");
                }
            }
        });
    }
}

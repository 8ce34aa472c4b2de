//! Side effects of acknowledged writes that the API server itself owns: serving CRDs.

use serde_json::Value;

use crate::resources::{Resource, StrategyKind};
use crate::state::AppState;

/// Called after a write to `res` changed an object from `old` to `new` (None = absent).
pub fn after_write(state: &AppState, res: &Resource, _old: Option<&Value>, _new: Option<&Value>) {
    if res.strategy == StrategyKind::Crd {
        crate::crd::rebuild_table(state);
    }
}

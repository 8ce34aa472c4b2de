//! Server-side apply and `metadata.managedFields` tracking.
//!
//! Model (after upstream's structured-merge-diff, with the schema reduced to [`PatchMeta`]):
//! - lists with a merge key are associative (items `k:{"<key>":<value>}`), primitive lists with
//!   the `merge` strategy are sets (`v:<value>`), every other list is atomic; maps flagged by
//!   [`PatchMeta::is_atomic`] are atomic; other maps are granular;
//! - an Apply's field set is every leaf of the applied configuration (scalars, atomic values,
//!   empty maps, list items), so `f:spec` carries no `.` while `k:{..}` items do;
//! - an Update owns the fields it added or changed; those fields leave every other manager's
//!   set, and removed fields leave every set;
//! - an Apply conflicts when it changes a field owned by another manager; with `force` the field
//!   is taken over. Fields the applier owned before but no longer applies are removed from the
//!   object unless another manager owns them (or anything below them);
//! - `apiVersion`, `kind` and server-owned `metadata` fields (name, namespace, uid,
//!   resourceVersion, generation, creationTimestamp, deletion*, managedFields, selfLink) are
//!   never tracked;
//! - entries are encoded sorted like upstream (operation, time, manager, apiVersion,
//!   subresource) and entries with empty sets are dropped.
//!
//! Known simplifications: associative lists are keyed by their single merge key (upstream keys
//! `ports` by `containerPort` and `protocol`); on create, top-level maps (`spec`, `metadata`)
//! carry no `.`, while nested maps that did not exist before do (upstream knows which Go
//! structs are pointers; this model does not).

pub mod fieldset;

use serde_json::{Map, Value};

pub use fieldset::{FieldSet, path_string};
use fieldset::{field_pe, key_pe, value_pe};

use crate::patch::PatchMeta;
use crate::status::{StatusCause, StatusError};

/// Metadata fields the field manager never tracks.
const UNTRACKED_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// One conflicting field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager as upstream prints it, e.g. `"kubectl-client-side-apply" using apps/v1`.
    pub manager: String,
    /// The field path, e.g. `.spec.replicas`.
    pub field: String,
}

/// Why an apply failed.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// Fields owned by other managers would change (409 Conflict).
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The applied configuration is not usable (400 BadRequest).
    #[error("{0}")]
    Invalid(String),
}

/// Upstream's conflict message: one conflict inline, several grouped by manager.
pub fn conflict_message(c: &[Conflict]) -> String {
    if c.len() == 1 {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c[0].manager, c[0].field
        );
    }
    let mut managers: Vec<&str> = c.iter().map(|x| x.manager.as_str()).collect();
    managers.sort_unstable();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m}:"));
        for x in c.iter().filter(|x| x.manager == m) {
            lines.push(format!("- {}", x.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        c.len(),
        lines.join("\n")
    )
}

impl ApplyError {
    /// The `Status` upstream answers with.
    pub fn to_status(&self) -> StatusError {
        match self {
            ApplyError::Conflicts(c) => StatusError::apply_conflict(
                conflict_message(c),
                c.iter()
                    .map(|x| StatusCause {
                        reason: "FieldManagerConflict".into(),
                        message: format!("conflict with {}", x.manager),
                        field: x.field.clone(),
                    })
                    .collect(),
            ),
            ApplyError::Invalid(m) => StatusError::bad_request(m.clone()),
        }
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedEntry {
    /// Manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// API version the fields were written in.
    pub api_version: String,
    /// Last change, RFC 3339.
    pub time: Option<String>,
    /// Subresource (`""`, `status`, `scale`).
    pub subresource: String,
    /// Owned fields.
    pub fields: FieldSet,
}

impl ManagedEntry {
    fn same_manager(&self, manager: &str, op: &str, api_version: &str, sub: &str) -> bool {
        self.manager == manager
            && self.operation == op
            && self.subresource == sub
            && (op == "Apply" || self.api_version == api_version)
    }

    /// How upstream prints this manager in conflict messages.
    pub fn display(&self) -> String {
        let mut s = serde_json::to_string(&self.manager).unwrap_or_default();
        if !self.subresource.is_empty() {
            s.push_str(&format!(
                " with subresource {}",
                serde_json::to_string(&self.subresource).unwrap_or_default()
            ));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), Value::from(self.manager.as_str()));
        m.insert("operation".into(), Value::from(self.operation.as_str()));
        m.insert("apiVersion".into(), Value::from(self.api_version.as_str()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::from(t.as_str()));
        }
        m.insert("fieldsType".into(), Value::from("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), Value::from(self.subresource.as_str()));
        }
        Value::Object(m)
    }
}

/// Reads `metadata.managedFields`; malformed entries are skipped.
pub fn managed_fields(obj: &Value) -> Vec<ManagedEntry> {
    let Some(list) = obj
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
            Some(ManagedEntry {
                manager: s("manager")?,
                operation: s("operation").unwrap_or_else(|| "Update".into()),
                api_version: s("apiVersion").unwrap_or_default(),
                time: s("time"),
                subresource: s("subresource").unwrap_or_default(),
                fields: e
                    .get("fieldsV1")
                    .map(FieldSet::from_fields_v1)
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Writes `metadata.managedFields` (sorted, empty entries dropped; removed when none is left).
pub fn set_managed_fields(obj: &mut Value, mut entries: Vec<ManagedEntry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| a.time.cmp(&b.time))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    let Some(meta) = crate::meta::meta_mut(obj) else {
        return;
    };
    if entries.is_empty() {
        meta.shift_remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(ManagedEntry::to_json).collect()),
        );
    }
}

enum ListKind {
    Atomic,
    Set,
    Assoc(&'static str),
}

struct Walker<'a> {
    meta: &'a dyn PatchMeta,
    path: Vec<String>,
}

impl Walker<'_> {
    fn strs(&self) -> Vec<&str> {
        self.path.iter().map(String::as_str).collect()
    }

    fn list_kind(&self, items: &[&Value]) -> ListKind {
        let fm = self.meta.lookup(&self.strs());
        if !fm.strategy.merge {
            return ListKind::Atomic;
        }
        match fm.merge_key {
            Some(k) => {
                if items.iter().all(|i| i.get(k).is_some()) {
                    ListKind::Assoc(k)
                } else {
                    ListKind::Atomic
                }
            }
            None => {
                if items.iter().all(|i| !i.is_object() && !i.is_array()) {
                    ListKind::Set
                } else {
                    ListKind::Atomic
                }
            }
        }
    }

    fn atomic_map(&self) -> bool {
        self.meta.is_atomic(&self.strs())
    }

    fn tracked(&self, key: &str) -> bool {
        match self.path.as_slice() {
            [] => key != "apiVersion" && key != "kind",
            [m] if m == "metadata" => !UNTRACKED_META.contains(&key),
            _ => true,
        }
    }

    /// The field set of an applied configuration.
    fn collect_set(&mut self, obj: &Map<String, Value>, node: &mut FieldSet) {
        for (k, v) in obj {
            if !self.tracked(k) {
                continue;
            }
            self.path.push(k.clone());
            let child = node.child_mut(&field_pe(k));
            self.value_set(v, child);
            self.path.pop();
        }
        node.children.retain(|_, c| !c.is_empty());
    }

    fn value_set(&mut self, v: &Value, node: &mut FieldSet) {
        match v {
            Value::Object(m) if !m.is_empty() && !self.atomic_map() => self.collect_set(m, node),
            Value::Array(items) => {
                let refs: Vec<&Value> = items.iter().collect();
                match self.list_kind(&refs) {
                    ListKind::Atomic => node.member = true,
                    ListKind::Set => {
                        for i in items {
                            node.child_mut(&value_pe(i)).member = true;
                        }
                    }
                    ListKind::Assoc(key) => {
                        for i in items {
                            let kv = i.get(key).cloned().unwrap_or(Value::Null);
                            let item = node.child_mut(&key_pe(key, &kv));
                            item.member = true;
                            if let Some(m) = i.as_object() {
                                self.collect_set(m, item);
                            }
                        }
                    }
                }
            }
            _ => node.member = true,
        }
    }

    /// Fields added or changed from `old` to `new` (into `changed`) and removed (into `removed`).
    fn diff(
        &mut self,
        old: Option<&Value>,
        new: &Value,
        changed: &mut FieldSet,
        removed: &mut FieldSet,
    ) {
        match new {
            Value::Object(n) if !self.atomic_map() => {
                let o = old.and_then(Value::as_object);
                if o.is_none() && !self.path.is_empty() && (self.path.len() > 1 || n.is_empty()) {
                    changed.member = true;
                }
                for (k, nv) in n {
                    if !self.tracked(k) {
                        continue;
                    }
                    self.path.push(k.clone());
                    let pe = field_pe(k);
                    let mut c = FieldSet::default();
                    let mut r = FieldSet::default();
                    self.diff(o.and_then(|o| o.get(k)), nv, &mut c, &mut r);
                    if !c.is_empty() {
                        changed.children.insert(pe.clone(), c);
                    }
                    if !r.is_empty() {
                        removed.children.insert(pe, r);
                    }
                    self.path.pop();
                }
                if let Some(o) = o {
                    for k in o.keys() {
                        if !n.contains_key(k) && self.tracked(k) {
                            removed.child_mut(&field_pe(k)).member = true;
                        }
                    }
                }
            }
            Value::Array(items) => {
                let old_items = old.and_then(Value::as_array);
                let refs: Vec<&Value> = items
                    .iter()
                    .chain(old_items.into_iter().flatten())
                    .collect();
                match self.list_kind(&refs) {
                    ListKind::Atomic => {
                        if old != Some(new) {
                            changed.member = true;
                        }
                    }
                    ListKind::Set => {
                        if old_items.is_none() {
                            changed.member = true;
                        }
                        let empty = Vec::new();
                        let oi = old_items.unwrap_or(&empty);
                        for i in items {
                            if !oi.contains(i) {
                                changed.child_mut(&value_pe(i)).member = true;
                            }
                        }
                        for i in oi {
                            if !items.contains(i) {
                                removed.child_mut(&value_pe(i)).member = true;
                            }
                        }
                    }
                    ListKind::Assoc(key) => {
                        if old_items.is_none() {
                            changed.member = true;
                        }
                        let empty = Vec::new();
                        let oi = old_items.unwrap_or(&empty);
                        for i in items {
                            let kv = i.get(key);
                            let pe = key_pe(key, kv.unwrap_or(&Value::Null));
                            let prev = oi.iter().find(|x| x.get(key) == kv);
                            let mut c = FieldSet::default();
                            let mut r = FieldSet::default();
                            if prev.is_none() {
                                c.member = true;
                            }
                            self.diff(prev, i, &mut c, &mut r);
                            if !c.is_empty() {
                                changed.children.insert(pe.clone(), c);
                            }
                            if !r.is_empty() {
                                removed.children.insert(pe, r);
                            }
                        }
                        for x in oi {
                            let kv = x.get(key);
                            if !items.iter().any(|i| i.get(key) == kv) {
                                let pe = key_pe(key, kv.unwrap_or(&Value::Null));
                                removed.child_mut(&pe).member = true;
                            }
                        }
                    }
                }
            }
            _ => {
                if old != Some(new) {
                    changed.member = true;
                }
            }
        }
    }

    /// Merges an applied configuration into the live object.
    fn merge(&mut self, live: Option<&Value>, applied: &Value) -> Value {
        match applied {
            Value::Object(a) if !self.atomic_map() => {
                let mut out = live.and_then(Value::as_object).cloned().unwrap_or_default();
                for (k, v) in a {
                    if v.is_null() {
                        out.shift_remove(k);
                        continue;
                    }
                    self.path.push(k.clone());
                    let merged = self.merge(out.get(k), v);
                    self.path.pop();
                    out.insert(k.clone(), merged);
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                let Some(live_items) = live.and_then(Value::as_array) else {
                    return applied.clone();
                };
                let refs: Vec<&Value> = items.iter().chain(live_items.iter()).collect();
                match self.list_kind(&refs) {
                    ListKind::Atomic => applied.clone(),
                    ListKind::Set => {
                        let mut out = live_items.clone();
                        for i in items {
                            if !out.contains(i) {
                                out.push(i.clone());
                            }
                        }
                        Value::Array(out)
                    }
                    ListKind::Assoc(key) => {
                        let mut out = Vec::with_capacity(items.len() + live_items.len());
                        for i in items {
                            let prev = live_items.iter().find(|x| x.get(key) == i.get(key));
                            out.push(self.merge(prev, i));
                        }
                        for x in live_items {
                            if !items.iter().any(|i| i.get(key) == x.get(key)) {
                                out.push(x.clone());
                            }
                        }
                        Value::Array(out)
                    }
                }
            }
            other => other.clone(),
        }
    }
}

/// Removes the value at a field-set path (no-op when it does not resolve). Lists and maps left
/// empty by the removal are dropped too, as Go's `omitempty` would drop them.
fn remove_path(obj: &mut Value, path: &[String]) {
    remove_rec(obj, path);
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn remove_pe(cur: &mut Value, pe: &str) {
    if let Some(f) = pe.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.shift_remove(f);
        }
    } else if let Some(a) = cur.as_array_mut()
        && let Some(p) = a.iter().position(|i| matches_pe(i, pe))
    {
        a.remove(p);
    }
}

/// Returns whether `cur` is an empty container after the removal.
fn remove_rec(cur: &mut Value, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        remove_pe(cur, first);
        return is_empty_container(cur);
    }
    let Some(child) = resolve(cur, first) else {
        return false;
    };
    if remove_rec(child, rest) {
        remove_pe(cur, first);
    }
    is_empty_container(cur)
}

fn matches_pe(item: &Value, pe: &str) -> bool {
    if let Some(k) = pe.strip_prefix("k:") {
        let Ok(keys) = serde_json::from_str::<Map<String, Value>>(k) else {
            return false;
        };
        keys.iter().all(|(k, v)| item.get(k) == Some(v))
    } else if let Some(v) = pe.strip_prefix("v:") {
        serde_json::from_str::<Value>(v).is_ok_and(|v| &v == item)
    } else {
        false
    }
}

fn resolve<'v>(cur: &'v mut Value, pe: &str) -> Option<&'v mut Value> {
    if let Some(f) = pe.strip_prefix("f:") {
        cur.as_object_mut()?.get_mut(f)
    } else if let Some(i) = pe.strip_prefix("i:") {
        cur.as_array_mut()?.get_mut(i.parse::<usize>().ok()?)
    } else {
        cur.as_array_mut()?.iter_mut().find(|i| matches_pe(i, pe))
    }
}

/// Server-side apply of `applied` by `manager` onto `live` (None on create).
///
/// Returns the merged object with updated `metadata.managedFields`, or the conflicts.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    meta: &dyn PatchMeta,
    now: &str,
) -> Result<Value, ApplyError> {
    let Some(applied_map) = applied.as_object() else {
        return Err(ApplyError::Invalid(
            "the applied configuration must be an object".into(),
        ));
    };
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut w = Walker {
        meta,
        path: Vec::new(),
    };
    let mut applied_set = FieldSet::default();
    w.collect_set(applied_map, &mut applied_set);

    let mut entries = live.map(managed_fields).unwrap_or_default();
    let mine = entries
        .iter()
        .position(|e| e.same_manager(manager, "Apply", &api_version, ""));
    let prev_set = mine.map(|i| entries[i].fields.clone()).unwrap_or_default();

    let mut applied_clean = applied.clone();
    if let Some(m) = applied_clean
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
    {
        m.shift_remove("managedFields");
    }
    let mut merged = w.merge(live, &applied_clean);

    // Remove what this manager stopped applying, unless someone else still owns it.
    let others = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != mine)
        .fold(FieldSet::default(), |acc, (_, e)| acc.union(&e.fields));
    let mut stale = prev_set.difference(&applied_set).paths();
    stale.sort_by_key(Vec::len);
    for p in stale {
        // A map or list item the applier still applies children of is not stale itself: only
        // its `.` membership changed (e.g. after kubectl's client-side-apply migration).
        if !others.has_prefix(&p) && !applied_set.has_prefix(&p) {
            remove_path(&mut merged, &p);
        }
    }

    let mut changed = FieldSet::default();
    let mut removed = FieldSet::default();
    w.diff(live, &merged, &mut changed, &mut removed);

    let mut conflicts = Vec::new();
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) == mine {
            continue;
        }
        let c = e.fields.intersection(&changed);
        if c.is_empty() {
            continue;
        }
        for p in c.paths() {
            conflicts.push(Conflict {
                manager: e.display(),
                field: path_string(&p),
            });
        }
        if force {
            e.fields = e.fields.difference(&c);
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by(|a, b| a.manager.cmp(&b.manager).then(a.field.cmp(&b.field)));
        return Err(ApplyError::Conflicts(conflicts));
    }
    for e in &mut entries {
        e.fields = e.fields.recursive_difference(&removed);
    }
    // As upstream, an apply that changes neither the object nor this manager's fields keeps the
    // entry's time, so a repeated apply is a no-op write (same resourceVersion).
    let unchanged = mine.and_then(|i| entries.get(i)).filter(|e| {
        changed.is_empty()
            && removed.is_empty()
            && e.fields == applied_set
            && e.api_version == api_version
    });
    let time = match unchanged {
        Some(e) => e.time.clone(),
        None => Some(now.to_string()),
    };
    let entry = ManagedEntry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version,
        time,
        subresource: String::new(),
        fields: applied_set,
    };
    match mine {
        Some(i) => entries[i] = entry,
        None => entries.push(entry),
    }
    set_managed_fields(&mut merged, entries);
    Ok(merged)
}

/// Records a non-apply write (create, update, patch) by `manager` in `new`'s managedFields.
///
/// List ownership uses the built-in patch metadata of `new`'s kind (custom kinds get
/// `metadata` handling only). If `new` carries `managedFields` (a client sent them), they are
/// the starting point, as upstream honours user-supplied managed fields; otherwise `old`'s are.
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    now: &str,
) {
    let kind = new.get("kind").and_then(Value::as_str).unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let meta = crate::patch::builtin_patch_meta(group, kind);
    track_update_subresource(old, new, manager, api_version, "", now, &*meta);
}

/// [`track_update`] for a subresource write (`status`, `scale`) with patch metadata for list
/// ownership (`k:`/`v:` entries instead of whole lists).
pub fn track_update_subresource(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
    now: &str,
    meta: &dyn PatchMeta,
) {
    let supplied = new
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|v| !v.is_null());
    let mut entries = if supplied {
        managed_fields(new)
    } else {
        old.map(managed_fields).unwrap_or_default()
    };
    let mut w = Walker {
        meta,
        path: Vec::new(),
    };
    let mut changed = FieldSet::default();
    let mut removed = FieldSet::default();
    w.diff(old, new, &mut changed, &mut removed);
    for e in &mut entries {
        e.fields = e.fields.difference(&changed).recursive_difference(&removed);
    }
    if !changed.is_empty() {
        let pos = entries
            .iter()
            .position(|e| e.same_manager(manager, "Update", api_version, subresource));
        match pos {
            Some(i) => {
                let prev = std::mem::take(&mut entries[i].fields);
                entries[i].fields = prev.union(&changed);
                entries[i].time = Some(now.to_string());
            }
            None => entries.push(ManagedEntry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                time: Some(now.to_string()),
                subresource: subresource.to_string(),
                fields: changed,
            }),
        }
    }
    set_managed_fields(new, entries);
}

#[cfg(test)]
mod tests;

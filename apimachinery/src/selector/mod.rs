//! Label and field selectors.
//!
//! - [`label`]: the set-based label selector grammar of `?labelSelector=` and `metav1.LabelSelector`;
//! - [`field`]: equality field selectors of `?fieldSelector=` and the per-kind selectable fields.

pub mod field;
pub mod label;

pub use field::{FieldSelector, FieldSelectorError};
pub use label::{LabelSelector, LabelSelectorError};

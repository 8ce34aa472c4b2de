//! Label and field selectors.
//!
//! - [`label`]: the set-based label selector grammar of `?labelSelector=` and `metav1.LabelSelector`;
//! - [`field`]: equality field selectors of `?fieldSelector=` and the per-kind selectable fields.

pub mod field;
pub mod label;

pub use field::{FieldSelector, FieldSelectorError};
pub use label::{LabelSelector, LabelSelectorError};

#[cfg(test)]
mod fuzz {
    use super::*;

    /// Deterministic pseudo-random strings over the selector alphabet: parsing never panics,
    /// and whatever parses re-parses to the same canonical form.
    #[test]
    fn random_inputs_never_panic_and_round_trip() {
        let alphabet: Vec<char> = "ab1 =!(),<>in\\é\t/.-_".chars().collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (seed >> 58) as usize;
            let mut s = String::new();
            let mut x = seed;
            for _ in 0..len {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                s.push(alphabet[(x >> 33) as usize % alphabet.len()]);
            }
            if let Ok(sel) = LabelSelector::parse(&s) {
                let canon = sel.to_string();
                let again = LabelSelector::parse(&canon).expect(&canon);
                assert_eq!(again.to_string(), canon, "{s:?}");
            }
            let _ = FieldSelector::parse(&s);
        }
    }
}

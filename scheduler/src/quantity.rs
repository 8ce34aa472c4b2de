//! Kubernetes resource quantities (`100m`, `1.5`, `128Mi`, `1e3`, `500k`), parsed exactly.
//!
//! A quantity is `<sign?><digits>[.<digits>]<suffix>` where the suffix is a binary SI suffix (`Ki` …
//! `Ei`, powers of 1024), a decimal SI suffix (`n u m "" k M G T P E`) or a decimal exponent (`e3`,
//! `E-2`). The value is kept as an integer mantissa times a power of ten and a power of two, so no
//! precision is lost; conversions to integer units round up, as upstream's `Value()` and
//! `MilliValue()` do (`1n` of cpu is 1 millicore), and saturate at `i64::MAX`.

use std::fmt;
use std::str::FromStr;

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {0:?}"
)]
pub struct QuantityError(pub String);

/// A parsed quantity: `mantissa × 10^exp10 × 2^exp2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    mantissa: i128,
    exp10: i32,
    exp2: u32,
}

/// More significant digits than this are refused (upstream keeps arbitrary precision, but no real
/// request needs it).
const MAX_DIGITS: usize = 36;

impl Quantity {
    /// Parses a quantity string.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        let err = || QuantityError(s.to_string());
        let bytes = s.as_bytes();
        let mut i = 0;
        let negative = match bytes.first() {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let mut digits = String::new();
        let mut frac_digits = 0i32;
        let mut seen_point = false;
        let mut any_digit = false;
        while i < bytes.len() {
            match bytes[i] {
                b'0'..=b'9' => {
                    any_digit = true;
                    if !(digits.is_empty() && bytes[i] == b'0') {
                        digits.push(bytes[i] as char);
                    }
                    if seen_point {
                        frac_digits += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => break,
            }
            i += 1;
        }
        if !any_digit {
            return Err(err());
        }
        // Trailing zeros of the fraction carry no value; dropping them keeps the mantissa small.
        while seen_point && frac_digits > 0 && digits.ends_with('0') {
            digits.pop();
            frac_digits -= 1;
        }
        if digits.len() > MAX_DIGITS {
            return Err(err());
        }
        let mut mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| err())?
        };
        if negative {
            mantissa = -mantissa;
        }
        let (exp10, exp2) = match &s[i..] {
            "" => (0, 0),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            "Ki" => (0, 10),
            "Mi" => (0, 20),
            "Gi" => (0, 30),
            "Ti" => (0, 40),
            "Pi" => (0, 50),
            "Ei" => (0, 60),
            suffix => {
                let exp = suffix
                    .strip_prefix('e')
                    .or_else(|| suffix.strip_prefix('E'))
                    .ok_or_else(err)?;
                let body = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err());
                }
                let e: i32 = exp.parse().map_err(|_| err())?;
                if !(-1000..=1000).contains(&e) {
                    return Err(err());
                }
                (e, 0)
            }
        };
        Ok(Quantity {
            mantissa,
            exp10: exp10 - frac_digits,
            exp2,
        })
    }

    /// The value in units of `10^-scale` (scale 3 = milli), rounded up, saturating.
    fn scaled(&self, scale: i32) -> i64 {
        let sat = |neg: bool| if neg { i64::MIN } else { i64::MAX };
        let neg = self.mantissa < 0;
        if self.mantissa == 0 {
            return 0;
        }
        let Some(mut n) = self.mantissa.checked_mul(1i128 << self.exp2.min(120)) else {
            return sat(neg);
        };
        if self.exp2 > 120 {
            return sat(neg);
        }
        let pow = self.exp10 + scale;
        if pow >= 0 {
            for _ in 0..pow {
                match n.checked_mul(10) {
                    Some(v) => n = v,
                    None => return sat(neg),
                }
            }
        } else {
            let mut div: i128 = 1;
            for _ in 0..(-pow) {
                match div.checked_mul(10) {
                    Some(d) => div = d,
                    // The divisor exceeds any mantissa: a tiny non-zero value rounds up to 1 (or 0
                    // for a negative one).
                    None => return if neg { 0 } else { 1 },
                }
            }
            let q = n / div;
            n = if n % div > 0 { q + 1 } else { q };
        }
        i64::try_from(n).unwrap_or_else(|_| sat(neg))
    }

    /// The value in whole units, rounded up (`1.5` → 2, `128Mi` → 134217728).
    pub fn value(&self) -> i64 {
        self.scaled(0)
    }

    /// The value in thousandths, rounded up (`100m` → 100, `1.5` → 1500).
    pub fn milli_value(&self) -> i64 {
        self.scaled(3)
    }

    /// Whether the quantity is below zero.
    pub fn is_negative(&self) -> bool {
        self.mantissa < 0
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}m", self.milli_value())
    }
}

/// Parses a JSON quantity (a string, or a bare number as some clients send).
pub fn from_json(v: &serde_json::Value) -> Option<Quantity> {
    match v {
        serde_json::Value::String(s) => Quantity::parse(s).ok(),
        serde_json::Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn cpu_quantities_in_millicores() {
        for (s, milli) in [
            ("100m", 100),
            ("1", 1000),
            ("1.5", 1500),
            ("0.1", 100),
            (".5", 500),
            ("2.", 2000),
            ("+3", 3000),
            ("1e3", 1_000_000),
            ("1E-3", 1),
            ("250m", 250),
            ("1n", 1), // rounds up
            ("1u", 1),
            ("1500u", 2),
            ("0", 0),
            ("0m", 0),
            ("0.000", 0),
            ("1.000", 1000),
            ("8", 8000),
        ] {
            assert_eq!(q(s).milli_value(), milli, "{s}");
        }
    }

    #[test]
    fn memory_quantities_in_bytes() {
        for (s, bytes) in [
            ("128Mi", 128 << 20),
            ("1Gi", 1 << 30),
            ("32Gi", 32i64 << 30),
            ("1Ki", 1024),
            ("1.5Gi", 3 << 29),
            ("500k", 500_000),
            ("1M", 1_000_000),
            ("1G", 1_000_000_000),
            ("1e3", 1000),
            ("1e+3", 1000),
            ("129e6", 129_000_000),
            ("123", 123),
            ("0.5", 1), // rounds up
            ("1Ei", 1i64 << 60),
            ("2E", 2_000_000_000_000_000_000),
            ("100m", 1),
        ] {
            assert_eq!(q(s).value(), bytes, "{s}");
        }
    }

    #[test]
    fn huge_values_saturate() {
        assert_eq!(q("16Ei").value(), i64::MAX);
        assert_eq!(q("1e100").milli_value(), i64::MAX);
        assert_eq!(q("1e-100").milli_value(), 1);
        assert_eq!(q("-1").milli_value(), -1000);
        assert!(q("-1").is_negative());
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "", "abc", "1.2.3", "1Kb", "--1", "1e", "1e+", "Mi", ".", "1 ", " 1", "1KI", "1ki",
            "1mi", "1e1.5", "0x10",
        ] {
            assert!(Quantity::parse(s).is_err(), "{s:?} should be refused");
        }
    }

    #[test]
    fn json_values() {
        assert_eq!(
            from_json(&serde_json::json!("2")).map(|q| q.milli_value()),
            Some(2000)
        );
        assert_eq!(
            from_json(&serde_json::json!(0.5)).map(|q| q.milli_value()),
            Some(500)
        );
        assert_eq!(from_json(&serde_json::json!(null)), None);
    }
}

//! Exact decimals for alert thresholds: an objective's error budget and its products with
//! burn factors, printed exactly (`14.4 × 0.001 = 0.0144`), never through `f64`.

use std::fmt;

use seawall_config::Objective;

/// `mantissa / 10^scale`, non-negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    mantissa: u128,
    scale: u32,
}

impl Decimal {
    /// `mantissa / 10^scale`.
    pub const fn new(mantissa: u128, scale: u32) -> Self {
        Self { mantissa, scale }
    }

    /// A whole number.
    pub const fn int(n: u128) -> Self {
        Self::new(n, 0)
    }

    /// The objective as a ratio: `99.9%` → `0.999`.
    pub fn ratio(objective: Objective) -> Self {
        let (digits, scale) = objective.percent_parts();
        Self::new(u128::from(digits), scale + 2)
    }

    /// The error budget of an objective: `99.9%` → `0.001`.
    pub fn budget(objective: Objective) -> Self {
        let (digits, scale) = objective.percent_parts();
        let whole = 10u128.pow(scale + 2);
        Self::new(whole.saturating_sub(u128::from(digits)), scale + 2)
    }
}

impl std::ops::Mul for Decimal {
    type Output = Self;

    /// The exact product (saturating: no threshold comes near `u128`).
    // Multiplying `a / 10^m` by `b / 10^n` adds the scales: the `+` is the arithmetic.
    #[allow(clippy::suspicious_arithmetic_impl)]
    fn mul(self, other: Self) -> Self {
        Self::new(
            self.mantissa.saturating_mul(other.mantissa),
            self.scale + other.scale,
        )
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pow = 10u128.pow(self.scale);
        let (whole, mut frac) = (self.mantissa / pow, self.mantissa % pow);
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let mut width = self.scale as usize;
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        write!(f, "{whole}.{frac:0width$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objective(s: &str) -> Objective {
        s.parse().unwrap()
    }

    #[test]
    fn budgets_and_burn_thresholds_print_exactly() {
        let b = Decimal::budget(objective("99.9%"));
        assert_eq!(b.to_string(), "0.001");
        assert_eq!((Decimal::new(144, 1) * b).to_string(), "0.0144");
        assert_eq!((Decimal::int(6) * b).to_string(), "0.006");
        assert_eq!((Decimal::int(1) * b).to_string(), "0.001");
        let b = Decimal::budget(objective("99.95%"));
        assert_eq!((Decimal::new(144, 1) * b).to_string(), "0.0072");
        assert_eq!(Decimal::budget(objective("99%")).to_string(), "0.01");
        assert_eq!(Decimal::budget(objective("95.5%")).to_string(), "0.045");
        assert_eq!(Decimal::ratio(objective("99.9%")).to_string(), "0.999");
        assert_eq!(Decimal::ratio(objective("99.990%")).to_string(), "0.9999");
        assert_eq!(Decimal::int(3).to_string(), "3");
    }
}

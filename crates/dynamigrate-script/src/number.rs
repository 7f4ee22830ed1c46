//! DynamoDB numbers across the JavaScript boundary. A DynamoDB number is decimal text of up to 38
//! significant digits; a JavaScript number is a double. A number reaches a script as a JS number
//! only when that is exact (the double's shortest text is the same decimal), otherwise as a
//! `NumberValue` holding the text, as the AWS SDK's DocumentClient does with `wrapNumbers`. Pure.

/// A decimal in canonical form: `0.digits × 10^exponent`, no leading or trailing zeros in
/// `digits`; zero is empty digits (and never negative).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

/// DynamoDB's limits: 38 significant digits, magnitude from 1E-130 to below 1E+126.
const MAX_DIGITS: usize = 38;
const MIN_EXPONENT: i64 = -129; // 0.1 × 10^-129 = 1E-130
const MAX_EXPONENT: i64 = 126; // 0.99.. × 10^126 < 1E+126

impl Decimal {
    /// Parses DynamoDB's number syntax (`-12.5`, `1E+5`, `.5`), or says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a number DynamoDB accepts");
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().map_err(|_| bad())?),
            None => (rest, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if whole.is_empty() && fraction.is_empty()
            || !(whole.chars().chain(fraction.chars())).all(|c| c.is_ascii_digit())
        {
            return Err(bad());
        }
        let all: String = whole.chars().chain(fraction.chars()).collect();
        let leading = all.len() - all.trim_start_matches('0').len();
        let digits = all.trim_start_matches('0').trim_end_matches('0').to_string();
        if digits.is_empty() {
            return Ok(Self { negative: false, digits, exponent: 0 });
        }
        let exponent = exponent.saturating_add(whole.len() as i64 - leading as i64);
        Ok(Self { negative, digits, exponent })
    }

    /// Parses and checks DynamoDB's limits on digits and magnitude.
    pub fn parse_checked(text: &str) -> Result<Self, String> {
        let decimal = Self::parse(text)?;
        if decimal.digits.len() > MAX_DIGITS {
            return Err(format!("{text:?} has more than {MAX_DIGITS} significant digits, more than DynamoDB keeps"));
        }
        if !decimal.digits.is_empty() && !(MIN_EXPONENT..=MAX_EXPONENT).contains(&decimal.exponent) {
            return Err(format!("{text:?} is outside the range DynamoDB can store (1E-130 to 9.99E+125)"));
        }
        Ok(decimal)
    }
}

/// The double a DynamoDB number can be given to a script as, when that double is exactly it.
pub fn exact_double(text: &str) -> Option<f64> {
    let value: f64 = text.parse().ok()?;
    let same = Decimal::parse(&format!("{value}")).ok()? == Decimal::parse(text).ok()?;
    (value.is_finite() && same).then_some(value)
}

/// A script's double as DynamoDB number text, refusing what DynamoDB cannot store.
pub fn from_double(value: f64) -> Result<String, String> {
    if !value.is_finite() {
        return Err(format!("{value} is not a number DynamoDB can store"));
    }
    // Rust's `{}` is the shortest text that reads back as the same double, as JavaScript's is.
    let text = if value == 0.0 { "0".to_string() } else { format!("{value}") };
    Decimal::parse_checked(&text)?;
    Ok(text)
}

/// Whether two number texts are the same number (`1.50` and `1.5` are).
pub fn same_number(a: &str, b: &str) -> bool {
    a == b || matches!((Decimal::parse(a), Decimal::parse(b)), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_a_double_holds_exactly_pass_as_doubles() {
        assert_eq!(exact_double("2"), Some(2.0));
        assert_eq!(exact_double("-12.5"), Some(-12.5));
        assert_eq!(exact_double("1.50"), Some(1.5));
        assert_eq!(exact_double("1E+3"), Some(1000.0));
        assert_eq!(exact_double("9007199254740992"), Some(9007199254740992.0));
        assert_eq!(exact_double("0.1"), Some(0.1));
    }

    #[test]
    fn numbers_a_double_would_change_do_not() {
        assert_eq!(exact_double("9007199254740993"), None);
        assert_eq!(exact_double("0.12345678901234567891"), None);
        assert_eq!(exact_double("12345678901234567890123456789012345678"), None);
        assert_eq!(exact_double("1.0000000000000001"), None);
    }

    #[test]
    fn doubles_go_back_as_shortest_text_within_dynamodbs_range() {
        assert_eq!(from_double(2.0).unwrap(), "2");
        assert_eq!(from_double(-0.0).unwrap(), "0");
        assert_eq!(from_double(0.1 + 0.2).unwrap(), "0.30000000000000004");
        assert_eq!(from_double(1e21).unwrap(), "1000000000000000000000");
        assert!(from_double(f64::NAN).is_err());
        assert!(from_double(f64::INFINITY).is_err());
        assert!(from_double(1e200).unwrap_err().contains("outside the range"));
    }

    #[test]
    fn decimals_compare_by_value_and_check_dynamodbs_limits() {
        assert!(same_number("1.50", "1.5"));
        assert!(same_number("100", "1E2"));
        assert!(same_number("-0", "0"));
        assert!(!same_number("1.5", "1.05"));
        assert!(Decimal::parse_checked("12345678901234567890123456789012345678").is_ok());
        assert!(Decimal::parse_checked("123456789012345678901234567890123456789").is_err());
        assert!(Decimal::parse_checked("9.9999999999999999999999999999999999999E+125").is_ok());
        assert!(Decimal::parse_checked("1E+126").is_err());
        assert!(Decimal::parse_checked("1E-130").is_ok());
        assert!(Decimal::parse_checked("1E-131").is_err());
        for bad in ["", "-", "abc", "1.2.3", "1e", "0x10", "NaN"] {
            assert!(Decimal::parse(bad).is_err(), "{bad}");
        }
    }
}

//! A point in a node's history, as `--from` and `--to` take it: a transaction (its log
//! position, as `interstice history` shows it: a bare number) or a logical time (a number with
//! a unit: `ms`, `s`, `m` or `h`; a node's logical time counts from its first start and only
//! moves while it runs).

use std::fmt;
use std::str::FromStr;

/// A transaction or a logical time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// A transaction's log position.
    Tx(u64),
    /// A logical time, in milliseconds.
    Time(u64),
}

impl Point {
    /// The transaction, if this is one.
    pub fn tx(self) -> Option<u64> {
        match self {
            Point::Tx(tx) => Some(tx),
            Point::Time(_) => None,
        }
    }

    /// The logical time, if this is one.
    pub fn time(self) -> Option<u64> {
        match self {
            Point::Time(ms) => Some(ms),
            Point::Tx(_) => None,
        }
    }
}

impl FromStr for Point {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let digits = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let neither = || {
            format!(
                "`{text}` is neither a transaction (a number, e.g. 120) nor a logical time (a \
                 number with ms, s, m or h, e.g. 90s)"
            )
        };
        let number: u64 = number.parse().map_err(|_| neither())?;
        let scale = match unit {
            "" => return Ok(Point::Tx(number)),
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(neither()),
        };
        number
            .checked_mul(scale)
            .map(Point::Time)
            .ok_or_else(|| format!("`{text}` is past the end of logical time"))
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Point::Tx(tx) => write!(f, "transaction {tx}"),
            Point::Time(ms) => write!(f, "logical time {ms} ms"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_number_is_a_transaction_and_a_unit_makes_a_time() {
        assert_eq!("120".parse(), Ok(Point::Tx(120)));
        assert_eq!("1500ms".parse(), Ok(Point::Time(1_500)));
        assert_eq!("90s".parse(), Ok(Point::Time(90_000)));
        assert_eq!("2m".parse(), Ok(Point::Time(120_000)));
        assert_eq!("1h".parse(), Ok(Point::Time(3_600_000)));
        for bad in ["", "s", "12x", "-3", "1.5s", "99999999999999999999h"] {
            assert!(bad.parse::<Point>().is_err(), "{bad:?}");
        }
    }
}

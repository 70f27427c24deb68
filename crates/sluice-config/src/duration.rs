//! Go duration strings (`time.ParseDuration`): `"3s"`, `"150ms"`, `"1m30s"`, `"1.5h"`, `"0"`.

use std::time::Duration;

const UNITS_HINT: &str = "use ns, us, µs, ms, s, m or h";

/// Parses a Go duration string: a sequence of decimal numbers, each with an optional fraction and a
/// unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), like `"1m30s"` or `"1.5s"`; `"0"` needs no unit.
/// A leading `+` is accepted; a negative duration other than zero is an error (Go would accept it,
/// but no setting of the gateway has a use for one).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid = |why: &str| format!("invalid duration {}: {why}", crate::read::quote(s));

    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid(
            "expected a number and a unit, like \"2s\" or \"150ms\"",
        ));
    }

    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = leading_digits(rest);
        let (int_part, after_int) = rest.split_at(int_len);
        let (frac_part, after_number) = match after_int.strip_prefix('.') {
            Some(after_dot) => after_dot.split_at(leading_digits(after_dot)),
            None => ("", after_int),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid(&format!(
                "expected a number at {}",
                crate::read::quote(rest)
            )));
        }
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, next) = after_number.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => {
                return Err(invalid(&format!(
                    "missing unit after {} ({UNITS_HINT})",
                    crate::read::quote(&rest[..rest.len() - after_number.len()])
                )));
            }
            other => {
                return Err(invalid(&format!(
                    "unknown unit {} ({UNITS_HINT})",
                    crate::read::quote(other)
                )));
            }
        };

        let too_large = || invalid("too large");
        let whole = decimal(int_part).ok_or_else(too_large)?;
        let mut amount = whole.checked_mul(nanos_per_unit).ok_or_else(too_large)?;
        if !frac_part.is_empty() {
            // Digits beyond the 18th cannot change a result counted in nanoseconds (the largest unit
            // is 3.6e12 ns), and keeping 18 keeps the products below u128::MAX.
            let kept = &frac_part[..frac_part.len().min(18)];
            let numerator = decimal(kept).ok_or_else(too_large)?;
            let scale = 10u128.pow(u32::try_from(kept.len()).unwrap_or(18));
            amount = amount
                .checked_add(numerator * nanos_per_unit / scale)
                .ok_or_else(too_large)?;
        }
        total = total.checked_add(amount).ok_or_else(too_large)?;
        rest = next;
    }

    // Go's durations are an i64 count of nanoseconds (about 292 years).
    let nanos = u64::try_from(total)
        .ok()
        .filter(|n| i64::try_from(*n).is_ok())
        .ok_or_else(|| invalid("too large"))?;
    if negative && nanos > 0 {
        return Err(invalid("a duration cannot be negative"));
    }
    Ok(Duration::from_nanos(nanos))
}

/// How many ASCII digits `s` starts with.
fn leading_digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// The value of a string of ASCII digits (`""` is 0), `None` on overflow.
fn decimal(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |acc, d| {
        acc.checked_mul(10)?.checked_add(u128::from(d - b'0'))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        match parse_duration(s) {
            Ok(d) => d,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn go_syntax() {
        assert_eq!(ok("3s"), Duration::from_secs(3));
        assert_eq!(ok("150ms"), Duration::from_millis(150));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("30us"), Duration::from_micros(30));
        assert_eq!(ok("30µs"), Duration::from_micros(30));
        assert_eq!(ok("30μs"), Duration::from_micros(30));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("-0"), Duration::ZERO);
        assert_eq!(ok("+5s"), Duration::from_secs(5));
        assert_eq!(ok("2ns"), Duration::from_nanos(2));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("5.s"), Duration::from_secs(5));
        assert_eq!(ok("1h2m3s4ms5us6ns"), Duration::new(3723, 4_005_006));
        assert_eq!(ok("1.000000001s"), Duration::new(1, 1));
        assert_eq!(
            ok("0.1234567890123456789999h"),
            Duration::from_nanos(444_444_440_444)
        );
        assert_eq!(ok("2562047h"), Duration::from_secs(2_562_047 * 3600));
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "", "3", "s", "1.5", "3 s", "3x", "1m30", ".s", "-", "+", "1e3s", "3S", "1s ",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn messages() {
        assert_eq!(
            parse_duration("3x").unwrap_err(),
            r#"invalid duration "3x": unknown unit "x" (use ns, us, µs, ms, s, m or h)"#
        );
        assert_eq!(
            parse_duration("30").unwrap_err(),
            r#"invalid duration "30": missing unit after "30" (use ns, us, µs, ms, s, m or h)"#
        );
        assert_eq!(
            parse_duration("-1s").unwrap_err(),
            r#"invalid duration "-1s": a duration cannot be negative"#
        );
        assert_eq!(
            parse_duration("3000000h").unwrap_err(),
            r#"invalid duration "3000000h": too large"#
        );
        assert_eq!(
            parse_duration("99999999999999999999999999999999999999999s").unwrap_err(),
            r#"invalid duration "99999999999999999999999999999999999999999s": too large"#
        );
    }
}

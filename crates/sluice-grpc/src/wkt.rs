//! The text forms of `google.protobuf.Timestamp` and `Duration` in the protobuf JSON mapping:
//! RFC 3339 in UTC (`1972-01-01T10:00:20.021Z`) and seconds with an `s` (`1.5s`), with 0, 3, 6
//! or 9 fractional digits. Written by hand: two small formats do not justify a date crate.

use sluice_transform::calendar::{civil_from_days, days_from_civil, days_in_month};

/// Seconds of `0001-01-01T00:00:00Z` and of `9999-12-31T23:59:59Z`, the range the mapping allows.
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;
/// Durations are within ±10,000 years.
const MAX_DURATION_SECONDS: i64 = 315_576_000_000;

/// `seconds` and `nanos` since the epoch as RFC 3339 (`None` when out of the mapping's range).
pub(crate) fn format_timestamp(seconds: i64, nanos: i32) -> Option<String> {
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&seconds) || !(0..1_000_000_000).contains(&nanos) {
        return None;
    }
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    );
    push_nanos(&mut out, nanos);
    out.push('Z');
    Some(out)
}

/// `seconds` and `nanos` as `1.5s` (`None` when out of range or of mixed signs).
pub(crate) fn format_duration(seconds: i64, nanos: i32) -> Option<String> {
    if seconds.abs() > MAX_DURATION_SECONDS
        || nanos.abs() >= 1_000_000_000
        || (seconds > 0 && nanos < 0)
        || (seconds < 0 && nanos > 0)
    {
        return None;
    }
    let mut out = String::new();
    if seconds < 0 || nanos < 0 {
        out.push('-');
    }
    out.push_str(&seconds.unsigned_abs().to_string());
    push_nanos(&mut out, nanos.abs());
    out.push('s');
    Some(out)
}

fn push_nanos(out: &mut String, nanos: i32) {
    if nanos == 0 {
        return;
    }
    let text = if nanos % 1_000_000 == 0 {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos % 1000 == 0 {
        format!(".{:06}", nanos / 1000)
    } else {
        format!(".{nanos:09}")
    };
    out.push_str(&text);
}

/// Parses RFC 3339 (`2024-05-01T10:00:00Z`, `...T10:00:00.5+02:00`) to seconds and nanos.
pub(crate) fn parse_timestamp(text: &str) -> Option<(i64, i32)> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = text.get(from..to)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0i32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = format!("{:0<9}", &fraction[..digits]).parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = rest.as_bytes();
            if r.len() != 6 || r[3] != b':' {
                return None;
            }
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    (MIN_SECONDS..=MAX_SECONDS)
        .contains(&seconds)
        .then_some((seconds, nanos))
}

/// Parses `1.5s`, `-0.001s`, `3s` to seconds and nanos (both of the sign of the whole).
pub(crate) fn parse_duration(text: &str) -> Option<(i64, i32)> {
    let body = text.strip_suffix('s')?;
    let (negative, body) = match body.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    if whole.is_empty() || !whole.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if fraction.len() > 9 || !fraction.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let seconds: i64 = whole.parse().ok()?;
    let nanos: i32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    if seconds > MAX_DURATION_SECONDS {
        return None;
    }
    Some(if negative {
        (-seconds, -nanos)
    } else {
        (seconds, nanos)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(
            format_timestamp(0, 0).as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            format_timestamp(63_072_020, 21_000_000).as_deref(),
            Some("1972-01-01T00:00:20.021Z")
        );
        assert_eq!(
            format_timestamp(1_714_557_600, 500).as_deref(),
            Some("2024-05-01T10:00:00.000000500Z")
        );
        assert_eq!(
            format_timestamp(-1, 0).as_deref(),
            Some("1969-12-31T23:59:59Z")
        );
        assert_eq!(format_timestamp(MAX_SECONDS + 1, 0), None);
        assert_eq!(
            parse_timestamp("2024-05-01T10:00:00Z"),
            Some((1_714_557_600, 0))
        );
        assert_eq!(
            parse_timestamp("2024-05-01T12:00:00.5+02:00"),
            Some((1_714_557_600, 500_000_000))
        );
        assert_eq!(parse_timestamp("2024-02-30T00:00:00Z"), None);
        assert_eq!(parse_timestamp("2024-05-01"), None);
        for s in [0i64, 951_782_400, -62_135_596_800, 253_402_300_799] {
            let text = format_timestamp(s, 0).unwrap_or_default();
            assert_eq!(parse_timestamp(&text), Some((s, 0)), "{text}");
        }
    }

    #[test]
    fn durations_round_trip() {
        assert_eq!(format_duration(1, 500_000_000).as_deref(), Some("1.500s"));
        assert_eq!(format_duration(0, -1000).as_deref(), Some("-0.000001s"));
        assert_eq!(format_duration(3, 0).as_deref(), Some("3s"));
        assert_eq!(format_duration(1, -1), None);
        assert_eq!(parse_duration("1.5s"), Some((1, 500_000_000)));
        assert_eq!(parse_duration("-0.000001s"), Some((0, -1000)));
        assert_eq!(parse_duration("3"), None);
        assert_eq!(parse_duration(".5s"), None);
    }
}

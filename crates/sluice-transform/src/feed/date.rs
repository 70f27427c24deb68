//! Feed dates as gofeed 1.2.1 reads them: each layout of its list tried in turn with Go's
//! `time.Parse` rules, and the result written as Go's `time.Time` marshals to JSON (RFC 3339 with
//! nanoseconds, trailing zeros dropped).

use crate::calendar::{civil_from_days, days_from_civil, days_in_month};

/// A parsed date: the instant (seconds and nanoseconds since the Unix epoch) and the offset it is
/// shown with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Date {
    unix: i64,
    nanos: u32,
    offset: i32,
}

impl Date {
    /// The same instant, shown in UTC (Go's `t.UTC()`).
    pub(crate) fn utc(self) -> Self {
        Self { offset: 0, ..self }
    }

    /// Go's `time.Time.MarshalJSON` text, `None` for a year outside 0..=9999 (where Go's
    /// marshalling fails).
    pub(crate) fn to_rfc3339(self) -> Option<String> {
        let local = self.unix + i64::from(self.offset);
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let mut out = format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        );
        if self.nanos > 0 {
            let frac = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        if self.offset == 0 {
            out.push('Z');
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let abs = self.offset.unsigned_abs();
            out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60));
        }
        Some(out)
    }
}

/// gofeed's `dateFormats`, tried first.
const LAYOUTS: &[&str] = &[
    "02 Jan 06 15:04 MST",             // RFC822
    "02 Jan 06 15:04 -0700",           // RFC822Z
    "2006-01-02T15:04:05Z07:00",       // RFC3339
    "Mon Jan _2 15:04:05 MST 2006",    // UnixDate
    "Mon Jan 02 15:04:05 -0700 2006",  // RubyDate
    "Monday, 02-Jan-06 15:04:05 MST",  // RFC850
    "Mon, 02 Jan 2006 15:04:05 -0700", // RFC1123Z
    "Mon, 02 Jan 2006 15:04:05 MST",   // RFC1123
    "Mon Jan _2 15:04:05 2006",        // ANSIC
    "Mon, January 2 2006 15:04:05 -0700",
    "Mon, Jan 2 2006 15:04:05 -700",
    "Mon, Jan 2 2006 15:04:05 -0700",
    "Mon Jan 2 15:04 2006",
    "Mon Jan 02, 2006 3:04 pm",
    "Mon Jan 02 2006 15:04:05 -0700",
    "Mon Jan 02 2006 15:04:05 GMT-0700 (MST)",
    "Monday, January 2, 2006 03:04 PM",
    "Monday, January 2, 2006",
    "Monday, January 02, 2006",
    "Monday, 2 January 2006 15:04:05 -0700",
    "Monday, 2 Jan 2006 15:04:05 -0700",
    "Monday, 02 January 2006 15:04:05 -0700",
    "Monday, 02 January 2006 15:04:05",
    "Mon, 2 January 2006, 15:04 -0700",
    "Mon, 2 January 2006 15:04:05 -0700",
    "Mon, 2 January 2006",
    "Mon, 2 Jan 2006 3:04:05 PM -0700",
    "Mon, 2 Jan 2006 15:4:5 -0700 GMT",
    "Mon, 2, Jan 2006 15:4",
    "Mon, 2 Jan 2006, 15:04 -0700",
    "Mon, 2 Jan 2006 15:04 -0700",
    "Mon, 2 Jan 2006 15:04:05 UT",
    "Mon, 2 Jan 2006 15:04:05 -0700 MST",
    "Mon, 2 Jan 2006 15:04:05-0700",
    "Mon, 2 Jan 2006 15:04:05 -0700",
    "Mon, 2 Jan 2006 15:04:05",
    "Mon, 2 Jan 2006 15:04",
    "Mon,2 Jan 2006",
    "Mon, 2 Jan 2006",
    "Mon, 2 Jan 06 15:04:05 -0700",
    "Mon, 2006-01-02 15:04",
    "Mon, 02 January 2006",
    "Mon, 02 Jan 2006 15 -0700",
    "Mon, 02 Jan 2006 15:04 -0700",
    "Mon, 02 Jan 2006 15:04:05 Z",
    "Mon, 02 Jan 2006 15:04:05 UT",
    "Mon, 02 Jan 2006 15:04:05 MST-07:00",
    "Mon, 02 Jan 2006 15:04:05 MST -0700",
    "Mon, 02 Jan 2006 15:04:05 GMT-0700",
    "Mon,02 Jan 2006 15:04:05 -0700",
    "Mon, 02 Jan 2006 15:04:05 -0700",
    "Mon, 02 Jan 2006 15:04:05 -07:00",
    "Mon, 02 Jan 2006 15:04:05 --0700",
    "Mon 02 Jan 2006 15:04:05 -0700",
    "Mon, 02 Jan 2006 15:04:05 -07",
    "Mon, 02 Jan 2006 15:04:05 00",
    "Mon, 02 Jan 2006 15:04:05",
    "Mon, 02 Jan 2006 15:4:5 Z",
    "Mon, 02 Jan 2006",
    "January 2, 2006 3:04 PM",
    "January 2, 2006, 3:04 p.m.",
    "January 2, 2006 15:04:05",
    "January 2, 2006 03:04 PM",
    "January 2, 2006",
    "January 02, 2006 15:04",
    "January 02, 2006 03:04 PM",
    "January 02, 2006",
    "Jan 2, 2006 3:04:05 PM",
    "Jan 2, 2006",
    "Jan 02 2006 03:04:05PM",
    "Jan 02, 2006",
    "6/1/2 15:04",
    "6-1-2 15:04",
    "2 January 2006 15:04:05 -0700",
    "2 January 2006",
    "2 Jan 2006 15:04:05 Z",
    "2 Jan 2006 15:04:05 -0700",
    "2 Jan 2006",
    "2.1.2006 15:04:05",
    "2/1/2006",
    "2-1-2006",
    "2006 January 02",
    "2006-1-2T15:04:05Z",
    "2006-1-2 15:04:05",
    "2006-1-2",
    "2006-1-02T15:04:05Z",
    "2006-01-02T15:04Z",
    "2006-01-02T15:04-07:00",
    "2006-01-02T15:04:05Z",
    "2006-01-02T15:04:05-07:00:00",
    "2006-01-02T15:04:05:-0700",
    "2006-01-02T15:04:05-0700",
    "2006-01-02T15:04:05-07:00",
    "2006-01-02T15:04:05 -0700",
    "2006-01-02T15:04:05:00",
    "2006-01-02T15:04:05",
    "2006-01-02 at 15:04:05",
    "2006-01-02 15:04:05Z",
    "2006-01-02 15:04:05-0700",
    "2006-01-02 15:04:05-07:00",
    "2006-01-02 15:04:05 -0700",
    "2006-01-02 15:04",
    "2006-01-02 00:00:00.0 15:04:05.0 -0700",
    "2006/01/02",
    "2006-01-02",
    "15:04 02.01.2006 -0700",
    "1/2/2006 3:04:05 PM",
    "1/2/2006",
    "06/1/2 15:04",
    "06-1-2 15:04",
    "02 Monday, Jan 2006 15:04",
    "02 Jan 2006 15:04:05 UT",
    "02 Jan 2006 15:04:05 -0700",
    "02 Jan 2006 15:04:05",
    "02 Jan 2006",
    "02.01.2006 15:04:05",
    "02/01/2006 15:04:05",
    "02.01.2006 15:04",
    "02/01/2006 - 15:04",
    "02.01.2006 -0700",
    "02/01/2006",
    "02-01-2006",
    "01/02/2006 3:04 PM",
    "01/02/2006 - 15:04",
    "01/02/2006",
    "01-02-2006",
];

/// gofeed's `dateFormatsWithNamedZone`, tried next: the zone name is then looked up as a time
/// zone (Go's `time.LoadLocation`).
const NAMED_ZONE_LAYOUTS: &[&str] = &[
    "Mon, January 02, 2006, 15:04:05 MST",
    "Mon, January 02, 2006 15:04:05 MST",
    "Mon, Jan 2, 2006 15:04 MST",
    "Mon, Jan 2 2006 15:04 MST",
    "Mon, Jan 2, 2006 15:04:05 MST",
    "Mon Jan 2 15:04:05 2006 MST",
    "Mon, Jan 02,2006 15:04:05 MST",
    "Monday, January 2, 2006 15:04:05 MST",
    "Monday, 2 January 2006 15:04:05 MST",
    "Monday, 2 Jan 2006 15:04:05 MST",
    "Monday, 02 January 2006 15:04:05 MST",
    "Mon, 2 January 2006 15:04 MST",
    "Mon, 2 January 2006, 15:04:05 MST",
    "Mon, 2 January 2006 15:04:05 MST",
    "Mon, 2 Jan 2006 15:4:5 MST",
    "Mon, 2 Jan 2006 15:04 MST",
    "Mon, 2 Jan 2006 15:04:05MST",
    "Mon, 2 Jan 2006 15:04:05 MST",
    "Mon 2 Jan 2006 15:04:05 MST",
    "mon,2 Jan 2006 15:04:05 MST",
    "Mon, 2 Jan 15:04:05 MST",
    "Mon, 2 Jan 06 15:04:05 MST",
    "Mon,02 January 2006 14:04:05 MST",
    "Mon, 02 Jan 2006 3:04:05 PM MST",
    "Mon,02 Jan 2006 15:04 MST",
    "Mon, 02 Jan 2006 15:04 MST",
    "Mon, 02 Jan 2006, 15:04:05 MST",
    "Mon, 02 Jan 2006 15:04:05MST",
    "Mon, 02 Jan 2006 15:04:05 MST",
    "Mon , 02 Jan 2006 15:04:05 MST",
    "Mon, 02 Jan 06 15:04:05 MST",
    "January 2, 2006 15:04:05 MST",
    "January 02, 2006 15:04:05 MST",
    "Jan 2, 2006 3:04:05 PM MST",
    "Jan 2, 2006 15:04:05 MST",
    "2 January 2006 15:04:05 MST",
    "2 Jan 2006 15:04:05 MST",
    "2006-01-02 15:04:05 MST",
    "1/2/2006 3:04:05 PM MST",
    "1/2/2006 15:04:05 MST",
    "02 Jan 2006 15:04 MST",
    "02 Jan 2006 15:04:05 MST",
    "02/01/2006 15:04 MST",
    "02-01-2006 15:04:05 MST",
    "01/02/2006 15:04:05 MST",
];

/// Zone names Go's `time.LoadLocation` knows (tz database names of 3 to 5 capitals), with their
/// standard offset in seconds. Any other name keeps the zero offset, as gofeed does.
const LOADABLE_ZONES: &[(&str, i32)] = &[
    ("UTC", 0),
    ("GMT", 0),
    ("UCT", 0),
    ("WET", 0),
    ("CET", 3600),
    ("MET", 3600),
    ("EET", 7200),
    ("EST", -5 * 3600),
    ("MST", -7 * 3600),
    ("HST", -10 * 3600),
];

/// gofeed's `ParseDate`: the first layout that parses the trimmed text wins.
pub(crate) fn parse_date(text: &str) -> Option<Date> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Some(date) = LAYOUTS.iter().find_map(|layout| parse(layout, text)) {
        return Some(date.into_date(None));
    }
    NAMED_ZONE_LAYOUTS.iter().find_map(|layout| {
        let parsed = parse(layout, text)?;
        let loaded = parsed
            .zone_name
            .and_then(|name| LOADABLE_ZONES.iter().find(|(zone, _)| *zone == name))
            .map(|(_, offset)| *offset);
        Some(parsed.into_date(loaded))
    })
}

/// The fields `time.Parse` collects.
#[derive(Debug)]
struct Parsed<'a> {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    nanos: u32,
    /// `Z` or `UTC`.
    utc: bool,
    /// A numeric offset, in seconds.
    offset: Option<i32>,
    /// A zone abbreviation.
    zone_name: Option<&'a str>,
}

impl Parsed<'_> {
    /// The instant: a numeric offset applies; a zone name Go cannot resolve keeps the clock time
    /// as UTC (shown with the `GMT+h` hours, if any); `loaded` is the offset of a zone name looked
    /// up as a location.
    fn into_date(self, loaded: Option<i32>) -> Date {
        let days = days_from_civil(self.year, self.month, self.day);
        let clock = days * 86_400 + self.hour * 3600 + self.minute * 60 + self.second;
        let (shift, shown) = if self.utc {
            (0, 0)
        } else if let Some(offset) = self.offset {
            (offset, offset)
        } else if let Some(offset) = loaded {
            (offset, offset)
        } else if let Some(name) = self.zone_name {
            let hours = name
                .strip_prefix("GMT")
                .filter(|rest| !rest.is_empty())
                .and_then(|rest| rest.parse::<i32>().ok())
                .unwrap_or(0);
            (0, hours * 3600)
        } else {
            (0, 0)
        };
        Date {
            unix: clock - i64::from(shift),
            nanos: self.nanos,
            offset: shown,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    Month,
    LongMonth,
    NumMonth,
    ZeroMonth,
    WeekDay,
    LongWeekDay,
    Day,
    UnderDay,
    ZeroDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm,
    LowerPm,
    Tz,
    /// `Z07:00`-style: `Z` or a numeric offset; (digits of seconds, colon form, short form).
    Iso {
        colon: bool,
        short: bool,
        seconds: bool,
    },
    /// `-0700`-style.
    Num {
        colon: bool,
        short: bool,
        seconds: bool,
    },
    /// `.000` (exactly n digits) or `.999` (any number).
    Frac {
        exact: Option<usize>,
    },
}

/// Go's `nextStdChunk`: the literal text before the next layout element, the element, and the
/// rest.
fn next_std_chunk(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout.get(i..).is_some_and(|rest| rest.starts_with(s));
    for i in 0..b.len() {
        let chunk = |std: Std, len: usize| (&layout[..i], Some(std), &layout[i + len..]);
        match b[i] {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    return chunk(Std::LongMonth, 7);
                }
                if !b.get(i + 3).is_some_and(u8::is_ascii_lowercase) {
                    return chunk(Std::Month, 3);
                }
            }
            b'M' if at(i, "Mon") => {
                if at(i, "Monday") {
                    return chunk(Std::LongWeekDay, 6);
                }
                if !b.get(i + 3).is_some_and(u8::is_ascii_lowercase) {
                    return chunk(Std::WeekDay, 3);
                }
            }
            b'M' if at(i, "MST") => return chunk(Std::Tz, 3),
            b'0' if matches!(b.get(i + 1), Some(b'1'..=b'6')) => {
                let std = [
                    Std::ZeroMonth,
                    Std::ZeroDay,
                    Std::ZeroHour12,
                    Std::ZeroMinute,
                    Std::ZeroSecond,
                    Std::Year,
                ][usize::from(b[i + 1] - b'1')];
                return chunk(std, 2);
            }
            b'1' => {
                if b.get(i + 1) == Some(&b'5') {
                    return chunk(Std::Hour, 2);
                }
                return chunk(Std::NumMonth, 1);
            }
            b'2' => {
                if at(i, "2006") {
                    return chunk(Std::LongYear, 4);
                }
                return chunk(Std::Day, 1);
            }
            b'_' if b.get(i + 1) == Some(&b'2') => {
                if at(i + 1, "2006") {
                    return (&layout[..=i], Some(Std::LongYear), &layout[i + 5..]);
                }
                return chunk(Std::UnderDay, 2);
            }
            b'3' => return chunk(Std::Hour12, 1),
            b'4' => return chunk(Std::Minute, 1),
            b'5' => return chunk(Std::Second, 1),
            b'P' if b.get(i + 1) == Some(&b'M') => return chunk(Std::Pm, 2),
            b'p' if b.get(i + 1) == Some(&b'm') => return chunk(Std::LowerPm, 2),
            b'-' | b'Z' => {
                let iso = b[i] == b'Z';
                let make = |colon, short, seconds| {
                    if iso {
                        Std::Iso {
                            colon,
                            short,
                            seconds,
                        }
                    } else {
                        Std::Num {
                            colon,
                            short,
                            seconds,
                        }
                    }
                };
                let rest = &layout[i + 1..];
                for (form, colon, short, seconds) in [
                    ("070000", false, false, true),
                    ("07:00:00", true, false, true),
                    ("0700", false, false, false),
                    ("07:00", true, false, false),
                    ("07", false, true, false),
                ] {
                    if rest.starts_with(form) {
                        return chunk(make(colon, short, seconds), 1 + form.len());
                    }
                }
            }
            b'.' | b',' if matches!(b.get(i + 1), Some(b'0' | b'9')) => {
                let digit = b[i + 1];
                let end = i + 1 + b[i + 1..].iter().take_while(|&&c| c == digit).count();
                if !b.get(end).is_some_and(u8::is_ascii_digit) {
                    let exact = (digit == b'0').then_some(end - i - 1);
                    return chunk(Std::Frac { exact }, end - i);
                }
            }
            _ => {}
        }
    }
    (layout, None, "")
}

/// Go's `skip`: the literal prefix must match, a space matching any run of spaces.
fn skip<'v>(mut value: &'v str, mut prefix: &str) -> Option<&'v str> {
    while let Some(&p) = prefix.as_bytes().first() {
        if p == b' ' {
            if value.as_bytes().first().is_some_and(|&c| c != b' ') {
                return None;
            }
            prefix = prefix.trim_start_matches(' ');
            value = value.trim_start_matches(' ');
            continue;
        }
        if value.as_bytes().first() != Some(&p) {
            return None;
        }
        prefix = &prefix[1..];
        value = &value[1..];
    }
    Some(value)
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(value: &str, fixed: bool) -> Option<(i64, &str)> {
    let b = value.as_bytes();
    let d0 = b.first().filter(|c| c.is_ascii_digit())?;
    match b.get(1).filter(|c| c.is_ascii_digit()) {
        Some(d1) => Some((i64::from((d0 - b'0') * 10 + (d1 - b'0')), &value[2..])),
        None if fixed => None,
        None => Some((i64::from(d0 - b'0'), &value[1..])),
    }
}

/// Go's `atoi` over a short ASCII field: an optional sign, then digits only.
fn atoi(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    Some(if negative { -n } else { n })
}

/// Go's `lookup`: the index of the first name the value starts with, ignoring ASCII case.
fn lookup<'v>(names: &[&str], value: &'v str) -> Option<(usize, &'v str)> {
    names.iter().enumerate().find_map(|(i, name)| {
        let head = value.get(..name.len())?;
        head.eq_ignore_ascii_case(name)
            .then(|| (i, &value[name.len()..]))
    })
}

/// Go's `parseNanoseconds` over `value[..n]` (a separator and digits).
fn nanoseconds(value: &str, n: usize) -> Option<u32> {
    let n = n.min(10);
    let digits = value.get(1..n)?;
    let mut ns: u32 = digits.parse().ok()?;
    for _ in digits.len()..9 {
        ns *= 10;
    }
    Some(ns)
}

/// Go's `parseTimeZone`: the length of a zone abbreviation at the start of `value`.
fn time_zone_len(value: &str) -> Option<usize> {
    let b = value.as_bytes();
    if b.len() < 3 {
        return None;
    }
    if value.starts_with("ChST") || value.starts_with("MeST") {
        return Some(4);
    }
    if let Some(rest) = value.strip_prefix("GMT") {
        return Some(
            3 + if rest.is_empty() {
                0
            } else {
                signed_offset_len(rest)
            },
        );
    }
    if b[0] == b'+' || b[0] == b'-' {
        return Some(signed_offset_len(value)).filter(|&n| n > 0);
    }
    let upper = b
        .iter()
        .take(6)
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    match upper {
        3 => Some(3),
        4 if b[3] == b'T' || value.starts_with("WITA") => Some(4),
        5 if b[4] == b'T' => Some(5),
        _ => None,
    }
}

/// Go's `parseSignedOffset`: `+h` / `-h` with h at most 23, else 0.
fn signed_offset_len(value: &str) -> usize {
    let b = value.as_bytes();
    if !matches!(b.first(), Some(b'+' | b'-')) {
        return 0;
    }
    let digits = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return 0;
    }
    match value[1..=digits].parse::<u64>() {
        Ok(hours) if hours <= 23 => 1 + digits,
        _ => 0,
    }
}

const SHORT_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const SHORT_DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's `time.Parse(layout, value)` in UTC, `None` where Go returns an error.
fn parse<'v>(mut layout: &str, mut value: &'v str) -> Option<Parsed<'v>> {
    let mut p = Parsed {
        year: 0,
        month: -1,
        day: -1,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        utc: false,
        offset: None,
        zone_name: None,
    };
    let (mut pm, mut am) = (false, false);
    loop {
        let (prefix, std, suffix) = next_std_chunk(layout);
        value = skip(value, prefix)?;
        let Some(std) = std else {
            if !value.is_empty() {
                return None;
            }
            break;
        };
        layout = suffix;
        match std {
            Std::Year => {
                let field = value.get(..2)?;
                let year = atoi(field)?;
                value = &value[2..];
                p.year = if year >= 69 { year + 1900 } else { year + 2000 };
            }
            Std::LongYear => {
                if !value.as_bytes().first()?.is_ascii_digit() {
                    return None;
                }
                p.year = atoi(value.get(..4)?)?;
                value = &value[4..];
            }
            Std::Month | Std::LongMonth => {
                let names: &[&str] = if std == Std::Month {
                    &SHORT_MONTHS
                } else {
                    &LONG_MONTHS
                };
                let (i, rest) = lookup(names, value)?;
                p.month = i64::try_from(i).ok()? + 1;
                value = rest;
            }
            Std::NumMonth | Std::ZeroMonth => {
                let (month, rest) = getnum(value, std == Std::ZeroMonth)?;
                if !(1..=12).contains(&month) {
                    return None;
                }
                p.month = month;
                value = rest;
            }
            Std::WeekDay => value = lookup(&SHORT_DAYS, value)?.1,
            Std::LongWeekDay => value = lookup(&LONG_DAYS, value)?.1,
            Std::Day | Std::UnderDay | Std::ZeroDay => {
                if std == Std::UnderDay {
                    value = value.strip_prefix(' ').unwrap_or(value);
                }
                let (day, rest) = getnum(value, std == Std::ZeroDay)?;
                p.day = day;
                value = rest;
            }
            Std::Hour => {
                let (hour, rest) = getnum(value, false)?;
                if hour >= 24 {
                    return None;
                }
                p.hour = hour;
                value = rest;
            }
            Std::Hour12 | Std::ZeroHour12 => {
                let (hour, rest) = getnum(value, std == Std::ZeroHour12)?;
                if hour > 12 {
                    return None;
                }
                p.hour = hour;
                value = rest;
            }
            Std::Minute | Std::ZeroMinute => {
                let (minute, rest) = getnum(value, std == Std::ZeroMinute)?;
                if minute >= 60 {
                    return None;
                }
                p.minute = minute;
                value = rest;
            }
            Std::Second | Std::ZeroSecond => {
                let (second, rest) = getnum(value, std == Std::ZeroSecond)?;
                if second >= 60 {
                    return None;
                }
                p.second = second;
                value = rest;
                // A fraction the layout does not have is read anyway.
                let b = value.as_bytes();
                if b.len() >= 2
                    && matches!(b[0], b'.' | b',')
                    && b[1].is_ascii_digit()
                    && !matches!(next_std_chunk(layout).1, Some(Std::Frac { .. }))
                {
                    let n = 2 + b[2..].iter().take_while(|c| c.is_ascii_digit()).count();
                    p.nanos = nanoseconds(value, n)?;
                    value = &value[n..];
                }
            }
            Std::Pm | Std::LowerPm => {
                let field = value.get(..2)?;
                let (pm_text, am_text) = if std == Std::Pm {
                    ("PM", "AM")
                } else {
                    ("pm", "am")
                };
                if field == pm_text {
                    pm = true;
                } else if field == am_text {
                    am = true;
                } else {
                    return None;
                }
                value = &value[2..];
            }
            Std::Iso { .. } if value.starts_with('Z') => {
                p.utc = true;
                value = &value[1..];
            }
            Std::Iso {
                colon,
                short,
                seconds,
            }
            | Std::Num {
                colon,
                short,
                seconds,
            } => {
                let b = value.as_bytes();
                let (sign, hh, mm, ss, len) = match (colon, short, seconds) {
                    (true, _, false) => {
                        if b.len() < 6 || b[3] != b':' {
                            return None;
                        }
                        (b[0], value.get(1..3)?, value.get(4..6)?, "00", 6)
                    }
                    (_, true, _) => {
                        if b.len() < 3 {
                            return None;
                        }
                        (b[0], value.get(1..3)?, "00", "00", 3)
                    }
                    (true, _, true) => {
                        if b.len() < 9 || b[3] != b':' || b[6] != b':' {
                            return None;
                        }
                        (
                            b[0],
                            value.get(1..3)?,
                            value.get(4..6)?,
                            value.get(7..9)?,
                            9,
                        )
                    }
                    (false, _, true) => {
                        if b.len() < 7 {
                            return None;
                        }
                        (
                            b[0],
                            value.get(1..3)?,
                            value.get(3..5)?,
                            value.get(5..7)?,
                            7,
                        )
                    }
                    (false, _, false) => {
                        if b.len() < 5 {
                            return None;
                        }
                        (b[0], value.get(1..3)?, value.get(3..5)?, "00", 5)
                    }
                };
                let two = |s: &str| getnum(s, true).map(|(n, _)| n);
                let (h, m, s) = (two(hh)?, two(mm)?, two(ss)?);
                if h > 24 || m > 60 || s > 60 {
                    return None;
                }
                let offset = i32::try_from((h * 60 + m) * 60 + s).ok()?;
                p.offset = Some(match sign {
                    b'+' => offset,
                    b'-' => -offset,
                    _ => return None,
                });
                value = value.get(len..)?;
            }
            Std::Tz => {
                if let Some(rest) = value.strip_prefix("UTC") {
                    p.utc = true;
                    value = rest;
                } else {
                    let n = time_zone_len(value)?;
                    p.zone_name = Some(&value[..n]);
                    value = &value[n..];
                }
            }
            Std::Frac {
                exact: Some(digits),
            } => {
                let n = 1 + digits;
                if value.len() < n || !matches!(value.as_bytes()[0], b'.' | b',') {
                    return None;
                }
                p.nanos = nanoseconds(value, n)?;
                value = &value[n..];
            }
            Std::Frac { exact: None } => {
                let b = value.as_bytes();
                if b.len() >= 2 && matches!(b[0], b'.' | b',') && b[1].is_ascii_digit() {
                    let n = 1 + b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    p.nanos = nanoseconds(value, n)?;
                    value = &value[n..];
                }
            }
        }
    }
    if pm && p.hour < 12 {
        p.hour += 12;
    } else if am && p.hour == 12 {
        p.hour = 0;
    }
    if p.month < 0 {
        p.month = 1;
    }
    if p.day < 0 {
        p.day = 1;
    }
    if p.day < 1 || p.day > days_in_month(p.year, p.month) {
        return None;
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> Option<String> {
        parse_date(text).and_then(|d| d.utc().to_rfc3339())
    }

    #[test]
    fn rss_and_atom_dates() {
        assert_eq!(
            utc("Tue, 10 Jun 2003 04:00:00 GMT").as_deref(),
            Some("2003-06-10T04:00:00Z")
        );
        assert_eq!(
            utc("Tue, 10 Jun 2003 04:00:00 +0200").as_deref(),
            Some("2003-06-10T02:00:00Z")
        );
        assert_eq!(
            utc("2024-02-29T23:30:00-01:00").as_deref(),
            Some("2024-03-01T00:30:00Z")
        );
        assert_eq!(
            utc("2003-12-13T18:30:02.25Z").as_deref(),
            Some("2003-12-13T18:30:02.25Z")
        );
        assert_eq!(
            utc("  Mon, 2 Jan 2006 15:04:05 -0700 ").as_deref(),
            Some("2006-01-02T22:04:05Z")
        );
        // An abbreviation Go cannot resolve counts as UTC, as in gofeed on a UTC host.
        assert_eq!(
            utc("Sat, 07 Sep 2002 00:00:01 PST").as_deref(),
            Some("2002-09-07T00:00:01Z")
        );
        assert_eq!(utc("2006-01-02").as_deref(), Some("2006-01-02T00:00:00Z"));
        assert_eq!(
            utc("January 2, 2006 3:04 PM").as_deref(),
            Some("2006-01-02T15:04:00Z")
        );
        assert_eq!(
            utc("Mon Jan  2 15:04:05 2006").as_deref(),
            Some("2006-01-02T15:04:05Z")
        );
    }

    #[test]
    fn named_zone_layouts_load_the_zone() {
        assert_eq!(
            utc("Mon, Jan 2, 2006 15:04 EST").as_deref(),
            Some("2006-01-02T20:04:00Z")
        );
        assert_eq!(
            utc("Mon, Jan 2, 2006 15:04 XYZ").as_deref(),
            Some("2006-01-02T15:04:00Z")
        );
    }

    #[test]
    fn offsets_are_kept_unless_utc_is_asked() {
        let date = parse_date("2006-01-02T15:04:05+05:30").and_then(|d| d.to_rfc3339());
        assert_eq!(date.as_deref(), Some("2006-01-02T15:04:05+05:30"));
    }

    #[test]
    fn what_go_refuses() {
        for bad in [
            "",
            "yesterday",
            "Mon, 31 Feb 2006 10:00:00 GMT",
            "2006-13-02",
            "2006-01-02T25:00:00Z",
            "Tue, 10 Jun 2003 04:00:00 GMT trailing",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-719_468, -1, 0, 1, 11_016, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}

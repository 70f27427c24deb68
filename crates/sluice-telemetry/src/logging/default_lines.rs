//! The default log lines (no `telemetry/logging`): `tracing-subscriber`'s full format, except
//! that the access line, written once per request, is laid out here directly, byte for byte as
//! that format writes it: the timestamp from a prefix kept per second, the level and message as
//! constants, field names as they are, integers and plain strings without `fmt`'s machinery.
//! The full format spent ~13,600 instructions on each access line (its timestamp alone went
//! through seven padded integer formats, each field through ANSI style objects even with
//! colours off).

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime as FmtSystemTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::ACCESS_TARGET;

/// The default format, with the access line's fast path. Colours (a terminal) and events inside
/// spans take the full format's own path.
#[derive(Debug)]
pub struct DefaultLines {
    full: Format<Full, FmtSystemTime>,
}

impl DefaultLines {
    /// Lines as `tracing_subscriber::fmt().with_target(false)` writes them.
    pub fn new() -> Self {
        DefaultLines {
            full: tracing_subscriber::fmt::format().with_target(false),
        }
    }
}

impl Default for DefaultLines {
    fn default() -> Self {
        Self::new()
    }
}

impl<S, N> FormatEvent<S, N> for DefaultLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().target() == ACCESS_TARGET
            && !writer.has_ansi_escapes()
            && ctx.event_scope().is_none()
        {
            return access_line(&mut writer, event, SystemTime::now());
        }
        self.full.format_event(ctx, writer, event)
    }
}

/// The line the full format writes for `event` at `now` (plain text, no span, no target).
fn access_line(writer: &mut impl fmt::Write, event: &Event<'_>, now: SystemTime) -> fmt::Result {
    timestamp(writer, now)?;
    writer.write_str(match *event.metadata().level() {
        tracing::Level::TRACE => "TRACE ",
        tracing::Level::DEBUG => "DEBUG ",
        tracing::Level::INFO => " INFO ",
        tracing::Level::WARN => " WARN ",
        tracing::Level::ERROR => "ERROR ",
    })?;
    let mut fields = Fields {
        writer,
        first: true,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result?;
    writer.write_char('\n')
}

/// `2026-12-01T11:23:57.197910Z ` (as tracing-subscriber's `SystemTime` timer, then a space).
fn timestamp(writer: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    thread_local! {
        /// The second last written, and its text up to the `.`.
        static PREFIX: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    PREFIX.with_borrow_mut(|(second, prefix)| {
        if *second != secs {
            prefix.clear();
            let (y, m, d, hh, mm, ss) = super::utc(secs);
            let _ = write!(prefix, "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.");
            *second = secs;
        }
        writer.write_str(prefix)
    })?;
    decimal(writer, u64::from(since.subsec_micros()), 6)?;
    writer.write_str("Z ")
}

/// `n` in decimal, zero-padded to at least `width` digits, without `fmt`'s machinery.
fn decimal(writer: &mut impl fmt::Write, mut n: u64, width: usize) -> fmt::Result {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let at = at.min(digits.len().saturating_sub(width));
    // ASCII digits only.
    writer.write_str(std::str::from_utf8(&digits[at..]).unwrap_or("0"))
}

/// The fields as the full format's visitor writes them: the message first and bare, then
/// `name=value` separated by spaces, values as their `Debug`.
struct Fields<'w, W> {
    writer: &'w mut W,
    first: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> Fields<'_, W> {
    fn name(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(' ')?;
        }
        if field.name() != "message" {
            self.writer.write_str(field.name())?;
            self.writer.write_char('=')?;
        }
        Ok(())
    }
}

impl<W: fmt::Write> Visit for Fields<'_, W> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_ok() {
            self.result = self
                .name(field)
                .and_then(|()| decimal(self.writer, value, 1));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_ok() {
            self.result = self.name(field).and_then(|()| {
                if field.name() == "message" {
                    self.writer.write_str(value)
                } else if value
                    .bytes()
                    .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
                {
                    // What `Debug` writes for a string that needs no escape.
                    self.writer.write_char('"')?;
                    self.writer.write_str(value)?;
                    self.writer.write_char('"')
                } else {
                    write!(self.writer, "{value:?}")
                }
            });
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            self.result = self
                .name(field)
                .and_then(|()| write!(self.writer, "{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
                .unwrap_or_default()
        }
    }

    /// The access event as the server writes it (same fields, same kinds of values).
    fn access_event(request_id: &str) {
        let method = http::Method::GET;
        let uri: http::Uri = "/json?x=1&y=%20".parse().unwrap_or_default();
        let peer: std::net::SocketAddr = "127.0.0.1:42706"
            .parse()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        tracing::info!(
            target: "sluice::access",
            status = 200u16,
            method = %method,
            path = %uri,
            peer = %peer,
            elapsed = ?Duration::from_micros(81_144),
            request_id = request_id,
            "request"
        );
    }

    /// The line each format writes for the same event, timestamps cut off.
    fn both(emit: impl Fn()) -> (String, String) {
        let full = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_target(false)
            .with_ansi(false)
            .with_writer(full.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, &emit);
        let fast = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(fast.clone())
            .event_format(DefaultLines::new())
            .finish();
        tracing::subscriber::with_default(subscriber, &emit);
        let cut = |s: String| s.get(27..).unwrap_or_default().to_owned();
        (cut(full.text()), cut(fast.text()))
    }

    #[test]
    fn the_access_line_is_the_full_formats_byte_for_byte() {
        for id in [
            "bb3d28f9-df7a-4c7d-b8ab-d43582373139",
            "req-42",
            r#"a"quoted\one"#,
            "tab\there",
        ] {
            let (full, fast) = both(|| access_event(id));
            assert!(
                full.starts_with("  INFO request status=200 method=GET"),
                "{full}"
            );
            assert_eq!(fast, full, "request id {id:?}");
        }
        // Other events are the full format's own.
        let (full, fast) = both(|| tracing::warn!(code = 3, "something {}", "else"));
        assert_eq!(fast, full);
    }

    #[test]
    fn the_timestamp_is_the_full_formats() {
        for (secs, micros, text) in [
            (0, 0, "1970-01-01T00:00:00.000000Z "),
            (951_782_400, 7, "2000-02-29T00:00:00.000007Z "),
            (1_764_590_637, 197_910, "2025-12-01T12:03:57.197910Z "),
            (4_102_444_799, 999_999, "2099-12-31T23:59:59.999999Z "),
        ] {
            let at = UNIX_EPOCH + Duration::new(secs, micros * 1000);
            let mut out = String::new();
            timestamp(&mut out, at).unwrap_or_default();
            // Twice: the second comes from the kept prefix.
            timestamp(&mut out, at).unwrap_or_default();
            assert_eq!(out, format!("{text}{text}"));
        }
    }
}

//! The application log as krakend-gologging writes it (`telemetry/logging`): a level, a
//! prefix, stdout and/or the local syslog, and the `default`, `logstash` or `custom` line
//! formats. The access log (target `sluice::access`) goes to stdout only, never to syslog,
//! as KrakenD's. Times are written in UTC.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// The target of the access log lines.
pub const ACCESS_TARGET: &str = "sluice::access";

mod default_lines;
pub use default_lines::DefaultLines;

/// `telemetry/logging`, config-free.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// The least severe level written.
    pub level: Level,
    /// `CRITICAL` was asked for: only errors are written, labelled `CRITICAL`.
    pub critical: bool,
    /// Written before each line (`module` in the logstash format).
    pub prefix: String,
    /// Lines go to stdout.
    pub stdout: bool,
    /// Lines go to the local syslog (`/dev/log`) with this facility (16-23 = local0-7).
    pub syslog: Option<u8>,
    /// The line format.
    pub format: LineFormat,
}

/// How a line looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineFormat {
    /// `<prefix> 2006/01/02 - 15:04:05.000 ▶ LEVEL message`.
    Default,
    /// `{"@timestamp": ..., "@version": 1, "level": ..., "message": ..., "module": ...}`.
    Logstash,
    /// A go-logging pattern: `%{time[:layout]}`, `%{level[:.Ns]}`, `%{message}`, `%{module}`,
    /// `%{pid}`, `%{program}`, `%{id}`.
    Custom(String),
}

/// A [`Layer`] writing every event it is given as one line.
#[derive(Debug)]
pub struct LogLayer {
    settings: LogSettings,
    syslog: Option<Mutex<std::os::unix::net::UnixDatagram>>,
    sequence: AtomicU64,
    program: String,
}

impl LogLayer {
    /// The layer; connects to the local syslog when asked.
    ///
    /// # Errors
    /// When syslog is asked for and `/dev/log` cannot be reached.
    pub fn new(settings: LogSettings) -> Result<Self, String> {
        let syslog = match settings.syslog {
            None => None,
            Some(_) => {
                let socket = std::os::unix::net::UnixDatagram::unbound()
                    .and_then(|s| s.connect("/dev/log").map(|()| s))
                    .map_err(|e| {
                        format!("telemetry/logging: syslog: cannot reach the local syslog at /dev/log: {e}")
                    })?;
                Some(Mutex::new(socket))
            }
        };
        let program = std::env::args()
            .next()
            .and_then(|a| {
                std::path::Path::new(&a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "sluice".to_owned());
        Ok(Self {
            settings,
            syslog,
            sequence: AtomicU64::new(0),
            program,
        })
    }

    /// Whether `level` is written.
    fn enabled(&self, level: Level) -> bool {
        if self.settings.critical {
            return level == Level::ERROR;
        }
        level <= self.settings.level
    }

    fn level_name(&self, level: Level) -> &'static str {
        match level {
            Level::ERROR if self.settings.critical => "CRITICAL",
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO => "INFO",
            Level::DEBUG | Level::TRACE => "DEBUG",
        }
    }

    /// The module name (`[KRAKEND]` gives `KRAKEND`).
    fn module(&self) -> &str {
        let p = self.settings.prefix.trim();
        p.strip_prefix('[')
            .and_then(|p| p.strip_suffix(']'))
            .unwrap_or(p)
    }

    /// One line, without its newline.
    pub fn format(&self, level: Level, message: &str, now: SystemTime) -> String {
        let level_name = self.level_name(level);
        let id = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.settings.format {
            LineFormat::Default => {
                let mut line = String::new();
                if !self.settings.prefix.is_empty() {
                    line.push_str(&self.settings.prefix);
                    line.push(' ');
                }
                write_go_time(&mut line, now, "2006/01/02 - 15:04:05.000");
                line.push_str(" ▶ ");
                line.extend(level_name.chars().take(6));
                line.push(' ');
                line.push_str(message);
                line
            }
            LineFormat::Logstash => {
                let mut line = String::from("{\"@timestamp\":");
                json_string(&go_time(now, "2006-01-02T15:04:05.000-07:00"), &mut line);
                line.push_str(",\"@version\":1,\"level\":");
                json_string(level_name, &mut line);
                line.push_str(",\"message\":");
                json_string(message, &mut line);
                line.push_str(",\"module\":");
                json_string(self.module(), &mut line);
                line.push('}');
                line
            }
            LineFormat::Custom(pattern) => {
                let mut line = String::new();
                let mut rest = pattern.as_str();
                while let Some(start) = rest.find("%{") {
                    line.push_str(&rest[..start]);
                    let after = &rest[start + 2..];
                    let Some(end) = after.find('}') else {
                        line.push_str(&rest[start..]);
                        rest = "";
                        break;
                    };
                    let verb = &after[..end];
                    let (name, arg) = verb.split_once(':').unwrap_or((verb, ""));
                    match name {
                        "time" => {
                            let layout = if arg.is_empty() {
                                "2006-01-02T15:04:05.999Z07:00"
                            } else {
                                arg
                            };
                            write_go_time(&mut line, now, layout);
                        }
                        "level" => {
                            let width = arg
                                .strip_prefix('.')
                                .and_then(|a| a.strip_suffix('s'))
                                .and_then(|n| n.parse::<usize>().ok());
                            match width {
                                Some(n) => line.extend(level_name.chars().take(n)),
                                None => line.push_str(level_name),
                            }
                        }
                        "message" => line.push_str(message),
                        "module" => line.push_str(self.module()),
                        "pid" => {
                            let _ = write!(line, "{}", std::process::id());
                        }
                        "program" => line.push_str(&self.program),
                        "id" => {
                            let _ = write!(line, "{id:03}");
                        }
                        _ => {
                            line.push_str("%{");
                            line.push_str(verb);
                            line.push('}');
                        }
                    }
                    rest = &after[end + 1..];
                }
                line.push_str(rest);
                line
            }
        }
    }

    fn syslog_line(&self, level: Level, message: &str, now: SystemTime) -> Option<Vec<u8>> {
        let facility = u16::from(self.settings.syslog?);
        let severity: u16 = match level {
            Level::ERROR if self.settings.critical => 2,
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        let tag = if self.module().is_empty() {
            self.program.as_str()
        } else {
            self.module()
        };
        Some(
            format!(
                "<{}>{} {tag}[{}]: {}",
                facility * 8 + severity,
                go_time(now, "Jan _2 15:04:05"),
                std::process::id(),
                self.format(level, message, now)
            )
            .into_bytes(),
        )
    }
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if !self.enabled(level) {
            return;
        }
        let mut message = Message::default();
        event.record(&mut message);
        let now = SystemTime::now();
        let access = event.metadata().target() == ACCESS_TARGET;
        if self.settings.stdout || access {
            let mut line = self.format(level, &message.text, now);
            line.push('\n');
            crate::stdout::write_line(line.as_bytes());
        }
        if !access
            && let Some(socket) = &self.syslog
            && let Some(bytes) = self.syslog_line(level, &message.text, now)
        {
            let socket = socket.lock().unwrap_or_else(|p| p.into_inner());
            let _ = socket.send(&bytes);
        }
    }
}

/// The message and then ` key=value` for every other field.
#[derive(Default)]
struct Message {
    text: String,
    fields: String,
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.insert_str(0, value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
            self.flush();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let text = format!("{value:?}");
            self.text.insert_str(0, &text);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
            self.flush();
        }
    }
}

impl Message {
    fn flush(&mut self) {
        self.text.push_str(&self.fields);
        self.fields.clear();
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `now` in UTC, laid out as Go's `time.Format` does for the usual layout elements (`2006`,
/// `01`, `Jan`, `02`, `_2`, `15`, `04`, `05`, `.000`/`.999`, `Z07:00`, `-07:00`, `-0700`,
/// `MST`).
pub fn go_time(now: SystemTime, layout: &str) -> String {
    let mut out = String::with_capacity(layout.len() + 8);
    write_go_time(&mut out, now, layout);
    out
}

/// [`go_time`] appended to `out`, each layout element written as it is met (a line's time is
/// written once per log line: nothing is formatted that the layout does not use).
fn write_go_time(out: &mut String, now: SystemTime, layout: &str) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // Longest first where one is a prefix of another's text (`2006` before `06`).
    const TOKENS: [&str; 15] = [
        "2006", "Z07:00", "-07:00", "-0700", "MST", ".000", ".999", "Jan", "01", "02", "_2", "15",
        "04", "05", "06",
    ];
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, m, d, hh, mm, ss) = utc(since.as_secs());
    let millis = since.subsec_millis();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (i, token) in TOKENS.iter().enumerate() {
            let Some(after) = rest.strip_prefix(token) else {
                continue;
            };
            let _ = match i {
                0 => write!(out, "{y:04}"),
                1 => out.write_str("Z"),
                2 => out.write_str("+00:00"),
                3 => out.write_str("+0000"),
                4 => out.write_str("UTC"),
                5 => write!(out, ".{millis:03}"),
                6 => {
                    // Trailing zeros dropped, and the dot with them when nothing is left.
                    let (mut digits, mut n) = (3, millis);
                    while digits > 0 && n % 10 == 0 {
                        n /= 10;
                        digits -= 1;
                    }
                    if digits == 0 {
                        Ok(())
                    } else {
                        write!(out, ".{n:0digits$}")
                    }
                }
                7 => out.write_str(MONTHS[(m - 1) as usize]),
                8 => write!(out, "{m:02}"),
                9 => write!(out, "{d:02}"),
                10 => write!(out, "{d:>2}"),
                11 => write!(out, "{hh:02}"),
                12 => write!(out, "{mm:02}"),
                13 => write!(out, "{ss:02}"),
                _ => write!(out, "{:02}", y % 100),
            };
            rest = after;
            continue 'outer;
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
}

/// Seconds since the epoch as UTC (year, month, day, hour, minute, second).
fn utc(secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    let (y, m, d) = civil((secs / 86_400) as i64);
    let rem = secs % 86_400;
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at() -> SystemTime {
        // 2022-06-15 15:37:02.619 UTC
        UNIX_EPOCH + Duration::from_millis(1_655_307_422_619)
    }

    fn layer(format: LineFormat) -> LogLayer {
        LogLayer::new(LogSettings {
            level: Level::INFO,
            critical: false,
            prefix: "[KRAKEND]".into(),
            stdout: true,
            syslog: None,
            format,
        })
        .expect("layer")
    }

    #[test]
    fn formats() {
        assert_eq!(
            layer(LineFormat::Default).format(Level::WARN, "hello", at()),
            "[KRAKEND] 2022/06/15 - 15:37:02.619 ▶ WARNIN hello"
        );
        assert_eq!(
            layer(LineFormat::Logstash).format(Level::INFO, "say \"hi\"", at()),
            r#"{"@timestamp":"2022-06-15T15:37:02.619+00:00","@version":1,"level":"INFO","message":"say \"hi\"","module":"KRAKEND"}"#
        );
        assert_eq!(
            layer(LineFormat::Custom(
                "%{time:2006-01-02 15:04:05} %{level:.4s} [%{module}] %{message} #%{id}".into()
            ))
            .format(Level::ERROR, "boom", at()),
            "2022-06-15 15:37:02 ERRO [KRAKEND] boom #001"
        );
        assert_eq!(go_time(at(), "Jan _2 15:04:05"), "Jun 15 15:37:02");
    }

    #[test]
    fn every_layout_element() {
        assert_eq!(
            go_time(
                at(),
                "2006 06 01 Jan 02 _2 15:04:05.000 Z07:00 -07:00 -0700 MST x"
            ),
            "2022 22 06 Jun 15 15 15:37:02.619 Z +00:00 +0000 UTC x"
        );
        // `.999`: trailing zeros dropped, the dot too when nothing is left.
        let second = UNIX_EPOCH + Duration::from_secs(1_655_307_422);
        for (millis, text) in [
            (619, "02.619"),
            (120, "02.12"),
            (50, "02.05"),
            (5, "02.005"),
        ] {
            let at = second + Duration::from_millis(millis);
            assert_eq!(go_time(at, "05.999"), text);
        }
        assert_eq!(go_time(second, "05.999"), "02");
        // A day of one digit, padded by `_2`; a month and day of one digit by `01` and `02`.
        let march = UNIX_EPOCH + Duration::from_secs(1_709_596_800); // 2024-03-05 00:00:00
        assert_eq!(go_time(march, "Jan _2|01/02"), "Mar  5|03/05");
    }
}

//! Prometheus' text exposition format, as OpenTelemetry's Go Prometheus exporter writes
//! krakend-otel's metrics: dots to underscores, `_total` on counters, unit suffixes, the
//! `otel_scope_name` label and a `target_info` series for the resource.

use std::fmt::Write as _;

use crate::metrics::{Group, Kind};

/// What every exposition carries besides the metrics.
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    /// `target_info` labels (resource attributes).
    pub(crate) target_info: Vec<(String, String)>,
    /// The instrumentation scope, as `otel_scope_name`.
    pub(crate) scope: String,
}

/// Writes collected families (counters get `_total`).
pub(crate) fn write_families(out: &mut String, families: &[crate::Family]) {
    for f in families {
        if f.samples.is_empty() {
            continue;
        }
        let mut name = prom_name(&f.name);
        let kind = if f.counter {
            name.push_str("_total");
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(out, "# HELP {name} {}", f.help);
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in &f.samples {
            let mut sorted: Vec<(String, &str)> = labels
                .iter()
                .map(|(k, v)| (prom_name(k), v.as_str()))
                .collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            out.push_str(&name);
            out.push('{');
            for (i, (k, v)) in sorted.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape(v, out);
                out.push('"');
            }
            let _ = writeln!(out, "}} {}", go_float(*value));
        }
    }
}

/// A Prometheus metric or label name: anything outside `[a-zA-Z0-9_:]` becomes `_`.
pub fn prom_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    }
    out
}

/// A label value, escaped.
fn escape(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A float as Go's `strconv.FormatFloat(f, 'g', -1, 64)` writes it (Prometheus' client does).
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return "0".into();
    }
    // Shortest digits; the exponent form when the decimal exponent is below -4 or 6 and up.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        return format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    }
    format!("{f}")
}

fn labels_text(labels: &[(String, String)], scope: &str, extra: Option<(&str, &str)>) -> String {
    let mut all: Vec<(String, &str)> = labels
        .iter()
        .map(|(k, v)| (prom_name(k), v.as_str()))
        .collect();
    all.push(("otel_scope_name".into(), scope));
    all.push(("otel_scope_version".into(), ""));
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all.dedup_by(|b, a| a.0 == b.0);
    let mut out = String::from("{");
    for (i, (k, v)) in all.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape(v, &mut out);
        out.push('"');
    }
    if let Some((k, v)) = extra {
        out.push(',');
        out.push_str(k);
        out.push_str("=\"");
        escape(v, &mut out);
        out.push('"');
    }
    out.push('}');
    out
}

/// The exported name of a metric of a group.
pub(crate) fn exported_name(name: &str, kind: Kind, unit: &str) -> String {
    let mut n = prom_name(name);
    let unit = match kind {
        Kind::SecondsCounter(_) => "seconds",
        _ => unit,
    };
    if !unit.is_empty() && !n.ends_with(unit) {
        n.push('_');
        n.push_str(unit);
    }
    if matches!(kind, Kind::Counter(_) | Kind::SecondsCounter(_)) {
        n.push_str("_total");
    }
    n
}

/// Writes `groups` (skipping metrics with no series yet) and `target_info`.
pub(crate) fn write(out: &mut String, resource: &Resource, groups: &[std::sync::Arc<Group>]) {
    out.push_str("# HELP target_info Target metadata\n# TYPE target_info gauge\ntarget_info{");
    for (i, (k, v)) in resource.target_info.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&prom_name(k));
        out.push_str("=\"");
        escape(v, out);
        out.push('"');
    }
    out.push_str("} 1\n");
    for group in groups {
        let series = group.all();
        if series.is_empty() {
            continue;
        }
        let rendered: Vec<String> = series
            .iter()
            .map(|(labels, _)| labels_text(labels, &resource.scope, None))
            .collect();
        for def in &group.defs {
            let name = exported_name(&def.name, def.kind, def.unit);
            let kind = match def.kind {
                Kind::Histogram(_) => "histogram",
                _ => "counter",
            };
            let _ = writeln!(out, "# HELP {name} {}", def.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for ((labels, cells), text) in series.iter().zip(&rendered) {
                match def.kind {
                    Kind::Counter(i) => {
                        let v = cells.counters[i].load(std::sync::atomic::Ordering::Relaxed);
                        let _ = writeln!(out, "{name}{text} {v}");
                    }
                    Kind::SecondsCounter(i) => {
                        let v = cells.counters[i].load(std::sync::atomic::Ordering::Relaxed);
                        let _ = writeln!(out, "{name}{text} {}", go_float(v as f64 / 1e9));
                    }
                    Kind::Histogram(i) => {
                        let h = &cells.histograms[i];
                        let (counts, count, sum) = h.snapshot();
                        let mut cumulative = 0;
                        for (j, c) in counts.iter().enumerate() {
                            cumulative += c;
                            let le = h
                                .scale
                                .bounds
                                .get(j)
                                .map_or_else(|| "+Inf".to_owned(), |b| go_float(*b));
                            let bucket = labels_text(labels, &resource.scope, Some(("le", &le)));
                            let _ = writeln!(out, "{name}_bucket{bucket} {cumulative}");
                        }
                        let _ = writeln!(out, "{name}_sum{text} {}", go_float(sum));
                        let _ = writeln!(out, "{name}_count{text} {count}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_go_writes_them() {
        assert_eq!(go_float(0.01), "0.01");
        assert_eq!(go_float(128.0), "128");
        assert_eq!(go_float(262144.0), "262144");
        assert_eq!(go_float(1048576.0), "1.048576e+06");
        assert_eq!(go_float(67108864.0), "6.7108864e+07");
        assert_eq!(go_float(10.0), "10");
        assert_eq!(go_float(3.5), "3.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(100000.0), "100000");
        assert_eq!(go_float(1000000.0), "1e+06");
    }

    #[test]
    fn names() {
        assert_eq!(
            exported_name(
                "http.client.response.no-content-length",
                Kind::Counter(0),
                ""
            ),
            "http_client_response_no_content_length_total"
        );
        assert_eq!(
            exported_name(
                "http.client.response.read.time",
                Kind::SecondsCounter(0),
                ""
            ),
            "http_client_response_read_time_seconds_total"
        );
        assert_eq!(
            exported_name("http.server.duration", Kind::Histogram(0), ""),
            "http_server_duration"
        );
    }
}

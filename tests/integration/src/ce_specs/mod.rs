//! Running KrakenD CE's integration specs (`tests/fixtures/specs/*.json` of a krakend-ce
//! checkout) against a Sluice binary: the pieces the `krakend-ce-specs` binary puts together.
//! Nothing here copies CE's harness; it reads the same files and judges answers by the same
//! rules (see [`check`]).

pub mod check;
pub mod classify;
pub mod client;
pub mod schema;
pub mod spec;
pub mod url;

use std::time::Duration;

use serde_json::Value;

use check::Verdict;
use spec::Case;

/// What became of one spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every case matched.
    Pass,
    /// What differed (each line names the case when it is a `next` one).
    Fail(Vec<String>),
    /// Not run, or not judged, and why.
    Skip(String),
}

/// The case and its `next` cases, depth first, with a label for each (`""`, `next[0]`, ...).
fn flatten<'a>(case: &'a Case, label: &str, out: &mut Vec<(String, &'a Case)>) {
    out.push((label.to_owned(), case));
    for (i, next) in case.next.iter().enumerate() {
        let l = if label.is_empty() {
            format!("next[{i}]")
        } else {
            format!("{label}.next[{i}]")
        };
        flatten(next, &l, out);
    }
}

/// Why the spec cannot judge the proxy layer: the first of its cases (its own, then its `next`
/// ones) that calls something else in `config` (CE's unchanged fixture).
pub fn skip_reason(case: &Case, config: &Value) -> Option<String> {
    let mut cases = Vec::new();
    flatten(case, "", &mut cases);
    cases.iter().find_map(|(label, c)| {
        classify::skip_reason(config, &c.input).map(|reason| prefixed(label, &reason))
    })
}

/// Runs one spec (already [`check::normalise`]d) against the gateway: skipped per
/// [`skip_reason`] with `config`, else every case in order, each request bounded by `timeout`.
pub async fn run(case: &Case, config: &Value, timeout: Duration) -> Outcome {
    if let Some(reason) = skip_reason(case, config) {
        return Outcome::Skip(reason);
    }
    let mut cases = Vec::new();
    flatten(case, "", &mut cases);
    let mut diffs = Vec::new();
    for (label, c) in &cases {
        match client::send(&c.input, timeout).await {
            // CE's harness accepts a failed request when the spec expects an error; the text
            // is Go's, so only the failure is checked.
            Err(_) if c.error.is_some() => {}
            Err(e) => diffs.push(prefixed(label, &format!("request failed: {e}"))),
            Ok(answer) => match check::compare(&c.output, &answer) {
                Verdict::Pass => {}
                Verdict::Fail(d) => diffs.extend(d.iter().map(|l| prefixed(label, l))),
                Verdict::Unsupported(why) => return Outcome::Skip(prefixed(label, &why)),
            },
        }
    }
    if diffs.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail(diffs)
    }
}

fn prefixed(label: &str, line: &str) -> String {
    if label.is_empty() {
        line.to_owned()
    } else {
        format!("{label}: {line}")
    }
}

//! The config file formats KrakenD reads, each turned into the same JSON tree the reader walks, so
//! every semantic problem keeps its JSON path whatever the format.
//!
//! As KrakenD (its koanf parser) does, the format is chosen by the file name: `.yaml` and `.yml`
//! are YAML, `.toml` is TOML, anything else is read as JSON (`.json`, and the `.tmpl` of flexible
//! configuration templates). The formats older KrakenD versions also read through viper (`.hcl`,
//! `.properties`, `.props`, `.prop`) are refused by name rather than misread as JSON.

mod toml_text;
mod yaml;

use std::path::Path;

use serde_json::{Number, Value};

use crate::diagnostics::{Diagnostic, Position};

/// A config file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON: `.json`, and any extension not listed for another format.
    Json,
    /// YAML 1.2: `.yaml`, `.yml`.
    Yaml,
    /// TOML 1.0: `.toml`.
    Toml,
}

impl Format {
    /// The format of the file at `path`, by its extension, as KrakenD chooses it (the comparison
    /// is exact, as Go's: `.YAML` is read as JSON). An extension of a format Sluice does not read
    /// is an error message.
    pub fn of(path: &Path) -> Result<Format, String> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Ok(Format::Yaml),
            Some("toml") => Ok(Format::Toml),
            Some(ext @ ("hcl" | "properties" | "props" | "prop")) => Err(format!(
                "a .{ext} config is not supported: Sluice reads JSON, YAML (.yaml, .yml) and \
                 TOML (.toml), as KrakenD v2.6 and later do; convert the file to one of them"
            )),
            _ => Ok(Format::Json),
        }
    }

    /// The format's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Yaml => "YAML",
            Format::Toml => "TOML",
        }
    }
}

/// Parses `text` in `format` into a JSON tree. A syntax error is one diagnostic at its line and
/// column in `source`.
pub(crate) fn parse(text: &str, format: Format, source: &Path) -> Result<Value, Diagnostic> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::Json => serde_json::from_str(text).map_err(|e| json_error(source, &e)),
        Format::Yaml => yaml::parse(text).map_err(|e| e.into_diagnostic(source)),
        Format::Toml => toml_text::parse(text).map_err(|e| e.into_diagnostic(source)),
    }
}

/// A syntax error at a place in the text.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) position: Position,
    pub(crate) message: String,
}

impl SyntaxError {
    fn into_diagnostic(self, source: &Path) -> Diagnostic {
        Diagnostic::at_position(source, self.position, self.message)
    }
}

/// A malformed-JSON diagnostic: serde's message without its " at line L column C" tail, which the
/// position carries. A file whose name does not end in `.json` says why it was read as JSON.
fn json_error(source: &Path, e: &serde_json::Error) -> Diagnostic {
    let text = e.to_string();
    let tail = format!(" at line {} column {}", e.line(), e.column());
    let what = text.strip_suffix(&tail).unwrap_or(&text);
    let what = match what.strip_prefix("EOF while") {
        Some(rest) => format!("unexpected end of file while{rest}"),
        None => what.to_owned(),
    };
    let hint = if source.extension().is_some_and(|e| e == "json") {
        ""
    } else {
        " (read as JSON: only a file name ending in .yaml, .yml or .toml is read otherwise)"
    };
    Diagnostic::at_position(
        source,
        Position {
            line: e.line().max(1),
            // serde counts a position just after a newline (the end of a file) as column 0.
            column: e.column().max(1),
        },
        format!("malformed JSON: {what}{hint}"),
    )
}

/// A JSON number with the text `text` when that is valid JSON number text, so `1.10` and
/// `9007199254740993` stay digit for digit (serde_json's arbitrary_precision keeps the text; it
/// only spells an exponent `e+3`).
pub(crate) fn number_from_text(text: &str) -> Option<Number> {
    if text.is_empty() || text.contains(|c: char| c.is_whitespace()) {
        return None;
    }
    serde_json::from_str::<Number>(text).ok()
}

/// The line and column (both from 1, the column in characters) of byte `offset` of `text`.
pub(crate) fn position_of(text: &str, offset: usize) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension_as_krakend() {
        assert_eq!(Format::of(Path::new("a/krakend.json")), Ok(Format::Json));
        assert_eq!(Format::of(Path::new("krakend.yaml")), Ok(Format::Yaml));
        assert_eq!(Format::of(Path::new("krakend.yml")), Ok(Format::Yaml));
        assert_eq!(Format::of(Path::new("krakend.toml")), Ok(Format::Toml));
        assert_eq!(Format::of(Path::new("krakend.tmpl")), Ok(Format::Json));
        assert_eq!(Format::of(Path::new("krakend")), Ok(Format::Json));
        assert_eq!(Format::of(Path::new("krakend.YAML")), Ok(Format::Json));
        let hcl = Format::of(Path::new("krakend.hcl")).unwrap_err();
        assert!(hcl.contains(".hcl config is not supported"), "{hcl}");
    }

    #[test]
    fn numbers_keep_their_text() {
        assert_eq!(number_from_text("1.10").unwrap().to_string(), "1.10");
        assert_eq!(
            number_from_text("9007199254740993").unwrap().to_string(),
            "9007199254740993"
        );
        assert_eq!(number_from_text("1e3").unwrap().to_string(), "1e+3");
        assert!(number_from_text("+1").is_none());
        assert!(number_from_text(" 1").is_none());
        assert!(number_from_text("01").is_none());
        assert!(number_from_text(".5").is_none());
    }

    #[test]
    fn positions_count_characters() {
        let text = "ab\ncé\nx";
        assert_eq!(position_of(text, 0), Position { line: 1, column: 1 });
        assert_eq!(position_of(text, 3), Position { line: 2, column: 1 });
        assert_eq!(position_of(text, 6), Position { line: 2, column: 3 });
        assert_eq!(position_of(text, 99), Position { line: 3, column: 2 });
    }

    #[test]
    fn json_read_for_an_unknown_extension_says_so() {
        let e = parse("{", Format::Json, Path::new("k.tmpl")).unwrap_err();
        assert!(e.message.contains("read as JSON"), "{e}");
        let e = parse("{", Format::Json, Path::new("k.json")).unwrap_err();
        assert!(!e.message.contains("read as JSON"), "{e}");
    }
}

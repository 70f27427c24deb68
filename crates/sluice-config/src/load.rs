//! From a file to a [`Config`]: read it (bounded), render it when the flexible configuration is
//! on, parse it in its format, apply the environment overrides, then read the tree.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::env;
use crate::flexible;
use crate::formats::{self, Format};
use crate::model::{Config, LoadOptions};
use crate::parse::from_value_with;

/// The largest config file (or template, settings file, partial) read.
pub(crate) const MAX_FILE_BYTES: u64 = 32 << 20;

pub(crate) fn load(path: &Path, options: &LoadOptions) -> Result<Config, Diagnostics> {
    let text = read_text(path)?;
    let Some(fc) = flexible::Settings::from_env(&options.environment) else {
        let format = Format::of(path).map_err(|m| Diagnostic::new(path, "", m))?;
        let value = formats::parse(&text, format, path)?;
        return finish(value, path, options);
    };
    let rendered = flexible::render(path, &text, &fc, &options.environment)?;
    // As KrakenD, the rendered text is read in the format of FC_OUT when it is set (the file
    // KrakenD parses); otherwise in the format of the template's own name.
    let (format_of, syntax_file) = match &fc.out {
        Some(out) => {
            write_out(out, &rendered)?;
            (out.as_path(), out.as_path())
        }
        None => (path, path),
    };
    let format = Format::of(format_of).map_err(|m| Diagnostic::new(format_of, "", m))?;
    let value = formats::parse(&rendered, format, syntax_file).map_err(|mut e| {
        if fc.out.is_none() {
            e.message.push_str(
                " (in the text the flexible configuration rendered: set FC_OUT=<file> to write it out)",
            );
        }
        e
    })?;
    finish(value, path, options)
}

/// [`crate::parse_str_with`]: the text of a config whose file name is `source`.
pub(crate) fn parse_text(
    text: &str,
    source: &Path,
    options: &LoadOptions,
) -> Result<Config, Diagnostics> {
    let format = Format::of(source).map_err(|m| Diagnostic::new(source, "", m))?;
    let value = formats::parse(text, format, source)?;
    finish(value, source, options)
}

/// The environment overrides, then the reader; every problem of both at once.
fn finish(mut value: Value, source: &Path, options: &LoadOptions) -> Result<Config, Diagnostics> {
    let (overrides, mut errors) = env::apply(&mut value, &options.environment, source);
    match from_value_with(&value, source, options) {
        Ok(config) if errors.is_empty() => Ok(Config {
            env_overrides: overrides,
            ..config
        }),
        Ok(_) => Err(Diagnostics { errors }),
        Err(mut diagnostics) => {
            env::annotate(&mut diagnostics.errors, &overrides);
            errors.append(&mut diagnostics.errors);
            Err(Diagnostics { errors })
        }
    }
}

/// The UTF-8 text of the file at `path`, at most [`MAX_FILE_BYTES`].
pub(crate) fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let cannot =
        |e: std::io::Error| Diagnostic::new(path, "", format!("cannot read the file: {e}"));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Diagnostic::new(
            path,
            "",
            format!(
                "the file is larger than {} MiB, the most Sluice reads",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // The prefix is valid UTF-8 by definition; count lines and characters in it.
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        let position = formats::position_of(valid, valid.len());
        Diagnostic::at_position(path, position, "the file is not UTF-8 text")
    })
}

/// FC_OUT: the rendered config, written before it is parsed (so a problem in it can be read).
fn write_out(out: &Path, rendered: &str) -> Result<(), Diagnostic> {
    std::fs::write(out, rendered).map_err(|e| {
        Diagnostic::new(
            out,
            "",
            format!("cannot write the rendered config (FC_OUT): {e}"),
        )
    })
}

//! KrakenD's Flexible Configuration (CE): with `FC_ENABLE` set, the config file is a Go
//! `text/template` rendered before it is parsed.
//!
//! - `FC_SETTINGS`: a folder of `.json` files, each a JSON object available to the templates as
//!   `.<file name without .json>` (`settings/urls.json` is `.urls`);
//! - `FC_TEMPLATES`: a folder of `.tmpl` files, each a template named by its file name
//!   (`{{ template "endpoint.tmpl" . }}`), with the `{{ define }}`s they hold;
//! - `FC_PARTIALS`: the folder `{{ include "file" }}` reads files from, inserted as they are;
//! - `FC_OUT`: the file the rendered config is written to (and read from, so its extension
//!   chooses the format, as in KrakenD).
//!
//! The engine is Sluice's own (this module): the maintained Go-template crates either lack what
//! KrakenD configs use (`break`/`continue`, closures for `include` and `env`, Sprig's functions)
//! or bound neither output nor work. Departures from KrakenD, each failing closed where KrakenD
//! goes on silently: a template that does not parse or execute is an error naming its file and
//! line (KrakenD logs it and parses the unrendered file); a partial that cannot be read is an
//! error (KrakenD inserts nothing); printing a missing value is an error (KrakenD writes
//! `<no value>`); a template name defined twice is an error, except a `define` replacing a
//! `block`'s default; Sprig functions that would silently turn a bad value into `0` or `""` are
//! errors; numbers print with the text the settings file gave them.

mod exec;
mod funcs;
mod parse;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::diagnostics::{Diagnostic, Diagnostics, Position};
use crate::load::read_text;
use crate::model::Environment;
use exec::{Set, Template};
use parse::Pos;

/// The most files read from one of the FC folders.
const MAX_FILES: usize = 1000;

/// The flexible configuration's settings, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) settings: Option<PathBuf>,
    pub(crate) partials: Option<PathBuf>,
    pub(crate) templates: Option<PathBuf>,
    pub(crate) out: Option<PathBuf>,
}

impl Settings {
    /// `None` unless `FC_ENABLE` is set to a non-empty value: as in KrakenD, any value enables
    /// it (`FC_ENABLE=0` too).
    pub(crate) fn from_env(env: &Environment) -> Option<Self> {
        env.get("FC_ENABLE").filter(|v| !v.is_empty())?;
        let path = |name: &str| env.get(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Some(Self {
            settings: path("FC_SETTINGS"),
            partials: path("FC_PARTIALS"),
            templates: path("FC_TEMPLATES"),
            out: path("FC_OUT"),
        })
    }
}

/// What the template functions reach: the environment and the partials folder.
struct FcHost<'a> {
    env: &'a Environment,
    partials: Option<&'a Path>,
}

impl funcs::Host for FcHost<'_> {
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).map(str::to_owned)
    }

    fn include(&self, name: &str) -> Result<String, String> {
        // As KrakenD's path.Join: relative to FC_PARTIALS, or to the working folder without it.
        let path = self.partials.unwrap_or(Path::new("")).join(name);
        read_text(&path).map_err(|d| {
            let hint = if self.partials.is_none() {
                " (FC_PARTIALS is not set: partials are read from the working folder)"
            } else {
                ""
            };
            format!("the partial {}: {}{hint}", path.display(), d.message)
        })
    }
}

/// Renders the template `text` (the config file at `path`) with the settings, templates and
/// partials `fc` names.
pub(crate) fn render(
    path: &Path,
    text: &str,
    fc: &Settings,
    env: &Environment,
) -> Result<String, Diagnostics> {
    let mut errors = Vec::new();
    let data = fc
        .settings
        .as_deref()
        .map(|folder| load_settings(folder, &mut errors))
        .unwrap_or_default();

    let mut files = vec![path.to_path_buf()];
    let mut sources = vec![(base_name(path), text.to_owned())];
    if let Some(folder) = &fc.templates {
        for file in folder_files(folder, "FC_TEMPLATES", ".tmpl", &mut errors) {
            match read_text(&file) {
                Ok(text) => {
                    files.push(file.clone());
                    sources.push((base_name(&file), text));
                }
                Err(e) => errors.push(e),
            }
        }
    }

    let mut set = Set::default();
    let mut blocks: HashMap<String, bool> = HashMap::new();
    for (index, (name, text)) in sources.into_iter().enumerate() {
        let parsed = match parse::parse(&text) {
            Ok(parsed) => parsed,
            Err(e) => {
                errors.push(at(&files[index], e.pos, &e.message));
                continue;
            }
        };
        let mut define = |name: String, pos: Pos, body, is_block: bool| {
            if let Some(first) = set.templates.get(&name) {
                let first_is_block = blocks.get(&name).copied().unwrap_or(false);
                if first_is_block && !is_block {
                    // A `define` replaces a `block`'s default, as Go's later definition does.
                } else if is_block && !first_is_block {
                    return;
                } else {
                    errors.push(at(
                        &files[index],
                        pos,
                        &format!(
                            "the template {name:?} is defined twice (first in {} line {})",
                            files[first.file].display(),
                            first.pos.line
                        ),
                    ));
                    return;
                }
            }
            blocks.insert(name.clone(), is_block);
            set.templates.insert(
                name,
                Template {
                    file: index,
                    pos,
                    body,
                },
            );
        };
        define(name, Pos { line: 1, col: 1 }, parsed.body, false);
        for (name, pos, body, is_block) in parsed.defines {
            define(name, pos, body, is_block);
        }
    }
    if !errors.is_empty() {
        return Err(Diagnostics { errors });
    }

    let host = FcHost {
        env,
        partials: fc.partials.as_deref(),
    };
    exec::execute(&set, &host, &base_name(path), &Value::Object(data))
        .map_err(|e| Diagnostics::from(at(&files[e.file], e.pos, &e.message)))
}

fn at(file: &Path, pos: Pos, message: &str) -> Diagnostic {
    Diagnostic::at_position(
        file,
        Position {
            line: pos.line.max(1),
            column: pos.col.max(1),
        },
        format!("template: {message}"),
    )
}

fn base_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The files of `folder` whose names end with `suffix`, in name order.
fn folder_files(
    folder: &Path,
    variable: &str,
    suffix: &str,
    errors: &mut Vec<Diagnostic>,
) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(Diagnostic::new(
                folder,
                "",
                format!("{variable}: cannot read the folder: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file()
                && path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(suffix))
        })
        .take(MAX_FILES + 1)
        .collect();
    if files.len() > MAX_FILES {
        errors.push(Diagnostic::new(
            folder,
            "",
            format!("{variable}: more than {MAX_FILES} {suffix} files"),
        ));
        files.truncate(MAX_FILES);
    }
    files.sort();
    files
}

/// FC_SETTINGS: each `.json` file, a JSON object, under its name without `.json`.
fn load_settings(folder: &Path, errors: &mut Vec<Diagnostic>) -> Map<String, Value> {
    let mut data = Map::new();
    for file in folder_files(folder, "FC_SETTINGS", ".json", errors) {
        let text = match read_text(&file) {
            Ok(text) => text,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let value = match crate::formats::parse(&text, crate::formats::Format::Json, &file) {
            Ok(value) => value,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if !value.is_object() {
            errors.push(Diagnostic::new(
                &file,
                "",
                format!(
                    "a settings file holds a JSON object, found {}",
                    crate::read::kind(&value)
                ),
            ));
            continue;
        }
        let name = base_name(&file);
        let name = name.strip_suffix(".json").unwrap_or(&name).to_owned();
        data.insert(name, value);
    }
    data
}

#[cfg(test)]
mod tests;

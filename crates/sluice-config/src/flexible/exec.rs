//! Executing a parsed template over JSON data, Go's semantics where a config can tell, bounded:
//! the output (at most [`MAX_OUTPUT`] bytes), the depth of template calls ([`MAX_DEPTH`]) and the
//! work (at most [`MAX_STEPS`] evaluations and copied values).
//!
//! One departure, on purpose: printing a missing or null value is an error naming the action,
//! where Go writes `<no value>` into the config. Tests of a missing value (`if`, `with`,
//! `default`, `hasKey`) work as in Go.

use std::collections::HashMap;

use serde_json::Value;

use super::funcs::{self, Host};
use super::parse::{Arg, Cmd, Node, Pipe, Pos};

/// The largest rendered output.
pub(crate) const MAX_OUTPUT: usize = 16 << 20;
/// The deepest chain of `template` calls.
pub(crate) const MAX_DEPTH: usize = 64;
/// Evaluations, loop turns and values copied, in all.
pub(crate) const MAX_STEPS: u64 = 20_000_000;
/// Control structures open at once, across template calls (bounds the stack).
const MAX_NESTING: usize = 256;

/// A named template and the file it was written in.
#[derive(Debug)]
pub(crate) struct Template {
    pub(crate) file: usize,
    pub(crate) pos: Pos,
    pub(crate) body: Vec<Node>,
}

/// Every template of one rendering, by name.
#[derive(Debug, Default)]
pub(crate) struct Set {
    pub(crate) templates: HashMap<String, Template>,
}

/// A problem while executing, in the file (an index the caller knows) at a place.
#[derive(Debug)]
pub(crate) struct ExecError {
    pub(crate) file: usize,
    pub(crate) pos: Pos,
    pub(crate) message: String,
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

static NULL: Value = Value::Null;

struct Exec<'a> {
    set: &'a Set,
    host: &'a dyn Host,
    out: String,
    steps: u64,
    depth: usize,
    nesting: usize,
    vars: Vec<(String, Value)>,
    file: usize,
}

/// Renders the template `name` with `data` as its dot.
pub(crate) fn execute(
    set: &Set,
    host: &dyn Host,
    name: &str,
    data: &Value,
) -> Result<String, ExecError> {
    let Some(template) = set.templates.get(name) else {
        return Err(ExecError {
            file: 0,
            pos: Pos::default(),
            message: format!("no template {name:?}"),
        });
    };
    let mut exec = Exec {
        set,
        host,
        out: String::new(),
        steps: 0,
        depth: 0,
        nesting: 0,
        vars: vec![(String::new(), data.clone())],
        file: template.file,
    };
    exec.list(&template.body, data)?;
    Ok(exec.out)
}

/// Go's truth: false, 0, nil and empty strings, lists and maps are false.
pub(crate) fn truth(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// How many values `value` holds (the cost of copying it).
fn size(value: &Value) -> u64 {
    match value {
        Value::Array(items) => 1 + items.iter().map(size).sum::<u64>(),
        Value::Object(map) => 1 + map.values().map(size).sum::<u64>(),
        _ => 1,
    }
}

impl Exec<'_> {
    fn error(&self, pos: Pos, message: impl Into<String>) -> ExecError {
        ExecError {
            file: self.file,
            pos,
            message: message.into(),
        }
    }

    fn charge(&mut self, steps: u64, pos: Pos) -> Result<(), ExecError> {
        self.steps = self.steps.saturating_add(steps);
        if self.steps > MAX_STEPS {
            return Err(self.error(
                pos,
                format!(
                    "the templates did more than {MAX_STEPS} steps of work: is a loop unbounded?"
                ),
            ));
        }
        Ok(())
    }

    fn write(&mut self, text: &str, pos: Pos) -> Result<(), ExecError> {
        if self.out.len() + text.len() > MAX_OUTPUT {
            return Err(self.error(
                pos,
                format!(
                    "the rendered config is larger than {} MiB",
                    MAX_OUTPUT >> 20
                ),
            ));
        }
        self.out.push_str(text);
        Ok(())
    }

    fn list(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, ExecError> {
        if self.nesting >= MAX_NESTING {
            return Err(self.error(
                Pos::default(),
                format!(
                    "more than {MAX_NESTING} control structures and template calls open at once"
                ),
            ));
        }
        self.nesting += 1;
        let flow = self.nodes(nodes, dot);
        self.nesting -= 1;
        flow
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, ExecError> {
        let mut pos = Pos::default();
        for node in nodes {
            self.charge(1, pos)?;
            match node {
                Node::Text(text) => self.write(text, pos)?,
                Node::Action(pipe) => {
                    pos = pipe.pos;
                    let value = self.pipe(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        let text = self.printed(&value, pipe)?;
                        self.write(&text, pos)?;
                    } else {
                        self.declare(pipe, value)?;
                    }
                }
                Node::If(at, pipe, then, els) | Node::With(at, pipe, then, els) => {
                    pos = *at;
                    let mark = self.vars.len();
                    let value = self.pipe(pipe, dot)?;
                    let is_with = matches!(node, Node::With(..));
                    let flow = if truth(&value) {
                        if !pipe.decl.is_empty() {
                            self.declare(pipe, value.clone())?;
                        }
                        if is_with {
                            self.list(then, &value)
                        } else {
                            self.list(then, dot)
                        }
                    } else {
                        if !pipe.decl.is_empty() {
                            self.declare(pipe, value)?;
                        }
                        self.list(els, dot)
                    };
                    self.vars.truncate(mark);
                    let flow = flow?;
                    if flow != Flow::Normal {
                        return Ok(flow);
                    }
                }
                Node::Range(at, pipe, body, els) => {
                    pos = *at;
                    let value = self.pipe(pipe, dot)?;
                    self.range(*at, pipe, value, body, els, dot)?;
                }
                Node::Template(at, name, pipe) => {
                    pos = *at;
                    let data = match pipe {
                        Some(pipe) => self.pipe(pipe, dot)?,
                        None => Value::Null,
                    };
                    self.call(*at, name, data)?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn range(
        &mut self,
        pos: Pos,
        pipe: &Pipe,
        value: Value,
        body: &[Node],
        els: &[Node],
        dot: &Value,
    ) -> Result<(), ExecError> {
        let items: Vec<(Value, Value)> = match value {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::from(i), v))
                .collect(),
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| (Value::String(k), v))
                .collect(),
            Value::Number(n) if n.as_i64().is_some() => {
                let n = n.as_i64().unwrap_or_default().max(0);
                self.charge(u64::try_from(n).unwrap_or(u64::MAX), pos)?;
                (0..n).map(|i| (Value::from(i), Value::from(i))).collect()
            }
            Value::Null => Vec::new(),
            other => {
                return Err(self.error(
                    pos,
                    format!("range can't iterate over {}", funcs::kind(&other)),
                ));
            }
        };
        if items.is_empty() {
            let mark = self.vars.len();
            let flow = self.list(els, dot);
            self.vars.truncate(mark);
            flow?;
            return Ok(());
        }
        for (key, item) in items {
            self.charge(1, pos)?;
            let mark = self.vars.len();
            match pipe.decl.as_slice() {
                [] => {}
                [one] => self.bind(one, item.clone(), pipe.assign, pos)?,
                [k, v, ..] => {
                    self.bind(k, key, pipe.assign, pos)?;
                    self.bind(v, item.clone(), pipe.assign, pos)?;
                }
            }
            let flow = self.list(body, &item);
            self.vars.truncate(mark);
            if flow? == Flow::Break {
                break;
            }
        }
        Ok(())
    }

    fn call(&mut self, pos: Pos, name: &str, data: Value) -> Result<(), ExecError> {
        let set = self.set;
        let Some(template) = set.templates.get(name) else {
            return Err(self.error(
                pos,
                format!(
                    "no template {name:?}: templates are the .tmpl files of FC_TEMPLATES (by \
                     file name) and those a {{{{define}}}} names"
                ),
            ));
        };
        if self.depth >= MAX_DEPTH {
            return Err(self.error(
                pos,
                format!("templates call each other more than {MAX_DEPTH} deep"),
            ));
        }
        let vars = std::mem::replace(&mut self.vars, vec![(String::new(), data.clone())]);
        let file = std::mem::replace(&mut self.file, template.file);
        self.depth += 1;
        let result = self.list(&template.body, &data);
        self.depth -= 1;
        self.file = file;
        self.vars = vars;
        result.map(|_| ())
    }

    fn declare(&mut self, pipe: &Pipe, value: Value) -> Result<(), ExecError> {
        if let Some(name) = pipe.decl.first() {
            self.bind(name, value, pipe.assign, pipe.pos)?;
        }
        Ok(())
    }

    fn bind(&mut self, name: &str, value: Value, assign: bool, pos: Pos) -> Result<(), ExecError> {
        if assign {
            return self.assign(name, value, pos);
        }
        self.vars.push((name.to_owned(), value));
        Ok(())
    }

    fn assign(&mut self, name: &str, value: Value, pos: Pos) -> Result<(), ExecError> {
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some((_, slot)) => {
                *slot = value;
                Ok(())
            }
            None => Err(self.error(pos, format!("undefined variable: ${name}"))),
        }
    }

    fn variable(&self, name: &str, pos: Pos) -> Result<&Value, ExecError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| self.error(pos, format!("undefined variable: ${name}")))
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Result<Value, ExecError> {
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.cmd(cmd, dot, value)?);
        }
        Ok(value.unwrap_or(Value::Null))
    }

    fn cmd(&mut self, cmd: &Cmd, dot: &Value, piped: Option<Value>) -> Result<Value, ExecError> {
        self.charge(1, cmd.pos)?;
        let Arg::Func(name) = &cmd.args[0] else {
            if piped.is_some() {
                return Err(self.error(cmd.pos, "can't give argument to non-function"));
            }
            return self.arg(&cmd.args[0], dot, cmd.pos);
        };
        if name == "and" || name == "or" {
            return self.and_or(name == "and", cmd, dot, piped);
        }
        let mut args = Vec::with_capacity(cmd.args.len());
        for arg in &cmd.args[1..] {
            args.push(self.arg(arg, dot, cmd.pos)?);
        }
        args.extend(piped);
        let result = funcs::call(name, &args, self.host)
            .map_err(|message| self.error(cmd.pos, format!("error calling {name}: {message}")))?;
        // Sprig's `set` and `unset` change the dict they are given: a `$var` keeps the change.
        if matches!(name.as_str(), "set" | "unset")
            && let Some(Arg::Var(var, fields)) = cmd.args.get(1)
            && fields.is_empty()
        {
            self.assign(var, result.clone(), cmd.pos)?;
        }
        Ok(result)
    }

    /// `and` and `or` stop at the first argument that decides, as Go's do.
    fn and_or(
        &mut self,
        and: bool,
        cmd: &Cmd,
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, ExecError> {
        if cmd.args.len() < 2 && piped.is_none() {
            return Err(self.error(cmd.pos, "wrong number of args: want at least 1 got 0"));
        }
        let mut last = Value::Null;
        for arg in &cmd.args[1..] {
            last = self.arg(arg, dot, cmd.pos)?;
            if truth(&last) != and {
                return Ok(last);
            }
        }
        Ok(piped.unwrap_or(last))
    }

    fn arg(&mut self, arg: &Arg, dot: &Value, pos: Pos) -> Result<Value, ExecError> {
        let value = match arg {
            Arg::Dot => dot,
            Arg::Nil => &NULL,
            Arg::Const(value) => value,
            Arg::Field(fields) => self.fields(dot, fields, "", pos)?,
            Arg::Var(name, fields) => {
                let var = self.variable(name, pos)?;
                self.fields(var, fields, &format!("${name}"), pos)?
            }
            Arg::Func(name) => {
                return funcs::call(name, &[], self.host)
                    .map_err(|m| self.error(pos, format!("error calling {name}: {m}")));
            }
            Arg::Pipe(pipe, fields) => {
                let value = self.pipe(pipe, dot)?;
                let found = self.fields(&value, fields, "(...)", pos)?.clone();
                return Ok(found);
            }
        };
        let cost = size(value);
        let value = value.clone();
        self.charge(cost, pos)?;
        Ok(value)
    }

    /// `base.a.b`: a missing key is null, a field of null or of a non-map is an error.
    fn fields<'v>(
        &self,
        base: &'v Value,
        fields: &[String],
        name: &str,
        pos: Pos,
    ) -> Result<&'v Value, ExecError> {
        let mut current = base;
        let mut path = name.to_owned();
        for field in fields {
            current = match current {
                Value::Object(map) => map.get(field).unwrap_or(&NULL),
                Value::Null => {
                    return Err(self.error(
                        pos,
                        format!(
                            "nil pointer evaluating {path}.{field}: {} is missing or null",
                            if path.is_empty() { "." } else { path.as_str() }
                        ),
                    ));
                }
                other => {
                    return Err(self.error(
                        pos,
                        format!("can't evaluate field {field} in {}", funcs::kind(other)),
                    ));
                }
            };
            path.push('.');
            path.push_str(field);
        }
        Ok(current)
    }

    /// The text an action writes: a missing or null value is an error, not `<no value>`.
    fn printed(&self, value: &Value, pipe: &Pipe) -> Result<String, ExecError> {
        if value.is_null() {
            return Err(self.error(
                pipe.pos,
                "the action has no value (a missing setting or null): KrakenD would write \
                 \"<no value>\" into the config; use default, or test it with if or with",
            ));
        }
        Ok(funcs::to_text(value))
    }
}

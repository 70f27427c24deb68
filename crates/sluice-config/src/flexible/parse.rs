//! Go `text/template` syntax: the lexer and the parser, into a tree [`super::exec`] walks.
//!
//! Covered: text and actions with trim markers (`{{- x -}}`), comments, pipelines (`a | b c`),
//! parenthesised pipelines and field chains on them (`(index .a 0).name`), `.Field` chains,
//! variables (`$x := ...`, `$x = ...`, `$` for the template's data), literals (strings raw and
//! interpreted, numbers, characters, `true`, `false`, `nil`), `if`/`else if`/`else`, `range`
//! (with `$i, $v :=`, `else`, `break`, `continue`), `with`/`else with`/`else`, `define`,
//! `template`, `block`. A function name not known is a parse error, as in Go.

use serde_json::{Number, Value};

use super::funcs;

/// Where something is in a template file, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) col: usize,
}

/// A problem at a place in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    pub(crate) pos: Pos,
    pub(crate) message: String,
}

fn err<T>(pos: Pos, message: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError {
        pos,
        message: message.into(),
    })
}

/// Most levels of nested control structures and parentheses.
const MAX_NESTING: usize = 100;

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Pos, Pipe, Vec<Node>, Vec<Node>),
    Range(Pos, Pipe, Vec<Node>, Vec<Node>),
    With(Pos, Pipe, Vec<Node>, Vec<Node>),
    Template(Pos, String, Option<Pipe>),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) pos: Pos,
    /// Variables declared (`:=`) or assigned (`=`).
    pub(crate) decl: Vec<String>,
    pub(crate) assign: bool,
    pub(crate) cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub(crate) pos: Pos,
    pub(crate) args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Dot,
    Nil,
    Const(Value),
    /// `.a.b`: fields of dot.
    Field(Vec<String>),
    /// `$x.a.b`.
    Var(String, Vec<String>),
    Func(String),
    /// `(pipe).a.b`.
    Pipe(Box<Pipe>, Vec<String>),
}

/// A template body and the templates it defines (`define`, `block`), each with its body.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) body: Vec<Node>,
    pub(crate) defines: Vec<(String, Pos, Vec<Node>, bool)>,
}

pub(crate) fn parse(text: &str) -> Result<Parsed, TemplateError> {
    let segments = lex(text)?;
    let mut parser = Parser {
        segments,
        at: 0,
        defines: Vec::new(),
        depth: 0,
        ranges: 0,
    };
    let (body, end) = parser.list(true)?;
    match end {
        End::Eof => Ok(Parsed {
            body,
            defines: parser.defines,
        }),
        End::Close(pos) => err(pos, "unexpected {{end}}"),
        End::Else(pos, _) => err(pos, "unexpected {{else}}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Space,
    Dot,
    Field(String),
    Var(String),
    Ident(String),
    Str(String),
    Num(Value),
    LParen,
    RParen,
    Pipe,
    Comma,
    Declare,
    Assign,
}

/// The tokens of an action, each at its place.
type Tokens = Vec<(Pos, Tok)>;

#[derive(Debug)]
enum Segment {
    Text(String),
    Action(Pos, Vec<(Pos, Tok)>),
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Position tracking over the text.
struct Cursor<'t> {
    text: &'t str,
    at: usize,
    line: usize,
    col: usize,
}

impl Cursor<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }
    fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }
    fn advance(&mut self, bytes: usize) {
        let end = self.at + bytes;
        while self.at < end {
            self.bump();
        }
    }
}

fn lex(text: &str) -> Result<Vec<Segment>, TemplateError> {
    let mut c = Cursor {
        text,
        at: 0,
        line: 1,
        col: 1,
    };
    let mut segments = Vec::new();
    let mut trim_next = false;
    loop {
        let Some(open) = c.rest().find("{{") else {
            let mut rest = c.rest().to_owned();
            if trim_next {
                rest = rest.trim_start_matches(is_space).to_owned();
            }
            if !rest.is_empty() {
                segments.push(Segment::Text(rest));
            }
            return Ok(segments);
        };
        let mut piece = c.rest()[..open].to_owned();
        if trim_next {
            piece = piece.trim_start_matches(is_space).to_owned();
        }
        c.advance(open);
        let pos = c.pos();
        c.advance(2);
        // `{{- ` trims the text before; `{{-3}}` is the number -3.
        if c.peek() == Some('-') && c.peek2().is_some_and(is_space) {
            piece = piece.trim_end_matches(is_space).to_owned();
            c.advance(1);
        }
        if !piece.is_empty() {
            segments.push(Segment::Text(piece));
        }
        // A comment: `{{/* ... */}}`, trim markers allowed around it.
        let after_space = c.rest().trim_start_matches(is_space);
        if after_space.starts_with("/*") {
            let skip = c.rest().len() - after_space.len();
            c.advance(skip + 2);
            let Some(close) = c.rest().find("*/") else {
                return err(pos, "unclosed comment");
            };
            c.advance(close + 2);
            let rest = c.rest();
            let trimmed = rest.trim_start_matches(is_space);
            if let Some(after) = trimmed.strip_prefix("-}}") {
                c.advance(rest.len() - after.len());
                trim_next = true;
            } else if let Some(after) = rest.strip_prefix("}}") {
                c.advance(rest.len() - after.len());
                trim_next = false;
            } else {
                return err(pos, "comment ends before closing delimiter");
            }
            continue;
        }
        let (toks, trim) = lex_action(&mut c, pos)?;
        trim_next = trim;
        segments.push(Segment::Action(pos, toks));
    }
}

/// The tokens of one action, up to and past its `}}`; whether it ends with ` -}}`.
fn lex_action(c: &mut Cursor<'_>, open: Pos) -> Result<(Vec<(Pos, Tok)>, bool), TemplateError> {
    let mut toks = Vec::new();
    loop {
        let pos = c.pos();
        let Some(ch) = c.peek() else {
            return err(open, "unclosed action");
        };
        if c.rest().starts_with("}}") {
            c.advance(2);
            return Ok((toks, false));
        }
        if is_space(ch) {
            while c.peek().is_some_and(is_space) {
                c.bump();
            }
            if c.rest().starts_with("-}}") {
                c.advance(3);
                return Ok((toks, true));
            }
            if toks.last().is_some_and(|(_, t)| *t != Tok::Space) {
                toks.push((pos, Tok::Space));
            }
            continue;
        }
        let tok = match ch {
            '(' => {
                c.bump();
                Tok::LParen
            }
            ')' => {
                c.bump();
                Tok::RParen
            }
            '|' => {
                c.bump();
                Tok::Pipe
            }
            ',' => {
                c.bump();
                Tok::Comma
            }
            ':' if c.peek2() == Some('=') => {
                c.advance(2);
                Tok::Declare
            }
            '=' => {
                c.bump();
                Tok::Assign
            }
            '"' => Tok::Str(quoted(c, pos)?),
            '`' => {
                c.bump();
                let Some(end) = c.rest().find('`') else {
                    return err(pos, "unterminated raw quoted string");
                };
                let s = c.rest()[..end].to_owned();
                c.advance(end + 1);
                Tok::Str(s)
            }
            '\'' => Tok::Num(character(c, pos)?),
            '$' => {
                c.bump();
                Tok::Var(word(c))
            }
            '.' if !c.peek2().is_some_and(|d| d.is_ascii_digit()) => {
                c.bump();
                let name = word(c);
                if name.is_empty() {
                    Tok::Dot
                } else {
                    Tok::Field(name)
                }
            }
            '0'..='9' | '.' | '-' | '+' => Tok::Num(number(c, pos)?),
            c2 if c2.is_alphabetic() || c2 == '_' => {
                let name = word(c);
                Tok::Ident(name)
            }
            other => return err(pos, format!("unexpected {other:?} in action")),
        };
        toks.push((pos, tok));
    }
}

fn word(c: &mut Cursor<'_>) -> String {
    let mut s = String::new();
    while let Some(ch) = c.peek() {
        if ch.is_alphanumeric() || ch == '_' {
            s.push(ch);
            c.bump();
        } else {
            break;
        }
    }
    s
}

fn quoted(c: &mut Cursor<'_>, pos: Pos) -> Result<String, TemplateError> {
    c.bump();
    let mut s = String::new();
    loop {
        match c.bump() {
            None | Some('\n') => return err(pos, "unterminated quoted string"),
            Some('"') => return Ok(s),
            Some('\\') => s.push(escape(c, pos, '"')?),
            Some(ch) => s.push(ch),
        }
    }
}

fn escape(c: &mut Cursor<'_>, pos: Pos, quote: char) -> Result<char, TemplateError> {
    let hex = |c: &mut Cursor<'_>, n: usize| -> Result<char, TemplateError> {
        let digits: String = (0..n).filter_map(|_| c.bump()).collect();
        u32::from_str_radix(&digits, 16)
            .ok()
            .and_then(char::from_u32)
            .map_or_else(|| err(pos, "invalid escape in string"), Ok)
    };
    Ok(match c.bump() {
        Some('n') => '\n',
        Some('t') => '\t',
        Some('r') => '\r',
        Some('a') => '\u{7}',
        Some('b') => '\u{8}',
        Some('f') => '\u{c}',
        Some('v') => '\u{b}',
        Some('\\') => '\\',
        Some('x') => hex(c, 2)?,
        Some('u') => hex(c, 4)?,
        Some('U') => hex(c, 8)?,
        Some(ch) if ch == quote => ch,
        _ => return err(pos, "invalid escape in string"),
    })
}

fn character(c: &mut Cursor<'_>, pos: Pos) -> Result<Value, TemplateError> {
    c.bump();
    let ch = match c.bump() {
        Some('\\') => escape(c, pos, '\'')?,
        Some(ch) if ch != '\'' => ch,
        _ => return err(pos, "malformed character constant"),
    };
    if c.bump() != Some('\'') {
        return err(pos, "malformed character constant");
    }
    Ok(Value::from(u32::from(ch)))
}

fn number(c: &mut Cursor<'_>, pos: Pos) -> Result<Value, TemplateError> {
    let mut text = String::new();
    if let Some(sign @ ('-' | '+')) = c.peek() {
        text.push(sign);
        c.bump();
    }
    while let Some(ch) = c.peek() {
        let exponent_sign = matches!(ch, '-' | '+')
            && text.ends_with(['e', 'E', 'p', 'P'])
            && !text.starts_with("0x");
        if ch.is_ascii_alphanumeric() || ch == '.' || ch == '_' || exponent_sign {
            text.push(ch);
            c.bump();
        } else {
            break;
        }
    }
    number_value(&text).map_or_else(|| err(pos, format!("bad number syntax: {text:?}")), Ok)
}

/// A Go numeric constant: an integer when it is one, else a float.
fn number_value(text: &str) -> Option<Value> {
    let clean = text.replace('_', "");
    let (negative, unsigned) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    let lower = unsigned.to_ascii_lowercase();
    let radix = if let Some(hex) = lower.strip_prefix("0x") {
        Some((hex.to_owned(), 16))
    } else if let Some(octal) = lower.strip_prefix("0o") {
        Some((octal.to_owned(), 8))
    } else if let Some(binary) = lower.strip_prefix("0b") {
        Some((binary.to_owned(), 2))
    } else if lower.len() > 1 && lower.starts_with('0') && lower.chars().all(|d| d.is_ascii_digit())
    {
        Some((lower[1..].to_owned(), 8))
    } else if !lower.is_empty() && lower.chars().all(|d| d.is_ascii_digit()) {
        Some((lower.clone(), 10))
    } else {
        None
    };
    if let Some((digits, radix)) = radix {
        let n = i64::from_str_radix(&digits, radix).ok()?;
        return Some(Value::from(if negative { -n } else { n }));
    }
    let f: f64 = unsigned.parse().ok()?;
    Number::from_f64(if negative { -f } else { f }).map(Value::Number)
}

// ---------------------------------------------------------------------------------------------
// Parser

#[derive(Debug)]
enum End {
    Eof,
    Close(Pos),
    /// `{{else}}` or `{{else if ...}}`: the tokens after `else`.
    Else(Pos, Vec<(Pos, Tok)>),
}

struct Parser {
    segments: Vec<Segment>,
    at: usize,
    defines: Vec<(String, Pos, Vec<Node>, bool)>,
    depth: usize,
    ranges: usize,
}

/// The tokens of an action, spaces at either end dropped.
fn trimmed(toks: &[(Pos, Tok)]) -> &[(Pos, Tok)] {
    let start = toks
        .iter()
        .position(|(_, t)| *t != Tok::Space)
        .unwrap_or(toks.len());
    let end = toks
        .iter()
        .rposition(|(_, t)| *t != Tok::Space)
        .map_or(start, |e| e + 1);
    &toks[start..end.max(start)]
}

impl Parser {
    /// Nodes up to the `{{end}}` or `{{else}}` that closes them (or the end of the text).
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, End), TemplateError> {
        let mut nodes = Vec::new();
        while self.at < self.segments.len() {
            let segment =
                std::mem::replace(&mut self.segments[self.at], Segment::Text(String::new()));
            self.at += 1;
            let (pos, toks) = match segment {
                Segment::Text(text) => {
                    nodes.push(Node::Text(text));
                    continue;
                }
                Segment::Action(pos, toks) => (pos, toks),
            };
            let toks = trimmed(&toks).to_vec();
            let Some((kpos, first)) = toks.first().cloned() else {
                return err(pos, "missing value for command");
            };
            let rest = trimmed(&toks[1..]).to_vec();
            let keyword = match &first {
                Tok::Ident(name) => name.as_str(),
                _ => "",
            };
            match keyword {
                "end" => {
                    if !rest.is_empty() {
                        return err(kpos, "unexpected tokens after end");
                    }
                    return Ok((nodes, End::Close(kpos)));
                }
                "else" => return Ok((nodes, End::Else(kpos, rest))),
                "if" | "with" | "range" => nodes.push(self.control(keyword, kpos, &rest)?),
                "define" => {
                    if !top {
                        return err(
                            kpos,
                            "define is only allowed at the top level of a template",
                        );
                    }
                    let name = template_name(kpos, &rest, true)?.0;
                    let (body, end) = self.nested(|p| p.list(false))?;
                    expect_end(kpos, "define", end)?;
                    self.defines.push((name, kpos, body, false));
                }
                "block" => {
                    let (name, pipe) = template_name(kpos, &rest, false)?;
                    let pipe = pipe
                        .map(|toks| self.pipeline(kpos, &toks, false))
                        .transpose()?;
                    let (body, end) = self.nested(|p| p.list(false))?;
                    expect_end(kpos, "block", end)?;
                    self.defines.push((name.clone(), kpos, body, true));
                    nodes.push(Node::Template(kpos, name, pipe));
                }
                "template" => {
                    let (name, pipe) = template_name(kpos, &rest, false)?;
                    let pipe = pipe
                        .map(|toks| self.pipeline(kpos, &toks, false))
                        .transpose()?;
                    nodes.push(Node::Template(kpos, name, pipe));
                }
                "break" | "continue" => {
                    if self.ranges == 0 {
                        return err(kpos, format!("{{{{{keyword}}}}} outside {{{{range}}}}"));
                    }
                    if !rest.is_empty() {
                        return err(kpos, format!("unexpected tokens after {keyword}"));
                    }
                    nodes.push(if keyword == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                _ => nodes.push(Node::Action(self.pipeline(kpos, &toks, false)?)),
            }
        }
        Ok((nodes, End::Eof))
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, TemplateError>,
    ) -> Result<T, TemplateError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return err(
                Pos::default(),
                format!("nested more than {MAX_NESTING} levels deep"),
            );
        }
        let out = f(self);
        self.depth -= 1;
        out
    }

    /// `if`, `with`, `range` and their `else` (`else if`, `else with` chain).
    fn control(
        &mut self,
        keyword: &str,
        pos: Pos,
        toks: &[(Pos, Tok)],
    ) -> Result<Node, TemplateError> {
        let pipe = self.pipeline(pos, toks, keyword == "range")?;
        if keyword == "range" {
            self.ranges += 1;
        }
        let body = self.nested(|p| p.list(false));
        if keyword == "range" {
            self.ranges -= 1;
        }
        let (body, end) = body?;
        let els = match end {
            End::Close(_) => Vec::new(),
            End::Eof => {
                return err(
                    pos,
                    format!("unexpected end of template in {{{{{keyword}}}}}"),
                );
            }
            End::Else(epos, rest) => {
                let chained = match rest.first() {
                    Some((_, Tok::Ident(k)))
                        if (k == "if" || k == "with") && keyword != "range" =>
                    {
                        Some(k.clone())
                    }
                    Some(_) => return err(epos, "unexpected tokens after else"),
                    None => None,
                };
                match chained {
                    // `{{else if x}}`: an `if` inside the else branch, closed by the same end.
                    Some(k) => vec![self.control(&k, epos, trimmed(&rest[1..]))?],
                    None => {
                        let (els, end) = self.nested(|p| p.list(false))?;
                        expect_end(pos, keyword, end)?;
                        els
                    }
                }
            }
        };
        Ok(match keyword {
            "if" => Node::If(pos, pipe, body, els),
            "with" => Node::With(pos, pipe, body, els),
            _ => Node::Range(pos, pipe, body, els),
        })
    }

    /// A pipeline, with its declarations.
    fn pipeline(
        &mut self,
        pos: Pos,
        toks: &[(Pos, Tok)],
        range: bool,
    ) -> Result<Pipe, TemplateError> {
        let toks = trimmed(toks);
        let solid: Vec<&(Pos, Tok)> = toks.iter().filter(|(_, t)| *t != Tok::Space).collect();
        let mut decl = Vec::new();
        let mut assign = false;
        let mut start = 0;
        // `$x :=`, `$x =`, `$i, $v :=`
        let decl_len = match solid.as_slice() {
            [(_, Tok::Var(a)), (_, Tok::Declare | Tok::Assign), ..] => {
                decl.push(a.clone());
                2
            }
            [
                (_, Tok::Var(a)),
                (_, Tok::Comma),
                (_, Tok::Var(b)),
                (_, Tok::Declare | Tok::Assign),
                ..,
            ] if range => {
                decl.push(a.clone());
                decl.push(b.clone());
                4
            }
            _ => 0,
        };
        if decl_len > 0 {
            assign = solid[decl_len - 1].1 == Tok::Assign;
            let mut seen = 0;
            for (i, (_, t)) in toks.iter().enumerate() {
                if *t != Tok::Space {
                    seen += 1;
                }
                if seen == decl_len {
                    start = i + 1;
                    break;
                }
            }
        }
        let mut p = TokParser {
            toks: trimmed(&toks[start..]),
            at: 0,
            depth: 0,
        };
        let cmds = p.commands(pos)?;
        if p.at < p.toks.len() {
            return err(p.toks[p.at].0, "unexpected \")\" in command");
        }
        if cmds.is_empty() {
            return err(pos, "missing value for command");
        }
        Ok(Pipe {
            pos,
            decl,
            assign,
            cmds,
        })
    }
}

fn expect_end(pos: Pos, keyword: &str, end: End) -> Result<(), TemplateError> {
    match end {
        End::Close(_) => Ok(()),
        End::Eof => err(
            pos,
            format!("unexpected end of template in {{{{{keyword}}}}}"),
        ),
        End::Else(epos, _) => err(
            epos,
            format!("unexpected {{{{else}}}} in {{{{{keyword}}}}}"),
        ),
    }
}

/// `"name"` and the tokens of the pipeline after it.
fn template_name(
    pos: Pos,
    toks: &[(Pos, Tok)],
    alone: bool,
) -> Result<(String, Option<Tokens>), TemplateError> {
    let Some((_, Tok::Str(name))) = toks.first() else {
        return err(pos, "expected a quoted template name");
    };
    let rest = trimmed(&toks[1..]);
    if alone && !rest.is_empty() {
        return err(pos, "unexpected tokens after the template name");
    }
    Ok((name.clone(), (!rest.is_empty()).then(|| rest.to_vec())))
}

/// Commands and operands over the tokens of one pipeline.
struct TokParser<'t> {
    toks: &'t [(Pos, Tok)],
    at: usize,
    depth: usize,
}

impl TokParser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(_, t)| t)
    }
    fn pos(&self, fallback: Pos) -> Pos {
        self.toks.get(self.at).map_or(fallback, |(p, _)| *p)
    }
    fn skip_space(&mut self) {
        while self.peek() == Some(&Tok::Space) {
            self.at += 1;
        }
    }

    /// `cmd | cmd | ...` up to a `)` or the end.
    fn commands(&mut self, pos: Pos) -> Result<Vec<Cmd>, TemplateError> {
        let mut cmds = Vec::new();
        loop {
            self.skip_space();
            let cpos = self.pos(pos);
            let mut args = Vec::new();
            loop {
                self.skip_space();
                match self.peek() {
                    None | Some(Tok::RParen | Tok::Pipe) => break,
                    Some(_) => args.push(self.operand(cpos)?),
                }
            }
            if args.is_empty() {
                return err(cpos, "missing value for command");
            }
            if args.len() > 1 && !matches!(args[0], Arg::Func(_)) {
                return err(cpos, "can't give argument to non-function");
            }
            if !cmds.is_empty() && !matches!(args[0], Arg::Func(_)) {
                return err(
                    cpos,
                    "non-function in a pipeline: only a function can follow |",
                );
            }
            cmds.push(Cmd { pos: cpos, args });
            if self.peek() == Some(&Tok::Pipe) {
                self.at += 1;
                continue;
            }
            return Ok(cmds);
        }
    }

    /// One operand and the field chain right after it.
    fn operand(&mut self, pos: Pos) -> Result<Arg, TemplateError> {
        let opos = self.pos(pos);
        let Some(tok) = self.peek().cloned() else {
            return err(opos, "missing operand");
        };
        self.at += 1;
        let arg = match tok {
            Tok::Dot => Arg::Dot,
            Tok::Field(name) => Arg::Field(self.chain(vec![name])),
            Tok::Var(name) => {
                let fields = self.chain(Vec::new());
                Arg::Var(name, fields)
            }
            Tok::Str(s) => Arg::Const(Value::String(s)),
            Tok::Num(n) => Arg::Const(n),
            Tok::Ident(name) => match name.as_str() {
                "true" => Arg::Const(Value::Bool(true)),
                "false" => Arg::Const(Value::Bool(false)),
                "nil" => Arg::Nil,
                _ if funcs::exists(&name) => Arg::Func(name),
                "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block"
                | "break" | "continue" => {
                    return err(opos, format!("unexpected {name} in operand"));
                }
                _ => return err(opos, format!("function {name:?} not defined")),
            },
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return err(opos, format!("nested more than {MAX_NESTING} levels deep"));
                }
                let cmds = self.commands(opos)?;
                if self.peek() != Some(&Tok::RParen) {
                    return err(opos, "unclosed left paren");
                }
                self.at += 1;
                self.depth -= 1;
                let fields = self.chain(Vec::new());
                Arg::Pipe(
                    Box::new(Pipe {
                        pos: opos,
                        decl: Vec::new(),
                        assign: false,
                        cmds,
                    }),
                    fields,
                )
            }
            Tok::RParen => return err(opos, "unexpected right paren"),
            Tok::Pipe | Tok::Comma | Tok::Declare | Tok::Assign | Tok::Space => {
                return err(opos, "unexpected token in operand");
            }
        };
        if matches!(arg, Arg::Dot) && matches!(self.peek(), Some(Tok::Field(_))) {
            return err(opos, "unexpected . after term \".\"");
        }
        Ok(arg)
    }

    /// `.a.b` right after a term, no space between.
    fn chain(&mut self, mut fields: Vec<String>) -> Vec<String> {
        while let Some(Tok::Field(name)) = self.peek() {
            fields.push(name.clone());
            self.at += 1;
        }
        fields
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lexes_trim_markers_and_comments() {
        let parsed = parse("a  {{- 1 -}}  b {{/* c */}} d {{- /* e */ -}} f").unwrap();
        let texts: Vec<String> = parsed
            .body
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["a", "b ", " d", "f"]);
    }

    #[test]
    fn numbers() {
        assert_eq!(number_value("42"), Some(Value::from(42)));
        assert_eq!(number_value("-0x1F"), Some(Value::from(-31)));
        assert_eq!(number_value("017"), Some(Value::from(15)));
        assert_eq!(number_value("1_000"), Some(Value::from(1000)));
        assert_eq!(number_value("1.5").unwrap().as_f64(), Some(1.5));
        assert_eq!(number_value("1e3").unwrap().as_f64(), Some(1000.0));
        assert_eq!(number_value("1x"), None);
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("{\n  \"a\": {{ nope 1 }}\n}").unwrap_err();
        assert_eq!(e.message, "function \"nope\" not defined");
        assert_eq!(e.pos, Pos { line: 2, col: 11 });
        let e = parse("{{ if .a }}x").unwrap_err();
        assert!(e.message.contains("unexpected end of template"), "{e:?}");
        let e = parse("x{{ end }}").unwrap_err();
        assert_eq!(e.message, "unexpected {{end}}");
        let e = parse("{{ break }}").unwrap_err();
        assert!(e.message.contains("outside {{range}}"), "{e:?}");
        let e = parse("{{ \"a\" 1 }}").unwrap_err();
        assert!(e.message.contains("non-function"), "{e:?}");
        let e = parse("{{ .a").unwrap_err();
        assert!(e.message.contains("unclosed action"), "{e:?}");
        let deep = format!(
            "{}{}",
            "{{ if 1 }}".repeat(MAX_NESTING + 2),
            "{{ end }}".repeat(MAX_NESTING + 2)
        );
        assert!(
            parse(&deep)
                .unwrap_err()
                .message
                .contains("nested more than")
        );
    }

    #[test]
    fn defines_are_collected() {
        let parsed = parse("{{ define \"a\" }}A{{ end }}{{ block \"b\" . }}B{{ end }}").unwrap();
        let names: Vec<_> = parsed
            .defines
            .iter()
            .map(|(n, _, _, _)| n.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(parsed.body.len(), 1);
    }
}

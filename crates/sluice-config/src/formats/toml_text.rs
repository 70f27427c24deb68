//! TOML into the JSON tree. Numbers keep their text (`1.10` stays `1.10`; hexadecimal, octal and
//! binary integers become decimal), dates and times become their text, `inf` and `nan` have no
//! JSON form and are errors. The parser bounds nesting itself.

use serde_json::{Map, Number, Value};
use toml::Spanned;
use toml::de::{DeFloat, DeInteger, DeTable, DeValue};

use super::{SyntaxError, number_from_text, position_of};

pub(super) fn parse(text: &str) -> Result<Value, SyntaxError> {
    let table = DeTable::parse(text).map_err(|e| SyntaxError {
        position: position_of(text, e.span().map_or(0, |span| span.start)),
        message: format!("malformed TOML: {}", e.message().trim_end()),
    })?;
    let at = |offset: usize, message: String| SyntaxError {
        position: position_of(text, offset),
        message,
    };
    table_value(table.get_ref(), &at)
}

type At<'a> = dyn Fn(usize, String) -> SyntaxError + 'a;

fn table_value(table: &DeTable<'_>, at: &At<'_>) -> Result<Value, SyntaxError> {
    let mut map = Map::new();
    for (key, value) in table {
        map.insert(key.get_ref().to_string(), value_of(value, at)?);
    }
    Ok(Value::Object(map))
}

fn value_of(value: &Spanned<DeValue<'_>>, at: &At<'_>) -> Result<Value, SyntaxError> {
    let start = value.span().start;
    Ok(match value.get_ref() {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => Value::Number(
            integer(i).ok_or_else(|| at(start, format!("the integer {i} cannot be read")))?,
        ),
        DeValue::Float(f) => Value::Number(float(f).ok_or_else(|| {
            at(
                start,
                format!("{f} has no JSON form: write a number, or quote it for a string"),
            )
        })?),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| value_of(item, at))
                .collect::<Result<_, _>>()?,
        ),
        DeValue::Table(table) => table_value(table, at)?,
    })
}

fn integer(i: &DeInteger<'_>) -> Option<Number> {
    let digits = i.as_str().replace('_', "");
    if i.radix() == 10 {
        let digits = digits.strip_prefix('+').unwrap_or(&digits);
        return number_from_text(digits);
    }
    u64::from_str_radix(&digits, i.radix())
        .ok()
        .map(Number::from)
}

fn float(f: &DeFloat<'_>) -> Option<Number> {
    let text = f.as_str().replace('_', "");
    let text = text.strip_prefix('+').unwrap_or(&text);
    if text.contains("inf") || text.contains("nan") {
        return None;
    }
    number_from_text(text).or_else(|| text.parse::<f64>().ok().and_then(Number::from_f64))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::diagnostics::Position;

    #[test]
    fn values_and_number_text() {
        let value = parse(
            "version = 3\nname = \"x\"\nprice = 1.10\nbig = 9007199254740993\nhex = 0x1F\n\
             plus = +5\nsep = 1_000\nexp = 1e3\nok = true\nwhen = 1979-05-27T07:32:00Z\n\
             [[endpoints]]\nendpoint = \"/a\"\n[endpoints.extra_config.proxy]\nsequential = true\n",
        )
        .unwrap();
        assert_eq!(value["version"].as_u64(), Some(3));
        assert_eq!(value["price"].to_string(), "1.10");
        assert_eq!(value["big"].to_string(), "9007199254740993");
        assert_eq!(value["hex"].to_string(), "31");
        assert_eq!(value["plus"].to_string(), "5");
        assert_eq!(value["sep"].to_string(), "1000");
        assert_eq!(value["exp"].to_string(), "1e+3");
        assert_eq!(value["ok"], json!(true));
        assert_eq!(value["when"], json!("1979-05-27T07:32:00Z"));
        assert_eq!(
            value["endpoints"],
            json!([{"endpoint": "/a", "extra_config": {"proxy": {"sequential": true}}}])
        );
    }

    #[test]
    fn errors_have_a_position() {
        let e = parse("version = 3\nport = \n").unwrap_err();
        assert!(e.message.starts_with("malformed TOML"), "{e:?}");
        assert_eq!(e.position.line, 2);
        let e = parse("a = 1\na = 2\n").unwrap_err();
        assert_eq!(e.position.line, 2, "{e:?}");
        let e = parse("x = 1\ny = nan\n").unwrap_err();
        assert!(e.message.contains("no JSON form"), "{e:?}");
        assert_eq!(e.position, Position { line: 2, column: 5 });
    }
}

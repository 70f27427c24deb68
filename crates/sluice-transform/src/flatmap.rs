//! `flatmap_filter` operations: `move`, `del` and `append` over dotted paths.
//!
//! A path segment `*` matches every element of an array (and every key of an object); a numeric
//! segment also indexes arrays (`collection.0.date`). Examples (conformance cases 34 and 35):
//! `move collection -> paths`, `del paths.*.i`, `move paths.*.path -> paths.*.url`.
//!
//! Where KrakenD's flatmap tree has surprising corners, these operations do the evident thing:
//! `move a.b -> c.d` really lands at `c.d` (KrakenD relabels it to `a.d`), missing intermediate objects
//! of a destination are created, and an object or array emptied by `del` stays `{}` / `[]` (KrakenD
//! turns it into `null`).

use serde_json::{Map, Value};
use sluice_config::FlatmapOp;

const WILDCARD: &str = "*";

/// Applies the operations in order. Compile them once with [`FlatmapFilter::new`] when applying the
/// same operations to many answers.
pub fn apply(ops: &[FlatmapOp], data: &mut Map<String, Value>) {
    FlatmapFilter::new(ops).apply(data);
}

/// Flatmap operations with their paths split on `.`, ready to apply to any number of answers.
#[derive(Debug, Clone, Default)]
pub struct FlatmapFilter {
    ops: Vec<Op>,
}

#[derive(Debug, Clone)]
enum Op {
    Move(Vec<String>, Vec<String>),
    Del(Vec<String>),
    Append(Vec<String>, Vec<String>),
}

/// One step of a concrete location in the data.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl Step {
    fn label(&self) -> String {
        match self {
            Step::Key(key) => key.clone(),
            Step::Index(index) => index.to_string(),
        }
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

impl FlatmapFilter {
    /// Compiles the operations.
    pub fn new(ops: &[FlatmapOp]) -> Self {
        let ops = ops
            .iter()
            .map(|op| match op {
                FlatmapOp::Move(from, to) => Op::Move(split(from), split(to)),
                FlatmapOp::Del(path) => Op::Del(split(path)),
                FlatmapOp::Append(from, to) => Op::Append(split(from), split(to)),
            })
            .collect();
        Self { ops }
    }

    /// True when there is no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Applies the operations in order to one answer.
    pub fn apply(&self, data: &mut Map<String, Value>) {
        for op in &self.ops {
            match op {
                Op::Move(from, to) => move_values(data, from, to),
                Op::Del(path) => delete(data, path),
                Op::Append(from, to) => append(data, from, to),
            }
        }
    }
}

/// Every concrete location matching `pattern`, in document order.
fn find(data: &Map<String, Value>, pattern: &[String]) -> Vec<Vec<Step>> {
    let mut found = Vec::new();
    let mut prefix = Vec::with_capacity(pattern.len());
    find_in_object(data, pattern, &mut prefix, &mut found);
    found
}

fn find_in_object(
    map: &Map<String, Value>,
    pattern: &[String],
    prefix: &mut Vec<Step>,
    found: &mut Vec<Vec<Step>>,
) {
    let Some((segment, rest)) = pattern.split_first() else {
        return;
    };
    if segment == WILDCARD {
        for (key, value) in map {
            prefix.push(Step::Key(key.clone()));
            visit(value, rest, prefix, found);
            prefix.pop();
        }
    } else if let Some(value) = map.get(segment) {
        prefix.push(Step::Key(segment.clone()));
        visit(value, rest, prefix, found);
        prefix.pop();
    }
}

fn visit(value: &Value, rest: &[String], prefix: &mut Vec<Step>, found: &mut Vec<Vec<Step>>) {
    if rest.is_empty() {
        found.push(prefix.clone());
        return;
    }
    match value {
        Value::Object(map) => find_in_object(map, rest, prefix, found),
        Value::Array(items) => {
            let (segment, tail) = (&rest[0], &rest[1..]);
            if segment == WILDCARD {
                for (index, item) in items.iter().enumerate() {
                    prefix.push(Step::Index(index));
                    visit(item, tail, prefix, found);
                    prefix.pop();
                }
            } else if let Some(index) = segment.parse::<usize>().ok().filter(|i| *i < items.len()) {
                prefix.push(Step::Index(index));
                visit(&items[index], tail, prefix, found);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn has_wildcard(path: &[String]) -> bool {
    path.iter().any(|segment| segment == WILDCARD)
}

fn get<'a>(data: &'a Map<String, Value>, path: &[Step]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let Step::Key(key) = first else { return None };
    let mut current = data.get(key)?;
    for step in rest {
        current = match (step, current) {
            (Step::Key(key), Value::Object(map)) => map.get(key)?,
            (Step::Index(index), Value::Array(items)) => items.get(*index)?,
            _ => return None,
        };
    }
    Some(current)
}

fn get_mut<'a>(data: &'a mut Map<String, Value>, path: &[Step]) -> Option<&'a mut Value> {
    let (first, rest) = path.split_first()?;
    let Step::Key(key) = first else { return None };
    let mut current = data.get_mut(key)?;
    for step in rest {
        current = match (step, current) {
            (Step::Key(key), Value::Object(map)) => map.get_mut(key)?,
            (Step::Index(index), Value::Array(items)) => items.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Removes the value at a concrete location (an array element is taken out, shifting the rest).
fn remove(data: &mut Map<String, Value>, path: &[Step]) -> Option<Value> {
    let (last, parent_path) = path.split_last()?;
    if parent_path.is_empty() {
        return match last {
            Step::Key(key) => data.remove(key),
            Step::Index(_) => None,
        };
    }
    match (get_mut(data, parent_path)?, last) {
        (Value::Object(map), Step::Key(key)) => map.remove(key),
        (Value::Array(items), Step::Index(index)) if *index < items.len() => {
            Some(items.remove(*index))
        }
        _ => None,
    }
}

/// Inserts a value at a path, creating missing (or replacing scalar) intermediate objects. A numeric
/// segment inside an array addresses an element (the one past the end appends). Returns the value
/// back when the path runs through an array by a non-numeric segment.
fn insert(data: &mut Map<String, Value>, path: &[String], value: Value) -> Result<(), Value> {
    let Some((first, rest)) = path.split_first() else {
        return Err(value);
    };
    if rest.is_empty() {
        data.insert(first.clone(), value);
        return Ok(());
    }
    let mut current = data
        .entry(first.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    for (position, segment) in rest.iter().enumerate() {
        let last = position + 1 == rest.len();
        if let Value::Array(items) = current {
            let Some(index) = segment.parse::<usize>().ok().filter(|i| *i <= items.len()) else {
                return Err(value);
            };
            if last {
                if index == items.len() {
                    items.push(value);
                } else {
                    items[index] = value;
                }
                return Ok(());
            }
            if index == items.len() {
                items.push(Value::Object(Map::new()));
            }
            current = &mut items[index];
            continue;
        }
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let Value::Object(map) = current else {
            return Err(value);
        };
        if last {
            map.insert(segment.clone(), value);
            return Ok(());
        }
        current = map
            .entry(segment.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Err(value)
}

/// `move`: every value matching `from` goes to `to`, a `*` of `to` taking the label matched at the
/// same position of `from` (so `a.*.b -> a.*.c` renames inside every element).
fn move_values(data: &mut Map<String, Value>, from: &[String], to: &[String]) {
    let mut plans = Vec::new();
    for location in find(data, from) {
        let destination: Option<Vec<String>> = to
            .iter()
            .enumerate()
            .map(|(i, segment)| {
                if segment == WILDCARD {
                    location.get(i).map(Step::label)
                } else {
                    Some(segment.clone())
                }
            })
            .collect();
        if let Some(destination) = destination {
            plans.push((location, destination));
        }
    }
    // Take the values out last-first so array indices of earlier matches stay valid.
    let mut taken = Vec::with_capacity(plans.len());
    for (location, destination) in plans.into_iter().rev() {
        if let Some(value) = remove(data, &location) {
            taken.push((location, destination, value));
        }
    }
    for (location, destination, value) in taken.into_iter().rev() {
        if let Err(value) = insert(data, &destination, value) {
            // The destination cannot hold it: leave the value where it was.
            put_back(data, &location, value);
        }
    }
}

fn put_back(data: &mut Map<String, Value>, location: &[Step], value: Value) {
    let Some((last, parent_path)) = location.split_last() else {
        return;
    };
    let parent = if parent_path.is_empty() {
        if let Step::Key(key) = last {
            data.insert(key.clone(), value);
        }
        return;
    } else {
        get_mut(data, parent_path)
    };
    match (parent, last) {
        (Some(Value::Object(map)), Step::Key(key)) => {
            map.insert(key.clone(), value);
        }
        (Some(Value::Array(items)), Step::Index(index)) => {
            let index = (*index).min(items.len());
            items.insert(index, value);
        }
        _ => {}
    }
}

/// `del`: removes every value matching the path.
fn delete(data: &mut Map<String, Value>, path: &[String]) {
    for location in find(data, path).into_iter().rev() {
        remove(data, &location);
    }
}

/// `append`: the array at `from` is appended to the array at `to`, then `from` is removed. With `*` in
/// `from`, the matched values (one element each) are appended. Nothing happens unless both are arrays.
fn append(data: &mut Map<String, Value>, from: &[String], to: &[String]) {
    if has_wildcard(to) {
        return;
    }
    let Some(destination) = find(data, to).pop() else {
        return;
    };
    if !matches!(get(data, &destination), Some(Value::Array(_))) {
        return;
    }
    let sources = find(data, from);
    if sources.is_empty() {
        return;
    }
    // A source that contains the destination would take it away.
    if sources
        .iter()
        .any(|source| destination.starts_with(source) && *source != destination)
    {
        return;
    }
    let items: Vec<Value> = if has_wildcard(from) {
        sources
            .iter()
            .filter_map(|source| get(data, source).cloned())
            .collect()
    } else {
        match get(data, &sources[0]) {
            Some(Value::Array(items)) => items.clone(),
            _ => return,
        }
    };
    for source in sources.iter().rev() {
        if *source != destination {
            remove(data, source);
        }
    }
    // Removing an earlier array element may have shifted the destination; find it again.
    if let Some(Value::Array(target)) = find(data, to).pop().and_then(|d| get_mut(data, &d)) {
        target.extend(items);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn run(ops: &[FlatmapOp], data: Value) -> Value {
        let Value::Object(mut map) = data else {
            panic!("not an object")
        };
        apply(ops, &mut map);
        Value::Object(map)
    }

    fn mv(a: &str, b: &str) -> FlatmapOp {
        FlatmapOp::Move(a.to_owned(), b.to_owned())
    }

    fn del(a: &str) -> FlatmapOp {
        FlatmapOp::Del(a.to_owned())
    }

    fn app(a: &str, b: &str) -> FlatmapOp {
        FlatmapOp::Append(a.to_owned(), b.to_owned())
    }

    #[test]
    fn case_34_flatmap_on_collection() {
        let items: Vec<Value> = (0..10)
            .map(|i| json!({"path": "/collection/2", "i": i}))
            .collect();
        let data = json!({ "collection": items });
        let out = run(
            &[
                mv("collection", "paths"),
                del("paths.*.i"),
                mv("paths.*.path", "paths.*.url"),
            ],
            data,
        );
        let Value::Object(map) = out else { panic!() };
        assert_eq!(
            String::from_utf8(crate::render::to_json(&map)).unwrap(),
            format!(
                "{{\"paths\":[{}]}}",
                [r#"{"url":"/collection/2"}"#; 10].join(",")
            )
        );
    }

    fn posts() -> Value {
        json!({"collection": [
            {"body": "some content", "date": "123456789"},
            {"body": "some other content", "date": "123496789"}
        ]})
    }

    #[test]
    fn case_35_flatmap_del() {
        assert_eq!(
            run(&[del("collection.*.date")], posts()),
            json!({"collection": [{"body": "some content"}, {"body": "some other content"}]})
        );
    }

    #[test]
    fn case_35_flatmap_rename() {
        assert_eq!(
            run(
                &[mv("collection.*.date", "collection.*.created_at")],
                posts()
            ),
            json!({"collection": [
                {"body": "some content", "created_at": "123456789"},
                {"body": "some other content", "created_at": "123496789"}
            ]})
        );
    }

    #[test]
    fn move_relocates() {
        let data = json!({"a": {"b": 1, "c": 2}, "d": 3});
        assert_eq!(
            run(&[mv("a.b", "x.y.z")], data.clone()),
            json!({"a": {"c": 2}, "d": 3, "x": {"y": {"z": 1}}})
        );
        assert_eq!(
            run(&[mv("a.b", "c.d")], data.clone()),
            json!({"a": {"c": 2}, "c": {"d": 1}, "d": 3})
        );
        assert_eq!(
            run(&[mv("a.c", "top")], data.clone()),
            json!({"a": {"b": 1}, "d": 3, "top": 2})
        );
        assert_eq!(
            run(&[mv("d", "a.d")], data.clone()),
            json!({"a": {"b": 1, "c": 2, "d": 3}})
        );
        assert_eq!(
            run(&[mv("a", "a.inner")], data.clone()),
            json!({"a": {"inner": {"b": 1, "c": 2}}, "d": 3})
        );
        assert_eq!(run(&[mv("missing", "x")], data.clone()), data);
        assert_eq!(run(&[mv("d", "d")], data.clone()), data);
        // A scalar in the way becomes an object.
        assert_eq!(
            run(&[mv("a.b", "d.e")], data),
            json!({"a": {"c": 2}, "d": {"e": 1}})
        );
    }

    #[test]
    fn move_array_elements() {
        let data = json!({"a": [1, 2, 3], "b": [[1, 2], [3]]});
        assert_eq!(
            run(&[mv("a.0", "first")], data.clone()),
            json!({"a": [2, 3], "b": [[1, 2], [3]], "first": 1})
        );
        assert_eq!(
            run(&[mv("a.*", "x.*")], data.clone()),
            json!({"a": [], "b": [[1, 2], [3]], "x": {"0": 1, "1": 2, "2": 3}})
        );
        assert_eq!(
            run(&[mv("b.*.0", "b.*.1")], data),
            json!({"a": [1, 2, 3], "b": [[2, 1], [3]]})
        );
    }

    #[test]
    fn move_into_array_by_name_keeps_value() {
        let data = json!({"a": [1], "b": 2});
        assert_eq!(run(&[mv("b", "a.name")], data.clone()), data);
    }

    #[test]
    fn wildcard_without_counterpart_is_skipped() {
        let data = json!({"a": 1});
        assert_eq!(run(&[mv("a", "x.*")], data.clone()), data);
    }

    #[test]
    fn del_variants() {
        let data = json!({"a": {"b": 1}, "l": [{"x": 1, "y": 2}, {"x": 3}], "o": {"p": {"q": 1}, "r": {"q": 2, "s": 3}}});
        assert_eq!(run(&[del("a.b")], data.clone())["a"], json!({}));
        assert_eq!(run(&[del("l.*")], data.clone())["l"], json!([]));
        assert_eq!(run(&[del("l.0")], data.clone())["l"], json!([{"x": 3}]));
        assert_eq!(
            run(&[del("o.*.q")], data.clone())["o"],
            json!({"p": {}, "r": {"s": 3}})
        );
        assert_eq!(run(&[del("nope.x"), del("a.b.c")], data.clone()), data);
        assert_eq!(run(&[del("a"), del("l"), del("o")], data), json!({}));
    }

    #[test]
    fn append_arrays() {
        let data = json!({"a": [1, 2], "b": [3], "s": "x", "n": {"c": [4]}});
        assert_eq!(
            run(&[app("a", "b")], data.clone()),
            json!({"b": [3, 1, 2], "s": "x", "n": {"c": [4]}})
        );
        assert_eq!(
            run(&[app("n.c", "a")], data.clone()),
            json!({"a": [1, 2, 4], "b": [3], "s": "x", "n": {}})
        );
        assert_eq!(run(&[app("s", "a")], data.clone()), data);
        assert_eq!(run(&[app("a", "s")], data.clone()), data);
        assert_eq!(run(&[app("missing", "a")], data.clone()), data);
        assert_eq!(
            run(&[app("a", "a")], data.clone())["a"],
            json!([1, 2, 1, 2])
        );
        assert_eq!(run(&[app("a", "x.*")], data.clone()), data);
    }

    #[test]
    fn append_with_wildcard_source() {
        let data = json!({"items": [{"t": [1]}, {"t": [2, 3]}], "all": []});
        assert_eq!(
            run(&[app("items.*.t", "all")], data),
            json!({"items": [{}, {}], "all": [[1], [2, 3]]})
        );
    }

    #[test]
    fn append_source_containing_destination_is_ignored() {
        let data = json!({"a": {"b": [1]}});
        assert_eq!(run(&[app("a", "a.b")], data.clone()), data);
    }

    #[test]
    fn filter_reuse_and_empty() {
        let filter = FlatmapFilter::new(&[del("x")]);
        assert!(!filter.is_empty());
        assert!(FlatmapFilter::new(&[]).is_empty());
        for _ in 0..2 {
            let mut map = Map::new();
            map.insert("x".to_owned(), json!(1));
            map.insert("y".to_owned(), json!(2));
            filter.apply(&mut map);
            assert_eq!(Value::Object(map), json!({"y": 2}));
        }
    }

    #[test]
    fn wildcard_over_object_keys() {
        let data = json!({"u": {"a": {"id": 1, "pw": "x"}, "b": {"id": 2, "pw": "y"}}});
        assert_eq!(
            run(&[del("u.*.pw")], data),
            json!({"u": {"a": {"id": 1}, "b": {"id": 2}}})
        );
    }
}

//! Per-backend response manipulation (KrakenD's entity formatter): `target`, `allow` / `deny`,
//! `mapping`, `group`, and `flatmap_filter`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sluice_config::{Backend, FlatmapOp};

use crate::flatmap::FlatmapFilter;

/// The manipulations of one backend, compiled once (paths split on `.`) and applied to every answer.
///
/// Order: `target` -> `allow` (when non-empty; `deny` is then ignored) or `deny` -> `mapping` -> `group`.
/// Non-empty flatmap operations replace `allow` / `deny` / `mapping`; `target` and `group` still apply.
#[derive(Debug, Clone)]
pub struct EntityFormatter {
    target: Vec<String>,
    filter: Filter,
    /// `(from, to)` pairs, `to` cut at its first `.`.
    mapping: Vec<(String, String)>,
    group: Option<String>,
}

#[derive(Debug, Clone)]
enum Filter {
    None,
    Allow(BTreeMap<String, PathNode>),
    Deny(BTreeMap<String, PathNode>),
    Flatmap(FlatmapFilter),
}

/// A node of a compiled list of dotted paths (`allow` or `deny`).
#[derive(Debug, Clone)]
enum PathNode {
    /// The path ends here: the whole value (kept by allow, removed by deny).
    Whole,
    /// The path goes on into these keys of the object.
    Inside(BTreeMap<String, PathNode>),
}

impl EntityFormatter {
    /// Compiles the manipulations of a backend. Empty strings in `target` and `group` mean none.
    pub fn new(
        target: Option<&str>,
        allow: &[String],
        deny: &[String],
        mapping: &BTreeMap<String, String>,
        group: Option<&str>,
        flatmap: &[FlatmapOp],
    ) -> Self {
        let target = match target {
            Some(t) if !t.is_empty() => t.split('.').map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        let group = group.filter(|g| !g.is_empty()).map(str::to_owned);
        if !flatmap.is_empty() {
            return Self {
                target,
                filter: Filter::Flatmap(FlatmapFilter::new(flatmap)),
                mapping: Vec::new(),
                group,
            };
        }
        let filter = if !allow.is_empty() {
            Filter::Allow(build_tree(allow))
        } else if !deny.is_empty() {
            Filter::Deny(build_tree(deny))
        } else {
            Filter::None
        };
        let mapping = mapping
            .iter()
            .map(|(from, to)| {
                let to = to.split('.').next().unwrap_or(to);
                (from.clone(), to.to_owned())
            })
            .collect();
        Self {
            target,
            filter,
            mapping,
            group,
        }
    }

    /// Compiles the manipulations configured on a backend.
    pub fn for_backend(backend: &Backend) -> Self {
        Self::new(
            backend.target.as_deref(),
            &backend.allow,
            &backend.deny,
            &backend.mapping,
            backend.group.as_deref(),
            &backend.flatmap_filter,
        )
    }

    /// True when formatting leaves every answer unchanged (the pipeline can skip it).
    pub fn is_identity(&self) -> bool {
        self.grouping_only() == Some(None)
    }

    /// `Some(group)` when the only manipulation is `group` (or none, `Some(None)`): the
    /// answer's JSON text can be written straight from the body
    /// ([`crate::decode::json_text`]).
    pub fn grouping_only(&self) -> Option<Option<&str>> {
        let only = self.target.is_empty()
            && matches!(self.filter, Filter::None)
            && self.mapping.is_empty();
        only.then_some(self.group.as_deref())
    }

    /// Applies the manipulations to one answer.
    pub fn format(&self, mut data: Map<String, Value>) -> Map<String, Value> {
        if !self.target.is_empty() {
            data = extract_target(data, &self.target);
        }
        match &self.filter {
            Filter::None => {}
            Filter::Allow(tree) => {
                allow(tree, &mut data);
            }
            Filter::Deny(tree) => deny(tree, &mut data),
            Filter::Flatmap(filter) => filter.apply(&mut data),
        }
        if !self.mapping.is_empty() && !data.is_empty() {
            rename(&self.mapping, &mut data);
        }
        if let Some(group) = &self.group {
            let mut grouped = Map::new();
            grouped.insert(group.clone(), Value::Object(data));
            data = grouped;
        }
        data
    }
}

/// `target`: the data becomes the object at the path; `{}` when it is missing or not an object.
fn extract_target(mut data: Map<String, Value>, path: &[String]) -> Map<String, Value> {
    for key in path {
        match data.remove(key) {
            Some(Value::Object(inner)) => data = inner,
            _ => return Map::new(),
        }
    }
    data
}

/// Builds the tree of dotted paths. A path that ends at a key covers all of it, so longer paths
/// below that key are redundant (for allow, KrakenD would let the last listed one win).
fn build_tree(paths: &[String]) -> BTreeMap<String, PathNode> {
    let mut root = BTreeMap::new();
    for path in paths {
        let mut level = &mut root;
        let mut segments = path.split('.').peekable();
        while let Some(segment) = segments.next() {
            if segments.peek().is_none() {
                level.insert(segment.to_owned(), PathNode::Whole);
                break;
            }
            let node = level
                .entry(segment.to_owned())
                .or_insert_with(|| PathNode::Inside(BTreeMap::new()));
            match node {
                PathNode::Whole => break,
                PathNode::Inside(children) => level = children,
            }
        }
    }
    root
}

/// Keeps only the allowed keys (in place); an object under a partial path survives only if something
/// in it does.
fn allow(tree: &BTreeMap<String, PathNode>, data: &mut Map<String, Value>) {
    data.retain(|key, value| match (tree.get(key), value) {
        (None, _) => false,
        (Some(PathNode::Whole), _) => true,
        (Some(PathNode::Inside(children)), Value::Object(inner)) => {
            allow(children, inner);
            !inner.is_empty()
        }
        // Arrays and scalars are not traversed: a sub-path below them removes them.
        (Some(PathNode::Inside(_)), _) => false,
    });
}

/// Removes the denied paths; arrays are not traversed, missing paths are ignored.
fn deny(tree: &BTreeMap<String, PathNode>, data: &mut Map<String, Value>) {
    for (key, node) in tree {
        match node {
            PathNode::Whole => {
                data.remove(key);
            }
            PathNode::Inside(children) => {
                if let Some(Value::Object(inner)) = data.get_mut(key) {
                    deny(children, inner);
                }
            }
        }
    }
}

/// `mapping`: top-level renames, all at once (so `a->b, b->c` moves both values). KrakenD renames one
/// after the other in random order, and `{"a":"a"}` would delete `a` there.
fn rename(mapping: &[(String, String)], data: &mut Map<String, Value>) {
    if let [(from, to)] = mapping {
        if let Some(value) = data.remove(from) {
            data.insert(to.clone(), value);
        }
        return;
    }
    let taken: Vec<(&String, Value)> = mapping
        .iter()
        .filter_map(|(from, to)| data.remove(from).map(|value| (to, value)))
        .collect();
    for (to, value) in taken {
        data.insert(to.clone(), value);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn mapping(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    struct Spec<'a> {
        target: Option<&'a str>,
        allow: &'a [&'a str],
        deny: &'a [&'a str],
        mapping: &'a [(&'a str, &'a str)],
        group: Option<&'a str>,
        flatmap: &'a [FlatmapOp],
    }

    const NONE: Spec<'static> = Spec {
        target: None,
        allow: &[],
        deny: &[],
        mapping: &[],
        group: None,
        flatmap: &[],
    };

    fn run(spec: Spec<'_>, data: Value) -> Value {
        let formatter = EntityFormatter::new(
            spec.target,
            &strings(spec.allow),
            &strings(spec.deny),
            &mapping(spec.mapping),
            spec.group,
            spec.flatmap,
        );
        Value::Object(formatter.format(obj(data)))
    }

    fn sample() -> Value {
        json!({
            "supu": 42,
            "tupu": false,
            "foo": "bar",
            "a": {"b": true, "c": {"d": 1, "e": [1, 2], "f": {"g": "h"}}, "x": null},
            "list": [{"id": 1, "name": "n1"}, {"id": 2, "name": "n2"}]
        })
    }

    #[test]
    fn identity() {
        let formatter = EntityFormatter::new(None, &[], &[], &BTreeMap::new(), Some(""), &[]);
        assert!(formatter.is_identity());
        assert_eq!(Value::Object(formatter.format(obj(sample()))), sample());
    }

    #[test]
    fn target() {
        assert_eq!(
            run(
                Spec {
                    target: Some("a.c"),
                    ..NONE
                },
                sample()
            ),
            json!({"d": 1, "e": [1, 2], "f": {"g": "h"}})
        );
        assert_eq!(
            run(
                Spec {
                    target: Some("a.b"),
                    ..NONE
                },
                sample()
            ),
            json!({})
        );
        assert_eq!(
            run(
                Spec {
                    target: Some("nope"),
                    ..NONE
                },
                sample()
            ),
            json!({})
        );
        assert_eq!(
            run(
                Spec {
                    target: Some("list"),
                    ..NONE
                },
                sample()
            ),
            json!({})
        );
        assert_eq!(
            run(
                Spec {
                    target: Some(""),
                    ..NONE
                },
                sample()
            ),
            sample()
        );
    }

    #[test]
    fn allow_top_level_and_nested() {
        assert_eq!(
            run(
                Spec {
                    allow: &["supu", "a.c.d", "a.c.f.g", "missing"],
                    ..NONE
                },
                sample()
            ),
            json!({"supu": 42, "a": {"c": {"d": 1, "f": {"g": "h"}}}})
        );
    }

    #[test]
    fn allow_does_not_traverse_arrays() {
        assert_eq!(
            run(
                Spec {
                    allow: &["list.id"],
                    ..NONE
                },
                sample()
            ),
            json!({})
        );
        assert_eq!(
            run(
                Spec {
                    allow: &["list", "a.c.e.0"],
                    ..NONE
                },
                sample()
            ),
            json!({"list": [{"id": 1, "name": "n1"}, {"id": 2, "name": "n2"}]})
        );
    }

    #[test]
    fn allow_nothing_survives() {
        assert_eq!(
            run(
                Spec {
                    allow: &["zzz", "a.zzz"],
                    ..NONE
                },
                sample()
            ),
            json!({})
        );
        // An object whose allowed sub-keys are all missing goes too.
        assert_eq!(
            run(
                Spec {
                    allow: &["a.c.zzz", "foo"],
                    ..NONE
                },
                sample()
            ),
            json!({"foo": "bar"})
        );
    }

    #[test]
    fn allow_whole_key_wins_over_sub_path() {
        let whole = json!({"b": true, "c": {"d": 1, "e": [1, 2], "f": {"g": "h"}}, "x": null});
        assert_eq!(
            run(
                Spec {
                    allow: &["a", "a.b"],
                    ..NONE
                },
                sample()
            ),
            json!({"a": whole})
        );
        assert_eq!(
            run(
                Spec {
                    allow: &["a.b", "a"],
                    ..NONE
                },
                sample()
            ),
            json!({"a": whole})
        );
    }

    #[test]
    fn allow_ignores_deny() {
        assert_eq!(
            run(
                Spec {
                    allow: &["foo"],
                    deny: &["foo"],
                    ..NONE
                },
                sample()
            ),
            json!({"foo": "bar"})
        );
    }

    #[test]
    fn deny() {
        assert_eq!(
            run(
                Spec {
                    deny: &[
                        "supu",
                        "a.c.d",
                        "a.c.f.g",
                        "a.c.f.g.h",
                        "list.id",
                        "no.such"
                    ],
                    ..NONE
                },
                sample()
            ),
            json!({
                "tupu": false, "foo": "bar",
                "a": {"b": true, "c": {"e": [1, 2], "f": {}}, "x": null},
                "list": [{"id": 1, "name": "n1"}, {"id": 2, "name": "n2"}]
            })
        );
        assert_eq!(
            run(
                Spec {
                    deny: &["a.c.d", "a"],
                    ..NONE
                },
                sample()
            ),
            json!({"supu": 42, "tupu": false, "foo": "bar",
                   "list": [{"id": 1, "name": "n1"}, {"id": 2, "name": "n2"}]})
        );
    }

    #[test]
    fn deny_case_53() {
        // `/__debug` answers {"message":"pong"}; deny [message] leaves {} (static data is added later).
        assert_eq!(
            run(
                Spec {
                    deny: &["message"],
                    ..NONE
                },
                json!({"message": "pong"})
            ),
            json!({})
        );
    }

    #[test]
    fn mapping_renames() {
        assert_eq!(
            run(
                Spec {
                    mapping: &[("supu", "SUPU"), ("missing", "x"), ("foo", "bar.ignored")],
                    ..NONE
                },
                json!({"supu": 1, "foo": 2, "tupu": 3})
            ),
            json!({"SUPU": 1, "bar": 2, "tupu": 3})
        );
        // Renames happen together, and a self-rename keeps the key.
        assert_eq!(
            run(
                Spec {
                    mapping: &[("a", "b"), ("b", "c"), ("d", "d")],
                    ..NONE
                },
                json!({"a": 1, "b": 2, "d": 4})
            ),
            json!({"b": 1, "c": 2, "d": 4})
        );
        // Only top-level keys are renamed.
        assert_eq!(
            run(
                Spec {
                    mapping: &[("a.b", "z")],
                    ..NONE
                },
                json!({"a": {"b": 1}})
            ),
            json!({"a": {"b": 1}})
        );
    }

    #[test]
    fn group() {
        assert_eq!(
            run(
                Spec {
                    group: Some("g"),
                    ..NONE
                },
                json!({"a": 1})
            ),
            json!({"g": {"a": 1}})
        );
        assert_eq!(
            run(
                Spec {
                    group: Some("g"),
                    ..NONE
                },
                json!({})
            ),
            json!({"g": {}})
        );
    }

    #[test]
    fn full_order() {
        let out = run(
            Spec {
                target: Some("a"),
                allow: &["c.d", "b"],
                mapping: &[("c", "cc")],
                group: Some("grp"),
                ..NONE
            },
            sample(),
        );
        assert_eq!(out, json!({"grp": {"b": true, "cc": {"d": 1}}}));
    }

    #[test]
    fn flatmap_replaces_filters_but_not_target_and_group() {
        let ops = [
            FlatmapOp::Del("c.e".to_owned()),
            FlatmapOp::Move("b".to_owned(), "bb".to_owned()),
        ];
        let out = run(
            Spec {
                target: Some("a"),
                allow: &["zzz"],
                deny: &["b"],
                mapping: &[("x", "y")],
                group: Some("g"),
                flatmap: &ops,
            },
            sample(),
        );
        assert_eq!(
            out,
            json!({"g": {"bb": true, "c": {"d": 1, "f": {"g": "h"}}, "x": null}})
        );
    }

    #[test]
    fn case_32_collection_mapping_and_allow() {
        let items: Vec<Value> = (0..10)
            .map(|i| json!({"path": "/collection/2", "i": i}))
            .collect();
        let collection = crate::decode::decode(
            sluice_config::Encoding::Json,
            true,
            serde_json::to_string(&items).unwrap().as_bytes(),
        )
        .unwrap();
        let a = EntityFormatter::new(
            None,
            &[],
            &[],
            &mapping(&[("collection", "posts")]),
            None,
            &[],
        );
        let b = EntityFormatter::new(None, &strings(&["foo"]), &[], &BTreeMap::new(), None, &[]);
        let echo =
            obj(json!({"foo": 42, "path": "/param_forwarding/2", "query": {}, "headers": {}}));
        let mut merged = b.format(echo);
        crate::merge::merge_into(&mut merged, a.format(collection));
        assert_eq!(
            String::from_utf8(crate::render::to_json(&merged)).unwrap(),
            r#"{"foo":42,"posts":[{"i":0,"path":"/collection/2"},{"i":1,"path":"/collection/2"},{"i":2,"path":"/collection/2"},{"i":3,"path":"/collection/2"},{"i":4,"path":"/collection/2"},{"i":5,"path":"/collection/2"},{"i":6,"path":"/collection/2"},{"i":7,"path":"/collection/2"},{"i":8,"path":"/collection/2"},{"i":9,"path":"/collection/2"}]}"#
        );
    }

    #[test]
    fn case_33_combination() {
        let b2 = EntityFormatter::new(
            None,
            &[],
            &[],
            &mapping(&[("collection", "posts")]),
            None,
            &[],
        );
        let b3 = EntityFormatter::new(
            None,
            &[],
            &[],
            &mapping(&[("email", "personal_email")]),
            None,
            &[],
        );
        let posts = crate::decode::decode(
            sluice_config::Encoding::Json,
            true,
            br#"[{"body":"some content","date":"123456789"},{"body":"some other content","date":"123496789"}]"#,
        )
        .unwrap();
        let user = obj(json!({"name": "a", "email": "some@email.com"}));
        let mut merged = b3.format(user);
        crate::merge::merge_into(&mut merged, b2.format(posts));
        assert_eq!(
            String::from_utf8(crate::render::to_json(&merged)).unwrap(),
            r#"{"name":"a","personal_email":"some@email.com","posts":[{"body":"some content","date":"123456789"},{"body":"some other content","date":"123496789"}]}"#
        );
    }
}

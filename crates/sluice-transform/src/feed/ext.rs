//! Feed extensions (elements in a namespace other than the feed's own), kept as gofeed keeps
//! them: by canonical prefix, then by element name, each with its value, attributes and
//! children; and the Dublin Core and iTunes views built from them.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::xml::{Cursor, Ev, Tag};
use crate::decode::DecodeError;

/// One extension element.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extension {
    name: String,
    value: String,
    attrs: BTreeMap<String, String>,
    children: BTreeMap<String, Vec<Extension>>,
}

/// prefix -> element name -> elements.
pub(crate) type Extensions = BTreeMap<String, BTreeMap<String, Vec<Extension>>>;

impl Extension {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "value": self.value,
            "attrs": self.attrs,
            "children": self.children.iter()
                .map(|(k, v)| (k.clone(), Value::Array(v.iter().map(Extension::to_json).collect())))
                .collect::<Map<String, Value>>(),
        })
    }
}

/// The JSON of an extension map.
pub(crate) fn extensions_json(extensions: &Extensions) -> Value {
    Value::Object(
        extensions
            .iter()
            .map(|(prefix, elements)| {
                let elements = elements
                    .iter()
                    .map(|(name, list)| {
                        (
                            name.clone(),
                            Value::Array(list.iter().map(Extension::to_json).collect()),
                        )
                    })
                    .collect();
                (prefix.clone(), Value::Object(elements))
            })
            .collect(),
    )
}

/// gofeed's `IsExtension`: an element whose namespace is declared with a prefix other than
/// none, `rss`, `rdf` or `content`, or an element in an undeclared namespace.
pub(crate) fn is_extension(tag: &Tag, spaces: &HashMap<String, String>) -> bool {
    match spaces.get(tag.space.trim()) {
        Some(prefix) => !matches!(prefix.as_str(), "" | "rss" | "rdf" | "content"),
        None => !tag.space.is_empty(),
    }
}

/// The prefix of the content namespace when `tag` is in it (`content:encoded`).
pub(crate) fn declared_prefix<'s>(
    tag: &Tag,
    spaces: &'s HashMap<String, String>,
) -> Option<&'s str> {
    spaces.get(tag.space.trim()).map(String::as_str)
}

/// Reads the extension element `tag` (just opened) into `extensions`.
pub(crate) fn parse_extension(
    cursor: &mut Cursor<'_>,
    tag: &Tag,
    extensions: &mut Extensions,
) -> Result<(), DecodeError> {
    let prefix = prefix_for_namespace(&tag.space, cursor.spaces());
    let element = parse_element(cursor, tag)?;
    extensions
        .entry(prefix)
        .or_default()
        .entry(tag.name.clone())
        .or_default()
        .push(element);
    Ok(())
}

fn parse_element(cursor: &mut Cursor<'_>, tag: &Tag) -> Result<Extension, DecodeError> {
    let mut element = Extension {
        name: tag.name.clone(),
        attrs: tag.attrs.iter().cloned().collect(),
        ..Extension::default()
    };
    loop {
        match cursor.next()? {
            Ev::Start(child) => {
                let parsed = parse_element(cursor, &child)?;
                element
                    .children
                    .entry(child.name.clone())
                    .or_default()
                    .push(parsed);
            }
            Ev::Text(text) => element.value.push_str(&text),
            Ev::End => break,
            Ev::Eof => {
                return Err(DecodeError::InvalidFeed {
                    reason: "the document ends inside an extension element".to_owned(),
                });
            }
        }
    }
    element.value = element.value.trim().to_owned();
    Ok(element)
}

fn prefix_for_namespace(space: &str, spaces: &HashMap<String, String>) -> String {
    if let Some((_, prefix)) = CANONICAL_NAMESPACES.iter().find(|(ns, _)| *ns == space) {
        return (*prefix).to_owned();
    }
    spaces
        .get(space)
        .cloned()
        .unwrap_or_else(|| space.to_owned())
}

/// Canonical prefixes of well-known extension namespaces (the list gofeed takes from
/// feedparser): they win over the prefix a feed declares.
const CANONICAL_NAMESPACES: &[(&str, &str)] = &[
    ("http://webns.net/mvcb/", "admin"),
    ("http://purl.org/rss/1.0/modules/aggregation/", "ag"),
    ("http://purl.org/rss/1.0/modules/annotate/", "annotate"),
    ("http://media.tangent.org/rss/1.0/", "audio"),
    (
        "http://backend.userland.com/blogChannelModule",
        "blogChannel",
    ),
    ("http://creativecommons.org/ns#license", "cc"),
    ("http://web.resource.org/cc/", "cc"),
    (
        "http://cyber.law.harvard.edu/rss/creativeCommonsRssModule.html",
        "creativeCommons",
    ),
    (
        "http://backend.userland.com/creativeCommonsRssModule",
        "creativeCommons",
    ),
    ("http://purl.org/rss/1.0/modules/company", "co"),
    ("http://purl.org/rss/1.0/modules/content/", "content"),
    ("http://my.theinfo.org/changed/1.0/rss/", "cp"),
    ("http://purl.org/dc/elements/1.1/", "dc"),
    ("http://purl.org/dc/terms/", "dcterms"),
    ("http://purl.org/rss/1.0/modules/email/", "email"),
    ("http://purl.org/rss/1.0/modules/event/", "ev"),
    ("http://rssnamespace.org/feedburner/ext/1.0", "feedburner"),
    ("http://freshmeat.net/rss/fm/", "fm"),
    ("http://xmlns.com/foaf/0.1/", "foaf"),
    ("http://www.w3.org/2003/01/geo/wgs84_pos#", "geo"),
    ("http://www.georss.org/georss", "georss"),
    ("http://www.opengis.net/gml", "gml"),
    ("http://postneo.com/icbm/", "icbm"),
    ("http://purl.org/rss/1.0/modules/image/", "image"),
    ("http://www.itunes.com/DTDs/PodCast-1.0.dtd", "itunes"),
    ("http://example.com/DTDs/PodCast-1.0.dtd", "itunes"),
    ("http://purl.org/rss/1.0/modules/link/", "l"),
    ("http://search.yahoo.com/mrss", "media"),
    ("http://search.yahoo.com/mrss/", "media"),
    (
        "http://madskills.com/public/xml/rss/module/pingback/",
        "pingback",
    ),
    ("http://prismstandard.org/namespaces/1.2/basic/", "prism"),
    ("http://www.w3.org/1999/02/22-rdf-syntax-ns#", "rdf"),
    ("http://www.w3.org/2000/01/rdf-schema#", "rdfs"),
    ("http://purl.org/rss/1.0/modules/reference/", "ref"),
    ("http://purl.org/rss/1.0/modules/richequiv/", "reqv"),
    ("http://purl.org/rss/1.0/modules/search/", "search"),
    ("http://purl.org/rss/1.0/modules/slash/", "slash"),
    ("http://schemas.xmlsoap.org/soap/envelope/", "soap"),
    ("http://purl.org/rss/1.0/modules/servicestatus/", "ss"),
    ("http://hacks.benhammersley.com/rss/streaming/", "str"),
    ("http://purl.org/rss/1.0/modules/subscription/", "sub"),
    ("http://purl.org/rss/1.0/modules/syndication/", "sy"),
    ("http://schemas.pocketsoap.com/rss/myDescModule/", "szf"),
    ("http://purl.org/rss/1.0/modules/taxonomy/", "taxo"),
    ("http://purl.org/rss/1.0/modules/threading/", "thr"),
    ("http://purl.org/rss/1.0/modules/textinput/", "ti"),
    (
        "http://madskills.com/public/xml/rss/module/trackback/",
        "trackback",
    ),
    ("http://wellformedweb.org/commentAPI/", "wfw"),
    ("http://purl.org/rss/1.0/modules/wiki/", "wiki"),
    ("http://www.w3.org/1999/xhtml", "xhtml"),
    ("http://www.w3.org/1999/xlink", "xlink"),
    ("http://www.w3.org/XML/1998/namespace", "xml"),
    ("http://podlove.org/simple-chapters", "psc"),
];

/// The first value of `name` among `elements`.
pub(crate) fn first_value(
    elements: Option<&BTreeMap<String, Vec<Extension>>>,
    name: &str,
) -> Option<String> {
    elements?.get(name)?.first().map(|e| e.value.clone())
}

/// Every value of `name` among `elements`, `None` when there is none.
pub(crate) fn all_values(
    elements: Option<&BTreeMap<String, Vec<Extension>>>,
    name: &str,
) -> Option<Vec<String>> {
    let list = elements?.get(name).filter(|l| !l.is_empty())?;
    Some(list.iter().map(|e| e.value.clone()).collect())
}

/// Dublin Core (`dc`) fields, each a list of values.
pub(crate) const DUBLIN_CORE_FIELDS: [&str; 16] = [
    "title",
    "creator",
    "author",
    "subject",
    "description",
    "publisher",
    "contributor",
    "date",
    "type",
    "format",
    "identifier",
    "source",
    "language",
    "relation",
    "coverage",
    "rights",
];

/// gofeed's `dcExt`: the Dublin Core fields present.
pub(crate) fn dublin_core_json(dc: &BTreeMap<String, Vec<Extension>>) -> Value {
    let mut out = Map::new();
    for field in DUBLIN_CORE_FIELDS {
        if let Some(values) = all_values(Some(dc), field) {
            out.insert(field.to_owned(), json!(values));
        }
    }
    Value::Object(out)
}

fn text_field(
    out: &mut Map<String, Value>,
    key: &str,
    itunes: &BTreeMap<String, Vec<Extension>>,
    name: &str,
) {
    if let Some(value) = first_value(Some(itunes), name).filter(|v| !v.is_empty()) {
        out.insert(key.to_owned(), Value::String(value));
    }
}

/// `itunes:image`'s `href`.
pub(crate) fn itunes_image(itunes: Option<&BTreeMap<String, Vec<Extension>>>) -> String {
    itunes
        .and_then(|i| i.get("image"))
        .and_then(|list| list.first())
        .and_then(|e| e.attrs.get("href").cloned())
        .unwrap_or_default()
}

/// iTunes categories: `text` and the first subcategory's.
pub(crate) fn itunes_categories(
    itunes: &BTreeMap<String, Vec<Extension>>,
) -> Option<Vec<(String, Option<String>)>> {
    let list = itunes.get("category").filter(|l| !l.is_empty())?;
    Some(
        list.iter()
            .map(|cat| {
                let sub = cat
                    .children
                    .get("category")
                    .and_then(|subs| subs.first())
                    .map(|s| s.attrs.get("text").cloned().unwrap_or_default());
                (cat.attrs.get("text").cloned().unwrap_or_default(), sub)
            })
            .collect(),
    )
}

/// gofeed's `itunesExt` of an item.
pub(crate) fn itunes_item_json(itunes: &BTreeMap<String, Vec<Extension>>) -> Value {
    let mut out = Map::new();
    for (key, name) in [
        ("author", "author"),
        ("block", "block"),
        ("duration", "duration"),
        ("explicit", "explicit"),
        ("keywords", "keywords"),
        ("subtitle", "subtitle"),
        ("summary", "summary"),
    ] {
        text_field(&mut out, key, itunes, name);
    }
    let image = itunes_image(Some(itunes));
    if !image.is_empty() {
        out.insert("image".to_owned(), Value::String(image));
    }
    for (key, name) in [
        ("isClosedCaptioned", "isClosedCaptioned"),
        ("episode", "episode"),
        ("season", "season"),
        ("order", "order"),
        ("episodeType", "episodeType"),
    ] {
        text_field(&mut out, key, itunes, name);
    }
    Value::Object(out)
}

//! The `rss` encoding (KrakenD CE's krakend-rss over gofeed 1.2.1): an RSS (0.9x, 1.0, 2.0) or
//! Atom (0.3, 1.0) feed becomes the map krakend-rss builds from gofeed's universal `Feed`:
//!
//! | key | value |
//! |-----|-------|
//! | `title`, `description`, `language`, `copyright`, `published`, `updated` | strings (`""` when absent) |
//! | `type` | `"rss"` or `"atom"` |
//! | `author` | `{"name","email"}` (each left out when empty), or `null` |
//! | `categories` | an array of strings, or `null` |
//! | `custom` | `null` (gofeed fills it for items only) |
//! | `img_url` | the feed image's URL; only when the feed has an image |
//! | `items` | gofeed's items as it marshals them to JSON (below) |
//!
//! Each item has, when not empty: `title`, `description`, `content`, `link`, `links`, `updated`,
//! `updatedParsed`, `published`, `publishedParsed` (RFC 3339, UTC), `author`, `authors`, `guid`,
//! `image`, `categories`, `enclosures` (`url`, `length`, `type`), `dcExt`, `itunesExt`,
//! `extensions` (`prefix` -> element name -> `[{name, value, attrs, children}]`) and `custom`
//! (RSS elements gofeed has no field for, by name).
//!
//! Where this departs from gofeed: JSON Feed documents (which gofeed also reads) are refused; the
//! charsets are those of the WHATWG list, as Go's; relative URIs are not resolved against
//! `xml:base`; a `<div>` wrapping Atom XHTML/HTML content is removed without re-serialising the
//! HTML inside; named HTML entities beyond HTML 4's stay as written.

mod atom;
mod date;
mod ext;
mod rss;
mod text;
mod xml;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use self::date::Date;
use self::ext::Extensions;
use self::xml::Cursor;
use crate::decode::DecodeError;

/// gofeed's `Person`.
#[derive(Debug, Clone, Default)]
struct Person {
    name: String,
    email: String,
}

impl Person {
    fn to_json(&self) -> Value {
        let mut out = Map::new();
        insert_str(&mut out, "name", &self.name);
        insert_str(&mut out, "email", &self.email);
        Value::Object(out)
    }
}

/// gofeed's `Image`.
#[derive(Debug, Clone, Default)]
struct Image {
    url: String,
    title: String,
}

/// gofeed's `Enclosure`.
#[derive(Debug, Clone, Default)]
struct Enclosure {
    url: String,
    length: String,
    kind: String,
}

/// gofeed's universal `Item`.
#[derive(Debug, Default)]
struct Item {
    title: String,
    description: String,
    content: String,
    link: String,
    links: Vec<String>,
    updated: String,
    updated_parsed: Option<Date>,
    published: String,
    published_parsed: Option<Date>,
    author: Option<Person>,
    authors: Vec<Person>,
    guid: String,
    image: Option<Image>,
    categories: Vec<String>,
    enclosures: Vec<Enclosure>,
    dc_ext: Option<Value>,
    itunes_ext: Option<Value>,
    extensions: Extensions,
    custom: BTreeMap<String, String>,
}

fn insert_str(out: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        out.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

fn insert_date(out: &mut Map<String, Value>, key: &str, value: Option<Date>) {
    if let Some(text) = value.and_then(Date::to_rfc3339) {
        out.insert(key.to_owned(), Value::String(text));
    }
}

impl Item {
    /// The item as Go's `json.Marshal` writes gofeed's `Item` (empty fields left out).
    fn to_json(&self) -> Value {
        let mut out = Map::new();
        insert_str(&mut out, "title", &self.title);
        insert_str(&mut out, "description", &self.description);
        insert_str(&mut out, "content", &self.content);
        insert_str(&mut out, "link", &self.link);
        if !self.links.is_empty() {
            out.insert("links".to_owned(), json!(self.links));
        }
        insert_str(&mut out, "updated", &self.updated);
        insert_date(&mut out, "updatedParsed", self.updated_parsed);
        insert_str(&mut out, "published", &self.published);
        insert_date(&mut out, "publishedParsed", self.published_parsed);
        if let Some(author) = &self.author {
            out.insert("author".to_owned(), author.to_json());
        }
        if !self.authors.is_empty() {
            let authors = self.authors.iter().map(Person::to_json).collect();
            out.insert("authors".to_owned(), Value::Array(authors));
        }
        insert_str(&mut out, "guid", &self.guid);
        if let Some(image) = &self.image {
            let mut i = Map::new();
            insert_str(&mut i, "url", &image.url);
            insert_str(&mut i, "title", &image.title);
            out.insert("image".to_owned(), Value::Object(i));
        }
        if !self.categories.is_empty() {
            out.insert("categories".to_owned(), json!(self.categories));
        }
        if !self.enclosures.is_empty() {
            let list = self
                .enclosures
                .iter()
                .map(|e| {
                    let mut o = Map::new();
                    insert_str(&mut o, "url", &e.url);
                    insert_str(&mut o, "length", &e.length);
                    insert_str(&mut o, "type", &e.kind);
                    Value::Object(o)
                })
                .collect();
            out.insert("enclosures".to_owned(), Value::Array(list));
        }
        if let Some(dc) = &self.dc_ext {
            out.insert("dcExt".to_owned(), dc.clone());
        }
        if let Some(itunes) = &self.itunes_ext {
            out.insert("itunesExt".to_owned(), itunes.clone());
        }
        if !self.extensions.is_empty() {
            out.insert(
                "extensions".to_owned(),
                ext::extensions_json(&self.extensions),
            );
        }
        if !self.custom.is_empty() {
            out.insert("custom".to_owned(), json!(self.custom));
        }
        Value::Object(out)
    }
}

/// gofeed's universal `Feed`, the fields krakend-rss keeps.
#[derive(Debug, Default)]
struct Feed {
    title: String,
    description: String,
    language: String,
    copyright: String,
    published: String,
    updated: String,
    author: Option<Person>,
    categories: Option<Vec<String>>,
    image_url: Option<String>,
    feed_type: &'static str,
    items: Vec<Item>,
}

impl Feed {
    /// The map krakend-rss answers.
    fn into_map(self) -> Map<String, Value> {
        let mut map = Map::new();
        let items = self.items.iter().map(Item::to_json).collect();
        map.insert("items".to_owned(), Value::Array(items));
        map.insert(
            "author".to_owned(),
            self.author.as_ref().map_or(Value::Null, Person::to_json),
        );
        map.insert(
            "categories".to_owned(),
            self.categories.map_or(Value::Null, |c| json!(c)),
        );
        map.insert("custom".to_owned(), Value::Null);
        map.insert("copyright".to_owned(), Value::String(self.copyright));
        map.insert("description".to_owned(), Value::String(self.description));
        map.insert("type".to_owned(), Value::String(self.feed_type.to_owned()));
        map.insert("language".to_owned(), Value::String(self.language));
        map.insert("title".to_owned(), Value::String(self.title));
        map.insert("published".to_owned(), Value::String(self.published));
        map.insert("updated".to_owned(), Value::String(self.updated));
        if let Some(url) = self.image_url {
            map.insert("img_url".to_owned(), Value::String(url));
        }
        map
    }
}

/// Decodes an RSS or Atom feed into the map krakend-rss builds.
pub(crate) fn decode_feed(body: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let text = to_utf8(body)?;
    let first = text
        .trim_start_matches(['\u{feff}', ' ', '\r', '\n', '\t'])
        .chars()
        .next();
    match first {
        None => return Err(DecodeError::Empty { expected: "a feed" }),
        Some('{') => {
            return Err(DecodeError::InvalidFeed {
                reason: "a JSON Feed document (the rss encoding reads RSS and Atom)".to_owned(),
            });
        }
        Some('<') => {}
        Some(_) => return Err(not_a_feed("the body is not XML")),
    }
    let mut cursor = Cursor::new(&text);
    let Some(root) = cursor.root()? else {
        return Err(not_a_feed("the document has no root element"));
    };
    let feed = match root.lname.as_str() {
        "rss" | "rdf" => rss::parse(&mut cursor)?,
        "feed" => atom::parse(&mut cursor, &root)?,
        other => {
            return Err(not_a_feed(&format!(
                "the root element is <{other}>, not <rss>, <rdf:RDF> or <feed>"
            )));
        }
    };
    Ok(feed.into_map())
}

fn not_a_feed(why: &str) -> DecodeError {
    DecodeError::InvalidFeed {
        reason: format!("not an RSS or Atom feed: {why}"),
    }
}

/// The body as UTF-8 text: converted from the charset its XML declaration names (WHATWG labels,
/// as Go's `charset.NewReaderLabel`), UTF-8 otherwise; invalid UTF-8 is an error, as in Go.
fn to_utf8(body: &[u8]) -> Result<String, DecodeError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if let Some(label) = declared_encoding(body)
        && !label.eq_ignore_ascii_case("utf-8")
    {
        let Some(encoding) = encoding_rs::Encoding::for_label(label.as_bytes()) else {
            return Err(DecodeError::InvalidFeed {
                reason: format!("unknown charset {label:?} in the XML declaration"),
            });
        };
        let (text, _) = encoding.decode_without_bom_handling(body);
        return Ok(text.into_owned());
    }
    String::from_utf8(body.to_vec()).map_err(|e| DecodeError::InvalidFeed {
        reason: format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
    })
}

/// The `encoding` of a leading `<?xml ...?>` declaration.
fn declared_encoding(body: &[u8]) -> Option<String> {
    let start = body.iter().position(|c| !c.is_ascii_whitespace())?;
    let rest = body[start..].strip_prefix(b"<?xml")?;
    let end = rest.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&rest[..end]).ok()?;
    let at = decl.find("encoding")?;
    let value = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &value[1..];
    Some(value[..value.find(quote)?].to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn feed(body: &str) -> Value {
        Value::Object(decode_feed(body.as_bytes()).unwrap())
    }

    fn error(body: &str) -> String {
        decode_feed(body.as_bytes()).unwrap_err().to_string()
    }

    const RSS2: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
     xmlns:atom="http://www.w3.org/2005/Atom" xmlns:m="http://search.yahoo.com/mrss/">
  <channel>
    <title>Lighthouse Keepers' Log</title>
    <link>https://sluice.test/log</link>
    <description>Weekly notes &amp; sightings from the north cape</description>
    <language>en-gb</language>
    <copyright>CC BY 4.0</copyright>
    <managingEditor>keeper@sluice.test (Ada Keeper)</managingEditor>
    <pubDate>Sun, 05 Jan 2025 08:00:00 +0100</pubDate>
    <lastBuildDate>Mon, 06 Jan 2025 09:30:00 GMT</lastBuildDate>
    <category>weather</category>
    <category domain="x">birds</category>
    <atom:link href="https://sluice.test/log.rss" rel="self" type="application/rss+xml"/>
    <image><url>https://sluice.test/lamp.png</url><title>Lamp</title><link>https://sluice.test</link></image>
    <item>
      <title>Gale warning</title>
      <link>https://sluice.test/log/1</link>
      <description><![CDATA[Winds <b>force 9</b> expected]]></description>
      <content:encoded><![CDATA[<p>Full report</p>]]></content:encoded>
      <author>ada@sluice.test (Ada Keeper)</author>
      <category>weather</category>
      <guid isPermaLink="false">log-1</guid>
      <pubDate>Sat, 04 Jan 2025 21:15:00 -0500</pubDate>
      <enclosure url="https://sluice.test/1.mp3" length="1024" type="audio/mpeg"/>
      <m:thumbnail url="https://sluice.test/1.jpg" width="75"/>
      <tide>high</tide>
    </item>
    <item>
      <dc:title>Puffins back</dc:title>
      <dc:creator>Bo Watcher</dc:creator>
      <dc:date>2025-01-03T12:00:00+02:00</dc:date>
      <dc:subject>birds</dc:subject>
      <itunes:image href="https://sluice.test/puffin.jpg"/>
      <itunes:keywords>puffins,spring</itunes:keywords>
    </item>
  </channel>
</rss>"#;

    #[test]
    fn rss2_feed_level_keys() {
        let data = feed(RSS2);
        assert_eq!(data["type"], "rss");
        assert_eq!(data["title"], "Lighthouse Keepers' Log");
        assert_eq!(
            data["description"],
            "Weekly notes & sightings from the north cape"
        );
        assert_eq!(data["language"], "en-gb");
        assert_eq!(data["copyright"], "CC BY 4.0");
        assert_eq!(
            data["author"],
            json!({"name": "Ada Keeper", "email": "keeper@sluice.test"})
        );
        assert_eq!(data["categories"], json!(["weather", "birds"]));
        assert_eq!(data["custom"], Value::Null);
        assert_eq!(data["published"], "Sun, 05 Jan 2025 08:00:00 +0100");
        assert_eq!(data["updated"], "Mon, 06 Jan 2025 09:30:00 GMT");
        assert_eq!(data["img_url"], "https://sluice.test/lamp.png");
        let keys: Vec<&str> = data
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "author",
                "categories",
                "copyright",
                "custom",
                "description",
                "img_url",
                "items",
                "language",
                "published",
                "title",
                "type",
                "updated"
            ]
        );
    }

    #[test]
    fn rss2_items() {
        let data = feed(RSS2);
        assert_eq!(
            data["items"][0],
            json!({
                "title": "Gale warning",
                "description": "Winds <b>force 9</b> expected",
                "content": "<p>Full report</p>",
                "link": "https://sluice.test/log/1",
                "links": ["https://sluice.test/log/1"],
                "published": "Sat, 04 Jan 2025 21:15:00 -0500",
                "publishedParsed": "2025-01-05T02:15:00Z",
                "author": {"name": "Ada Keeper", "email": "ada@sluice.test"},
                "authors": [{"name": "Ada Keeper", "email": "ada@sluice.test"}],
                "guid": "log-1",
                "categories": ["weather"],
                "enclosures": [{"url": "https://sluice.test/1.mp3", "length": "1024", "type": "audio/mpeg"}],
                "extensions": {"media": {"thumbnail": [{
                    "name": "thumbnail", "value": "",
                    "attrs": {"url": "https://sluice.test/1.jpg", "width": "75"},
                    "children": {}
                }]}},
                "custom": {"tide": "high"}
            })
        );
        let second = &data["items"][1];
        assert_eq!(second["title"], "Puffins back");
        assert_eq!(second["author"], json!({"name": "Bo Watcher"}));
        assert_eq!(second["published"], "2025-01-03T12:00:00+02:00");
        // A dc:date keeps its offset (gofeed does not move it to UTC).
        assert_eq!(second["publishedParsed"], "2025-01-03T12:00:00+02:00");
        assert_eq!(second["categories"], json!(["puffins", "spring", "birds"]));
        assert_eq!(
            second["image"],
            json!({"url": "https://sluice.test/puffin.jpg"})
        );
        assert_eq!(
            second["dcExt"],
            json!({"title": ["Puffins back"], "creator": ["Bo Watcher"],
                   "subject": ["birds"], "date": ["2025-01-03T12:00:00+02:00"]})
        );
        assert_eq!(
            second["itunesExt"],
            json!({"keywords": "puffins,spring", "image": "https://sluice.test/puffin.jpg"})
        );
    }

    #[test]
    fn rss1_rdf() {
        let rdf = r#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://sluice.test/">
    <title>Tide tables</title>
    <description>Daily tides</description>
    <image rdf:resource="https://sluice.test/wave.png"/>
    <items><rdf:Seq><rdf:li resource="https://sluice.test/t/1"/></rdf:Seq></items>
    <dc:language>nb</dc:language>
  </channel>
  <image rdf:about="https://sluice.test/wave.png"><url>https://sluice.test/wave.png</url></image>
  <item rdf:about="https://sluice.test/t/1"><title>Monday</title><link>https://sluice.test/t/1</link></item>
</rdf:RDF>"#;
        let data = feed(rdf);
        assert_eq!(data["type"], "rss");
        assert_eq!(data["title"], "Tide tables");
        assert_eq!(data["language"], "nb");
        assert_eq!(data["img_url"], "https://sluice.test/wave.png");
        assert_eq!(data["author"], Value::Null);
        assert_eq!(data["categories"], Value::Null);
        assert_eq!(
            data["items"],
            json!([{"title": "Monday", "link": "https://sluice.test/t/1", "links": ["https://sluice.test/t/1"]}])
        );
    }

    const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr" xmlns:geo="http://www.w3.org/2003/01/geo/wgs84_pos#">
  <title type="text">Carnet de bord</title>
  <subtitle type="html">Escales &amp;amp; marées</subtitle>
  <updated>2025-02-01T10:00:00+01:00</updated>
  <rights>© Sluice</rights>
  <logo>https://sluice.test/logo.svg</logo>
  <author><name>Capitaine Nemo</name><email>nemo@sluice.test</email></author>
  <category term="voile"/>
  <link rel="self" href="https://sluice.test/atom.xml"/>
  <entry>
    <title>Arrivée à Brest</title>
    <id>urn:sluice:1</id>
    <link href="https://sluice.test/brest"/>
    <link rel="enclosure" href="https://sluice.test/brest.jpg" type="image/jpeg" length="99"/>
    <updated>2025-01-31T18:00:00Z</updated>
    <summary>Amarrés au port</summary>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Mer calme</p></div></content>
    <author><name>Nemo</name></author>
    <author><name>Ned Land</name></author>
    <category term="escale"/>
    <geo:lat>48.38</geo:lat>
  </entry>
  <entry>
    <title type="html">&lt;em&gt;Départ&lt;/em&gt;</title>
    <published>2025-02-01T07:00:00-03:00</published>
    <updated>2025-02-01T08:00:00Z</updated>
    <content type="text/plain" src="ignored">bon vent</content>
  </entry>
</feed>"#;

    #[test]
    fn atom_feed_level_keys() {
        let data = feed(ATOM);
        assert_eq!(data["type"], "atom");
        assert_eq!(data["title"], "Carnet de bord");
        assert_eq!(data["description"], "Escales &amp; marées");
        assert_eq!(data["language"], "fr");
        assert_eq!(data["copyright"], "© Sluice");
        assert_eq!(data["updated"], "2025-02-01T10:00:00+01:00");
        assert_eq!(data["published"], "");
        assert_eq!(
            data["author"],
            json!({"name": "Capitaine Nemo", "email": "nemo@sluice.test"})
        );
        assert_eq!(data["categories"], json!(["voile"]));
        assert_eq!(data["img_url"], "https://sluice.test/logo.svg");
    }

    #[test]
    fn atom_entries() {
        let data = feed(ATOM);
        assert_eq!(
            data["items"][0],
            json!({
                "title": "Arrivée à Brest",
                "description": "Amarrés au port",
                "content": "<p>Mer calme</p>",
                "link": "https://sluice.test/brest",
                "links": ["https://sluice.test/brest"],
                "updated": "2025-01-31T18:00:00Z",
                "updatedParsed": "2025-01-31T18:00:00Z",
                "published": "2025-01-31T18:00:00Z",
                "publishedParsed": "2025-01-31T18:00:00Z",
                "author": {"name": "Nemo"},
                "authors": [{"name": "Nemo"}, {"name": "Ned Land"}],
                "guid": "urn:sluice:1",
                "categories": ["escale"],
                "enclosures": [{"url": "https://sluice.test/brest.jpg", "length": "99", "type": "image/jpeg"}],
                "extensions": {"geo": {"lat": [{"name": "lat", "value": "48.38", "attrs": {}, "children": {}}]}}
            })
        );
        assert_eq!(
            data["items"][1],
            json!({
                "title": "<em>Départ</em>",
                "content": "bon vent",
                "updated": "2025-02-01T08:00:00Z",
                "updatedParsed": "2025-02-01T08:00:00Z",
                "published": "2025-02-01T07:00:00-03:00",
                "publishedParsed": "2025-02-01T10:00:00Z"
            })
        );
    }

    #[test]
    fn lenient_where_gofeed_is() {
        // An unclosed <br> is closed by the element's end tag, as Go's non-strict decoder does;
        // unknown entities stay as written in attributes; unquoted attributes are read.
        let data = feed(
            "<rss><channel><title>A<br>B</title><item><enclosure url=x length='1'/>\
             <title>AT&T</title></item></channel></rss>",
        );
        assert_eq!(data["title"], "A<br>B</title>");
        assert_eq!(data["items"][0]["title"], "AT&T");
        assert_eq!(
            data["items"][0]["enclosures"],
            json!([{"url": "x", "length": "1"}])
        );
    }

    #[test]
    fn charsets_from_the_declaration() {
        let body = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss><channel><title>caf\xe9</title></channel></rss>";
        let data = Value::Object(decode_feed(body).unwrap());
        assert_eq!(data["title"], "café");
        assert_eq!(data["items"], json!([]));
    }

    #[test]
    fn malformed_feeds_are_errors() {
        assert_eq!(
            error(""),
            "backend answered an empty body where a feed was expected"
        );
        assert!(error("<html><body/></html>").contains("not an RSS or Atom feed"));
        assert!(error("hello").contains("not an RSS or Atom feed"));
        assert!(error(r#"{"version":"https://jsonfeed.org/version/1.1"}"#).contains("JSON Feed"));
        assert!(error("<rss><channel><title>x</title>").contains("invalid feed"));
        assert!(error("<rss><channel><item></channel>").contains("ends inside <rss>"));
        assert!(error("</rss>").contains("unexpected end tag"));
        assert!(error("<rss><a:b></c:b></rss>").contains("closed by"));
        assert!(error("<?xml version=\"1.0\" encoding=\"klingon\"?><rss/>").contains("charset"));
        assert!(decode_feed(b"<rss><channel><title>\xff</title></channel></rss>").is_err());
        let deep = format!("<rss>{}", "<x>".repeat(200));
        assert_eq!(
            decode_feed(deep.as_bytes()).unwrap_err(),
            DecodeError::XmlTooDeep {
                limit: crate::decode::MAX_XML_DEPTH
            }
        );
    }
}

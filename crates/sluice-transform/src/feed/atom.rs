//! Atom 0.3 and 1.0, read as gofeed's Atom parser reads them and translated as its default Atom
//! translator does.

use super::date::{Date, parse_date};
use super::ext::{Extensions, is_extension, parse_extension};
use super::text::{decode_entities, strip_cdata};
use super::xml::{Cursor, Tag};
use super::{Enclosure, Feed, Item, Person};
use crate::decode::DecodeError;

/// Reads the Atom document whose root `feed` was just opened.
pub(crate) fn parse(cursor: &mut Cursor<'_>, root: &Tag) -> Result<Feed, DecodeError> {
    let mut feed = Feed {
        feed_type: "atom",
        language: root.attr("lang"),
        ..Feed::default()
    };
    let mut authors: Vec<Person> = Vec::new();
    let mut categories: Vec<String> = Vec::new();
    let mut logo = String::new();
    let mut extensions = Extensions::new();
    while let Some(tag) = cursor.next_tag()? {
        if is_extension(&tag, cursor.spaces()) {
            parse_extension(cursor, &tag, &mut extensions)?;
            continue;
        }
        match tag.lname.as_str() {
            "title" => feed.title = atom_text(cursor, &tag)?,
            "updated" | "modified" => feed.updated = atom_text(cursor, &tag)?,
            "subtitle" | "tagline" => feed.description = atom_text(cursor, &tag)?,
            "logo" => logo = atom_text(cursor, &tag)?,
            "rights" | "copyright" => feed.copyright = atom_text(cursor, &tag)?,
            "author" => authors.push(parse_person(cursor)?),
            "category" => {
                categories.push(tag.attr("term"));
                cursor.skip()?;
            }
            "entry" => feed.items.push(parse_entry(cursor)?),
            _ => cursor.skip()?,
        }
    }
    feed.author = authors.into_iter().next();
    feed.categories = (!categories.is_empty()).then_some(categories);
    feed.image_url = (!logo.is_empty()).then_some(logo);
    Ok(feed)
}

fn parse_entry(cursor: &mut Cursor<'_>) -> Result<Item, DecodeError> {
    let mut item = Item::default();
    let mut published = String::new();
    let mut extensions = Extensions::new();
    let mut links: Vec<Link> = Vec::new();
    while let Some(tag) = cursor.next_tag()? {
        if is_extension(&tag, cursor.spaces()) {
            parse_extension(cursor, &tag, &mut extensions)?;
            continue;
        }
        match tag.lname.as_str() {
            "title" => item.title = atom_text(cursor, &tag)?,
            "id" => item.guid = atom_text(cursor, &tag)?,
            "summary" => item.description = atom_text(cursor, &tag)?,
            "updated" | "modified" => item.updated = atom_text(cursor, &tag)?,
            "published" | "issued" => published = atom_text(cursor, &tag)?,
            "author" => item.authors.push(parse_person(cursor)?),
            "category" => {
                item.categories.push(tag.attr("term"));
                cursor.skip()?;
            }
            "link" => {
                let rel = tag.attr("rel");
                links.push(Link {
                    href: tag.attr("href"),
                    rel: if rel.is_empty() {
                        "alternate".to_owned()
                    } else {
                        rel
                    },
                    kind: tag.attr("type"),
                    length: tag.attr("length"),
                });
                cursor.skip()?;
            }
            "content" => item.content = atom_text(cursor, &tag)?,
            _ => cursor.skip()?,
        }
    }
    item.updated_parsed = parse_date(&item.updated).map(Date::utc);
    let published_parsed = parse_date(&published).map(Date::utc);
    item.published_parsed = published_parsed.or(item.updated_parsed);
    item.published = if published.is_empty() {
        item.updated.clone()
    } else {
        published
    };
    item.author = item.authors.first().cloned();
    item.link = links
        .iter()
        .find(|l| l.rel == "alternate")
        .map(|l| l.href.clone())
        .unwrap_or_default();
    item.links = links
        .iter()
        .filter(|l| matches!(l.rel.as_str(), "" | "alternate" | "self"))
        .map(|l| l.href.clone())
        .collect();
    item.enclosures = links
        .into_iter()
        .filter(|l| l.rel == "enclosure")
        .map(|l| Enclosure {
            url: l.href,
            length: l.length,
            kind: l.kind,
        })
        .collect();
    item.extensions = extensions;
    Ok(item)
}

#[derive(Debug)]
struct Link {
    href: String,
    rel: String,
    kind: String,
    length: String,
}

fn parse_person(cursor: &mut Cursor<'_>) -> Result<Person, DecodeError> {
    let mut person = Person::default();
    while let Some(tag) = cursor.next_tag()? {
        match tag.lname.as_str() {
            "name" => person.name = atom_text(cursor, &tag)?,
            "email" => person.email = atom_text(cursor, &tag)?,
            _ => cursor.skip()?,
        }
    }
    Ok(person)
}

/// gofeed's `parseAtomText`: the raw inner XML, trimmed, decoded by its `type` (and Atom 0.3's
/// `mode`): CDATA stripped; text entity-decoded; XHTML and HTML without a wrapping `<div>`, HTML
/// also entity-decoded; any other type base64-decoded when it is base64.
fn atom_text(cursor: &mut Cursor<'_>, tag: &Tag) -> Result<String, DecodeError> {
    let kind = tag.attr("type").to_lowercase();
    let mode = tag.attr("mode").to_lowercase();
    let inner = cursor.inner_xml()?.trim();
    Ok(if inner.contains("<![CDATA[") {
        strip_cdata(inner)
    } else if kind == "text" || kind.starts_with("text/") || (kind.is_empty() && mode.is_empty()) {
        decode_entities(inner)
    } else if kind.contains("xhtml") {
        strip_wrapping_div(inner).to_owned()
    } else if kind == "html" {
        decode_entities(strip_wrapping_div(inner))
    } else {
        base64(inner).unwrap_or_else(|| inner.to_owned())
    })
}

/// The content of a `<div>` that wraps all of `html`, else `html` (gofeed unwraps it with an
/// HTML parser; this keeps the markup inside as written).
fn strip_wrapping_div(html: &str) -> &str {
    let starts = html
        .get(..4)
        .is_some_and(|head| head.eq_ignore_ascii_case("<div"))
        && matches!(
            html.as_bytes().get(4),
            Some(b'>' | b' ' | b'\t' | b'\n' | b'\r')
        );
    if !starts || !html.ends_with("</div>") {
        return html;
    }
    let Some(open_end) = html.find('>') else {
        return html;
    };
    let inner = &html[open_end + 1..html.len() - "</div>".len()];
    // The first div must close only at the very end.
    let mut depth = 0i32;
    let lower = inner.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = lower[at..].find('<') {
        let rest = &lower[at + i..];
        if rest.starts_with("<div") {
            depth += 1;
        } else if rest.starts_with("</div") {
            depth -= 1;
            if depth < 0 {
                return html;
            }
        }
        at += i + 1;
    }
    if depth == 0 { inner } else { html }
}

/// Go's `base64.StdEncoding.DecodeString` (padding required, line breaks ignored), as text.
fn base64(text: &str) -> Option<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let data: Vec<u8> = text
        .bytes()
        .filter(|c| !matches!(c, b'\r' | b'\n'))
        .collect();
    if !data.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3);
    for (n, chunk) in data.chunks(4).enumerate() {
        let last = n + 1 == data.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut acc = 0u32;
        for &c in &chunk[..4 - pad] {
            let v = ALPHABET.iter().position(|&a| a == c)?;
            acc = acc << 6 | u32::try_from(v).ok()?;
        }
        acc <<= 6 * pad;
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_like_go() {
        assert_eq!(base64("aGVsbG8=").as_deref(), Some("hello"));
        assert_eq!(base64("aGVs\nbG8h").as_deref(), Some("hello!"));
        assert_eq!(base64("aGVsbG8"), None);
        assert_eq!(base64("not base64!"), None);
    }

    #[test]
    fn wrapping_div() {
        assert_eq!(
            strip_wrapping_div("<div xmlns=\"x\"><p>a</p></div>"),
            "<p>a</p>"
        );
        assert_eq!(
            strip_wrapping_div("<div>a</div><div>b</div>"),
            "<div>a</div><div>b</div>"
        );
        assert_eq!(strip_wrapping_div("<p>a</p>"), "<p>a</p>");
    }
}

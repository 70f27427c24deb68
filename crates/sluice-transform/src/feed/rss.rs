//! RSS 0.9x, 1.0 (RDF) and 2.0, read as gofeed's RSS parser reads them and translated as its
//! default RSS translator does.

use super::date::{Date, parse_date};
use super::ext::{self, Extensions, declared_prefix, is_extension, parse_extension};
use super::text::{parse_name_address, parse_text};
use super::xml::{Cursor, Tag};
use super::{Enclosure, Feed, Image, Item, Person};
use crate::decode::DecodeError;

/// The channel as read.
#[derive(Debug, Default)]
struct Channel {
    title: String,
    description: String,
    language: String,
    copyright: String,
    managing_editor: String,
    web_master: String,
    pub_date: String,
    last_build_date: String,
    categories: Vec<String>,
    image: Option<RssImage>,
    items: Vec<Item>,
    extensions: Extensions,
}

#[derive(Debug, Default)]
struct RssImage {
    url: String,
}

/// Reads the RSS document whose root (`rss` or `rdf`) was just opened.
pub(crate) fn parse(cursor: &mut Cursor<'_>) -> Result<Feed, DecodeError> {
    let mut channel: Option<Channel> = None;
    let mut root_items = Vec::new();
    let mut root_image = None;
    while let Some(tag) = cursor.next_tag()? {
        if is_extension(&tag, cursor.spaces()) {
            cursor.skip()?;
            continue;
        }
        match tag.lname.as_str() {
            "channel" => channel = Some(parse_channel(cursor)?),
            "item" => root_items.push(parse_item(cursor)?),
            "image" => root_image = Some(parse_image(cursor)?),
            _ => cursor.skip()?,
        }
    }
    let mut channel = channel.unwrap_or_default();
    channel.items.extend(root_items);
    if root_image.is_some() {
        channel.image = root_image;
    }
    Ok(translate(channel))
}

fn text(cursor: &mut Cursor<'_>) -> Result<String, DecodeError> {
    cursor.inner_xml().map(parse_text)
}

/// gofeed's RSS `parseLink`: the text, else the `href` attribute.
fn link(cursor: &mut Cursor<'_>, tag: &Tag) -> Result<String, DecodeError> {
    let text = text(cursor)?;
    let href = tag.attr("href");
    Ok(if text.is_empty() && !href.is_empty() {
        href
    } else {
        text
    })
}

fn parse_channel(cursor: &mut Cursor<'_>) -> Result<Channel, DecodeError> {
    let mut c = Channel::default();
    while let Some(tag) = cursor.next_tag()? {
        if is_extension(&tag, cursor.spaces()) {
            parse_extension(cursor, &tag, &mut c.extensions)?;
            continue;
        }
        match tag.lname.as_str() {
            "title" => c.title = text(cursor)?,
            "description" => c.description = text(cursor)?,
            "link" => {
                link(cursor, &tag)?;
            }
            "language" => c.language = text(cursor)?,
            "copyright" => c.copyright = text(cursor)?,
            "managingeditor" => c.managing_editor = text(cursor)?,
            "webmaster" => c.web_master = text(cursor)?,
            "pubdate" => c.pub_date = text(cursor)?,
            "lastbuilddate" => c.last_build_date = text(cursor)?,
            "item" => c.items.push(parse_item(cursor)?),
            "category" => c.categories.push(text(cursor)?),
            "image" => c.image = Some(parse_image(cursor)?),
            _ => cursor.skip()?,
        }
    }
    Ok(c)
}

fn parse_image(cursor: &mut Cursor<'_>) -> Result<RssImage, DecodeError> {
    let mut image = RssImage::default();
    while let Some(tag) = cursor.next_tag()? {
        match tag.lname.as_str() {
            "url" => image.url = text(cursor)?,
            _ => cursor.skip()?,
        }
    }
    Ok(image)
}

/// An RSS item, read and translated.
fn parse_item(cursor: &mut Cursor<'_>) -> Result<Item, DecodeError> {
    let mut item = Item::default();
    let mut author = String::new();
    let mut pub_date = String::new();
    let mut guid = String::new();
    let mut categories = Vec::new();
    let mut extensions = Extensions::new();
    while let Some(tag) = cursor.next_tag()? {
        if is_extension(&tag, cursor.spaces()) {
            parse_extension(cursor, &tag, &mut extensions)?;
            continue;
        }
        match tag.lname.as_str() {
            "title" => item.title = text(cursor)?,
            "description" => item.description = text(cursor)?,
            "encoded" => {
                if declared_prefix(&tag, cursor.spaces()) == Some("content") {
                    item.content = text(cursor)?;
                } else {
                    cursor.skip()?;
                }
            }
            "link" => {
                let link = link(cursor, &tag)?;
                item.links.push(link.clone());
                item.link = link;
            }
            "author" => author = text(cursor)?,
            "pubdate" => pub_date = text(cursor)?,
            "enclosure" => {
                item.enclosures.push(Enclosure {
                    url: tag.attr("url"),
                    length: tag.attr("length"),
                    kind: tag.attr("type"),
                });
                cursor.skip()?;
            }
            "guid" => guid = text(cursor)?,
            "category" => categories.push(text(cursor)?),
            // gofeed reads `source` and `comments` but its universal item has no field for them.
            "source" | "comments" => cursor.skip()?,
            _ => {
                let value = text(cursor)?;
                item.custom.insert(tag.name.clone(), value);
            }
        }
    }

    let dc = extensions.get("dc");
    let itunes = extensions.get("itunes");
    if item.title.is_empty() {
        item.title = ext::first_value(dc, "title").unwrap_or_default();
    }
    if item.description.is_empty() {
        item.description = ext::first_value(dc, "description").unwrap_or_default();
    }
    let dc_date = ext::first_value(dc, "date");
    item.published_parsed = if pub_date.is_empty() {
        dc_date.as_deref().and_then(parse_date)
    } else {
        parse_date(&pub_date).map(Date::utc)
    };
    item.published = if pub_date.is_empty() {
        dc_date.unwrap_or_default()
    } else {
        pub_date
    };
    item.author = person(
        [
            Some(author),
            ext::first_value(dc, "author"),
            ext::first_value(dc, "creator"),
            ext::first_value(itunes, "author"),
        ]
        .into_iter()
        .flatten()
        .find(|a| !a.is_empty()),
    );
    item.authors = item.author.iter().cloned().collect();
    item.guid = guid;
    let image = ext::itunes_image(itunes);
    if !image.is_empty() {
        item.image = Some(Image {
            url: image,
            title: String::new(),
        });
    }
    if let Some(keywords) = ext::first_value(itunes, "keywords").filter(|k| !k.is_empty()) {
        categories.extend(keywords.split(',').map(str::to_owned));
    }
    categories.extend(ext::all_values(dc, "subject").unwrap_or_default());
    item.categories = categories;
    item.dc_ext = dc.map(ext::dublin_core_json);
    item.itunes_ext = itunes.map(ext::itunes_item_json);
    item.extensions = extensions;
    Ok(item)
}

/// gofeed's `Person` from `"Name (email)"`-style text.
fn person(text: Option<String>) -> Option<Person> {
    let (name, email) = parse_name_address(&text?);
    Some(Person { name, email })
}

/// gofeed's default RSS translator, for the fields KrakenD keeps.
fn translate(c: Channel) -> Feed {
    let dc = c.extensions.get("dc");
    let itunes = c.extensions.get("itunes");
    let or_dc = |value: String, field: &str| {
        if value.is_empty() {
            ext::first_value(dc, field).unwrap_or_default()
        } else {
            value
        }
    };
    let mut categories = c.categories.clone();
    if let Some(itunes) = itunes {
        if let Some(keywords) = ext::first_value(Some(itunes), "keywords").filter(|k| !k.is_empty())
        {
            categories.extend(keywords.split(',').map(str::to_owned));
        }
        for (text, sub) in ext::itunes_categories(itunes).unwrap_or_default() {
            categories.push(text);
            categories.extend(sub);
        }
    }
    categories.extend(ext::all_values(dc, "subject").unwrap_or_default());
    let author = person(
        [
            Some(c.managing_editor.clone()),
            Some(c.web_master.clone()),
            ext::first_value(dc, "author"),
            ext::first_value(dc, "creator"),
            ext::first_value(itunes, "author"),
        ]
        .into_iter()
        .flatten()
        .find(|a| !a.is_empty()),
    );
    let image_url = match &c.image {
        Some(image) => Some(image.url.clone()),
        None => Some(ext::itunes_image(itunes)).filter(|url| !url.is_empty()),
    };
    Feed {
        title: or_dc(c.title, "title"),
        description: c.description,
        language: or_dc(c.language, "language"),
        copyright: or_dc(c.copyright, "rights"),
        published: c.pub_date,
        updated: or_dc(c.last_build_date, "date"),
        author,
        categories: (!categories.is_empty()).then_some(categories),
        image_url,
        feed_type: "rss",
        items: c.items,
    }
}

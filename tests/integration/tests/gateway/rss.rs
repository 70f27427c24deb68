//! Spec §3 case 39 without the internet: the `rss` encoding (KrakenD CE's krakend-rss) against a
//! backend started by the test, serving an RSS 2.0 feed and an Atom feed of our own.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;

const CACHE_TTL: u64 = 3600;

const SCHEDULE_RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>Ferry timetable feed</title>
    <link>https://sluice.test/ferries</link>
    <description>Sailings this week</description>
    <lastBuildDate>Tue, 07 Jan 2025 06:00:00 GMT</lastBuildDate>
    <item>
      <title>Dawn crossing</title>
      <link>https://sluice.test/ferries/dawn</link>
      <pubDate>Tue, 07 Jan 2025 05:45:00 +0100</pubDate>
      <guid>dawn-0107</guid>
    </item>
  </channel>
</rss>"#;

const AVAILABLE_ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Cabins still free</title>
  <updated>2025-01-07T07:00:00Z</updated>
  <entry>
    <title>Cabin 12</title>
    <id>urn:sluice:cabin:12</id>
    <link href="https://sluice.test/cabins/12"/>
    <updated>2025-01-07T07:00:00Z</updated>
  </entry>
</feed>"#;

async fn feeds() -> Backend {
    Backend::start_sync(|req| match req.path.as_str() {
        "/user/schedule/1482.rss" => Reply::new(200)
            .header("content-type", "application/rss+xml")
            .body(SCHEDULE_RSS),
        "/user/1482.rss" => Reply::new(200)
            .header("content-type", "application/atom+xml")
            .body(AVAILABLE_ATOM),
        "/broken.rss" => Reply::new(200)
            .header("content-type", "application/rss+xml")
            .body("<rss><channel><title>cut short"),
        _ => Reply::not_found(),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_39_two_feeds_grouped_and_filtered() {
    let feeds = feeds().await;
    // CE's `/show/{id}`: two rss backends, grouped, `allow: [title]`.
    let gw = start_gateway(service(json!([endpoint(
        "/show/{id}",
        json!([
            backend(
                &feeds.url(),
                "/user/schedule/{id}.rss",
                json!({"encoding": "rss", "group": "schedule", "allow": ["title"]})
            ),
            backend(
                &feeds.url(),
                "/user/{id}.rss",
                json!({"encoding": "rss", "group": "available", "allow": ["title"]})
            )
        ]),
        Value::Null
    )])))
    .await;

    let resp = get(&gw.url("/show/1482")).await;

    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(
        resp.text(),
        r#"{"available":{"title":"Cabins still free"},"schedule":{"title":"Ferry timetable feed"}}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_feed_whole_map() {
    let feeds = feeds().await;
    let gw = start_gateway(service(json!([endpoint(
        "/schedule",
        json!([backend(
            &feeds.url(),
            "/user/schedule/1482.rss",
            json!({"encoding": "rss"})
        )]),
        Value::Null
    )])))
    .await;

    let resp = get(&gw.url("/schedule")).await;

    assert_complete_json(&resp, CACHE_TTL);
    assert_json(
        &resp,
        &json!({
            "author": null,
            "categories": null,
            "copyright": "",
            "custom": null,
            "description": "Sailings this week",
            "items": [{
                "title": "Dawn crossing",
                "link": "https://sluice.test/ferries/dawn",
                "links": ["https://sluice.test/ferries/dawn"],
                "published": "Tue, 07 Jan 2025 05:45:00 +0100",
                "publishedParsed": "2025-01-07T04:45:00Z",
                "guid": "dawn-0107"
            }],
            "language": "",
            "published": "",
            "title": "Ferry timetable feed",
            "type": "rss",
            "updated": "Tue, 07 Jan 2025 06:00:00 GMT"
        }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_feed_is_a_backend_error() {
    let feeds = feeds().await;
    let gw = start_gateway(service(json!([endpoint(
        "/broken",
        json!([backend(
            &feeds.url(),
            "/broken.rss",
            json!({"encoding": "rss"})
        )]),
        Value::Null
    )])))
    .await;

    let resp = get(&gw.url("/broken")).await;

    assert_status(&resp, 500);
    assert_eq!(resp.header("x-krakend-completed"), Some("false"));
    assert!(
        resp.text().contains("invalid feed"),
        "body: {:?}",
        resp.text()
    );
}

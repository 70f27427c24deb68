//! `security/bot-detector` as KrakenD's krakend-botdetector applies it: at the service (every
//! request, before routing) or at an endpoint, a request whose `User-Agent` is a bot's is refused
//! with a bare 403 (no body, no `Content-Type`, no `X-KrakenD-Completed`), as gin's
//! `AbortWithStatus(403)` answers.
//!
//! The decision for a User-Agent, in KrakenD's order: empty is a bot only with
//! `empty_user_agent_is_bot`; an exact `allow` entry is not a bot; an exact `deny` entry is; else
//! it is a bot when any of `patterns` (RE2 syntax, unanchored, as Go's `MatchString`) matches.
//! With `cache_size`, decisions are remembered for that many distinct User-Agents.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use http::StatusCode;
use http::header::USER_AGENT;
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};
use sluice_config::read::{Obj, Reader, index_path};
use sluice_config::{Component, Config, Diagnostic, Endpoint, Level, LoadOptions};
use sluice_stage::{
    EarlyAnswer, Phases, RequestHead, SharedStage, Stage, StageFactory, StageFuture, decided,
};

/// The namespace.
pub const NAMESPACE: &str = "security/bot-detector";
/// Its legacy spelling (KrakenD v1), read the same way.
pub const LEGACY_NAMESPACE: &str = "github_com/devopsfaith/krakend-botdetector";

/// The largest `cache_size` accepted: each entry holds a User-Agent (bounded by the server's
/// header limits), so the cache stays within a few tens of MiB at worst.
pub const MAX_CACHE_SIZE: usize = 100_000;

/// Compiled size bound for each pattern (the regex crate's own default is 10 MiB; a pattern
/// needing more is refused at start-up rather than costing memory per gateway).
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

const FIELDS: &[&str] = &[
    "allow",
    "deny",
    "patterns",
    "cache_size",
    "empty_user_agent_is_bot",
];

/// The component: `security/bot-detector` at the service and endpoint levels.
#[derive(Debug, Default, Clone, Copy)]
pub struct BotDetector;

impl BotDetector {
    /// The component.
    pub fn new() -> Self {
        Self
    }
}

/// One configured detector.
#[derive(Debug)]
pub struct Detector {
    allow: HashSet<String>,
    deny: HashSet<String>,
    patterns: Vec<Regex>,
    empty_is_bot: bool,
    cache: Option<Cache>,
}

/// Remembered decisions, bounded to `capacity` User-Agents (the oldest entry leaves first;
/// the decision is deterministic, so eviction only costs a recomputation).
#[derive(Debug)]
struct Cache {
    capacity: usize,
    entries: Mutex<Entries>,
}

/// The decisions, and the User-Agents in the order they came in.
type Entries = (HashMap<Arc<str>, bool>, VecDeque<Arc<str>>);

impl Cache {
    fn get(&self, ua: &str) -> Option<bool> {
        let guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.get(ua).copied()
    }

    fn put(&self, ua: &str, bot: bool) {
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *guard;
        if map.contains_key(ua) {
            return;
        }
        if map.len() >= self.capacity
            && let Some(oldest) = order.pop_front()
        {
            map.remove(&oldest);
        }
        let key: Arc<str> = Arc::from(ua);
        map.insert(Arc::clone(&key), bot);
        order.push_back(key);
    }
}

impl Detector {
    /// Whether `user_agent` (empty when absent) is a bot's.
    pub fn is_bot(&self, user_agent: &str) -> bool {
        if let Some(cache) = &self.cache {
            if let Some(bot) = cache.get(user_agent) {
                return bot;
            }
            let bot = self.decide(user_agent);
            cache.put(user_agent, bot);
            return bot;
        }
        self.decide(user_agent)
    }

    fn decide(&self, ua: &str) -> bool {
        if ua.is_empty() {
            return self.empty_is_bot;
        }
        if self.allow.contains(ua) {
            return false;
        }
        if self.deny.contains(ua) {
            return true;
        }
        self.patterns.iter().any(|p| p.is_match(ua))
    }
}

impl Stage for Detector {
    fn name(&self) -> &'static str {
        NAMESPACE
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST
    }

    fn on_request<'a>(&'a self, head: &'a mut RequestHead<'_>) -> StageFuture<'a> {
        // Go's Header.Get: the first value; a value that is not text is compared as Go would
        // see its bytes, which for a deny list or a pattern means it matches nothing listed.
        let ua = head
            .headers
            .get(USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        decided(if self.is_bot(&ua) {
            tracing::debug!(user_agent = %ua, "bot rejected");
            Err(EarlyAnswer::empty(StatusCode::FORBIDDEN))
        } else {
            Ok(())
        })
    }
}

/// The block in `extra`, under either spelling, with its JSON path.
fn block<'a>(extra: &'a Map<String, Value>, parent: &str) -> Option<(&'a Value, String)> {
    [NAMESPACE, LEGACY_NAMESPACE].iter().find_map(|ns| {
        extra.get(*ns).map(|v| {
            (
                v,
                format!("{parent}extra_config[{}]", sluice_config::read::quote(ns)),
            )
        })
    })
}

/// Reads one `security/bot-detector` block.
///
/// # Errors
/// Every problem in it, each with the file and JSON path.
pub fn read(config: &Config, value: &Value, path: String) -> Result<Detector, Vec<Diagnostic>> {
    let options = LoadOptions::default();
    let mut r = Reader::new(&config.source, &options);
    let Some(o) = r.as_object(value, path) else {
        return Err(r.into_errors());
    };
    r.known_keys(&o, FIELDS);
    if o.map.keys().all(|k| !FIELDS.contains(&k.as_str())) {
        // KrakenD's schema: minProperties 1; an empty block is a mistake, not a detector.
        r.error(
            o.path.clone(),
            "an empty bot detector detects nothing: set deny, patterns or empty_user_agent_is_bot",
        );
    }
    let allow = r.strings(&o, "allow").unwrap_or_default();
    let deny = r.strings(&o, "deny").unwrap_or_default();
    let patterns = compile(&mut r, &o);
    let empty_is_bot = r.bool(&o, "empty_user_agent_is_bot");
    let cache_size: usize = r
        .uint(
            &o,
            "cache_size",
            &format!("a whole number of User-Agents from 0 to {MAX_CACHE_SIZE}"),
        )
        .unwrap_or(0);
    if cache_size > MAX_CACHE_SIZE {
        r.error(
            o.path_of("cache_size"),
            format!("expected a cache of at most {MAX_CACHE_SIZE} User-Agents, found {cache_size}"),
        );
    }
    let errors = r.into_errors();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Detector {
        allow: allow.into_iter().collect(),
        deny: deny.into_iter().collect(),
        patterns,
        empty_is_bot,
        cache: (cache_size > 0).then(|| Cache {
            capacity: cache_size,
            entries: Mutex::new((HashMap::new(), VecDeque::new())),
        }),
    })
}

fn compile(r: &mut Reader<'_>, o: &Obj<'_>) -> Vec<Regex> {
    let Some(items) = r.array(o, "patterns") else {
        return Vec::new();
    };
    let path = o.path_of("patterns");
    let mut patterns = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(source) = item.as_str() else {
            r.type_error(index_path(&path, i), "a regular expression string", item);
            continue;
        };
        match RegexBuilder::new(source)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
        {
            Ok(re) => patterns.push(re),
            Err(e) => r.error(
                index_path(&path, i),
                format!("not a regular expression Sluice can compile: {e}"),
            ),
        }
    }
    patterns
}

impl StageFactory for BotDetector {
    fn components(&self) -> Vec<Component> {
        [NAMESPACE, LEGACY_NAMESPACE]
            .iter()
            .map(|ns| Component {
                namespace: (*ns).to_owned(),
                levels: vec![Level::Service, Level::Endpoint],
            })
            .collect()
    }

    fn service_stages(&self, config: &Config) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
        let Some((value, path)) = block(&config.extra_config, "") else {
            return Ok(Vec::new());
        };
        Ok(vec![Arc::new(read(config, value, path)?)])
    }

    fn endpoint_stages(
        &self,
        config: &Config,
        endpoint: &Endpoint,
    ) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
        let parent = format!("{}.", endpoint.json_path);
        let Some((value, path)) = block(&endpoint.extra_config, &parent) else {
            return Ok(Vec::new());
        };
        Ok(vec![Arc::new(read(config, value, path)?)])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn detector(value: Value) -> Result<Detector, Vec<Diagnostic>> {
        let config =
            sluice_config::parse_str(r#"{"version": 3}"#, std::path::Path::new("c.json")).unwrap();
        read(
            &config,
            &value,
            "extra_config[\"security/bot-detector\"]".into(),
        )
    }

    #[test]
    fn decides_in_krakends_order() {
        // CE's fixture: exact allow beats a matching pattern; an allow entry is exact, so a
        // longer User-Agent is judged by the patterns.
        let d = detector(json!({
            "deny": ["a", "b"],
            "allow": ["c", "Pingdom.com_bot_version_1.1"],
            "patterns": ["(Pingdom.com_bot_version_).*", "(facebookexternalhit)/.*"]
        }))
        .unwrap();
        for (ua, bot) in [
            ("a", true),
            ("b", true),
            ("c", false),
            ("Pingdom.com_bot_version_1.1", false),
            ("Pingdom.com_bot_version_1.14", true),
            ("facebookexternalhit/1.2.3", true),
            ("x facebookexternalhit/1", true),
            ("Mozilla/5.0", false),
            ("", false),
        ] {
            assert_eq!(d.is_bot(ua), bot, "{ua:?}");
        }
        let d = detector(json!({"empty_user_agent_is_bot": true, "cache_size": 2})).unwrap();
        assert!(d.is_bot(""));
        assert!(d.is_bot(""), "from the cache");
        assert!(!d.is_bot("x"));
        assert!(!d.is_bot("y"));
        assert!(!d.is_bot("z"));
        assert_eq!(d.cache.as_ref().unwrap().entries.lock().unwrap().0.len(), 2);
    }

    #[test]
    fn refuses_what_it_cannot_apply() {
        let errors = detector(
            json!({"patterns": ["(unclosed", 3], "cache_size": -1, "deny": "a", "extra": 1}),
        )
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let text = text.join("\n");
        for expected in [
            "patterns[0]: not a regular expression",
            "patterns[1]: expected a regular expression string, found a number",
            "cache_size: expected a whole number",
            "deny: expected an array",
            "extra: field \"extra\" is not supported",
        ] {
            assert!(text.contains(expected), "{expected}\n{text}");
        }
        let errors = detector(json!({})).unwrap_err();
        assert!(
            errors[0].to_string().contains("detects nothing"),
            "{errors:?}"
        );
    }
}

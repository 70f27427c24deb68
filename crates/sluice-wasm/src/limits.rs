//! The per-backend limits read from the `plugin/http-client` object.

use std::time::Duration;

use serde_json::{Map, Value};

/// The keys [`Limits::from_extra`] reads beside `name` (`allowed_hosts` belongs to the plugin's
/// outbound client).
pub(crate) const KEYS: &[&str] = &[
    "max_instances",
    "memory_limit",
    "timeout",
    "max_requests_per_instance",
    "instance_idle_timeout",
];

/// Default linear-memory limit per instance.
pub(crate) const DEFAULT_MEMORY_LIMIT: u64 = 64 * 1024 * 1024;

/// Default reuse cap: an instance serves this many requests, then is replaced. Linear memory
/// never shrinks and a guest may keep garbage between requests; re-instantiating from the
/// pre-instantiated component costs microseconds, so a few thousand requests amortise it.
pub(crate) const DEFAULT_MAX_REQUESTS_PER_INSTANCE: u64 = 1000;

/// Default idle expiry: an instance unused this long is dropped (its pool slot and memory
/// go back), so a burst's instances do not stay resident for good.
pub(crate) const DEFAULT_INSTANCE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Limits of one backend's plugin executor (see the crate docs for the config keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Instances for this backend.
    pub max_instances: usize,
    /// Linear memory per instance, in bytes.
    pub memory_limit: u64,
    /// Cap on each request's time in the plugin (`None` = the request deadline).
    pub timeout: Option<Duration>,
    /// Requests one instance serves before it is replaced.
    pub max_requests_per_instance: u64,
    /// An idle instance older than this is dropped.
    pub instance_idle_timeout: Duration,
}

impl Limits {
    /// Reads the limits from the `plugin/http-client` object. Errors name the offending key.
    pub fn from_extra(extra: &Map<String, Value>) -> Result<Limits, String> {
        let max_instances = match extra.get("max_instances") {
            None | Some(Value::Null) => default_max_instances(),
            Some(v) => match v.as_u64() {
                Some(n) if (1..=10_000).contains(&n) => n as usize,
                _ => {
                    return Err(format!(
                        "max_instances: expected an integer from 1 to 10000, found {v}"
                    ));
                }
            },
        };
        let memory_limit = match extra.get("memory_limit") {
            None | Some(Value::Null) => DEFAULT_MEMORY_LIMIT,
            Some(Value::Number(n)) => n
                .as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("memory_limit: expected a positive size, found {n}"))?,
            Some(Value::String(s)) => parse_size(s)
                .ok_or_else(|| format!("memory_limit: {s:?} is not a size like \"64MiB\""))?,
            Some(other) => return Err(format!("memory_limit: expected a size, found {other}")),
        };
        let timeout = match extra.get("timeout") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                sluice_config::parse_duration(s)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| format!("timeout: {s:?} is not a duration like \"500ms\""))?,
            ),
            Some(other) => {
                return Err(format!(
                    "timeout: expected a duration string, found {other}"
                ));
            }
        };
        let max_requests_per_instance = match extra.get("max_requests_per_instance") {
            None | Some(Value::Null) => DEFAULT_MAX_REQUESTS_PER_INSTANCE,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=1_000_000_000).contains(n))
                .ok_or_else(|| {
                    format!(
                        "max_requests_per_instance: expected an integer from 1 to 1000000000, found {v}"
                    )
                })?,
        };
        let instance_idle_timeout = match extra.get("instance_idle_timeout") {
            None | Some(Value::Null) => DEFAULT_INSTANCE_IDLE_TIMEOUT,
            Some(Value::String(s)) => sluice_config::parse_duration(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!("instance_idle_timeout: {s:?} is not a duration like \"30s\"")
                })?,
            Some(other) => {
                return Err(format!(
                    "instance_idle_timeout: expected a duration string, found {other}"
                ));
            }
        };
        Ok(Limits {
            max_instances,
            memory_limit,
            timeout,
            max_requests_per_instance,
            instance_idle_timeout,
        })
    }
}

/// Every backend reserves its `max_instances` of the host's pool (1000 by default), so the
/// default stays modest: 60 plugin backends fit even on a machine with many cores.
fn default_max_instances() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 2).clamp(4, 16)
}

/// `1024`, `64MiB`, `64 MiB`, `512KiB`, `1GB`, `10kb`... (KB/MB/GB are decimal, KiB/MiB/GiB binary).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gi" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult).filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("1 GB"), Some(1_000_000_000));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("12 parsecs"), None);
        assert_eq!(parse_size("0"), None);
    }

    #[test]
    fn limits_from_extra() {
        let extra = json!({"name": "p"});
        let l = Limits::from_extra(extra.as_object().expect("object")).expect("limits");
        assert_eq!(l.memory_limit, DEFAULT_MEMORY_LIMIT);

        let extra = json!({"memory_limit": "1MiB", "timeout": "2s", "max_instances": 3});
        let l = Limits::from_extra(extra.as_object().expect("object")).expect("limits");
        assert_eq!(
            (l.memory_limit, l.max_instances, l.timeout),
            (1 << 20, 3, Some(Duration::from_secs(2)))
        );
        assert_eq!(
            (l.max_requests_per_instance, l.instance_idle_timeout),
            (
                DEFAULT_MAX_REQUESTS_PER_INSTANCE,
                DEFAULT_INSTANCE_IDLE_TIMEOUT
            )
        );
        let extra = json!({"max_requests_per_instance": 5, "instance_idle_timeout": "250ms"});
        let l = Limits::from_extra(extra.as_object().expect("object")).expect("limits");
        assert_eq!(
            (l.max_requests_per_instance, l.instance_idle_timeout),
            (5, Duration::from_millis(250))
        );

        for (bad, key) in [
            (json!({"max_instances": 0}), "max_instances"),
            (json!({"memory_limit": "lots"}), "memory_limit"),
            (json!({"timeout": 5}), "timeout"),
            (
                json!({"max_requests_per_instance": 0}),
                "max_requests_per_instance",
            ),
            (
                json!({"max_requests_per_instance": "many"}),
                "max_requests_per_instance",
            ),
            (
                json!({"instance_idle_timeout": "0s"}),
                "instance_idle_timeout",
            ),
            (
                json!({"instance_idle_timeout": 30}),
                "instance_idle_timeout",
            ),
        ] {
            let err = Limits::from_extra(bad.as_object().expect("object")).expect_err("bad");
            assert!(err.starts_with(key), "{err}");
        }
    }
}

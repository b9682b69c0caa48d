//! The parameter table and its lookup: every configuration item is looked up
//! as `LAVA_<NAME>` in the environment, then in the realm's `config` map (keys
//! case-insensitive), then in the built-in defaults below, as the original
//! lava does. Programs read items through typed settings structs
//! ([`crate::settings`]), never by name at a call site.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::units::{self, show};

/// How a configuration value is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Str,
    /// An integer.
    Int,
    /// A lava boolean (`true t yes y` / `false f no n` / integer text).
    Bool,
    /// A duration (`nnX`), in seconds.
    Duration,
    /// A size with SI or IEC units, in bytes.
    Size,
}

impl Kind {
    /// The converter's name in error messages, as the original names it.
    pub fn converter(self) -> &'static str {
        match self {
            Kind::Str => "str",
            Kind::Int => "int",
            Kind::Bool => "boolean",
            Kind::Duration => "duration",
            Kind::Size => "size",
        }
    }
}

/// One known configuration item.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Upper-case name, without the `LAVA_` prefix.
    pub name: &'static str,
    /// How its value is converted.
    pub kind: Kind,
    /// Built-in default; `None` means unset.
    pub default: Option<&'static str>,
}

const fn p(name: &'static str, kind: Kind, default: Option<&'static str>) -> Param {
    Param {
        name,
        kind,
        default,
    }
}

use Kind::{Bool, Duration, Int, Size, Str};

/// Every configuration item lava knows, with its default. `DAG_WORKERS` and
/// `DAG_MAX_WORKERS` depend on the CPU count and are computed on lookup.
pub const PARAMS: &[Param] = &[
    // General.
    p("TMPDIR", Str, Some("/tmp/lava")),
    p("HEARTBEAT_FILE", Str, Some(".heartbeat")),
    p("DISPATCHER", Str, None),
    p("NO_DISPATCH", Str, Some("/tmp/lava/__nodispatch__")),
    p("SQS_MAX_DELAY_MINS", Int, Some("15")),
    p("EVENT_TTL", Duration, Some("2d")),
    p("STDERR_SIZE", Int, Some("2000")),
    p("DEBUG", Bool, Some("false")),
    p("CW_NAMESPACE", Str, Some("Lava")),
    p("CW_METRICS_JOB", Bool, Some("false")),
    p("CW_METRICS_WORKER", Bool, Some("false")),
    p("CW_METRICS_PERIOD", Duration, Some("1m")),
    p("JOB_LOCAL_TMPDIR", Bool, Some("true")),
    p("ITERATION_MAX_DELAY", Duration, Some("5m")),
    p("ITERATION_MAX_LIMIT", Int, Some("10")),
    p("PARAM_CACHE_SIZE", Int, Some("100")),
    p("PARAM_CACHE_TTL", Duration, Some("2m")),
    p("PAYLOAD_DOWNLOADER", Str, Some("v2")),
    p("PAYLOAD_SETTLING_TIME", Int, Some("1")),
    p("CHECK_FOR_ZOMBIES", Bool, Some("true")),
    p("JUMPSTART_DELAY", Duration, Some("15s")),
    p("LOGLEVEL", Str, Some("info")),
    p("CONN_APP_NAME", Str, Some("lv-{{ realm }}-{{ job_id }}")),
    p("SES_REGION", Str, Some("us-east-1")),
    p("SES_FROM", Str, None),
    p("SES_CONFIGURATION_SET", Str, None),
    p("EMAIL_MAX_ATTACHMENTS", Int, Some("5")),
    p("EMAIL_MAX_ATTACHMENT_SIZE", Size, Some("2M")),
    p("EMAIL_MAX_SIZE", Size, Some("5M")),
    p("STATE_TTL", Duration, Some("7d")),
    p("STATE_MAX_TTL", Duration, Some("366d")),
    p("AWS_CONN_DURATION", Duration, Some("3h")),
    p("AWS_ACCESS_KEY_CACHE_TTL", Duration, Some("10m")),
    p("AWS_ACCESS_KEY_CACHE_SIZE", Int, Some("20")),
    p("RS_PASSWORD_DURATION", Duration, Some("15m")),
    p("S3TRIGGER_CACHE_TTL", Duration, Some("60s")),
    p("S3TRIGGER_DEDUP_TTL", Duration, Some("30s")),
    p("S3TRIGGER_DEDUP_CACHE_SIZE", Int, Some("0")),
    // Per job type.
    p("CMD_TIMEOUT", Duration, Some("10m")),
    p("EXE_TIMEOUT", Duration, Some("10m")),
    p("EXE_MAX_PAYLOAD_SIZE", Size, Some("10M")),
    p("PKG_TIMEOUT", Duration, Some("10m")),
    p("PKG_UNPACK_TIMEOUT", Duration, Some("30s")),
    p("PKG_MAX_PAYLOAD_SIZE", Size, Some("20M")),
    p("PKG_MAX_UNPACKED_SIZE", Size, Some("1G")),
    p("DOCKER_TIMEOUT", Duration, Some("10m")),
    p("DAG_WORKERS", Int, None),
    p("DAG_MAX_WORKERS", Int, None),
    p("FOREACH_LIMIT", Int, Some("10")),
    p("FOREACH_MAX_LIMIT", Int, Some("25")),
    p("SQL_BATCH_SIZE", Int, Some("1024")),
    p("SQL_DELIMITER", Str, Some("|")),
    p("SQL_QUOTECHAR", Str, Some("\"")),
    p("SQL_ESCAPECHAR", Str, None),
    p("SQL_DIALECT", Str, Some("excel")),
    p("SQL_QUOTING", Str, Some("minimal")),
    p("SQL_DOUBLEQUOTE", Bool, Some("false")),
    p("SQL_MAX_PAYLOAD_SIZE", Size, Some("100K")),
    p("SQL_OUTPUT_SUFFIX", Str, Some(".out")),
    p("SQLC_TIMEOUT", Duration, Some("10m")),
    p("SQLC_MAX_PAYLOAD_SIZE", Size, Some("100K")),
    p("SQLV_TIMEOUT", Duration, Some("10m")),
    p("SMB_TIMEOUT", Duration, Some("10m")),
    p("PG_COPY_TIMEOUT", Duration, Some("30m")),
    p("SP_LIST_DELIMITER", Str, Some("|")),
    p("SP_LIST_QUOTECHAR", Str, Some("\"")),
    p("SP_LIST_ESCAPECHAR", Str, None),
    p("SP_LIST_QUOTING", Str, Some("minimal")),
    p("SP_LIST_DOUBLEQUOTE", Bool, Some("false")),
    p("SP_LOGGING", Bool, Some("false")),
    // Settings this implementation adds: how long a drain waits, the grace
    // between SIGTERM and SIGKILL, the visibility keep-alive period, how
    // long start-up retries an unreachable service, and the fuel of one
    // template render (about one unit per template instruction and per 64
    // bytes made; `0` is no limit).
    p("DRAIN_TIMEOUT", Duration, Some("10m")),
    p("KILL_GRACE", Duration, Some("10s")),
    p("VISIBILITY_KEEPALIVE", Duration, Some("60s")),
    p("STARTUP_RETRY", Duration, Some("5m")),
    p("RENDER_FUEL", Int, Some("5000000")),
    // How a failed attempt with iterations left waits for its next one:
    // `delayed` returns its message to the queue for the iteration delay,
    // `inline` sleeps in its job slot, as the original does.
    p("RETRY_MODE", Str, Some("delayed")),
];

/// A configuration lookup or conversion failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The value exists but does not convert.
    #[error("Cannot convert config item {name} using {converter}: {value}")]
    Convert {
        /// Item name.
        name: String,
        /// Converter name (`int`, `boolean`, `duration`, `size`).
        converter: &'static str,
        /// The offending value.
        value: String,
    },
    /// No such configuration item.
    #[error("Unknown config item {0}")]
    Unknown(String),
}

/// Where a configuration value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `LAVA_<NAME>` in the environment.
    Env,
    /// The realm item's `config` map.
    Realm,
    /// The built-in default.
    Default,
}

/// Effective configuration: an environment snapshot over a realm `config`
/// map over the defaults. Cheap to clone; read once at start-up.
#[derive(Debug, Clone, Default)]
pub struct Config {
    env: BTreeMap<String, String>,
    realm: BTreeMap<String, Value>,
}

impl Config {
    /// Configuration from this process's `LAVA_*` environment and a realm
    /// `config` map (pass an empty map outside a worker).
    pub fn from_env(realm_config: &Map<String, Value>) -> Self {
        let env = std::env::vars()
            .filter_map(|(k, v)| k.strip_prefix("LAVA_").map(|n| (n.to_string(), v)))
            .collect();
        Self::new(env, realm_config)
    }

    /// Configuration from an explicit environment (names without `LAVA_`).
    pub fn new(env: BTreeMap<String, String>, realm_config: &Map<String, Value>) -> Self {
        let realm = realm_config
            .iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
            .collect();
        Self { env, realm }
    }

    /// The known parameter called `name`.
    pub fn param(name: &str) -> Result<&'static Param, ConfigError> {
        PARAMS
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ConfigError::Unknown(name.to_string()))
    }

    /// The raw value of `name` and where it came from; `None` if unset.
    pub fn raw(&self, name: &str) -> Result<Option<(Value, Source)>, ConfigError> {
        let param = Self::param(name)?;
        if let Some(v) = self.env.get(name) {
            return Ok(Some((Value::String(v.clone()), Source::Env)));
        }
        if let Some(v) = self.realm.get(name) {
            return Ok(Some((v.clone(), Source::Realm)));
        }
        let cpus = || {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        };
        let computed = match name {
            "DAG_WORKERS" => Some(Value::from(cpus())),
            "DAG_MAX_WORKERS" => Some(Value::from(4 * cpus())),
            _ => param.default.map(|d| Value::String(d.to_string())),
        };
        Ok(computed.map(|v| (v, Source::Default)))
    }

    fn convert_error(name: &str, kind: Kind, value: &Value) -> ConfigError {
        ConfigError::Convert {
            name: name.to_string(),
            converter: kind.converter(),
            value: show(value),
        }
    }

    /// Text value of `name`; `None` if unset. Non-string values are shown as JSON.
    pub fn string(&self, name: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.raw(name)?.map(|(v, _)| show(&v)))
    }

    /// Integer value of `name` (unset is an error).
    pub fn int(&self, name: &str) -> Result<i64, ConfigError> {
        let value = self.required(name, Kind::Int)?;
        let parsed = match &value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| Self::convert_error(name, Kind::Int, &value))
    }

    /// Boolean value of `name`.
    pub fn boolean(&self, name: &str) -> Result<bool, ConfigError> {
        let value = self.required(name, Kind::Bool)?;
        units::bool_value(&value).map_err(|_| Self::convert_error(name, Kind::Bool, &value))
    }

    /// Duration value of `name` in seconds; `None` when unset or empty text
    /// (as `EVENT_TTL=""` disables the events `ttl`).
    pub fn duration(&self, name: &str) -> Result<Option<f64>, ConfigError> {
        match self.raw(name)? {
            None => Ok(None),
            Some((Value::String(s), _)) if s.trim().is_empty() => Ok(None),
            Some((value, _)) => units::duration_value(&value)
                .map(Some)
                .map_err(|_| Self::convert_error(name, Kind::Duration, &value)),
        }
    }

    /// Size value of `name` in bytes.
    pub fn size(&self, name: &str) -> Result<u64, ConfigError> {
        let value = self.required(name, Kind::Size)?;
        units::size_value(&value).map_err(|_| Self::convert_error(name, Kind::Size, &value))
    }

    fn required(&self, name: &str, kind: Kind) -> Result<Value, ConfigError> {
        self.raw(name)?
            .map(|(v, _)| v)
            .ok_or_else(|| Self::convert_error(name, kind, &Value::Null))
    }

    /// Converts every known item that is set, so a bad value is found at
    /// start-up rather than in the middle of a run.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for param in PARAMS {
            if self.raw(param.name)?.is_none() {
                continue;
            }
            match param.kind {
                Kind::Str => self.string(param.name).map(|_| ()),
                Kind::Int => self.int(param.name).map(|_| ()),
                Kind::Bool => self.boolean(param.name).map(|_| ()),
                Kind::Duration => self.duration(param.name).map(|_| ()),
                Kind::Size => self.size(param.name).map(|_| ()),
            }?;
        }
        Ok(())
    }

    /// Every known item that is set, as `NAME=value`, sorted by name.
    pub fn dump(&self) -> Vec<String> {
        let mut lines: Vec<String> = PARAMS
            .iter()
            .filter_map(|p| match self.raw(p.name) {
                Ok(Some((v, _))) => Some(format!("{}={}", p.name, show(&v))),
                _ => None,
            })
            .collect();
        lines.sort();
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(env: &[(&str, &str)], realm: Value) -> Config {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let realm = realm.as_object().cloned().unwrap_or_default();
        Config::new(env, &realm)
    }

    #[test]
    fn precedence_env_then_realm_then_default() {
        let c = config(
            &[("STDERR_SIZE", "10")],
            json!({"stderr_size": 20, "Cmd_Timeout": "1h"}),
        );
        assert_eq!(c.int("STDERR_SIZE"), Ok(10));
        assert_eq!(
            c.raw("STDERR_SIZE").ok().flatten().map(|r| r.1),
            Some(Source::Env)
        );
        assert_eq!(c.duration("CMD_TIMEOUT"), Ok(Some(3600.0)));
        assert_eq!(c.duration("EXE_TIMEOUT"), Ok(Some(600.0)));
        assert_eq!(
            c.raw("EXE_TIMEOUT").ok().flatten().map(|r| r.1),
            Some(Source::Default)
        );
        assert_eq!(c.size("EXE_MAX_PAYLOAD_SIZE"), Ok(10_000_000));
        assert_eq!(c.boolean("JOB_LOCAL_TMPDIR"), Ok(true));
        assert_eq!(
            c.string("NO_DISPATCH"),
            Ok(Some("/tmp/lava/__nodispatch__".into()))
        );
        assert_eq!(c.string("SES_FROM"), Ok(None));
        assert!(c.int("DAG_WORKERS").is_ok_and(|n| n >= 1));
    }

    #[test]
    fn every_default_converts() {
        assert_eq!(config(&[], json!({})).validate(), Ok(()));
    }

    #[test]
    fn bad_values_name_the_item() {
        let c = config(
            &[("ITERATION_MAX_LIMIT", "ten")],
            json!({"event_ttl": "2 days", "debug": 1}),
        );
        let err = c.int("ITERATION_MAX_LIMIT").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("Cannot convert config item ITERATION_MAX_LIMIT using int: ten")
        );
        assert!(c.duration("EVENT_TTL").is_err());
        assert!(c.boolean("DEBUG").is_err(), "numbers are not lava booleans");
        assert!(c.validate().is_err());
        assert_eq!(c.int("NOPE"), Err(ConfigError::Unknown("NOPE".into())));
    }

    #[test]
    fn empty_event_ttl_disables() {
        let c = config(&[("EVENT_TTL", "")], json!({}));
        assert_eq!(c.duration("EVENT_TTL"), Ok(None));
    }

    #[test]
    fn dump_is_sorted() {
        let lines = config(&[], json!({})).dump();
        let mut sorted = lines.clone();
        sorted.sort();
        assert_eq!(lines, sorted);
        assert!(lines.contains(&"CMD_TIMEOUT=10m".to_string()));
    }
}

//! Typed settings. A program declares the configuration items it uses as a
//! struct with typed fields ([`settings!`](crate::settings!)); the struct is
//! built and checked once at start-up from the parameter table
//! ([`Config`]: `LAVA_<NAME>`, then the realm's `config`, then the built-in
//! default). No call site looks a setting up by name, a misspelt name is
//! refused when the struct is built (never silently defaulted), and a bad
//! value stops start-up instead of a run.

use std::time::Duration;

use crate::config::{Config, ConfigError, Kind};
use crate::units;

/// A type a configuration item converts to.
pub trait Setting: Sized {
    /// Reads and converts item `name`.
    fn load(config: &Config, name: &'static str) -> Result<Self, ConfigError>;
}

/// A size in bytes (SI or IEC units in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub u64);

/// A setting's value with the text it was configured as, for messages that
/// quote the configuration ("must be <= 5m").
#[derive(Debug, Clone, PartialEq)]
pub struct Configured<T> {
    /// The converted value.
    pub value: T,
    /// The value as configured.
    pub text: String,
}

fn unset(name: &str, kind: Kind) -> ConfigError {
    ConfigError::Convert {
        name: name.to_string(),
        converter: kind.converter(),
        value: "null".into(),
    }
}

impl Setting for String {
    fn load(config: &Config, name: &'static str) -> Result<Self, ConfigError> {
        config.string(name)?.ok_or_else(|| unset(name, Kind::Str))
    }
}

impl Setting for Option<String> {
    fn load(config: &Config, name: &'static str) -> Result<Self, ConfigError> {
        config.string(name)
    }
}

impl Setting for i64 {
    fn load(config: &Config, name: &'static str) -> Result<Self, ConfigError> {
        config.int(name)
    }
}

impl Setting for u64 {
    /// An integer that must not be negative.
    fn load(config: &Config, name: &'static str) -> Result<Self, ConfigError> {
        let n = config.int(name)?;
        u64::try_from(n).map_err(|_| ConfigError::Convert {
            name: name.to_string(),
            converter: Kind::Int.converter(),
            value: n.to_string(),
        })
    }
}

impl Setting for bool {
    fn load(config: &Config, name: &'static str) -> Result<Self, ConfigError> {
        config.boolean(name)
    }
}

impl Setting for Bytes {
    fn load(config: &Config, name: &'static str) -> Result<Self, ConfigError> {
        config.size(name).map(Bytes)
    }
}

impl Setting for Option<Duration> {
    /// Unset or empty text is `None` (`EVENT_TTL=""` turns the events `ttl` off).
    fn load(config: &Config, name: &'static str) -> Result<Self, ConfigError> {
        let Some(seconds) = config.duration(name)? else {
            return Ok(None);
        };
        units::to_duration(seconds)
            .map(Some)
            .map_err(|_| ConfigError::Convert {
                name: name.to_string(),
                converter: Kind::Duration.converter(),
                value: config.string(name).ok().flatten().unwrap_or_default(),
            })
    }
}

impl Setting for Duration {
    fn load(config: &Config, name: &'static str) -> Result<Self, ConfigError> {
        <Option<Duration>>::load(config, name)?.ok_or_else(|| unset(name, Kind::Duration))
    }
}

impl<T: Setting> Setting for Configured<T> {
    fn load(config: &Config, name: &'static str) -> Result<Self, ConfigError> {
        Ok(Self {
            value: T::load(config, name)?,
            text: config.string(name)?.unwrap_or_default(),
        })
    }
}

/// Declares a settings struct: each field names the configuration item it
/// is read from.
///
/// ```
/// use std::time::Duration;
/// lava_common::settings! {
///     /// What a tool reads.
///     pub struct ToolSettings {
///         /// `CMD_TIMEOUT`.
///         cmd_timeout: Duration = "CMD_TIMEOUT",
///         /// `STDERR_SIZE`.
///         stderr_size: i64 = "STDERR_SIZE",
///     }
/// }
/// let config = lava_common::config::Config::default();
/// let settings = ToolSettings::load(&config).expect("defaults convert");
/// assert_eq!(settings.cmd_timeout, Duration::from_secs(600));
/// assert_eq!(ToolSettings::ITEMS, ["CMD_TIMEOUT", "STDERR_SIZE"]);
/// ```
#[macro_export]
macro_rules! settings {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $item:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        $vis struct $name {
            $( $(#[$fmeta])* $vis $field: $ty, )*
        }

        impl $name {
            /// The configuration items this struct reads.
            #[allow(dead_code)]
            $vis const ITEMS: &'static [&'static str] = &[$($item),*];

            /// Reads and checks every field from `config`.
            $vis fn load(
                config: &$crate::config::Config,
            ) -> ::std::result::Result<Self, $crate::config::ConfigError> {
                Ok(Self {
                    $( $field: <$ty as $crate::settings::Setting>::load(config, $item)?, )*
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    crate::settings! {
        /// Every kind of field.
        struct Sample {
            /// A duration.
            timeout: Duration = "CMD_TIMEOUT",
            /// An optional duration.
            ttl: Option<Duration> = "EVENT_TTL",
            /// An integer.
            size: i64 = "STDERR_SIZE",
            /// A boolean.
            local_tmp: bool = "JOB_LOCAL_TMPDIR",
            /// A size.
            max: Bytes = "EXE_MAX_PAYLOAD_SIZE",
            /// Text.
            tmpdir: String = "TMPDIR",
            /// Optional text.
            from: Option<String> = "SES_FROM",
            /// A value with its text.
            delay: Configured<Duration> = "ITERATION_MAX_DELAY",
        }
    }

    fn config(env: &[(&str, &str)]) -> Config {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::new(env, &serde_json::Map::new())
    }

    #[test]
    fn defaults_load_typed() {
        let s = Sample::load(&config(&[])).expect("defaults");
        assert_eq!(s.timeout, Duration::from_secs(600));
        assert_eq!(s.ttl, Some(Duration::from_secs(2 * 86_400)));
        assert_eq!(s.size, 2000);
        assert!(s.local_tmp);
        assert_eq!(s.max, Bytes(10_000_000));
        assert_eq!(s.tmpdir, "/tmp/lava");
        assert_eq!(s.from, None);
        assert_eq!(s.delay.value, Duration::from_secs(300));
        assert_eq!(s.delay.text, "5m");
    }

    #[test]
    fn bad_or_huge_values_name_the_item() {
        for (name, value) in [
            ("CMD_TIMEOUT", "1e300s"),
            ("CMD_TIMEOUT", "soon"),
            ("EVENT_TTL", "1e20"),
            ("STDERR_SIZE", "big"),
        ] {
            let err = Sample::load(&config(&[(name, value)]))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains(name) && err.contains(value),
                "{name}={value}: {err}"
            );
        }
        let off = Sample::load(&config(&[("EVENT_TTL", "")])).expect("empty ttl");
        assert_eq!(off.ttl, None);
    }

    #[test]
    fn misspelt_items_are_refused() {
        crate::settings! {
            struct Misspelt {
                /// Not an item.
                nope: i64 = "STDERR_SIZ",
            }
        }
        assert_eq!(
            Misspelt::load(&config(&[])).map(|m| m.nope).err(),
            Some(ConfigError::Unknown("STDERR_SIZ".into()))
        );
        let realm = json!({"stderr_size": 5});
        let c = Config::new(BTreeMap::new(), realm.as_object().expect("map"));
        assert_eq!(Sample::load(&c).map(|s| s.size).ok(), Some(5));
    }
}

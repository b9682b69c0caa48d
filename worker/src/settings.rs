//! The worker's settings: every configuration item the worker, its job types
//! and its actions read, typed and checked once at start-up (a bad value
//! refuses start-up with exit 78, never fails a run later).

use std::time::Duration;

use lava_common::config::{Config, ConfigError};
use lava_common::connection::AwsSettings;
use lava_common::settings;
use lava_common::settings::{Bytes, Configured, Setting};

settings! {
    /// Read before the realm record is known (from the environment and defaults only).
    pub struct StartupSettings {
        /// How long start-up retries an unreachable queue or realms table.
        startup_retry: Duration = "STARTUP_RETRY",
    }
}

settings! {
    /// Read once the realm's `config` map is known.
    pub struct WorkerSettings {
        /// Root of the worker's temporary directories.
        tmpdir: String = "TMPDIR",
        /// Heartbeat file name, under the worker directory.
        heartbeat_file: String = "HEARTBEAT_FILE",
        /// Dispatch suppression file.
        no_dispatch: Option<String> = "NO_DISPATCH",
        /// Crontab dispatcher path for `lavasched`.
        dispatcher: Option<String> = "DISPATCHER",
        /// Largest `delay` of a `dispatch` action, minutes.
        sqs_max_delay_mins: i64 = "SQS_MAX_DELAY_MINS",
        /// Events `ttl` after each event; `None` turns it off.
        event_ttl: Option<Duration> = "EVENT_TTL",
        /// `STDERR_SIZE`: bytes of stderr kept in a failure (negative: the tail).
        stderr_size: i64 = "STDERR_SIZE",
        /// Give each payload its own `TMPDIR` under the job directory.
        job_local_tmpdir: bool = "JOB_LOCAL_TMPDIR",
        /// Longest `iteration_delay`.
        iteration_max_delay: Configured<Duration> = "ITERATION_MAX_DELAY",
        /// Largest `iteration_limit`.
        iteration_max_limit: i64 = "ITERATION_MAX_LIMIT",
        /// Default `workers` of a `dag` (the CPU count unless set).
        dag_workers: i64 = "DAG_WORKERS",
        /// Largest `workers` of a `dag` (4 × the CPU count unless set).
        dag_max_workers: i64 = "DAG_MAX_WORKERS",
        /// Default `limit` of a `foreach`.
        foreach_limit: i64 = "FOREACH_LIMIT",
        /// Largest `limit` of a `foreach`.
        foreach_max_limit: i64 = "FOREACH_MAX_LIMIT",
        /// Payload downloader version (`v2` only).
        payload_downloader: String = "PAYLOAD_DOWNLOADER",
        /// Seconds to wait after downloading payloads.
        payload_settling_time: i64 = "PAYLOAD_SETTLING_TIME",
        /// Delay of jump-start dispatches.
        jumpstart_delay: Duration = "JUMPSTART_DELAY",
        /// Default `ttl` of the `state` action.
        state_ttl: Duration = "STATE_TTL",
        /// Longest `ttl` of the `state` action.
        state_max_ttl: Duration = "STATE_MAX_TTL",
        /// Default `timeout` of `cmd` jobs.
        cmd_timeout: Duration = "CMD_TIMEOUT",
        /// Default `timeout` of `exe` jobs.
        exe_timeout: Duration = "EXE_TIMEOUT",
        /// Largest `exe` payload.
        exe_max_payload_size: Configured<Bytes> = "EXE_MAX_PAYLOAD_SIZE",
        /// Default `timeout` of `pkg` jobs.
        pkg_timeout: Duration = "PKG_TIMEOUT",
        /// How long a `pkg` bundle may take to unpack.
        pkg_unpack_timeout: Duration = "PKG_UNPACK_TIMEOUT",
        /// Largest `pkg` bundle.
        pkg_max_payload_size: Configured<Bytes> = "PKG_MAX_PAYLOAD_SIZE",
        /// Largest total size a `pkg` bundle may unpack to.
        pkg_max_unpacked_size: Configured<Bytes> = "PKG_MAX_UNPACKED_SIZE",
        /// How long a drain waits for running jobs.
        drain_timeout: Duration = "DRAIN_TIMEOUT",
        /// SIGTERM → SIGKILL grace for payload process groups.
        kill_grace: Duration = "KILL_GRACE",
        /// Period of visibility and lease renewal; zero turns it off.
        visibility_keepalive: Duration = "VISIBILITY_KEEPALIVE",
        /// Fuel of one template render; zero turns the limit off.
        render_fuel: u64 = "RENDER_FUEL",
        /// How a failed attempt waits for the run's next iteration.
        retry_mode: RetryMode = "RETRY_MODE",
        /// How many SSM parameter values are cached.
        param_cache_size: u64 = "PARAM_CACHE_SIZE",
        /// How long an SSM parameter value is cached; zero or empty: not cached.
        param_cache_ttl: Option<Duration> = "PARAM_CACHE_TTL",
        /// Default `batch_size` of `sql`/`sqli` jobs.
        sql_batch_size: i64 = "SQL_BATCH_SIZE",
        /// Default CSV `delimiter` of `sql`/`sqli` output.
        sql_delimiter: String = "SQL_DELIMITER",
        /// Default CSV `quotechar`.
        sql_quotechar: Option<String> = "SQL_QUOTECHAR",
        /// Default CSV `escapechar` (none by default).
        sql_escapechar: Option<String> = "SQL_ESCAPECHAR",
        /// Default CSV `dialect`.
        sql_dialect: String = "SQL_DIALECT",
        /// Default CSV `quoting`.
        sql_quoting: String = "SQL_QUOTING",
        /// Default CSV `doublequote`.
        sql_doublequote: bool = "SQL_DOUBLEQUOTE",
        /// Largest `sql` payload file.
        sql_max_payload_size: Configured<Bytes> = "SQL_MAX_PAYLOAD_SIZE",
        /// Suffix of `sql`/`sqli` output files.
        sql_output_suffix: String = "SQL_OUTPUT_SUFFIX",
        /// Default `timeout` of `sqlc` jobs, per file.
        sqlc_timeout: Duration = "SQLC_TIMEOUT",
        /// Largest `sqlc` payload file.
        sqlc_max_payload_size: Configured<Bytes> = "SQLC_MAX_PAYLOAD_SIZE",
        /// Template of a connection's application name (role session name).
        conn_app_name: Option<String> = "CONN_APP_NAME",
        /// Default session length of an `aws` connection's assumed role.
        aws_conn_duration: Duration = "AWS_CONN_DURATION",
        /// How long an `aws` connection's credentials are cached.
        aws_access_key_cache_ttl: Duration = "AWS_ACCESS_KEY_CACHE_TTL",
        /// How many `aws` connections' credentials are cached.
        aws_access_key_cache_size: u64 = "AWS_ACCESS_KEY_CACHE_SIZE",
    }
}

/// How a failed attempt with iterations left waits for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryMode {
    /// `retrying` is recorded and the message returned to the queue for the
    /// iteration delay; the job slot is free meanwhile, and the next
    /// delivery goes on with the next iteration.
    Delayed,
    /// The attempt sleeps in its job slot, as the original does (for a
    /// queue that Python workers share: they would start a resumed run
    /// again at iteration 1).
    Inline,
}

impl Setting for RetryMode {
    fn load(config: &Config, name: &'static str) -> Result<Self, ConfigError> {
        let text = config.string(name)?.unwrap_or_default();
        match text.trim().to_ascii_lowercase().as_str() {
            "delayed" => Ok(Self::Delayed),
            "inline" => Ok(Self::Inline),
            _ => Err(ConfigError::Convert {
                name: name.to_string(),
                converter: "retry mode (delayed or inline)",
                value: text,
            }),
        }
    }
}

settings! {
    /// What email sending (the `email` action, `lava-email`) reads.
    pub struct MailSettings {
        /// Region of bare SES and of `ses` connections without `region`.
        ses_region: String = "SES_REGION",
        /// Default sender for SES.
        ses_from: Option<String> = "SES_FROM",
        /// Configuration set of `ses` connections without `configuration_set`.
        ses_configuration_set: Option<String> = "SES_CONFIGURATION_SET",
        /// Most attachments per message.
        email_max_attachments: i64 = "EMAIL_MAX_ATTACHMENTS",
        /// Largest attachment.
        email_max_attachment_size: Bytes = "EMAIL_MAX_ATTACHMENT_SIZE",
        /// Largest whole message.
        email_max_size: Bytes = "EMAIL_MAX_SIZE",
    }
}

impl WorkerSettings {
    /// The `aws` connector's settings.
    pub fn aws_connections(&self) -> AwsSettings {
        AwsSettings {
            duration: self.aws_conn_duration,
            cache_ttl: self.aws_access_key_cache_ttl,
            cache_size: usize::try_from(self.aws_access_key_cache_size).unwrap_or(usize::MAX),
        }
    }

    /// The SSM parameter cache's size.
    pub fn param_cache_entries(&self) -> usize {
        usize::try_from(self.param_cache_size).unwrap_or(usize::MAX)
    }

    /// The fuel the renderer is built with (`None`: no limit).
    pub fn render_fuel_limit(&self) -> Option<u64> {
        (self.render_fuel > 0).then_some(self.render_fuel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load() {
        let config = Config::default();
        let s = WorkerSettings::load(&config).expect("defaults");
        assert_eq!(s.kill_grace, Duration::from_secs(10));
        assert_eq!(s.iteration_max_delay.text, "5m");
        assert_eq!(s.exe_max_payload_size.value, Bytes(10_000_000));
        assert_eq!(
            StartupSettings::load(&config).map(|s| s.startup_retry).ok(),
            Some(Duration::from_secs(300))
        );
        assert_eq!(s.render_fuel_limit(), Some(5_000_000));
        assert_eq!(s.param_cache_entries(), 100);
        assert_eq!(s.param_cache_ttl, Some(Duration::from_secs(120)));
        assert_eq!(
            s.conn_app_name.as_deref(),
            Some("lv-{{ realm }}-{{ job_id }}")
        );
        assert_eq!(s.aws_connections(), AwsSettings::default());
        assert_eq!(s.retry_mode, RetryMode::Delayed);
    }

    #[test]
    fn retry_mode_loads_and_refuses_other_values() {
        let load = |value: &str| WorkerSettings::load(&with("RETRY_MODE", value));
        assert_eq!(
            load("Inline").ok().map(|s| s.retry_mode),
            Some(RetryMode::Inline)
        );
        assert_eq!(
            load("delayed").ok().map(|s| s.retry_mode),
            Some(RetryMode::Delayed)
        );
        let err = load("later")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            err,
            "Cannot convert config item RETRY_MODE using retry mode (delayed or inline): later"
        );
    }

    #[test]
    fn mail_settings_load_and_refuse_bad_sizes() {
        let s = MailSettings::load(&Config::default()).expect("defaults");
        assert_eq!(s.ses_region, "us-east-1");
        assert_eq!(s.ses_from, None);
        assert_eq!(s.email_max_attachments, 5);
        assert_eq!(s.email_max_attachment_size, Bytes(2_000_000));
        assert_eq!(s.email_max_size, Bytes(5_000_000));
        let err = MailSettings::load(&with("EMAIL_MAX_SIZE", "huge"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("EMAIL_MAX_SIZE"), "{err}");
    }

    fn with(name: &str, value: &str) -> Config {
        let env = [(name.to_string(), value.to_string())]
            .into_iter()
            .collect();
        Config::new(env, &serde_json::Map::new())
    }

    #[test]
    fn render_fuel_loads_and_refuses_bad_values() {
        let load = |value: &str| WorkerSettings::load(&with("RENDER_FUEL", value));
        assert_eq!(
            load("20000").ok().and_then(|s| s.render_fuel_limit()),
            Some(20_000)
        );
        assert_eq!(
            load("0").ok().map(|s| s.render_fuel_limit()),
            Some(None),
            "0 turns the limit off"
        );
        for bad in ["lots", "-1", "1.5", ""] {
            let err = load(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                err.contains("RENDER_FUEL"),
                "RENDER_FUEL={bad:?} must be refused: {err:?}"
            );
        }
        let realm = serde_json::json!({"render_fuel": 7});
        let config = Config::new(
            Default::default(),
            realm.as_object().unwrap_or(&serde_json::Map::new()),
        );
        assert_eq!(
            WorkerSettings::load(&config)
                .ok()
                .and_then(|s| s.render_fuel_limit()),
            Some(7),
            "the realm's config"
        );
    }
}

//! The `aws` connector: credentials from the connection's `access_keys` (an
//! SSM parameter holding `key_id,secret`) or from STS AssumeRole of its
//! `role_arn` (`external_id`, `duration`, `policy_arns`, `policy`, `tags`),
//! cached per connection for `AWS_ACCESS_KEY_CACHE_TTL` (at most
//! `AWS_ACCESS_KEY_CACHE_SIZE` entries).

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sts::types::{PolicyDescriptorType, Tag};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::{ConnError, Connections, Record, role_session_name};
use crate::ttl_cache::TtlCache;
use crate::units;

/// The keys an `aws` connection may have besides the common ones.
const ALLOWED: [&str; 8] = [
    "access_keys",
    "role_arn",
    "external_id",
    "duration",
    "policy_arns",
    "policy",
    "tags",
    "region",
];

/// Credentials of an `aws` connection.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// The region: the connection's, else the worker session's.
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token (assumed roles).
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// `AWS_CONN_DURATION`, `AWS_ACCESS_KEY_CACHE_TTL`, `AWS_ACCESS_KEY_CACHE_SIZE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsSettings {
    /// Default assumed-role session length.
    pub duration: Duration,
    /// How long credentials are cached per connection (zero: not cached).
    pub cache_ttl: Duration,
    /// How many connections' credentials are cached.
    pub cache_size: usize,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(3 * 3600),
            cache_ttl: Duration::from_secs(600),
            cache_size: 20,
        }
    }
}

/// Resolves `aws` connections: the worker's own AWS configuration (loaded
/// on first use, for STS and the default region) and the credentials cache.
#[derive(Clone)]
pub struct AwsResolver {
    profile: Option<String>,
    settings: AwsSettings,
    config: Arc<OnceCell<SdkConfig>>,
    cache: TtlCache<AwsCredentials>,
}

impl AwsResolver {
    /// A resolver using AWS profile `profile` (if any) for its own calls.
    pub fn new(profile: Option<&str>, settings: AwsSettings) -> Self {
        Self {
            profile: profile.map(str::to_string),
            cache: TtlCache::new(settings.cache_ttl, settings.cache_size),
            settings,
            config: Arc::default(),
        }
    }

    async fn sdk_config(&self) -> &SdkConfig {
        self.config
            .get_or_init(|| crate::store::aws::sdk_config(self.profile.as_deref()))
            .await
    }

    /// The worker's own AWS credentials and region (RDS auth tokens).
    pub(crate) async fn session_credentials(
        &self,
    ) -> Result<(aws_credential_types::Credentials, Option<String>), String> {
        use aws_credential_types::provider::ProvideCredentials;
        let config = self.sdk_config().await;
        let provider = config
            .credentials_provider()
            .ok_or_else(|| "the worker has no AWS credentials".to_string())?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("cannot get the worker's AWS credentials: {e}"))?;
        Ok((credentials, config.region().map(|r| r.to_string())))
    }

    /// The credentials of `record` (an enabled `aws` connection).
    pub(super) async fn credentials(
        &self,
        c: &Connections,
        record: &Record,
        app_name: Option<&str>,
    ) -> Result<AwsCredentials, ConnError> {
        let id = record.id();
        let conn_type = record.connection.conn_type();
        if !conn_type.eq_ignore_ascii_case("aws") {
            return Err(ConnError::other(
                id,
                format!("Must be of type \"aws\" not {conn_type}"),
            ));
        }
        record.allow_only(&ALLOWED)?;
        let item = record.item();
        let region = match item.get("region") {
            None | Some(Value::Null) => None,
            Some(Value::String(r)) => Some(r.clone()),
            Some(_) => return Err(ConnError::field(id, "region", "must be a string")),
        };
        let has = |k: &str| item.get(k).is_some_and(|v| !v.is_null());
        if !has("access_keys") && !has("role_arn") {
            return Err(ConnError::other(
                id,
                "One of access_keys or role_arn is required",
            ));
        }
        if let Some(creds) = self.cache.get(id) {
            return Ok(creds);
        }
        let region = match region {
            Some(r) => Some(r),
            None => self.sdk_config().await.region().map(|r| r.to_string()),
        };
        let creds = if has("access_keys") {
            let value = c.parameter_field(record, "access_keys").await?;
            let Some((key_id, secret)) = value.split_once(',') else {
                return Err(ConnError::field(
                    id,
                    "access_keys",
                    "Must be in format \"access_key_id,access_secret_key\"",
                ));
            };
            AwsCredentials {
                region,
                access_key_id: key_id.trim().to_string(),
                secret_access_key: secret.trim().to_string(),
                session_token: None,
            }
        } else {
            self.assume_role(c, record, region, app_name).await?
        };
        self.cache.put(id, creds.clone());
        Ok(creds)
    }

    /// STS AssumeRole of the connection's `role_arn`.
    async fn assume_role(
        &self,
        c: &Connections,
        record: &Record,
        region: Option<String>,
        app_name: Option<&str>,
    ) -> Result<AwsCredentials, ConnError> {
        let id = record.id();
        let item = record.item();
        let Some(Value::String(role_arn)) = item.get("role_arn") else {
            return Err(ConnError::field(id, "role_arn", "must be a string"));
        };
        let duration = match item.get("duration") {
            None | Some(Value::Null) => self.settings.duration,
            Some(v) => units::duration_of(v)
                .map_err(|e| ConnError::field(id, "duration", e.to_string()))?,
        };
        let duration_secs = i32::try_from(duration.as_secs())
            .map_err(|_| ConnError::field(id, "duration", "too long"))?;
        let external_id = match item.get("external_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(c.parameter(id, "external_id", name, false).await?),
            Some(_) => {
                return Err(ConnError::field(
                    id,
                    "external_id",
                    "must be the name of an SSM parameter",
                ));
            }
        };
        let policy_arns: Vec<String> = match item.get("policy_arns") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(arn)) => vec![arn.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    ConnError::field(id, "policy_arns", "must be a string or a list of strings")
                })?,
            Some(_) => {
                return Err(ConnError::field(
                    id,
                    "policy_arns",
                    "must be a string or a list of strings",
                ));
            }
        };
        let policy = match item.get("policy") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.to_string()),
            Some(_) => return Err(ConnError::field(id, "policy", "must be a map")),
        };
        let tags = match item.get("tags") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| {
                    Tag::builder()
                        .key(k)
                        .value(units::show(v))
                        .build()
                        .map_err(|e| ConnError::field(id, "tags", e.to_string()))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(ConnError::field(id, "tags", "must be a map")),
        };
        let session_name = app_name
            .and_then(role_session_name)
            .unwrap_or_else(|| "lava".to_string());
        let config = self.sdk_config().await;
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(config)
                .timeout_config(crate::store::aws::timeouts(Some(
                    crate::store::aws::QUICK_ATTEMPT,
                )))
                .build(),
        );
        let out = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .duration_seconds(duration_secs)
            .set_external_id(external_id)
            .set_policy(policy)
            .set_policy_arns(Some(
                policy_arns
                    .into_iter()
                    .map(|arn| PolicyDescriptorType::builder().arn(arn).build())
                    .collect(),
            ))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| {
                let shown = match e.as_service_error() {
                    Some(service) => aws_sdk_sts::error::DisplayErrorContext(service).to_string(),
                    None => aws_sdk_sts::error::DisplayErrorContext(&e).to_string(),
                };
                ConnError::other(id, format!("Cannot assume role {role_arn}: {shown}"))
            })?;
        let Some(creds) = out.credentials() else {
            return Err(ConnError::other(
                id,
                format!("Cannot assume role {role_arn}: no credentials returned"),
            ));
        };
        Ok(AwsCredentials {
            region,
            access_key_id: creds.access_key_id().to_string(),
            secret_access_key: creds.secret_access_key().to_string(),
            session_token: Some(creds.session_token().to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::connections;
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn access_keys_come_from_ssm_and_are_cached() {
        let (dir, c) = connections(
            &[
                json!({"conn_id": "k", "type": "aws", "enabled": true,
                       "access_keys": "/lava/r/keys", "region": "ap-southeast-2"}),
                json!({"conn_id": "bad", "type": "aws", "enabled": true, "access_keys": "/lava/r/bad"}),
                json!({"conn_id": "none", "type": "aws", "enabled": true}),
                json!({"conn_id": "extra", "type": "aws", "enabled": true, "role_arn": "r", "host": "h"}),
            ],
            &[("/lava/r/keys", "AKIA1, s3cr3t"), ("/lava/r/bad", "s3cr3t-without-comma")],
        )
        .await;
        let k = c.get("k").await.unwrap_or_else(|e| panic!("{e}"));
        let creds = c
            .aws_credentials(&k, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(creds.access_key_id, "AKIA1");
        assert_eq!(creds.secret_access_key, "s3cr3t");
        assert_eq!(creds.region.as_deref(), Some("ap-southeast-2"));
        assert!(!format!("{creds:?}").contains("s3cr3t"));
        // Cached per connection: a changed parameter is not seen for the TTL.
        std::fs::write(dir.path().join("secrets/lava/r/keys"), "AKIA2,other")
            .unwrap_or_else(|e| panic!("{e}"));
        let again = c
            .aws_credentials(&k, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.access_key_id, "AKIA1");

        let bad = c.get("bad").await.unwrap_or_else(|e| panic!("{e}"));
        let err = c
            .aws_credentials(&bad, None)
            .await
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "Connection bad: access_keys: Must be in format \"access_key_id,access_secret_key\""
            )
        );
        assert!(!err.unwrap_or_default().contains("s3cr3t"));
        let none = c.get("none").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.aws_credentials(&none, None)
                .await
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("Connection none: One of access_keys or role_arn is required")
        );
        let extra = c.get("extra").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.aws_credentials(&extra, None)
                .await
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("Connection extra: Unexpected keys: host")
        );
    }

    #[test]
    fn the_cache_is_bounded_and_expires() {
        let r = AwsResolver::new(
            None,
            AwsSettings {
                cache_size: 2,
                cache_ttl: Duration::from_millis(40),
                ..AwsSettings::default()
            },
        );
        let creds = AwsCredentials {
            region: None,
            access_key_id: "a".into(),
            secret_access_key: "s".into(),
            session_token: None,
        };
        for id in ["x", "y", "z"] {
            r.cache.put(id, creds.clone());
        }
        assert_eq!(r.cache.len(), 2);
        assert!(r.cache.get("x").is_none() && r.cache.get("z").is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(r.cache.get("z").is_none());
        let off = AwsResolver::new(
            None,
            AwsSettings {
                cache_ttl: Duration::ZERO,
                ..AwsSettings::default()
            },
        );
        off.cache.put("x", creds.clone());
        assert!(off.cache.get("x").is_none());
    }
}

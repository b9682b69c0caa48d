//! The secrets seam on AWS: SSM Parameter Store (`GetParameter` with
//! decryption, `PutParameter` as `SecureString`, `DescribeParameters`) and
//! Secrets Manager (`GetSecretValue`, `CreateSecret`/`PutSecretValue`,
//! `ListSecrets`).

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_ssm::types::{ParameterStringFilter, ParameterType};

use super::store_error;
use crate::store::StoreError;
use crate::store::secrets::{SecretValue, Secrets};

/// SSM and Secrets Manager clients.
#[derive(Debug, Clone)]
pub struct AwsSecrets {
    ssm: aws_sdk_ssm::Client,
    sm: aws_sdk_secretsmanager::Client,
}

impl AwsSecrets {
    /// Clients from the SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        let timeouts = super::timeouts(Some(super::QUICK_ATTEMPT));
        Self {
            ssm: aws_sdk_ssm::Client::from_conf(
                aws_sdk_ssm::config::Builder::from(config)
                    .timeout_config(timeouts.clone())
                    .build(),
            ),
            sm: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(config)
                    .timeout_config(timeouts)
                    .build(),
            ),
        }
    }
}

/// Codes meaning the parameter or secret does not exist.
fn not_found(name: &str) -> impl FnOnce(&str) -> Option<StoreError> + '_ {
    move |code| {
        matches!(code, "ParameterNotFound" | "ResourceNotFoundException")
            .then(|| StoreError::SecretNotFound(name.to_string()))
    }
}

#[async_trait]
impl Secrets for AwsSecrets {
    async fn parameter(&self, name: &str) -> Result<String, StoreError> {
        let out = self
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| store_error(e, not_found(name)))?;
        out.parameter()
            .and_then(|p| p.value())
            .map(str::to_string)
            .ok_or_else(|| StoreError::SecretNotFound(name.to_string()))
    }

    async fn put_parameter(
        &self,
        name: &str,
        value: &str,
        kms_key: Option<&str>,
    ) -> Result<(), StoreError> {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::SecureString)
            .set_key_id(kms_key.map(str::to_string))
            .overwrite(true)
            .send()
            .await
            .map_err(|e| store_error(e, |_| None))?;
        Ok(())
    }

    async fn list_parameters(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut request = self.ssm.describe_parameters().max_results(50);
        if !prefix.is_empty() {
            request = request.parameter_filters(
                ParameterStringFilter::builder()
                    .key("Name")
                    .option("BeginsWith")
                    .values(prefix)
                    .build()
                    .map_err(|e| StoreError::BadRequest(e.to_string()))?,
            );
        }
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = request
                .clone()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| store_error(e, |_| None))?;
            names.extend(
                out.parameters()
                    .iter()
                    .filter_map(|p| p.name().map(str::to_string)),
            );
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        names.retain(|n| n.starts_with(prefix));
        names.sort();
        Ok(names)
    }

    async fn secret(&self, id: &str) -> Result<SecretValue, StoreError> {
        let out = self
            .sm
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| store_error(e, not_found(id)))?;
        if let Some(text) = out.secret_string() {
            return Ok(SecretValue::Text(text.to_string()));
        }
        Ok(SecretValue::Binary(
            out.secret_binary()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default(),
        ))
    }

    async fn put_secret(&self, id: &str, value: &str) -> Result<(), StoreError> {
        let put = self
            .sm
            .put_secret_value()
            .secret_id(id)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| store_error(e, not_found(id)));
        match put {
            Ok(_) => Ok(()),
            Err(StoreError::SecretNotFound(_)) => {
                self.sm
                    .create_secret()
                    .name(id)
                    .secret_string(value)
                    .send()
                    .await
                    .map_err(|e| store_error(e, |_| None))?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn list_secrets(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .sm
                .list_secrets()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| store_error(e, |_| None))?;
            names.extend(
                out.secret_list()
                    .iter()
                    .filter_map(|s| s.name().map(str::to_string)),
            );
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        names.retain(|n| n.starts_with(prefix));
        names.sort();
        Ok(names)
    }
}

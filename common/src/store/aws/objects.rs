//! The objects seam on S3 (path-style addressing when an endpoint is overridden).

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, ServerSideEncryption,
};

use super::store_error;
use crate::store::{ObjectInfo, Objects, StoreError, split_s3_url};

/// S3 objects.
#[derive(Debug, Clone)]
pub struct AwsObjects {
    client: Client,
    region: Option<String>,
}

impl AwsObjects {
    /// An S3 client from the SDK configuration; path-style when the endpoint
    /// is overridden (moto and friends do not resolve `bucket.localhost`).
    pub fn new(config: &SdkConfig) -> Self {
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .timeout_config(super::timeouts(None))
            .build();
        Self {
            client: Client::from_conf(s3_config),
            region: config.region().map(ToString::to_string),
        }
    }
}

fn missing_object(url: &str) -> impl FnOnce(&str) -> Option<StoreError> + '_ {
    move |code| {
        matches!(code, "NoSuchKey" | "NoSuchBucket" | "NotFound")
            .then(|| StoreError::ObjectNotFound(url.to_string()))
    }
}

#[async_trait]
impl Objects for AwsObjects {
    fn bucket_url(&self, bucket: &str) -> String {
        format!("s3://{bucket}")
    }

    async fn put(&self, url: &str, body: Vec<u8>, kms_key: Option<&str>) -> Result<(), StoreError> {
        let (bucket, key) = split_s3_url(url)?;
        let mut request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body));
        request = match kms_key {
            Some(k) => request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(k),
            None => request.server_side_encryption(ServerSideEncryption::Aes256),
        };
        request
            .send()
            .await
            .map_err(|e| store_error(e, missing_object(url)))?;
        Ok(())
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, StoreError> {
        let (bucket, key) = split_s3_url(url)?;
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| store_error(e, missing_object(url)))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Unavailable(format!("reading {url}: {e}")))?;
        Ok(bytes.into_bytes().to_vec())
    }

    async fn list(&self, prefix_url: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let (bucket, prefix) = split_s3_url(prefix_url)?;
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .delimiter("/")
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| store_error(e, missing_object(prefix_url)))?;
            found.extend(out.contents().iter().filter_map(|o| {
                o.key().map(|k| ObjectInfo {
                    url: format!("s3://{bucket}/{k}"),
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                })
            }));
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => return Ok(found),
            }
        }
    }

    async fn create_bucket(&self, url: &str) -> Result<(), StoreError> {
        let (bucket, _) = split_s3_url(url)?;
        let mut request = self.client.create_bucket().bucket(bucket);
        if let Some(region) = self.region.as_deref().filter(|r| *r != "us-east-1") {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) => match store_error(e, |code| {
                matches!(code, "BucketAlreadyOwnedByYou")
                    .then(|| StoreError::ConditionFailed(code.into()))
            }) {
                StoreError::ConditionFailed(_) => Ok(()),
                other => Err(other),
            },
        }
    }
}

//! The objects seam on S3 (path-style addressing when an endpoint is
//! overridden). Files are streamed: up to a threshold in one `PutObject`,
//! above it as a multipart upload whose parts are read from the file one at
//! a time; downloads stream the body to a file.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
    ServerSideEncryption,
};
use tokio::io::AsyncWriteExt;

use super::store_error;
use crate::store::files;
use crate::store::{ObjectInfo, ObjectMeta, Objects, StoreError, split_s3_url};

const MIB: u64 = 1024 * 1024;

/// S3's smallest part (all but the last part of an upload).
pub const MIN_PART_SIZE: u64 = 5 * MIB;

/// S3's largest number of parts in one upload.
const MAX_PARTS: u64 = 10_000;

/// How long one attempt may take per [`TRANSFER_UNIT`] bytes it carries (a
/// part, or a whole single put): generous (about 55 KiB/s), it only stops a
/// transfer whose connection went silent from holding a run for ever.
const ATTEMPT_PER_UNIT: Duration = Duration::from_secs(5 * 60);

/// See [`ATTEMPT_PER_UNIT`].
const TRANSFER_UNIT: u64 = 16 * MIB;

/// A download whose body sends nothing for this long is abandoned.
const BODY_STALL: Duration = Duration::from_secs(5 * 60);

/// When a file upload goes multipart, and in what parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Multipart {
    /// Files larger than this many bytes go up in parts.
    pub threshold: u64,
    /// Bytes per part but the last; at least [`MIN_PART_SIZE`], and raised
    /// when a file would need more than S3's 10,000 parts.
    pub part_size: u64,
}

impl Default for Multipart {
    /// Above 64 MiB, in 16 MiB parts.
    fn default() -> Self {
        Self {
            threshold: 64 * MIB,
            part_size: 16 * MIB,
        }
    }
}

impl Multipart {
    /// The part size for a file of `size` bytes.
    fn part_size_for(&self, size: u64) -> u64 {
        self.part_size
            .max(MIN_PART_SIZE)
            .max(size.div_ceil(MAX_PARTS))
    }
}

/// S3 objects.
#[derive(Debug, Clone)]
pub struct AwsObjects {
    client: Client,
    region: Option<String>,
    multipart: Multipart,
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
            multipart: Multipart::default(),
        }
    }

    /// The same client with other multipart sizes (tests use small ones).
    pub fn with_multipart(mut self, multipart: Multipart) -> Self {
        self.multipart = multipart;
        self
    }

    /// Uploads `path` (`size` bytes) as a multipart upload; any failure
    /// aborts the upload so no parts are left behind to be billed.
    async fn upload_parts(
        &self,
        url: &str,
        path: &Path,
        size: u64,
        kms_key: Option<&str>,
    ) -> Result<(), StoreError> {
        let (bucket, key) = split_s3_url(url)?;
        let (sse, kms_key_id) = encryption(kms_key);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .server_side_encryption(sse)
            .set_ssekms_key_id(kms_key_id)
            .send()
            .await
            .map_err(|e| store_error(e, missing_object(url)))?;
        let upload_id = created.upload_id().ok_or_else(|| {
            StoreError::Service(format!("S3 started no multipart upload for {url}"))
        })?;
        let done = match self.send_parts(url, path, size, upload_id).await {
            Ok(parts) => self
                .client
                .complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .customize()
                .config_override(attempt_limit(ATTEMPT_PER_UNIT))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| store_error(e, missing_object(url))),
            Err(e) => Err(e),
        };
        if done.is_err() {
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .send()
                .await;
            if let Err(e) = aborted {
                let e = store_error(e, |_| None);
                tracing::warn!(%url, upload_id, error = %e, "cannot abort a failed multipart upload");
            }
        }
        done
    }

    /// Sends the parts of `path` one after the other, each read from the
    /// file as it is sent.
    async fn send_parts(
        &self,
        url: &str,
        path: &Path,
        size: u64,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>, StoreError> {
        let (bucket, key) = split_s3_url(url)?;
        let part_size = self.multipart.part_size_for(size);
        let mut parts = Vec::new();
        let mut offset = 0;
        let mut number = 1;
        while offset < size {
            let length = part_size.min(size - offset);
            let body = ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(length))
                .build()
                .await
                .map_err(|e| unreadable(url, path, &e))?;
            let out = self
                .client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(body)
                .customize()
                .config_override(attempt_limit(transfer_time(length)))
                .send()
                .await
                .map_err(|e| store_error(e, missing_object(url)))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
            offset += length;
            number += 1;
        }
        Ok(parts)
    }

    /// Streams an object's body into `out`, a temporary file for `dest`;
    /// returns its size.
    async fn write_body(
        url: &str,
        dest: &Path,
        mut body: ByteStream,
        out: &mut tokio::fs::File,
    ) -> Result<u64, StoreError> {
        let mut written = 0;
        loop {
            let chunk = match tokio::time::timeout(BODY_STALL, body.next()).await {
                Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "reading {url}: no data for {} s",
                        BODY_STALL.as_secs()
                    )));
                }
                Ok(None) => break,
                Ok(Some(chunk)) => {
                    chunk.map_err(|e| StoreError::Unavailable(format!("reading {url}: {e}")))?
                }
            };
            out.write_all(&chunk)
                .await
                .map_err(|e| files::write_error(url, dest, &e))?;
            written += chunk.len() as u64;
        }
        out.flush()
            .await
            .map_err(|e| files::write_error(url, dest, &e))?;
        Ok(written)
    }
}

/// How long one attempt carrying `bytes` may take: [`ATTEMPT_PER_UNIT`] per
/// started [`TRANSFER_UNIT`].
fn transfer_time(bytes: u64) -> Duration {
    let units = u32::try_from(bytes.div_ceil(TRANSFER_UNIT).max(1)).unwrap_or(u32::MAX);
    ATTEMPT_PER_UNIT.saturating_mul(units)
}

/// A per-operation configuration override: each attempt may take `limit`.
fn attempt_limit(limit: Duration) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::default().timeout_config(
        TimeoutConfig::builder()
            .operation_attempt_timeout(limit)
            .build(),
    )
}

/// lava's server-side encryption: SSE-KMS with `kms_key`, else SSE AES256.
fn encryption(kms_key: Option<&str>) -> (ServerSideEncryption, Option<String>) {
    match kms_key {
        Some(k) => (ServerSideEncryption::AwsKms, Some(k.to_string())),
        None => (ServerSideEncryption::Aes256, None),
    }
}

/// The file to upload could not be read.
fn unreadable(url: &str, path: &Path, e: &dyn std::fmt::Display) -> StoreError {
    StoreError::BadRequest(format!("cannot upload {} to {url}: {e}", path.display()))
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
        let (sse, kms_key_id) = encryption(kms_key);
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body))
            .server_side_encryption(sse)
            .set_ssekms_key_id(kms_key_id)
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

    async fn upload(
        &self,
        url: &str,
        path: &Path,
        kms_key: Option<&str>,
    ) -> Result<u64, StoreError> {
        let (bucket, key) = split_s3_url(url)?;
        let size = files::upload_size(url, path).await?;
        if size > self.multipart.threshold {
            self.upload_parts(url, path, size, kms_key).await?;
            return Ok(size);
        }
        let body = ByteStream::read_from()
            .path(path)
            .length(Length::Exact(size))
            .build()
            .await
            .map_err(|e| unreadable(url, path, &e))?;
        let (sse, kms_key_id) = encryption(kms_key);
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .server_side_encryption(sse)
            .set_ssekms_key_id(kms_key_id)
            .customize()
            .config_override(attempt_limit(transfer_time(size)))
            .send()
            .await
            .map_err(|e| store_error(e, missing_object(url)))?;
        Ok(size)
    }

    async fn download(&self, url: &str, path: &Path) -> Result<u64, StoreError> {
        let (bucket, key) = split_s3_url(url)?;
        let temp = files::temp_sibling(url, path)?;
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| store_error(e, missing_object(url)))?;
        let mut file = tokio::fs::File::create(&temp)
            .await
            .map_err(|e| files::write_error(url, path, &e))?;
        let written = Self::write_body(url, path, out.body, &mut file).await;
        drop(file);
        match written {
            Ok(size) => {
                files::commit(url, &temp, path).await?;
                Ok(size)
            }
            Err(e) => {
                files::discard(&temp).await;
                Err(e)
            }
        }
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

    async fn list_all(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let url = format!("s3://{bucket}/{prefix}");
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| store_error(e, missing_object(&url)))?;
            found.extend(out.contents().iter().filter_map(|o| {
                o.key().map(|k| ObjectMeta {
                    key: k.to_string(),
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    last_modified: o.last_modified().and_then(|t| {
                        chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
                            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%:z").to_string())
                    }),
                    etag: o.e_tag().map(str::to_string),
                    storage_class: o.storage_class().map(|c| c.as_str().to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_attempt_limits() {
        let default = Multipart::default();
        assert_eq!(default.part_size_for(100 * MIB), 16 * MIB);
        let tiny = Multipart {
            threshold: 0,
            part_size: 1,
        };
        assert_eq!(tiny.part_size_for(12 * MIB), MIN_PART_SIZE);
        // 200 GiB needs bigger parts to stay within 10,000.
        let huge = 200 * 1024 * MIB;
        let part = default.part_size_for(huge);
        assert!(huge.div_ceil(part) <= MAX_PARTS && part > 16 * MIB);
        assert_eq!(transfer_time(0), ATTEMPT_PER_UNIT);
        assert_eq!(transfer_time(16 * MIB), ATTEMPT_PER_UNIT);
        assert_eq!(transfer_time(16 * MIB + 1), ATTEMPT_PER_UNIT * 2);
        assert_eq!(transfer_time(64 * MIB), ATTEMPT_PER_UNIT * 4);
    }
}

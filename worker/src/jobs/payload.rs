//! Payload download from the realm's `s3_payloads` (the `v2` downloader): a
//! string-prefix listing per item, size limits, each file streamed to disk
//! under `pld-<n>-XXXXXXXX.d/` with owner-execute added.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use lava_common::settings::{Bytes, Configured};

use super::program::random_suffix;
use super::{Failure, JobContext};

/// The payload root joined to a relative item with a single `/`.
pub(super) fn payload_url(job: &JobContext<'_>, item: &str) -> String {
    format!(
        "{}/{}",
        job.services.realm.s3_payloads().trim_end_matches('/'),
        item.trim_start_matches('/')
    )
}

/// Downloads each item; returns the files of each item, sorted by name.
/// `limit` is the largest object size allowed.
pub(super) async fn download(
    job: &JobContext<'_>,
    items: &[String],
    limit: &Configured<Bytes>,
) -> Result<Vec<Vec<PathBuf>>, Failure> {
    let settings = &job.services.settings;
    match settings.payload_downloader.as_str() {
        "v2" => {}
        "v1" => {
            return Err(Failure::new(
                "PAYLOAD_DOWNLOADER v1 is not supported by this worker: use v2",
            ));
        }
        other => {
            return Err(Failure::new(format!("Unknown PAYLOAD_DOWNLOADER: {other}")));
        }
    }
    let objects = &job.services.objects;
    let mut all = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let listed = objects
            .list(&payload_url(job, item))
            .await
            .map_err(|e| Failure::new(format!("Cannot list payload {item}: {e}")))?;
        let dir = job
            .run
            .job_dir
            .join(format!("pld-{n}-{}.d", random_suffix()));
        let mut files = Vec::new();
        for object in listed {
            let basename = object.url.rsplit('/').next().unwrap_or_default();
            if basename.is_empty() {
                continue;
            }
            if object.size > limit.value.0 {
                return Err(Failure::new(format!(
                    "{}: Payload size {} exceeds maximum of {}",
                    object.url, object.size, limit.text
                )));
            }
            std::fs::create_dir_all(&dir)
                .map_err(|e| Failure::new(format!("Cannot create {}: {e}", dir.display())))?;
            let path = dir.join(basename);
            objects
                .download(&object.url, &path)
                .await
                .map_err(|e| Failure::new(format!("Cannot download {}: {e}", object.url)))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| Failure::new(format!("Cannot save {}: {e}", path.display())))?;
            files.push(path);
        }
        if files.is_empty() {
            return Err(Failure::new(format!(
                "No payload files downloaded from S3 for payload: {item}"
            )));
        }
        files.sort();
        all.push(files);
    }
    let settle = settings.payload_settling_time.max(0);
    if settle > 0 {
        tokio::time::sleep(Duration::from_secs(settle.unsigned_abs())).await;
    }
    Ok(all)
}

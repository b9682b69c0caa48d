//! Payload download from `s3_payloads` (spec/job-types.md §1.4, `v2`
//! downloader): a string-prefix listing per item, size limits, files saved
//! under `pld-<n>-XXXXXXXX.d/` with owner-execute added.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use lava_common::units;

use super::{Job, Outcome, random_suffix};

/// The payload root joined to a relative item with a single `/`.
pub(super) fn payload_url(job: &Job<'_>, item: &str) -> String {
    format!(
        "{}/{}",
        job.w.realm.s3_payloads().trim_end_matches('/'),
        item.trim_start_matches('/')
    )
}

/// Downloads each item; returns the files of each item, sorted by name.
pub(super) async fn download(
    job: &Job<'_>,
    items: &[String],
    limit_config: &str,
) -> Result<Vec<Vec<PathBuf>>, Outcome> {
    let config = &job.w.config;
    match config
        .string("PAYLOAD_DOWNLOADER")
        .ok()
        .flatten()
        .as_deref()
    {
        Some("v2") | None => {}
        Some("v1") => {
            return Err(Outcome::fail(
                "PAYLOAD_DOWNLOADER v1 is not supported by this worker: use v2",
            ));
        }
        Some(other) => {
            return Err(Outcome::fail(format!(
                "Unknown PAYLOAD_DOWNLOADER: {other}"
            )));
        }
    }
    let limit_text = config
        .string(limit_config)
        .ok()
        .flatten()
        .unwrap_or_default();
    let limit = units::parse_size(&limit_text)
        .map_err(|e| Outcome::fail(format!("{limit_config}: {e}")))?;
    let objects = &job.w.backend.objects;
    let mut all = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let listed = objects
            .list(&payload_url(job, item))
            .await
            .map_err(|e| Outcome::fail(format!("Cannot list payload {item}: {e}")))?;
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
            if object.size > limit {
                return Err(Outcome::fail(format!(
                    "{}: Payload size {} exceeds maximum of {limit_text}",
                    object.url, object.size
                )));
            }
            let bytes = objects
                .get(&object.url)
                .await
                .map_err(|e| Outcome::fail(format!("Cannot download {}: {e}", object.url)))?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| Outcome::fail(format!("Cannot create {}: {e}", dir.display())))?;
            let path = dir.join(basename);
            std::fs::write(&path, bytes)
                .and_then(|()| {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                })
                .map_err(|e| Outcome::fail(format!("Cannot save {}: {e}", path.display())))?;
            files.push(path);
        }
        if files.is_empty() {
            return Err(Outcome::fail(format!(
                "No payload files downloaded from S3 for payload: {item}"
            )));
        }
        files.sort();
        all.push(files);
    }
    let settle = config.int("PAYLOAD_SETTLING_TIME").unwrap_or(1).max(0);
    if settle > 0 {
        tokio::time::sleep(Duration::from_secs(settle as u64)).await;
    }
    Ok(all)
}

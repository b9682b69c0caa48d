//! The objects seam on the file system: object `<key>` of bucket `<b>` is
//! the file `<DIR>/objects/<b>/<key>`, addressed as
//! `file://<DIR>/objects/<b>/<key>`. Only such URLs are
//! accepted; keys are taken as written (no percent-decoding) and may not
//! hold empty, `.` or `..` segments. Writes go to `<DIR>/partial` first and
//! are renamed into place, so readers never see half an object; uploads
//! and downloads copy file to file, never holding a body in memory. Listing
//! works as S3's with delimiter `/`: a string prefix, not descending past
//! the next `/`. Server-side encryption settings are ignored.
//!
//! Unlike S3, a key cannot be both an object and a "directory" (`a/b` and
//! `a/b/c`): that put fails with [`StoreError::BadRequest`].

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::store::files;
use crate::store::{ObjectInfo, ObjectMeta, Objects, StoreError};

/// Objects under `<DIR>/objects`.
#[derive(Debug, Clone)]
pub struct LocalObjects {
    /// `<DIR>/objects`.
    root: PathBuf,
    /// `<DIR>/partial`, where puts are written before the rename.
    partial: PathBuf,
    /// `file://<DIR>/objects`.
    url_root: String,
}

/// Where a URL points: a bucket and a key (possibly empty or a prefix).
struct Location {
    bucket: String,
    key: String,
}

impl LocalObjects {
    pub(super) fn new(dir: &Path) -> Self {
        let root = dir.join("objects");
        Self {
            url_root: format!("file://{}", root.display()),
            partial: dir.join("partial"),
            root,
        }
    }

    /// Splits a `file://<DIR>/objects/<bucket>/<key>` URL.
    fn locate(&self, url: &str) -> Result<Location, StoreError> {
        let outside = || {
            StoreError::BadRequest(format!(
                "the local backend keeps objects under {}/<bucket>/<key>; {url} is not such a URL",
                self.url_root
            ))
        };
        let rest = url
            .strip_prefix(&self.url_root)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(outside)?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.starts_with('.') || bucket.contains('\0') {
            return Err(StoreError::BadRequest(format!(
                "bad bucket name {bucket:?} in {url}"
            )));
        }
        Ok(Location {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    fn bucket_dir(&self, loc: &Location) -> PathBuf {
        self.root.join(&loc.bucket)
    }

    /// The file of the object `url`.
    fn object_path(&self, url: &str) -> Result<PathBuf, StoreError> {
        let loc = self.locate(url)?;
        check_segments(url, loc.key.split('/'))?;
        Ok(self.bucket_dir(&loc).join(&loc.key))
    }

    /// Stores the object `url`: `write` fills a new file in `<DIR>/partial`,
    /// which is then renamed into place, so readers never see half an object.
    async fn store<T: Send + 'static>(
        &self,
        url: &str,
        write: impl FnOnce(&Path) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let loc = self.locate(url)?;
        check_segments(url, loc.key.split('/'))?;
        let bucket = self.bucket_dir(&loc);
        let path = bucket.join(&loc.key);
        let partial = self.partial.clone();
        let url = url.to_string();
        blocking(move || {
            require_bucket(&url, &bucket)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::BadRequest(format!(
                        "the local backend cannot store {url}: {} is not a directory ({e})",
                        parent.display()
                    ))
                })?;
            }
            std::fs::create_dir_all(&partial).map_err(|e| io_error(&url, &partial, &e))?;
            let temp = partial.join(uuid::Uuid::new_v4().simple().to_string());
            let written = match write(&temp) {
                Ok(written) => written,
                Err(e) => {
                    // Best effort, as below.
                    let _ = std::fs::remove_file(&temp);
                    return Err(io_error(&url, &temp, &e));
                }
            };
            if let Err(e) = std::fs::rename(&temp, &path) {
                // Best effort: the partial file is ours and useless now.
                let _ = std::fs::remove_file(&temp);
                return Err(if path.is_dir() {
                    StoreError::BadRequest(format!(
                        "the local backend cannot store {url}: {} is a directory",
                        path.display()
                    ))
                } else {
                    io_error(&url, &path, &e)
                });
            }
            Ok(written)
        })
        .await
    }
}

/// An error that means there is no object at that path (S3 would answer
/// NoSuchKey).
fn is_missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory
    )
}

/// Checks the `/`-separated segments of a key: none empty, `.` or `..`.
fn check_segments<'a>(
    url: &str,
    segments: impl Iterator<Item = &'a str>,
) -> Result<(), StoreError> {
    for segment in segments {
        if segment.is_empty() || segment == "." || segment == ".." || segment.contains('\0') {
            return Err(StoreError::BadRequest(format!(
                "the local backend cannot store {url}: a key may not have empty, . or .. segments"
            )));
        }
    }
    Ok(())
}

fn io_error(url: &str, path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{url} ({}): {e}", path.display()))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Service(format!("local backend: a file call failed: {e}")))?
}

/// S3 answers NoSuchBucket, which the seam reports as a missing object.
fn require_bucket(url: &str, dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(StoreError::ObjectNotFound(url.to_string()))
    }
}

#[async_trait]
impl Objects for LocalObjects {
    fn bucket_url(&self, bucket: &str) -> String {
        format!("{}/{bucket}", self.url_root)
    }

    async fn put(
        &self,
        url: &str,
        body: Vec<u8>,
        _kms_key: Option<&str>,
    ) -> Result<(), StoreError> {
        self.store(url, move |temp| std::fs::write(temp, &body))
            .await
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.object_path(url)?;
        let url = url.to_string();
        blocking(move || match std::fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if is_missing(&e) => Err(StoreError::ObjectNotFound(url)),
            Err(e) => Err(io_error(&url, &path, &e)),
        })
        .await
    }

    async fn upload(
        &self,
        url: &str,
        path: &Path,
        _kms_key: Option<&str>,
    ) -> Result<u64, StoreError> {
        files::upload_size(url, path).await?;
        let source = path.to_path_buf();
        self.store(url, move |temp| {
            let mut from = std::fs::File::open(&source)?;
            let mut to = std::fs::File::create(temp)?;
            std::io::copy(&mut from, &mut to)
        })
        .await
    }

    async fn download(&self, url: &str, path: &Path) -> Result<u64, StoreError> {
        let object = self.object_path(url)?;
        let temp = files::temp_sibling(url, path)?;
        let dest = path.to_path_buf();
        let url = url.to_string();
        blocking(move || {
            let mut from = match std::fs::File::open(&object) {
                Ok(f) => f,
                Err(e) if is_missing(&e) => return Err(StoreError::ObjectNotFound(url)),
                Err(e) => return Err(io_error(&url, &object, &e)),
            };
            match from.metadata() {
                Ok(meta) if meta.is_file() => {}
                Ok(_) => return Err(StoreError::ObjectNotFound(url)),
                Err(e) => return Err(io_error(&url, &object, &e)),
            }
            let mut to =
                std::fs::File::create(&temp).map_err(|e| files::write_error(&url, &dest, &e))?;
            let copied = std::io::copy(&mut from, &mut to)
                .map_err(|e| files::write_error(&url, &dest, &e))
                .and_then(|size| {
                    drop(to);
                    std::fs::rename(&temp, &dest)
                        .map(|()| size)
                        .map_err(|e| files::write_error(&url, &dest, &e))
                });
            if copied.is_err() {
                // Best effort: the partial file is ours and useless now.
                let _ = std::fs::remove_file(&temp);
            }
            copied
        })
        .await
    }

    async fn list(&self, prefix_url: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let loc = self.locate(prefix_url)?;
        let (dir_part, name_prefix) = match loc.key.rsplit_once('/') {
            Some((dir, name)) => (Some(dir.to_string()), name.to_string()),
            None => (None, loc.key.clone()),
        };
        if let Some(dir) = &dir_part {
            check_segments(prefix_url, dir.split('/'))?;
        }
        let bucket = self.bucket_dir(&loc);
        let bucket_url = self.bucket_url(&loc.bucket);
        let url = prefix_url.to_string();
        blocking(move || {
            require_bucket(&url, &bucket)?;
            let dir = match &dir_part {
                Some(d) => bucket.join(d),
                None => bucket.clone(),
            };
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                    return Ok(Vec::new());
                }
                Err(e) => return Err(io_error(&url, &dir, &e)),
            };
            let mut found = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| io_error(&url, &dir, &e))?;
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if !name.starts_with(&name_prefix) {
                    continue;
                }
                // Follows symbolic links; directories are "common prefixes", not objects.
                let Ok(meta) = std::fs::metadata(entry.path()) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                let key = match &dir_part {
                    Some(d) => format!("{d}/{name}"),
                    None => name,
                };
                found.push(ObjectInfo {
                    url: format!("{bucket_url}/{key}"),
                    size: meta.len(),
                });
            }
            // S3 lists keys in UTF-8 byte order.
            found.sort_by(|a, b| a.url.cmp(&b.url));
            Ok(found)
        })
        .await
    }

    async fn list_all(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let url = format!("{}/{prefix}", self.bucket_url(bucket));
        let loc = self.locate(&url)?;
        let dir = self.bucket_dir(&loc);
        let prefix = prefix.to_string();
        blocking(move || {
            require_bucket(&url, &dir)?;
            let mut found = Vec::new();
            let mut pending = vec![(dir.clone(), String::new())];
            while let Some((at, key_prefix)) = pending.pop() {
                let entries = std::fs::read_dir(&at).map_err(|e| io_error(&url, &at, &e))?;
                for entry in entries {
                    let entry = entry.map_err(|e| io_error(&url, &at, &e))?;
                    let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                        continue;
                    };
                    let key = format!("{key_prefix}{name}");
                    let Ok(meta) = std::fs::metadata(entry.path()) else {
                        continue;
                    };
                    if meta.is_dir() {
                        let dir_key = format!("{key}/");
                        if dir_key.starts_with(&prefix) || prefix.starts_with(&dir_key) {
                            pending.push((entry.path(), dir_key));
                        }
                    } else if meta.is_file() && key.starts_with(&prefix) {
                        let last_modified = meta.modified().ok().map(|t| {
                            chrono::DateTime::<chrono::Utc>::from(t)
                                .format("%Y-%m-%dT%H:%M:%S%:z")
                                .to_string()
                        });
                        found.push(ObjectMeta {
                            key,
                            size: meta.len(),
                            last_modified,
                            etag: None,
                            storage_class: Some("STANDARD".into()),
                        });
                    }
                }
            }
            found.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(found)
        })
        .await
    }

    async fn create_bucket(&self, url: &str) -> Result<(), StoreError> {
        let loc = self.locate(url)?;
        let bucket = self.bucket_dir(&loc);
        let url = url.to_string();
        blocking(move || {
            std::fs::create_dir_all(&bucket).map_err(|e| {
                StoreError::BadRequest(format!(
                    "cannot create the bucket directory {} for {url}: {e}",
                    bucket.display()
                ))
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let o = LocalObjects::new(Path::new("/data/lava"));
        assert_eq!(o.bucket_url("b"), "file:///data/lava/objects/b");
        let loc = o.locate("file:///data/lava/objects/b/p/x.sh");
        let loc = loc.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((loc.bucket.as_str(), loc.key.as_str()), ("b", "p/x.sh"));
        assert!(o.locate("file:///data/lava/objects/b").is_ok());
        assert!(o.locate("s3://b/p/x.sh").is_err());
        assert!(o.locate("file:///data/other/b/x").is_err());
        assert!(o.locate("file:///data/lava/objectsX/b/x").is_err());
        assert!(o.locate("file:///data/lava/objects/../x").is_err());
        assert!(check_segments("u", "a/../b".split('/')).is_err());
        assert!(check_segments("u", "a//b".split('/')).is_err());
        assert!(check_segments("u", "a/b.sh".split('/')).is_ok());
    }
}

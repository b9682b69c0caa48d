//! Local files on the caller's side of an upload or a download, for every
//! objects engine: the file to upload must be a readable regular file, and a
//! download is written to a temporary sibling that is renamed into place, so
//! the destination is either the whole object or untouched.

use std::path::{Path, PathBuf};

use super::StoreError;

/// The size of the file to upload as `url`; [`StoreError::BadRequest`]
/// naming the file when it is missing, unreadable or not a regular file.
pub(crate) async fn upload_size(url: &str, path: &Path) -> Result<u64, StoreError> {
    let cannot = |why: String| {
        StoreError::BadRequest(format!("cannot upload {} to {url}: {why}", path.display()))
    };
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| cannot(e.to_string()))?;
    if !meta.is_file() {
        return Err(cannot("not a regular file".into()));
    }
    // Opening proves it is readable before anything is sent.
    tokio::fs::File::open(path)
        .await
        .map_err(|e| cannot(e.to_string()))?;
    Ok(meta.len())
}

/// A temporary name beside `dest` for the download of `url`:
/// `.<name>.<random>.partial` in the same directory, so the final rename
/// stays on one file system.
pub(crate) fn temp_sibling(url: &str, dest: &Path) -> Result<PathBuf, StoreError> {
    let name = dest.file_name().ok_or_else(|| {
        StoreError::BadRequest(format!(
            "cannot download {url} to {}: not a file name",
            dest.display()
        ))
    })?;
    let random = uuid::Uuid::new_v4().simple().to_string();
    Ok(dest.with_file_name(format!(".{}.{random}.partial", name.to_string_lossy())))
}

/// A failure writing the download of `url` to `path`.
pub(crate) fn write_error(url: &str, path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::BadRequest(format!("cannot download {url} to {}: {e}", path.display()))
}

/// Moves a finished download into place; on failure the temporary file is
/// removed.
pub(crate) async fn commit(url: &str, temp: &Path, dest: &Path) -> Result<(), StoreError> {
    if let Err(e) = tokio::fs::rename(temp, dest).await {
        discard(temp).await;
        return Err(write_error(url, dest, &e));
    }
    Ok(())
}

/// Removes an abandoned temporary file (best effort: it is ours and useless).
pub(crate) async fn discard(temp: &Path) {
    if let Err(e) = tokio::fs::remove_file(temp).await {
        tracing::debug!(path = %temp.display(), error = %e, "cannot remove a partial download");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn upload_sources_are_checked() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let missing = upload_size("s3://b/k", &dir.path().join("nope")).await;
        let Err(StoreError::BadRequest(text)) = missing else {
            panic!("{missing:?}");
        };
        assert!(text.contains("nope") && text.contains("s3://b/k"), "{text}");
        assert!(matches!(
            upload_size("s3://b/k", dir.path()).await,
            Err(StoreError::BadRequest(_))
        ));
        let file = dir.path().join("f");
        std::fs::write(&file, b"abc").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(upload_size("s3://b/k", &file).await, Ok(3));
    }

    #[test]
    fn temporary_names_are_hidden_siblings() {
        let temp = temp_sibling("u", Path::new("/d/out.bin")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(temp.parent(), Some(Path::new("/d")));
        let name = temp.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        assert!(
            name.starts_with(".out.bin.") && name.ends_with(".partial"),
            "{name}"
        );
        assert!(temp_sibling("u", Path::new("/")).is_err());
    }
}

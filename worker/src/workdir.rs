//! The worker's own directory, `<TMPDIR>/<realm>/<worker>.<pid>/`, and the
//! run directories below it: created with mode 0700, and a directory that is
//! already there must be a real directory of this user's with no access for
//! anybody else (one pre-created by another local user could let that user
//! swap a payload before it runs). Trees below it are removed on a
//! blocking thread, never on the async runtime's.

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and missing parents, with the default mode) as a private
/// directory, or checks the one already there.
pub fn create_private(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            // The umask can only take bits away; set the mode all the same.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => check_private(dir),
        Err(e) => Err(e),
    }
}

/// Creates a run directory below the worker's: it must not exist yet.
pub fn create_run_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().mode(0o700).create(dir)
}

/// Removes a directory tree (a run's directory, an unpacked bundle) on a
/// blocking thread: it may hold many or large files, and unlinking them
/// must not hold up the async runtime's threads.
pub async fn remove_tree(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir))
        .await
        .map_err(io::Error::other)?
}

/// A directory already there: not a symbolic link, owned by this user,
/// with no access for group or others.
fn check_private(dir: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    let refuse = |why: String| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} {why}", dir.display()),
        ))
    };
    if !meta.file_type().is_dir() {
        return refuse("exists and is not a directory".into());
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return refuse(format!("is owned by uid {}, not {me}", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return refuse(format!(
            "has mode {:o}; it must give no access to others (0700)",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_directories_are_made_and_checked() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("realm").join("core.1");
        create_private(&dir).expect("create");
        let mode = std::fs::metadata(&dir).expect("meta").mode() & 0o7777;
        assert_eq!(mode, 0o700);
        create_private(&dir).expect("already there and private");

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let err = create_private(&dir).expect_err("open to others");
        assert!(err.to_string().contains("has mode 755"), "{err}");

        let link = root.path().join("realm").join("core.2");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        let err = create_private(&link).expect_err("a link");
        assert!(err.to_string().contains("not a directory"), "{err}");

        let run = root.path().join("run");
        create_run_dir(&run).expect("run dir");
        assert_eq!(
            std::fs::metadata(&run).expect("meta").mode() & 0o7777,
            0o700
        );
        assert!(create_run_dir(&run).is_err(), "exists already");
    }

    #[tokio::test]
    async fn trees_are_removed_whole() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("run");
        std::fs::create_dir_all(dir.join("a/b/c")).expect("mkdir");
        std::fs::write(dir.join("a/b/c/f"), b"x").expect("write");
        remove_tree(&dir).await.expect("remove");
        assert!(!dir.exists());
        let err = remove_tree(&dir).await.expect_err("gone");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}

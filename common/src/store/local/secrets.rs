//! The secrets seam on the local backend: the SSM parameter `<name>` is the
//! file `<DIR>/secrets/<name>` (leading `/` stripped) and the Secrets
//! Manager secret `<id>` is `<DIR>/secrets/sm/<id>`. Files are written 0600
//! in 0700 directories and hold the value exactly; names with `..` or `.`
//! components are refused, so a name can never leave `<DIR>/secrets`.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;

use crate::store::StoreError;
use crate::store::secrets::{SecretValue, Secrets};

/// The directory below `secrets/` that holds Secrets Manager secrets.
const SM_DIR: &str = "sm";

/// `<DIR>/secrets`.
#[derive(Debug, Clone)]
pub struct LocalSecrets {
    root: PathBuf,
}

impl LocalSecrets {
    /// The secrets of the local backend rooted at `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            root: dir.join("secrets"),
        }
    }

    /// The file of SSM parameter `name`.
    pub fn parameter_path(&self, name: &str) -> Result<PathBuf, StoreError> {
        let relative = relative_name(name)?;
        if relative.components().next() == Some(Component::Normal(SM_DIR.as_ref())) {
            return Err(StoreError::BadRequest(format!(
                "SSM parameter {name}: names under /{SM_DIR}/ are kept for Secrets Manager secrets on the local backend"
            )));
        }
        Ok(self.root.join(relative))
    }

    /// The file of Secrets Manager secret `id`.
    pub fn secret_path(&self, id: &str) -> Result<PathBuf, StoreError> {
        Ok(self.root.join(SM_DIR).join(relative_name(id)?))
    }
}

/// A name as a relative path of plain components: a leading `/` stripped,
/// empty components skipped, `.` and `..` refused.
fn relative_name(name: &str) -> Result<PathBuf, StoreError> {
    let mut path = PathBuf::new();
    for part in name.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." || part.contains('\0') {
            return Err(StoreError::BadRequest(format!(
                "secret name {name:?}: . and .. components are not allowed"
            )));
        }
        path.push(part);
    }
    if path.as_os_str().is_empty() {
        return Err(StoreError::BadRequest(format!(
            "secret name {name:?} is empty"
        )));
    }
    Ok(path)
}

/// Reads a secret file; absent is [`StoreError::SecretNotFound`] naming `name`.
async fn read(path: PathBuf, name: &str) -> Result<Vec<u8>, StoreError> {
    let shown = name.to_string();
    tokio::task::spawn_blocking(move || {
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::SecretNotFound(shown));
            }
            Err(e) => return Err(StoreError::Unavailable(format!("{}: {e}", path.display()))),
        };
        if !meta.is_file() {
            return Err(StoreError::SecretNotFound(shown));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "A local secret is readable by other users; it should be mode 0600."
            );
        }
        std::fs::read(&path)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("local secrets: {e}")))?
}

/// Writes a secret file 0600 (directories 0700), replacing it atomically.
async fn write(root: PathBuf, path: PathBuf, value: Vec<u8>) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(move || {
        let fail =
            |p: &Path, e: std::io::Error| StoreError::BadRequest(format!("{}: {e}", p.display()));
        let parent = path.parent().unwrap_or(&root).to_path_buf();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&parent)
            .map_err(|e| fail(&parent, e))?;
        let temp = parent.join(format!(".{}.partial", uuid::Uuid::new_v4().simple()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut f| f.write_all(&value).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&temp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(fail(&path, e));
        }
        Ok(())
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("local secrets: {e}")))?
}

/// Names of the files below `dir` (recursively), as `<prefix_root><relative path>`.
fn walk(dir: &Path, shown: &str, skip: Option<&str>, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".partial") || Some(name.as_str()) == skip {
            continue;
        }
        let full = format!("{shown}{name}");
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &format!("{full}/"), None, out)?;
        } else {
            out.push(full);
        }
    }
    Ok(())
}

/// Every name below `dir` starting with `prefix`, sorted.
async fn list(
    dir: PathBuf,
    shown: &'static str,
    skip: Option<&'static str>,
    prefix: &str,
) -> Result<Vec<String>, StoreError> {
    let prefix = prefix.to_string();
    tokio::task::spawn_blocking(move || {
        let mut names = Vec::new();
        walk(&dir, shown, skip, &mut names)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        names.retain(|n| n.starts_with(&prefix));
        names.sort();
        Ok(names)
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("local secrets: {e}")))?
}

#[async_trait]
impl Secrets for LocalSecrets {
    async fn parameter(&self, name: &str) -> Result<String, StoreError> {
        let bytes = read(self.parameter_path(name)?, name).await?;
        String::from_utf8(bytes)
            .map_err(|_| StoreError::BadRequest(format!("SSM parameter {name} is not UTF-8 text")))
    }

    async fn put_parameter(
        &self,
        name: &str,
        value: &str,
        _kms_key: Option<&str>,
    ) -> Result<(), StoreError> {
        write(
            self.root.clone(),
            self.parameter_path(name)?,
            value.as_bytes().to_vec(),
        )
        .await
    }

    async fn list_parameters(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // SSM names are listed with their leading `/`, as they are usually written.
        list(self.root.clone(), "/", Some(SM_DIR), prefix).await
    }

    async fn secret(&self, id: &str) -> Result<SecretValue, StoreError> {
        let bytes = read(self.secret_path(id)?, id).await?;
        Ok(match String::from_utf8(bytes) {
            Ok(text) => SecretValue::Text(text),
            Err(e) => SecretValue::Binary(e.into_bytes()),
        })
    }

    async fn put_secret(&self, id: &str, value: &str) -> Result<(), StoreError> {
        write(
            self.root.clone(),
            self.secret_path(id)?,
            value.as_bytes().to_vec(),
        )
        .await
    }

    async fn list_secrets(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        list(self.root.join(SM_DIR), "", None, prefix).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn parameters_are_private_files_named_by_the_parameter() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = LocalSecrets::new(dir.path());
        assert_eq!(
            s.parameter("/lava/r/pw").await,
            Err(StoreError::SecretNotFound("/lava/r/pw".into()))
        );
        s.put_parameter("/lava/r/pw", "hunter2\n", None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("secrets/lava/r/pw");
        assert_eq!(
            std::fs::read_to_string(&file).ok().as_deref(),
            Some("hunter2\n")
        );
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir.path().join("secrets/lava/r")), 0o700);
        assert_eq!(mode(&dir.path().join("secrets")), 0o700);
        assert_eq!(s.parameter("/lava/r/pw").await, Ok("hunter2\n".into()));
        assert_eq!(
            s.parameter("lava/r/pw").await,
            Ok("hunter2\n".into()),
            "leading / optional"
        );
        s.put_parameter("/lava/r/pw", "new", None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.parameter("/lava/r/pw").await, Ok("new".into()));
        s.put_parameter("/other", "x", None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.list_parameters("/lava/").await,
            Ok(vec!["/lava/r/pw".to_string()])
        );
        assert_eq!(s.list_parameters("").await.map(|l| l.len()), Ok(2));
    }

    #[tokio::test]
    async fn names_cannot_leave_the_secrets_directory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = LocalSecrets::new(dir.path());
        for bad in ["/lava/../../etc/passwd", "..", "a/./b", "", "/", "/sm/x"] {
            assert!(
                matches!(s.parameter(bad).await, Err(StoreError::BadRequest(_))),
                "{bad:?} must be refused"
            );
            assert!(s.put_parameter(bad, "v", None).await.is_err(), "{bad:?}");
        }
        assert!(matches!(
            s.secret("../x").await,
            Err(StoreError::BadRequest(_))
        ));
    }

    #[tokio::test]
    async fn secrets_manager_secrets_live_under_sm() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = LocalSecrets::new(dir.path());
        assert_eq!(
            s.secret("db/main").await,
            Err(StoreError::SecretNotFound("db/main".into()))
        );
        s.put_secret("db/main", r#"{"username": "u"}"#)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("secrets/sm/db/main");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(
            s.secret("db/main").await,
            Ok(SecretValue::Text(r#"{"username": "u"}"#.into()))
        );
        std::fs::write(dir.path().join("secrets/sm/bin"), [0xff_u8, 0])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.secret("bin").await,
            Ok(SecretValue::Binary(vec![0xff, 0]))
        );
        assert_eq!(s.list_secrets("db").await, Ok(vec!["db/main".to_string()]));
        // Secrets Manager files are not SSM parameters.
        assert_eq!(s.list_parameters("").await, Ok(Vec::new()));
    }
}

//! The key seam of secure state: encrypting a small value under a named key
//! and decrypting it again. On AWS it is KMS (`Encrypt` with the key ARN or
//! `alias/…`, `Decrypt` with the key the ciphertext names), so items stay
//! readable by the original. On the local backend it is AES-256-GCM with one
//! key per realm in `<DIR>/keys/<realm>.key` (32 random bytes, mode 0600,
//! made on first use); the key id is carried in the ciphertext, as KMS does.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Generate, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;

use super::StoreError;
use super::aws::{QUICK_ATTEMPT, store_error, timeouts};

/// The largest plaintext KMS encrypts directly (bytes); the local engine
/// keeps the same limit so a value works on both.
pub const MAX_PLAINTEXT: usize = 4096;

/// The key seam.
#[async_trait]
pub trait Kms: Send + Sync {
    /// Encrypts `plaintext` under `key_id` (a key ARN or `alias/…`) for
    /// `realm`; returns the ciphertext blob.
    async fn encrypt(
        &self,
        realm: &str,
        key_id: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError>;
    /// Decrypts a blob [`Kms::encrypt`] made; the key is the one it names.
    async fn decrypt(&self, realm: &str, ciphertext: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// KMS.
#[derive(Debug, Clone)]
pub struct AwsKms {
    client: Client,
}

impl AwsKms {
    /// A KMS client from the SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: Client::from_conf(
                aws_sdk_kms::config::Builder::from(config)
                    .timeout_config(timeouts(Some(QUICK_ATTEMPT)))
                    .build(),
            ),
        }
    }
}

#[async_trait]
impl Kms for AwsKms {
    async fn encrypt(
        &self,
        _realm: &str,
        key_id: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let out = self
            .client
            .encrypt()
            .key_id(key_id)
            .plaintext(Blob::new(plaintext))
            .send()
            .await
            .map_err(|e| store_error(e, |_| None))?;
        out.ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| StoreError::Service("KMS Encrypt returned no ciphertext".into()))
    }

    async fn decrypt(&self, _realm: &str, ciphertext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let out = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(ciphertext))
            .send()
            .await
            .map_err(|e| store_error(e, |_| None))?;
        out.plaintext
            .map(Blob::into_inner)
            .ok_or_else(|| StoreError::Service("KMS Decrypt returned no plaintext".into()))
    }
}

/// The first bytes of a local ciphertext (and the format's version).
const MAGIC: &[u8; 4] = b"lvk1";
/// AES-GCM nonce length.
const NONCE_LEN: usize = 12;
/// AES-256 key length.
const KEY_LEN: usize = 32;

/// AES-256-GCM with a key file per realm under `<DIR>/keys`.
///
/// A ciphertext is `lvk1`, the key id's length (2 bytes, big-endian), the
/// key id, a random 12-byte nonce, then the AES-GCM output (ciphertext and
/// 16-byte tag). The magic, realm and key id are authenticated with it, so a
/// blob altered, or taken to another realm, does not decrypt.
#[derive(Debug, Clone)]
pub struct LocalKms {
    dir: PathBuf,
}

impl LocalKms {
    /// The key engine of the local backend rooted at `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.join("keys"),
        }
    }

    /// The realm's key file.
    fn key_path(&self, realm: &str) -> PathBuf {
        self.dir.join(format!("{realm}.key"))
    }

    /// The realm's key; made when absent if `create` (encrypting), else a
    /// missing key file is an error (nothing it could decrypt exists).
    fn key(&self, realm: &str, create: bool) -> Result<Key<Aes256Gcm>, StoreError> {
        if realm.is_empty() || realm.contains(['/', '\0']) || realm.starts_with('.') {
            return Err(StoreError::BadRequest(format!("bad realm name {realm:?}")));
        }
        let path = self.key_path(realm);
        match read_key(&path) {
            Ok(key) => return Ok(key),
            Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(key_error(&path, &e)),
        }
        create_key(&self.dir, &path).map_err(|e| key_error(&path, &e))?;
        read_key(&path).map_err(|e| key_error(&path, &e))
    }

    fn aad(realm: &str, key_id: &str) -> Vec<u8> {
        let mut aad = MAGIC.to_vec();
        aad.extend_from_slice(realm.as_bytes());
        aad.push(0);
        aad.extend_from_slice(key_id.as_bytes());
        aad
    }

    fn seal(&self, realm: &str, key_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(StoreError::BadRequest(format!(
                "plaintext is {} bytes, more than the {MAX_PLAINTEXT} a key encrypts",
                plaintext.len()
            )));
        }
        let id_len = u16::try_from(key_id.len())
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| StoreError::BadRequest(format!("bad key id {key_id:?}")))?;
        let cipher = Aes256Gcm::new(&self.key(realm, true)?);
        let nonce = Nonce::try_generate()
            .map_err(|e| StoreError::Unavailable(format!("no random numbers: {e}")))?;
        let aad = Self::aad(realm, key_id);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::BadRequest("cannot encrypt".into()))?;
        let mut blob = Vec::with_capacity(6 + key_id.len() + NONCE_LEN + sealed.len());
        blob.extend_from_slice(MAGIC);
        blob.extend_from_slice(&id_len.to_be_bytes());
        blob.extend_from_slice(key_id.as_bytes());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    fn open(&self, realm: &str, blob: &[u8]) -> Result<Vec<u8>, StoreError> {
        // As KMS answers a ciphertext it cannot use.
        let invalid = || {
            StoreError::Service(format!(
                "InvalidCiphertextException: not a ciphertext of realm {realm}'s local key"
            ))
        };
        let rest = blob.strip_prefix(MAGIC).ok_or_else(invalid)?;
        let (len, rest) = rest.split_first_chunk::<2>().ok_or_else(invalid)?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len + NONCE_LEN {
            return Err(invalid());
        }
        let (key_id, rest) = rest.split_at(len);
        let key_id = std::str::from_utf8(key_id).map_err(|_| invalid())?;
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| invalid())?;
        let cipher = Aes256Gcm::new(&self.key(realm, false)?);
        let aad = Self::aad(realm, key_id);
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| invalid())
    }
}

fn key_error(path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::BadRequest(format!("key file {}: {e}", path.display()))
}

/// Reads a key file: a regular file, not through a link, of exactly
/// [`KEY_LEN`] bytes, that no one but its owner may read.
fn read_key(path: &Path) -> std::io::Result<Key<Aes256Gcm>> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(bad("not a regular file"));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(bad("readable by others than its owner (want mode 0600)"));
    }
    let mut bytes = Vec::with_capacity(KEY_LEN);
    file.take(KEY_LEN as u64 + 1).read_to_end(&mut bytes)?;
    Key::<Aes256Gcm>::try_from(bytes.as_slice())
        .map_err(|_| bad(&format!("holds {} bytes, not {KEY_LEN}", bytes.len())))
}

/// Makes a new key file, mode 0600, without ever replacing one: the key is
/// written to a temporary file that is then linked into place, so another
/// process making the same key at the same moment either wins or loses
/// whole, and every process uses the key that won.
fn create_key(dir: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let key = Key::<Aes256Gcm>::try_generate().map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".key-{}", uuid::Uuid::new_v4().simple()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(&key)?;
            f.sync_all()
        });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let removed = std::fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
        Ok(()) => {
            if let Err(e) = removed {
                tracing::debug!("cannot remove {}: {e}", tmp.display());
            }
            tracing::info!("created the local key {}", path.display());
            Ok(())
        }
    }
}

#[async_trait]
impl Kms for LocalKms {
    async fn encrypt(
        &self,
        realm: &str,
        key_id: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let this = self.clone();
        let (realm, key_id, plaintext) =
            (realm.to_string(), key_id.to_string(), plaintext.to_vec());
        tokio::task::spawn_blocking(move || this.seal(&realm, &key_id, &plaintext))
            .await
            .map_err(|e| StoreError::Service(format!("local key: {e}")))?
    }

    async fn decrypt(&self, realm: &str, ciphertext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let this = self.clone();
        let (realm, blob) = (realm.to_string(), ciphertext.to_vec());
        tokio::task::spawn_blocking(move || this.open(&realm, &blob))
            .await
            .map_err(|e| StoreError::Service(format!("local key: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn local_round_trip_with_a_key_file_made_once_0600() {
        let dir = temp();
        let kms = LocalKms::new(dir.path());
        let blob = kms
            .encrypt("prod", "alias/lava-prod-sys", b"\"secret\"")
            .await;
        let blob = blob.unwrap_or_else(|e| panic!("{e}"));
        assert!(!blob.windows(6).any(|w| w == b"secret"), "ciphertext");
        let key_file = dir.path().join("keys/prod.key");
        let meta = std::fs::metadata(&key_file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
        let key = std::fs::read(&key_file).unwrap_or_default();
        // Another process on the same directory decrypts with the same key.
        let again = LocalKms::new(dir.path()).decrypt("prod", &blob).await;
        assert_eq!(again.as_deref().ok(), Some(&b"\"secret\""[..]));
        assert_eq!(std::fs::read(&key_file).unwrap_or_default(), key, "kept");
        // Two encryptions of one value differ (fresh nonce).
        let other = kms
            .encrypt("prod", "alias/lava-prod-sys", b"\"secret\"")
            .await;
        assert_ne!(other.ok(), Some(blob));
    }

    #[tokio::test]
    async fn local_refuses_altered_foreign_or_bogus_blobs() {
        let dir = temp();
        let kms = LocalKms::new(dir.path());
        let blob = kms.encrypt("a", "k", b"1").await.unwrap_or_default();
        let mut altered = blob.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        assert!(kms.encrypt("b", "k", b"1").await.is_ok());
        for (realm, bad) in [("a", altered), ("b", blob.clone()), ("a", b"junk".to_vec())] {
            let err = kms.decrypt(realm, &bad).await.err().map(|e| e.to_string());
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains("InvalidCiphertextException")),
                "{err:?}"
            );
        }
        // Decrypting never makes a key.
        let err = kms.decrypt("c", &blob).await.err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("c.key")));
        assert!(!dir.path().join("keys/c.key").exists());
        let big = vec![b'x'; MAX_PLAINTEXT + 1];
        assert!(kms.encrypt("a", "k", &big).await.is_err());
        assert!(kms.encrypt("../x", "k", b"1").await.is_err());
    }

    #[tokio::test]
    async fn local_refuses_a_key_file_others_can_read() {
        let dir = temp();
        let kms = LocalKms::new(dir.path());
        assert!(kms.encrypt("a", "k", b"1").await.is_ok());
        let key_file = dir.path().join("keys/a.key");
        let loose = std::fs::Permissions::from_mode(0o644);
        assert!(std::fs::set_permissions(&key_file, loose).is_ok());
        let err = kms
            .encrypt("a", "k", b"1")
            .await
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("0600")));
    }
}

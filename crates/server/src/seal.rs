//! Secret values at rest — Secrets Manager's secrets and Parameter Store's SecureStrings —
//! sealed with AES-256-GCM under one key per server, kept in the data directory as
//! `secrets.key` (64 hex digits, file mode 0600, made on the first start).
//!
//! Contract: a value is stored only as a [`Sealed`] record — a random 96-bit nonce, the
//! ciphertext with its tag, and the fingerprint of the key that sealed it. The nonce is fresh for
//! every seal; the additional data binds the ciphertext to a context the caller gives (its
//! secret or parameter and version) and to its kind (string or binary), so a sealed value copied
//! into another record does not open. The key itself never enters the store: whoever reads the
//! store (or a backup of it) without the key file reads no secret value. Servers that share one
//! store (etcd) must share the key file; a value sealed under another key is refused
//! ([`SealError::ForeignKey`], naming both fingerprints). Each service turns a [`SealError`]
//! into its own error code.

use berth_api::secretsmanager::SecretValue;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "secrets.key";
const KEY_LEN: usize = 32;

/// A sealed secret value, as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sealed {
    /// The fingerprint of the key that sealed it.
    pub key: String,
    /// Base64 of the nonce.
    pub nonce: String,
    /// Base64 of the ciphertext followed by its 16-byte tag.
    pub data: String,
    /// A `SecretBinary` (else a `SecretString`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binary: bool,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("key", &self.key)
            .field("binary", &self.binary)
            .finish_non_exhaustive()
    }
}

/// Why a value could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The system's random source or the cipher failed: a fault of the server.
    #[error("the value could not be encrypted: {0}")]
    Seal(&'static str),
    /// Sealed under another server's key.
    #[error(
        "the value was encrypted with the key {sealed_with} and this server's key is {mine}: \
         servers that share a store must share the data directory's {KEY_FILE}"
    )]
    ForeignKey { sealed_with: String, mine: String },
    /// The stored value does not decrypt (altered, or moved from another record).
    #[error("the stored value does not decrypt")]
    Corrupt,
}

/// The server's secrets key.
pub struct SecretsKey {
    key: LessSafeKey,
    fingerprint: String,
    random: SystemRandom,
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl SecretsKey {
    fn from_bytes(bytes: &[u8]) -> Result<SecretsKey, String> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| format!("the key must be {KEY_LEN} bytes"))?;
        let digest = Sha256::new()
            .chain_update(b"berth secrets key\n")
            .chain_update(bytes)
            .finalize();
        Ok(SecretsKey {
            key: LessSafeKey::new(unbound),
            fingerprint: hex::encode(&digest[..8]),
            random: SystemRandom::new(),
        })
    }

    /// A throwaway key (tests).
    pub fn ephemeral() -> SecretsKey {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system's random source works");
        Self::from_bytes(&bytes).expect("the key has the right length")
    }

    /// Reads the key file at `path`, making it (mode 0600, atomically: a concurrent start
    /// reads the one that won) when there is none.
    pub fn open_or_create(path: &Path) -> Result<SecretsKey, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => return Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.to_string()),
        }
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| "the system's random source failed".to_string())?;
        let tmp = path.with_extension(format!("key.tmp-{}", std::process::id()));
        let written = (|| -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())?;
            file.sync_all()?;
            match std::fs::hard_link(&tmp, path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
                _ => Ok(()),
            }
        })();
        let _ = std::fs::remove_file(&tmp);
        written.map_err(|e| e.to_string())?;
        // Another process may have linked its key first: the file decides.
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let key = Self::parse(path, &text)?;
        tracing::info!(path = %path.display(), fingerprint = %key.fingerprint, "made the key that seals secret values");
        Ok(key)
    }

    fn parse(path: &Path, text: &str) -> Result<SecretsKey, String> {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the secrets key file can be read by other users; chmod 600 it");
        }
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|b| b.len() == KEY_LEN)
            .ok_or_else(|| format!("the file must hold {} hex digits", KEY_LEN * 2))?;
        Self::from_bytes(&bytes)
    }

    /// The key's fingerprint (not secret: a digest of the key).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn aad(context: &str, binary: bool) -> String {
        format!("{context}\n{}", if binary { "binary" } else { "string" })
    }

    /// Seals `value`; `context` (the secret's ARN and version) must be given again to open it.
    pub fn seal(&self, context: &str, value: &SecretValue) -> Result<Sealed, SealError> {
        let (mut data, binary) = match value {
            SecretValue::String(s) => (s.as_bytes().to_vec(), false),
            SecretValue::Binary(b) => (b.clone(), true),
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| SealError::Seal("the system's random source failed"))?;
        let aad = Self::aad(context, binary);
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut data,
            )
            .map_err(|_| SealError::Seal("the cipher failed"))?;
        use base64::Engine;
        Ok(Sealed {
            key: self.fingerprint.clone(),
            nonce: b64().encode(nonce),
            data: b64().encode(data),
            binary,
        })
    }

    /// Opens a value [`seal`](Self::seal) made with the same `context`.
    pub fn open(&self, context: &str, sealed: &Sealed) -> Result<SecretValue, SealError> {
        use base64::Engine;
        if sealed.key != self.fingerprint {
            return Err(SealError::ForeignKey {
                sealed_with: sealed.key.clone(),
                mine: self.fingerprint.clone(),
            });
        }
        let corrupt = || SealError::Corrupt;
        let nonce: [u8; NONCE_LEN] = b64()
            .decode(&sealed.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(corrupt)?;
        let mut data = b64().decode(&sealed.data).map_err(|_| corrupt())?;
        let aad = Self::aad(context, sealed.binary);
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut data,
            )
            .map_err(|_| corrupt())?;
        let plain = plain.to_vec();
        if sealed.binary {
            Ok(SecretValue::Binary(plain))
        } else {
            String::from_utf8(plain)
                .map(SecretValue::String)
                .map_err(|_| corrupt())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_open_only_with_their_key_and_context() {
        let key = SecretsKey::ephemeral();
        let text = SecretValue::String("hunter2".into());
        let sealed = key.seal("arn:s-1\nv1", &text).unwrap();
        assert!(!sealed.data.contains("hunter2"));
        assert_eq!(key.open("arn:s-1\nv1", &sealed).unwrap(), text);
        // Another context, a changed kind, another key: refused.
        let wrong = key.open("arn:s-1\nv2", &sealed).unwrap_err();
        assert_eq!(wrong, SealError::Corrupt);
        let flipped = Sealed {
            binary: true,
            ..sealed.clone()
        };
        assert!(key.open("arn:s-1\nv1", &flipped).is_err());
        let other = SecretsKey::ephemeral();
        let e = other.open("arn:s-1\nv1", &sealed).unwrap_err();
        assert!(e.to_string().contains(KEY_FILE), "{e}");
        // Two seals of one value differ (fresh nonces).
        assert_ne!(key.seal("c", &text).unwrap(), key.seal("c", &text).unwrap());
        let bytes = SecretValue::Binary(vec![0, 159, 146, 150]);
        let sealed = key.seal("c", &bytes).unwrap();
        assert_eq!(key.open("c", &sealed).unwrap(), bytes);
    }

    #[test]
    fn the_key_file_is_made_once_private_and_read_again() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let first = SecretsKey::open_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = SecretsKey::open_or_create(&path).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        let sealed = first.seal("c", &SecretValue::String("x".into())).unwrap();
        assert!(again.open("c", &sealed).is_ok());
        std::fs::write(&path, "not hex").unwrap();
        assert!(
            SecretsKey::open_or_create(&path)
                .unwrap_err()
                .contains("hex")
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

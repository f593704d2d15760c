//! Where blob bytes live: the [`BlobStore`] trait, and [`FsBlobStore`], content-addressed files
//! under the data directory (`super::object_blobs` keeps them in an object store instead).
//! Reads stream from a blocking thread that stays a few chunks ahead of the client.
//!
//! An upload is staged under its id and becomes a blob only through [`BlobStore::commit`],
//! which checks the digest first: a wrong digest stores nothing, and a crash mid-upload leaves
//! at most a staged file, never a visible corrupt blob. Identical content is stored once.
//!
//! Garbage collection (`super::gc`) lists what is stored and removes blobs with
//! [`BlobStore::remove_idle`], which never removes a blob committed at or after a cutoff: a
//! commit marks its blob fresh (even when the content was stored already), and the mark and
//! the removal's check exclude each other, so a push that is about to link a blob keeps it.

use async_trait::async_trait;
use berth_model::Timestamp;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::io::AsyncWriteExt;

/// A stream of bytes in or out of the store.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the uploaded content has digest {actual}, not {expected}")]
    DigestMismatch { expected: String, actual: String },
    #[error("blob {0} is not stored")]
    NotFound(String),
    #[error("'{0}' is not a sha256 digest or an upload id")]
    BadName(String),
    #[error("blob storage failed at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the request body could not be read: {0}")]
    Body(std::io::Error),
}

/// A stored blob or staged upload, and when its bytes were last written or committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// A blob's digest, or an upload's id.
    pub name: String,
    pub modified: Timestamp,
}

/// Blob bytes by digest, and the staging areas of uploads by id.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Appends `data` to the staged bytes of upload `id` (created on first use); returns how
    /// many bytes are staged now.
    async fn append(&self, id: &str, data: ByteStream) -> Result<u64, BlobError>;
    /// How many bytes upload `id` has staged (0 if none yet).
    async fn staged(&self, id: &str) -> Result<u64, BlobError>;
    /// Makes the staged bytes of upload `id` the blob `digest` if they hash to it, and returns
    /// its size. The staged bytes are gone afterwards, whether they matched or not.
    async fn commit(&self, id: &str, digest: &str) -> Result<u64, BlobError>;
    /// Forgets the staged bytes of upload `id`.
    async fn abort(&self, id: &str) -> Result<(), BlobError>;
    /// The size of blob `digest`, if it is stored.
    async fn size(&self, digest: &str) -> Result<Option<u64>, BlobError>;
    /// `len` bytes of blob `digest` from `offset`.
    async fn read(&self, digest: &str, offset: u64, len: u64) -> Result<ByteStream, BlobError>;
    /// Every stored blob.
    async fn blobs(&self) -> Result<Vec<Stored>, BlobError>;
    /// Every upload with staged bytes.
    async fn staged_uploads(&self) -> Result<Vec<Stored>, BlobError>;
    /// Removes blob `digest` unless it was committed at or after `idle_since`; returns whether
    /// it was removed. A [`BlobStore::commit`] running at the same time either finds the blob
    /// gone and stores it again, or keeps it.
    async fn remove_idle(&self, digest: &str, idle_since: Timestamp) -> Result<bool, BlobError>;
}

/// Blobs as files: `<root>/blobs/sha256/ab/abcd…`, uploads staged in `<root>/uploads/<id>`.
pub struct FsBlobStore {
    root: PathBuf,
    /// Held while a commit puts its blob in place and marks it fresh, and while
    /// [`BlobStore::remove_idle`] checks and removes one.
    placing: Arc<Mutex<()>>,
}

const CHUNK: usize = 256 * 1024;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl FsBlobStore {
    pub fn new(root: PathBuf) -> Self {
        FsBlobStore {
            root,
            placing: Arc::new(Mutex::new(())),
        }
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, BlobError> {
        if !berth_api::ecr::is_valid_digest(digest) {
            return Err(BlobError::BadName(digest.to_string()));
        }
        let hex = &digest["sha256:".len()..];
        Ok(self.root.join("blobs/sha256").join(&hex[..2]).join(hex))
    }

    fn upload_path(&self, id: &str) -> Result<PathBuf, BlobError> {
        let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !ok {
            return Err(BlobError::BadName(id.to_string()));
        }
        Ok(self.root.join("uploads").join(id))
    }
}

fn millis(time: SystemTime) -> Timestamp {
    let ms = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_millis(ms)
}

/// The files directly in `dir` (none if it does not exist yet) and when each was modified.
/// Blocking.
fn list_files(dir: &Path) -> Result<Vec<(String, Timestamp)>, BlobError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let metadata = match std::fs::metadata(&path) {
            Ok(m) => m,
            // Removed while listing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(&path)(e)),
        };
        if metadata.is_file() {
            let modified = metadata.modified().map_err(io_error(&path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            out.push((name, millis(modified)));
        }
    }
    Ok(out)
}

/// Hashes a staged file, and if it matches moves it into place durably and marks the blob
/// fresh, under `placing`. Blocking.
fn commit_file(
    staged: &Path,
    target: &Path,
    expected: &str,
    placing: &Mutex<()>,
) -> Result<u64, BlobError> {
    let mut file = match std::fs::File::open(staged) {
        Ok(file) => Some(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error(staged)(e)),
    };
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    if let Some(file) = file.as_mut() {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buf).map_err(io_error(staged))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
    }
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    let remove_staged = || match std::fs::remove_file(staged) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(staged)(e)),
        _ => Ok(()),
    };
    if actual != expected {
        remove_staged()?;
        return Err(BlobError::DigestMismatch {
            expected: expected.to_string(),
            actual,
        });
    }
    let _placing = placing
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mark_fresh = || {
        std::fs::File::options()
            .write(true)
            .open(target)
            .and_then(|f| f.set_modified(SystemTime::now()))
            .map_err(io_error(target))
    };
    if target.exists() {
        // The same content is stored already: keep one copy, fresh again.
        remove_staged()?;
        mark_fresh()?;
        return Ok(size);
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    match file {
        Some(file) => {
            file.sync_all().map_err(io_error(staged))?;
            std::fs::rename(staged, target).map_err(io_error(target))?;
            // The staged bytes may have been written long ago.
            mark_fresh()?;
        }
        None => {
            // An empty blob that was never staged: write it the same careful way.
            let tmp = dir.join(format!(".tmp-{}", crate::clock::new_id()));
            let mut f = std::fs::File::create(&tmp).map_err(io_error(&tmp))?;
            f.flush().map_err(io_error(&tmp))?;
            f.sync_all().map_err(io_error(&tmp))?;
            std::fs::rename(&tmp, target).map_err(io_error(target))?;
        }
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    Ok(size)
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn append(&self, id: &str, mut data: ByteStream) -> Result<u64, BlobError> {
        let path = self.upload_path(id)?;
        let dir = self.root.join("uploads");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_error(&dir))?;
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(io_error(&path))?;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(BlobError::Body)?;
            file.write_all(&chunk).await.map_err(io_error(&path))?;
        }
        file.flush().await.map_err(io_error(&path))?;
        let size = file.metadata().await.map_err(io_error(&path))?.len();
        Ok(size)
    }

    async fn staged(&self, id: &str) -> Result<u64, BlobError> {
        let path = self.upload_path(id)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    async fn commit(&self, id: &str, digest: &str) -> Result<u64, BlobError> {
        let staged = self.upload_path(id)?;
        let target = self.blob_path(digest)?;
        let expected = digest.to_string();
        let placing = self.placing.clone();
        tokio::task::spawn_blocking(move || commit_file(&staged, &target, &expected, &placing))
            .await
            .map_err(|e| BlobError::Io {
                path: id.to_string(),
                source: std::io::Error::other(e),
            })?
    }

    async fn abort(&self, id: &str) -> Result<(), BlobError> {
        let path = self.upload_path(id)?;
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(&path)(e)),
            _ => Ok(()),
        }
    }

    async fn size(&self, digest: &str) -> Result<Option<u64>, BlobError> {
        let path = self.blob_path(digest)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    async fn read(&self, digest: &str, offset: u64, len: u64) -> Result<ByteStream, BlobError> {
        let path = self.blob_path(digest)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file.into_std().await,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(digest.to_string()));
            }
            Err(e) => return Err(io_error(&path)(e)),
        };
        Ok(read_ahead(file, offset, len))
    }

    async fn blobs(&self) -> Result<Vec<Stored>, BlobError> {
        let root = self.root.join("blobs/sha256");
        blocking(&root.clone(), move || {
            let mut out = Vec::new();
            for prefix in list_dirs(&root)? {
                for (hex, modified) in list_files(&root.join(&prefix))? {
                    let name = format!("sha256:{hex}");
                    if hex.starts_with(&prefix) && berth_api::ecr::is_valid_digest(&name) {
                        out.push(Stored { name, modified });
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn staged_uploads(&self) -> Result<Vec<Stored>, BlobError> {
        let dir = self.root.join("uploads");
        blocking(&dir.clone(), move || {
            Ok(list_files(&dir)?
                .into_iter()
                .map(|(name, modified)| Stored { name, modified })
                .collect())
        })
        .await
    }

    async fn remove_idle(&self, digest: &str, idle_since: Timestamp) -> Result<bool, BlobError> {
        let path = self.blob_path(digest)?;
        let placing = self.placing.clone();
        blocking(&path.clone(), move || {
            let _placing = placing
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let modified = match std::fs::metadata(&path).and_then(|m| m.modified()) {
                Ok(modified) => millis(modified),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(io_error(&path)(e)),
            };
            if modified >= idle_since {
                return Ok(false);
            }
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(io_error(&path)(e)),
            }
        })
        .await
    }
}

/// The subdirectories directly in `dir` (none if it does not exist yet). Blocking.
fn list_dirs(dir: &Path) -> Result<Vec<String>, BlobError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        if entry.file_type().map_err(io_error(dir))?.is_dir() {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// Runs blocking file work off the async threads.
/// How many bytes a reader reads at a time: large enough that each write to the client's
/// socket moves a lot, small enough that [`READ_AHEAD`] of them cost little memory.
const READ_CHUNK: usize = 1024 * 1024;

/// How many chunks a reader may hold ready beyond the one being sent.
const READ_AHEAD: usize = 4;

/// Streams `len` bytes of `file` from `offset`, read on a blocking thread that stays up to
/// [`READ_AHEAD`] chunks ahead of the consumer, so the disk and the network overlap instead of
/// taking turns. The thread stops when the stream is dropped.
fn read_ahead(mut file: std::fs::File, offset: u64, len: u64) -> ByteStream {
    let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(std::io::SeekFrom::Start(offset)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut left = len;
        while left > 0 {
            let want = usize::try_from(left).map_or(READ_CHUNK, |left| left.min(READ_CHUNK));
            let mut buf = vec![0u8; want];
            let item = match file.read(&mut buf) {
                Ok(0) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the blob is shorter than its recorded size",
                )),
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    Ok(Bytes::from(buf))
                }
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BlobError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(parts: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes, std::io::Error>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures::stream::iter(items))
    }

    fn digest_of(data: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(data)))
    }

    async fn read_all(store: &FsBlobStore, digest: &str, offset: u64, len: u64) -> Vec<u8> {
        let mut s = store.read(digest, offset, len).await.unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn staged_chunks_become_a_blob_only_with_the_right_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path().to_path_buf());
        assert_eq!(
            store
                .append("u1", stream(&[b"hello ", b"wor"]))
                .await
                .unwrap(),
            9
        );
        assert_eq!(store.append("u1", stream(&[b"ld"])).await.unwrap(), 11);
        assert_eq!(store.staged("u1").await.unwrap(), 11);
        let wrong = digest_of(b"other");
        let err = store.commit("u1", &wrong).await.unwrap_err();
        assert!(matches!(err, BlobError::DigestMismatch { .. }), "{err}");
        assert_eq!(store.size(&wrong).await.unwrap(), None);
        assert_eq!(store.staged("u1").await.unwrap(), 0, "staging is gone");
        assert!(
            !dir.path().join("blobs").exists()
                || std::fs::read_dir(dir.path().join("blobs/sha256"))
                    .map(|d| d.count() == 0)
                    .unwrap_or(true)
        );

        store.append("u2", stream(&[b"hello world"])).await.unwrap();
        let digest = digest_of(b"hello world");
        assert_eq!(store.commit("u2", &digest).await.unwrap(), 11);
        assert_eq!(store.size(&digest).await.unwrap(), Some(11));
        assert_eq!(read_all(&store, &digest, 0, 11).await, b"hello world");
        assert_eq!(read_all(&store, &digest, 6, 3).await, b"wor");
        let hex = &digest[7..];
        assert!(
            dir.path()
                .join("blobs/sha256")
                .join(&hex[..2])
                .join(hex)
                .is_file()
        );

        // The same bytes again: one file, staging cleared.
        store.append("u3", stream(&[b"hello world"])).await.unwrap();
        assert_eq!(store.commit("u3", &digest).await.unwrap(), 11);
        assert_eq!(
            std::fs::read_dir(dir.path().join("uploads"))
                .unwrap()
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn a_blob_committed_since_the_cutoff_is_never_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path().to_path_buf());
        let digest = digest_of(b"layer");
        store.append("u1", stream(&[b"layer"])).await.unwrap();
        // Staged long ago: the commit, not the staging, makes the blob fresh.
        let staged = dir.path().join("uploads/u1");
        let long_ago = SystemTime::now() - std::time::Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(&staged)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        assert_eq!(store.staged_uploads().await.unwrap()[0].name, "u1");
        store.commit("u1", &digest).await.unwrap();
        let listed = store.blobs().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, digest);
        let hour_ago = millis(SystemTime::now()).plus_millis(-3_600_000);
        assert!(!store.remove_idle(&digest, hour_ago).await.unwrap());
        assert_eq!(store.size(&digest).await.unwrap(), Some(5));

        // Idle since before the cutoff: removed. Committed again: fresh again.
        let path = store.blob_path(&digest).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        store.append("u2", stream(&[b"layer"])).await.unwrap();
        store.commit("u2", &digest).await.unwrap();
        assert!(!store.remove_idle(&digest, hour_ago).await.unwrap());
        let later = millis(SystemTime::now()).plus_millis(1000);
        assert!(store.remove_idle(&digest, later).await.unwrap());
        assert_eq!(store.size(&digest).await.unwrap(), None);
        assert!(
            !store.remove_idle(&digest, later).await.unwrap(),
            "gone already"
        );
        assert!(store.blobs().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn names_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path().to_path_buf());
        assert!(matches!(
            store.staged("../x").await,
            Err(BlobError::BadName(_))
        ));
        assert!(matches!(
            store.size("sha256:../../etc").await,
            Err(BlobError::BadName(_))
        ));
        let empty = digest_of(b"");
        assert_eq!(store.commit("never", &empty).await.unwrap(), 0);
        assert_eq!(store.size(&empty).await.unwrap(), Some(0));
    }
}

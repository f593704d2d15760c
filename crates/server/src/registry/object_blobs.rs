//! Blob bytes in an object store: [`ObjectBlobStore`], the [`BlobStore`] over any
//! `object_store::ObjectStore` — an S3 bucket (or an S3-compatible server's) when one disk is
//! not enough, or a directory through the object store's local filesystem.
//!
//! The contract is the trait's, as [`super::blobs::FsBlobStore`] keeps it: a blob is written
//! only once its digest was verified, a wrong digest stores nothing, identical content is
//! stored once, and [`BlobStore::remove_idle`] never removes a blob committed at or after its
//! cutoff. The keys, under an optional prefix:
//!
//! - `blobs/sha256/ab/abcd…`: a blob, written only after its digest was verified;
//! - `commits/sha256/ab/abcd…`: the blob's commit mark, rewritten by every commit; its body is
//!   the commit time in milliseconds since the epoch, by this server's clock;
//! - `uploads/<id>/<n>`: the n-th `append` of upload `id` (n zero-padded, so names sort).
//!
//! Object stores cannot append, so every `append` stages a part object of its own, and
//! `commit` reads the parts in order twice: through SHA-256, then, only if the digest matched,
//! into the blob (one PUT, or a multipart upload beyond `PART` bytes); the parts are deleted
//! either way. Reads are ranged GETs, streamed.
//!
//! Object stores cannot touch a modification time either, so a commit marks its blob fresh by
//! rewriting the blob's commit mark, and `remove_idle` takes the latest of the mark's stored
//! time, the mark's and the blob's `last_modified`: a clock that disagrees with the store's
//! only keeps a blob longer. The mark (with the check that the blob is there) and the removal's
//! check and delete hold one lock, as in the filesystem store, so a commit either finds the
//! blob gone and uploads it again or keeps it. That lock is this process's: servers sharing a
//! bucket only exclude each other through the grace period (see `super::gc`).

use super::blobs::{BlobError, BlobStore, ByteStream, Stored};
use async_trait::async_trait;
use berth_model::Timestamp;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResult, ObjectMeta, ObjectStore, PutOptions, PutPayload,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// Bytes a write buffers before it becomes a multipart upload, and the size of each part
/// then (S3 wants at least 5 MiB but the last).
const PART: usize = 8 * 1024 * 1024;
/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;
/// How often a commit uploads its blob again when garbage collection removed it meanwhile.
const PLACE_ATTEMPTS: usize = 3;

/// Blobs, their commit marks and staged parts as objects under `root`.
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    root: Path,
    /// Held while a commit marks its blob fresh (and checks it is there), and while
    /// [`BlobStore::remove_idle`] checks and removes one.
    placing: Mutex<()>,
}

/// A failure of the object store at `key`.
fn failed(store: &dyn ObjectStore, key: &Path, e: object_store::Error) -> BlobError {
    BlobError::Io {
        path: format!("{key} in {store}"),
        source: std::io::Error::other(e),
    }
}

fn stamp(meta: &ObjectMeta) -> Timestamp {
    Timestamp::from_millis(meta.last_modified.timestamp_millis())
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The hex of a sha256 digest.
fn hex_of(digest: &str) -> Result<&str, BlobError> {
    if berth_api::ecr::is_valid_digest(digest) {
        Ok(&digest["sha256:".len()..])
    } else {
        Err(BlobError::BadName(digest.to_string()))
    }
}

/// The digest a key `…/sha256/ab/abcd…` names, if it is one.
fn digest_in(key: &Path) -> Option<String> {
    let parts: Vec<_> = key.parts().collect();
    let [.., dir, hex] = parts.as_slice() else {
        return None;
    };
    let name = format!("sha256:{}", hex.as_ref());
    (hex.as_ref().starts_with(dir.as_ref()) && berth_api::ecr::is_valid_digest(&name))
        .then_some(name)
}

/// The number of a staged part from its key.
fn part_number(key: &Path) -> Option<u64> {
    key.filename()?.parse().ok()
}

/// Exactly `len` bytes of `inner`: an error where it ends short, nothing beyond.
fn exactly(len: u64, inner: BoxStream<'static, Result<Bytes, std::io::Error>>) -> ByteStream {
    let stream = futures::stream::unfold(Some((inner, len)), |state| async move {
        let (mut inner, left) = state?;
        if left == 0 {
            return None;
        }
        match inner.next().await {
            Some(Ok(mut chunk)) => {
                chunk.truncate(usize::try_from(left).unwrap_or(usize::MAX));
                let left = left - chunk.len() as u64;
                Some((Ok(chunk), Some((inner, left))))
            }
            Some(Err(e)) => Some((Err(e), None)),
            None => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the blob is shorter than its recorded size",
                )),
                None,
            )),
        }
    });
    Box::pin(stream)
}

impl ObjectBlobStore {
    /// Blobs in `store` under `prefix` (`a/b`, or empty for none).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<Self, BlobError> {
        let root = Path::parse(prefix).map_err(|e| BlobError::Io {
            path: prefix.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        })?;
        Ok(ObjectBlobStore {
            store,
            root,
            placing: Mutex::new(()),
        })
    }

    /// Blobs in S3 bucket `bucket` under `prefix`; credentials, region and endpoint (e.g. of
    /// an S3-compatible server) from the `AWS_*` environment variables.
    pub fn s3(bucket: &str, prefix: &str) -> Result<Self, BlobError> {
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| BlobError::Io {
                path: format!("s3://{bucket}"),
                source: std::io::Error::other(e),
            })?;
        ObjectBlobStore::new(Arc::new(s3), prefix)
    }

    /// Blobs in directory `dir` (made if missing), written durably.
    pub fn local(dir: &std::path::Path) -> Result<Self, BlobError> {
        let io = |source| BlobError::Io {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let local = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| io(std::io::Error::other(e)))?
            .with_automatic_cleanup(true)
            .with_fsync(true);
        ObjectBlobStore::new(Arc::new(local), "")
    }

    fn key(&self, segments: &[&str]) -> Path {
        segments
            .iter()
            .fold(self.root.clone(), |key, segment| key.join(*segment))
    }

    fn blob_key(&self, digest: &str) -> Result<Path, BlobError> {
        let hex = hex_of(digest)?;
        Ok(self.key(&["blobs", "sha256", &hex[..2], hex]))
    }

    fn mark_key(&self, digest: &str) -> Result<Path, BlobError> {
        let hex = hex_of(digest)?;
        Ok(self.key(&["commits", "sha256", &hex[..2], hex]))
    }

    fn upload_dir(&self, id: &str) -> Result<Path, BlobError> {
        let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !ok {
            return Err(BlobError::BadName(id.to_string()));
        }
        Ok(self.key(&["uploads", id]))
    }

    fn failed<'k>(&self, key: &'k Path) -> impl FnOnce(object_store::Error) -> BlobError + 'k {
        let store = Arc::clone(&self.store);
        move |e| failed(store.as_ref(), key, e)
    }

    /// The object at `key` with `options`, if there is one.
    async fn get(&self, key: &Path, options: GetOptions) -> Result<Option<GetResult>, BlobError> {
        match self.store.get_opts(key, options).await {
            Ok(got) => Ok(Some(got)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed(key)(e)),
        }
    }

    /// The metadata of the object at `key`, if there is one.
    async fn head(&self, key: &Path) -> Result<Option<ObjectMeta>, BlobError> {
        let got = self.get(key, GetOptions::new().with_head(true)).await?;
        Ok(got.map(|got| got.meta))
    }

    async fn delete(&self, key: &Path) -> Result<(), BlobError> {
        self.delete_all(key, vec![key.clone()]).await
    }

    /// Deletes the objects `keys` (in batches where the store can); `scope` names them in
    /// an error.
    async fn delete_all(&self, scope: &Path, keys: Vec<Path>) -> Result<(), BlobError> {
        let locations = futures::stream::iter(keys.into_iter().map(Ok)).boxed();
        let mut deleted = self.store.delete_stream(locations);
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.failed(scope)(e)),
            }
        }
        Ok(())
    }

    /// Every object under `prefix`.
    async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>, BlobError> {
        self.store
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(self.failed(prefix))
    }

    /// The staged parts of upload `id`, in order.
    async fn parts(&self, id: &str) -> Result<Vec<ObjectMeta>, BlobError> {
        let mut parts = self.list(&self.upload_dir(id)?).await?;
        parts.retain(|part| part_number(&part.location).is_some());
        parts.sort_by_key(|part| part_number(&part.location));
        Ok(parts)
    }

    /// The bytes of the objects `keys`, one after the other.
    fn concatenated(&self, keys: Vec<Path>) -> impl Stream<Item = Result<Bytes, BlobError>> {
        let store = Arc::clone(&self.store);
        futures::stream::iter(keys)
            .then(move |key| {
                let store = Arc::clone(&store);
                async move {
                    let got = store.get_opts(&key, GetOptions::default()).await;
                    let body = got.map_err(|e| failed(store.as_ref(), &key, e))?;
                    Ok::<_, BlobError>(
                        body.into_stream()
                            .map_err(move |e| failed(store.as_ref(), &key, e)),
                    )
                }
            })
            .try_flatten()
    }

    /// Writes `data` to `key` (a multipart upload if it is large); nothing is written if
    /// `data` fails. Returns the number of bytes written.
    async fn write(
        &self,
        key: &Path,
        data: impl Stream<Item = Result<Bytes, BlobError>>,
    ) -> Result<u64, BlobError> {
        let mut writer = BufWriter::with_capacity(Arc::clone(&self.store), key.clone(), PART)
            .with_max_concurrency(PARTS_IN_FLIGHT);
        let mut data = std::pin::pin!(data);
        let mut written = 0u64;
        while let Some(chunk) = data.next().await {
            let put = match chunk {
                Ok(chunk) => {
                    written += chunk.len() as u64;
                    writer.put(chunk).await.map_err(self.failed(key))
                }
                Err(e) => Err(e),
            };
            if let Err(e) = put {
                // Best effort: a multipart upload left behind is invisible and expires.
                let _ = writer.abort().await;
                return Err(e);
            }
        }
        writer.shutdown().await.map_err(|source| BlobError::Io {
            path: format!("{key} in {}", self.store),
            source,
        })?;
        Ok(written)
    }

    /// The digest and size of the concatenated bytes of `parts`.
    async fn hash(&self, parts: Vec<Path>) -> Result<(String, u64), BlobError> {
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut bytes = std::pin::pin!(self.concatenated(parts));
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
        }
        Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
    }

    /// Writes blob `digest`'s commit mark: now.
    async fn mark(&self, digest: &str) -> Result<(), BlobError> {
        let key = self.mark_key(digest)?;
        let body = PutPayload::from(now_millis().to_string());
        self.store
            .put_opts(&key, body, PutOptions::default())
            .await
            .map_err(self.failed(&key))?;
        Ok(())
    }

    /// Under `placing`: if blob `digest` is stored, marks it committed now. Whether it is.
    async fn mark_if_stored(&self, digest: &str) -> Result<bool, BlobError> {
        let _placing = self.placing.lock().await;
        if self.head(&self.blob_key(digest)?).await?.is_none() {
            return Ok(false);
        }
        self.mark(digest).await?;
        Ok(true)
    }

    /// Makes the verified bytes of `parts` blob `digest`, marked committed now: kept if it is
    /// stored already, uploaded (outside the lock) and then marked if not.
    async fn place(&self, parts: &[Path], digest: &str) -> Result<(), BlobError> {
        let target = self.blob_key(digest)?;
        for _ in 0..PLACE_ATTEMPTS {
            if self.mark_if_stored(digest).await? {
                return Ok(());
            }
            self.write(&target, self.concatenated(parts.to_vec()))
                .await?;
        }
        Err(BlobError::Io {
            path: format!("{target} in {}", self.store),
            source: std::io::Error::other("the blob was removed each time it was uploaded"),
        })
    }

    /// When blob `digest` (`blob`) was last committed, as late as any witness says: its mark's
    /// body and `last_modified`, and the blob's own `last_modified`.
    async fn committed_at(&self, digest: &str, blob: &ObjectMeta) -> Result<Timestamp, BlobError> {
        let key = self.mark_key(digest)?;
        let Some(mark) = self.get(&key, GetOptions::default()).await? else {
            return Ok(stamp(blob));
        };
        let marked = stamp(&mark.meta);
        let body = mark.bytes().await.map_err(self.failed(&key))?;
        let written = std::str::from_utf8(&body)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map_or(marked, Timestamp::from_millis);
        Ok(stamp(blob).max(marked).max(written))
    }
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn append(&self, id: &str, data: ByteStream) -> Result<u64, BlobError> {
        let parts = self.parts(id).await?;
        let next = parts
            .last()
            .and_then(|part| part_number(&part.location))
            .map_or(0, |n| n + 1);
        let key = self.upload_dir(id)?.join(format!("{next:020}").as_str());
        let written = self.write(&key, data.map_err(BlobError::Body)).await?;
        Ok(parts.iter().map(|part| part.size).sum::<u64>() + written)
    }

    async fn staged(&self, id: &str) -> Result<u64, BlobError> {
        Ok(self.parts(id).await?.iter().map(|part| part.size).sum())
    }

    async fn commit(&self, id: &str, digest: &str) -> Result<u64, BlobError> {
        hex_of(digest)?;
        let parts: Vec<Path> = self
            .parts(id)
            .await?
            .into_iter()
            .map(|part| part.location)
            .collect();
        let (actual, size) = self.hash(parts.clone()).await?;
        let scope = self.upload_dir(id)?;
        if actual != digest {
            self.delete_all(&scope, parts).await?;
            return Err(BlobError::DigestMismatch {
                expected: digest.to_string(),
                actual,
            });
        }
        self.place(&parts, digest).await?;
        self.delete_all(&scope, parts).await?;
        Ok(size)
    }

    async fn abort(&self, id: &str) -> Result<(), BlobError> {
        let parts = self.parts(id).await?;
        let keys = parts.into_iter().map(|part| part.location).collect();
        self.delete_all(&self.upload_dir(id)?, keys).await
    }

    async fn size(&self, digest: &str) -> Result<Option<u64>, BlobError> {
        Ok(self
            .head(&self.blob_key(digest)?)
            .await?
            .map(|meta| meta.size))
    }

    async fn read(&self, digest: &str, offset: u64, len: u64) -> Result<ByteStream, BlobError> {
        let key = self.blob_key(digest)?;
        if len == 0 {
            // No range of no bytes can be asked for; the blob must be there all the same.
            return match self.head(&key).await? {
                Some(_) => Ok(Box::pin(futures::stream::empty())),
                None => Err(BlobError::NotFound(digest.to_string())),
            };
        }
        let range = GetRange::Bounded(offset..offset.saturating_add(len));
        let options = GetOptions::new().with_range(Some(range));
        let Some(body) = self.get(&key, options).await? else {
            return Err(BlobError::NotFound(digest.to_string()));
        };
        let store = Arc::clone(&self.store);
        let bytes = body
            .into_stream()
            .map_err(move |e| std::io::Error::other(failed(store.as_ref(), &key, e)))
            .boxed();
        Ok(exactly(len, bytes))
    }

    async fn blobs(&self) -> Result<Vec<Stored>, BlobError> {
        // Marks first: a commit between the two listings can only make a blob look older
        // here, and `remove_idle` checks again.
        let marks: BTreeMap<String, Timestamp> = self
            .list(&self.key(&["commits", "sha256"]))
            .await?
            .iter()
            .filter_map(|mark| Some((digest_in(&mark.location)?, stamp(mark))))
            .collect();
        let blobs = self.list(&self.key(&["blobs", "sha256"])).await?;
        Ok(blobs
            .iter()
            .filter_map(|blob| {
                let name = digest_in(&blob.location)?;
                let marked = marks.get(&name).copied().unwrap_or_default();
                let modified = stamp(blob).max(marked);
                Some(Stored { name, modified })
            })
            .collect())
    }

    async fn staged_uploads(&self) -> Result<Vec<Stored>, BlobError> {
        let uploads = self.key(&["uploads"]);
        let mut latest: BTreeMap<String, Timestamp> = BTreeMap::new();
        for part in self.list(&uploads).await? {
            let Some(id) = part
                .location
                .prefix_match(&uploads)
                .and_then(|mut rest| rest.next())
            else {
                continue;
            };
            let modified = latest.entry(id.as_ref().to_string()).or_default();
            *modified = (*modified).max(stamp(&part));
        }
        Ok(latest
            .into_iter()
            .map(|(name, modified)| Stored { name, modified })
            .collect())
    }

    async fn remove_idle(&self, digest: &str, idle_since: Timestamp) -> Result<bool, BlobError> {
        let key = self.blob_key(digest)?;
        let _placing = self.placing.lock().await;
        let Some(blob) = self.head(&key).await? else {
            return Ok(false);
        };
        if self.committed_at(digest, &blob).await? >= idle_since {
            return Ok(false);
        }
        self.delete(&key).await?;
        self.delete(&self.mark_key(digest)?).await?;
        Ok(true)
    }
}

//! The contract of [`BlobStore`], checked the same way for every store: each `async fn` here
//! takes a fresh store and asserts one part of the trait's documented behaviour, and
//! [`conformance!`] runs them all against one kind of store. The filesystem store runs it in a
//! temp dir; the object store over `object_store`'s in-memory store and its local filesystem.
//! (The S3 server test is `tests/registry_s3.rs`.)

use super::blobs::{BlobError, BlobStore, ByteStream, FsBlobStore, Stored};
use super::object_blobs::ObjectBlobStore;
use berth_model::Timestamp;
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn stream(parts: &[&[u8]]) -> ByteStream {
    let items: Vec<Result<Bytes, std::io::Error>> = parts
        .iter()
        .map(|p| Ok(Bytes::copy_from_slice(p)))
        .collect();
    Box::pin(futures::stream::iter(items))
}

fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    Timestamp::from_millis(i64::try_from(ms).unwrap())
}

/// Long enough for any store's timestamps to tell two moments apart.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

async fn read_all(store: &dyn BlobStore, digest: &str, offset: u64, len: u64) -> Vec<u8> {
    let mut s = store.read(digest, offset, len).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

fn names(listed: Result<Vec<Stored>, BlobError>) -> Vec<String> {
    let mut names: Vec<String> = listed.unwrap().into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

/// Stages `data` in one call as upload `id` and commits it.
async fn put(store: &dyn BlobStore, id: &str, data: &[u8]) -> String {
    let digest = digest_of(data);
    store.append(id, stream(&[data])).await.unwrap();
    assert_eq!(store.commit(id, &digest).await.unwrap(), data.len() as u64);
    digest
}

pub async fn appends_accumulate_and_commit_with_the_right_digest(store: &dyn BlobStore) {
    assert_eq!(store.staged("u1").await.unwrap(), 0, "nothing staged yet");
    let first = store.append("u1", stream(&[b"hello ", b"wor"])).await;
    assert_eq!(first.unwrap(), 9);
    assert_eq!(store.append("u1", stream(&[b"ld"])).await.unwrap(), 11);
    assert_eq!(store.append("u1", stream(&[b""])).await.unwrap(), 11);
    assert_eq!(store.append("u1", stream(&[b"!"])).await.unwrap(), 12);
    assert_eq!(store.staged("u1").await.unwrap(), 12);
    let digest = digest_of(b"hello world!");
    assert_eq!(
        store.size(&digest).await.unwrap(),
        None,
        "staged is not stored"
    );
    assert_eq!(store.commit("u1", &digest).await.unwrap(), 12);
    assert_eq!(store.size(&digest).await.unwrap(), Some(12));
    assert_eq!(read_all(store, &digest, 0, 12).await, b"hello world!");
    assert_eq!(store.staged("u1").await.unwrap(), 0, "staging is gone");
    assert!(store.staged_uploads().await.unwrap().is_empty());
}

pub async fn a_wrong_digest_stores_nothing(store: &dyn BlobStore) {
    store.append("u1", stream(&[b"hello"])).await.unwrap();
    store.append("u1", stream(&[b" world"])).await.unwrap();
    let wrong = digest_of(b"other");
    let err = store.commit("u1", &wrong).await.unwrap_err();
    match &err {
        BlobError::DigestMismatch { expected, actual } => {
            assert_eq!(expected, &wrong);
            assert_eq!(actual, &digest_of(b"hello world"));
        }
        other => panic!("not a digest mismatch: {other}"),
    }
    assert_eq!(store.size(&wrong).await.unwrap(), None);
    let actual = digest_of(b"hello world");
    assert_eq!(
        store.size(&actual).await.unwrap(),
        None,
        "not under its own digest either"
    );
    assert!(store.blobs().await.unwrap().is_empty());
    assert_eq!(store.staged("u1").await.unwrap(), 0, "staging is gone");
    assert!(store.staged_uploads().await.unwrap().is_empty());
}

pub async fn empty_blobs_are_blobs(store: &dyn BlobStore) {
    let empty = digest_of(b"");
    assert_eq!(
        store.commit("never", &empty).await.unwrap(),
        0,
        "never staged"
    );
    assert_eq!(store.size(&empty).await.unwrap(), Some(0));
    assert!(read_all(store, &empty, 0, 0).await.is_empty());
    assert_eq!(store.append("u2", stream(&[])).await.unwrap(), 0);
    assert_eq!(
        store.commit("u2", &empty).await.unwrap(),
        0,
        "staged as nothing"
    );
    assert_eq!(names(store.blobs().await), vec![empty]);
}

pub async fn identical_content_is_stored_once(store: &dyn BlobStore) {
    let first = put(store, "u1", b"layer").await;
    let second = put(store, "u2", b"layer").await;
    assert_eq!(first, second);
    // And two commits of it at once.
    store.append("u3", stream(&[b"layer"])).await.unwrap();
    store.append("u4", stream(&[b"layer"])).await.unwrap();
    let (a, b) = tokio::join!(store.commit("u3", &first), store.commit("u4", &first));
    assert_eq!((a.unwrap(), b.unwrap()), (5, 5));
    assert_eq!(names(store.blobs().await), vec![first.clone()]);
    assert_eq!(read_all(store, &first, 0, 5).await, b"layer");
    assert!(store.staged_uploads().await.unwrap().is_empty());
}

pub async fn ranges_read_what_they_ask_for(store: &dyn BlobStore) {
    // Large enough to span several chunks of any store's reads and writes, and the parts of
    // a multipart upload.
    let data: Vec<u8> = (0..9_500_000u32).map(|i| (i % 251) as u8).collect();
    let (head, tail) = data.split_at(1_234_567);
    store.append("u1", stream(&[head])).await.unwrap();
    store.append("u1", stream(&[tail])).await.unwrap();
    let digest = digest_of(&data);
    store.commit("u1", &digest).await.unwrap();
    let len = data.len() as u64;
    assert_eq!(read_all(store, &digest, 0, len).await, data);
    assert_eq!(read_all(store, &digest, 6, 3).await, &data[6..9]);
    assert_eq!(read_all(store, &digest, 0, 1).await, &data[..1]);
    assert_eq!(
        read_all(store, &digest, len - 1, 1).await,
        &data[data.len() - 1..]
    );
    let across = read_all(store, &digest, 1_234_000, 1_000_000).await;
    assert_eq!(across, &data[1_234_000..2_234_000]);
    assert!(read_all(store, &digest, 10, 0).await.is_empty());

    // Asking for more than is stored fails rather than ending quietly short.
    let mut short = store.read(&digest, len - 10, 20).await.unwrap();
    let mut got = 0;
    let mut failed = false;
    while let Some(chunk) = short.next().await {
        match chunk {
            Ok(chunk) => got += chunk.len(),
            Err(_) => failed = true,
        }
    }
    assert!(failed && got <= 10, "{got} bytes, failed: {failed}");

    let missing = digest_of(b"missing");
    assert!(matches!(
        store.read(&missing, 0, 1).await.err(),
        Some(BlobError::NotFound(_))
    ));
    assert!(matches!(
        store.read(&missing, 0, 0).await.err(),
        Some(BlobError::NotFound(_))
    ));
}

pub async fn abort_forgets_staged_bytes(store: &dyn BlobStore) {
    store.append("u1", stream(&[b"abc"])).await.unwrap();
    store.append("u1", stream(&[b"def"])).await.unwrap();
    store.append("u2", stream(&[b"xyz"])).await.unwrap();
    store.abort("u1").await.unwrap();
    assert_eq!(store.staged("u1").await.unwrap(), 0);
    assert_eq!(names(store.staged_uploads().await), vec!["u2"]);
    store.abort("u1").await.unwrap();
    store.abort("never").await.unwrap();
    // The id starts afresh.
    assert_eq!(store.append("u1", stream(&[b"ab"])).await.unwrap(), 2);
    assert_eq!(store.commit("u1", &digest_of(b"ab")).await.unwrap(), 2);
    assert_eq!(
        store.staged("u2").await.unwrap(),
        3,
        "other uploads are untouched"
    );
}

pub async fn a_failing_body_is_an_error(store: &dyn BlobStore) {
    let items: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"start")),
        Err(std::io::Error::other("connection reset")),
    ];
    let err = store
        .append("u1", Box::pin(futures::stream::iter(items)))
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Body(_)), "{err}");
    store.abort("u1").await.unwrap();
    assert_eq!(store.staged("u1").await.unwrap(), 0);
}

pub async fn listings_say_when(store: &dyn BlobStore) {
    // Filesystem times may lag the clock by a tick of the kernel's.
    let slack = 2_000;
    let before = now().plus_millis(-slack);
    store.append("staged1", stream(&[b"staged"])).await.unwrap();
    let a = put(store, "u1", b"blob a").await;
    let b = put(store, "u2", b"blob b").await;
    let after = now().plus_millis(slack);
    let blobs = store.blobs().await.unwrap();
    let mut listed: Vec<&str> = blobs.iter().map(|s| s.name.as_str()).collect();
    listed.sort();
    let mut expected = vec![a.as_str(), b.as_str()];
    expected.sort();
    assert_eq!(listed, expected);
    let staged = store.staged_uploads().await.unwrap();
    assert_eq!(names(Ok(staged.clone())), vec!["staged1"]);
    for s in blobs.iter().chain(&staged) {
        assert!(before <= s.modified && s.modified <= after, "{s:?}");
    }
}

pub async fn removal_spares_blobs_committed_since_the_cutoff(store: &dyn BlobStore) {
    let digest = put(store, "u1", b"layer").await;
    let before_commit = now().plus_millis(-60_000);
    assert!(!store.remove_idle(&digest, before_commit).await.unwrap());
    assert_eq!(store.size(&digest).await.unwrap(), Some(5));

    // Committed again after the cutoff: fresh again, though it was stored already.
    tick().await;
    let cutoff = now();
    tick().await;
    put(store, "u2", b"layer").await;
    assert!(!store.remove_idle(&digest, cutoff).await.unwrap());
    assert_eq!(store.size(&digest).await.unwrap(), Some(5));

    // Idle since a cutoff after the last commit: removed, once.
    tick().await;
    let later = now().plus_millis(1_000);
    assert!(store.remove_idle(&digest, later).await.unwrap());
    assert_eq!(store.size(&digest).await.unwrap(), None);
    assert!(
        !store.remove_idle(&digest, later).await.unwrap(),
        "gone already"
    );
    assert!(store.blobs().await.unwrap().is_empty());

    // Committed after its removal: stored again, and fresh.
    put(store, "u3", b"layer").await;
    assert_eq!(read_all(store, &digest, 0, 5).await, b"layer");
    assert!(!store.remove_idle(&digest, before_commit).await.unwrap());
    assert_eq!(names(store.blobs().await), vec![digest]);
}

pub async fn names_are_checked(store: &dyn BlobStore) {
    for id in ["../x", "a/b", "", "x.y"] {
        assert!(
            matches!(store.staged(id).await, Err(BlobError::BadName(_))),
            "{id}"
        );
        assert!(
            matches!(
                store.append(id, stream(&[b"x"])).await,
                Err(BlobError::BadName(_))
            ),
            "{id}"
        );
    }
    for digest in ["sha256:../../etc", "sha256:ab", "md5:00", "sha256:"] {
        assert!(
            matches!(store.size(digest).await, Err(BlobError::BadName(_))),
            "{digest}"
        );
        assert!(
            matches!(store.commit("u1", digest).await, Err(BlobError::BadName(_))),
            "{digest}"
        );
        let removed = store.remove_idle(digest, now()).await;
        assert!(matches!(removed, Err(BlobError::BadName(_))), "{digest}");
    }
}

/// One test per check above against the store `$open` makes (an expression giving the store
/// and whatever must live as long as it).
macro_rules! conformance {
    ($kind:ident, $open:expr) => {
        mod $kind {
            use super::*;

            conformance!(@tests $open;
                appends_accumulate_and_commit_with_the_right_digest,
                a_wrong_digest_stores_nothing,
                empty_blobs_are_blobs,
                identical_content_is_stored_once,
                ranges_read_what_they_ask_for,
                abort_forgets_staged_bytes,
                a_failing_body_is_an_error,
                listings_say_when,
                removal_spares_blobs_committed_since_the_cutoff,
                names_are_checked,
            );
        }
    };
    (@tests $open:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (store, _keep) = $open;
                super::$check(store.as_ref()).await;
            }
        )*
    };
}

fn fs() -> (Box<dyn BlobStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Box::new(FsBlobStore::new(dir.path().to_path_buf())), dir)
}

fn in_memory() -> (Box<dyn BlobStore>, ()) {
    let memory = Arc::new(object_store::memory::InMemory::new());
    let store = ObjectBlobStore::new(memory, "some/prefix").unwrap();
    (Box::new(store), ())
}

fn local() -> (Box<dyn BlobStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectBlobStore::local(&dir.path().join("made/on/open")).unwrap();
    (Box::new(store), dir)
}

conformance!(fs_store, fs());
conformance!(object_store_in_memory, in_memory());
conformance!(object_store_local, local());

/// The object store keeps to the key layout its doc gives, under its prefix.
#[tokio::test]
async fn object_keys_follow_the_layout() {
    use object_store::ObjectStore;
    let memory = Arc::new(object_store::memory::InMemory::new());
    let store = ObjectBlobStore::new(memory.clone(), "team/registry").unwrap();
    store.append("u1", stream(&[b"ab"])).await.unwrap();
    store.append("u1", stream(&[b"c"])).await.unwrap();
    store.append("u2", stream(&[b"x"])).await.unwrap();
    let digest = put(&store, "u3", b"layer").await;
    let keys = || async {
        let listed: Vec<_> = memory
            .list(None)
            .map(|m| m.unwrap().location)
            .collect()
            .await;
        let mut keys: Vec<String> = listed.iter().map(|k| k.to_string()).collect();
        keys.sort();
        keys
    };
    let hex = &digest["sha256:".len()..];
    assert_eq!(
        keys().await,
        vec![
            format!("team/registry/blobs/sha256/{}/{hex}", &hex[..2]),
            format!("team/registry/commits/sha256/{}/{hex}", &hex[..2]),
            "team/registry/uploads/u1/00000000000000000000".to_string(),
            "team/registry/uploads/u1/00000000000000000001".to_string(),
            "team/registry/uploads/u2/00000000000000000000".to_string(),
        ]
    );
    store.abort("u1").await.unwrap();
    store.abort("u2").await.unwrap();
    assert!(
        store
            .remove_idle(&digest, now().plus_millis(1_000))
            .await
            .unwrap()
    );
    assert!(keys().await.is_empty(), "{:?}", keys().await);
}

/// A commit mark is what keeps a blob: one written by a clock ahead of the store's counts.
#[tokio::test]
async fn a_commit_mark_from_a_later_clock_keeps_its_blob() {
    use object_store::{ObjectStore, PutOptions, PutPayload};
    let memory = Arc::new(object_store::memory::InMemory::new());
    let store = ObjectBlobStore::new(memory.clone(), "").unwrap();
    let digest = put(&store, "u1", b"layer").await;
    let hex = &digest["sha256:".len()..];
    let mark = object_store::path::Path::from(format!("commits/sha256/{}/{hex}", &hex[..2]));
    let ahead = now().plus_millis(3_600_000);
    let body = PutPayload::from(ahead.millis().to_string());
    memory
        .put_opts(&mark, body, PutOptions::default())
        .await
        .unwrap();
    assert!(!store.remove_idle(&digest, ahead).await.unwrap());
    assert!(
        store
            .remove_idle(&digest, ahead.plus_millis(1))
            .await
            .unwrap()
    );
}

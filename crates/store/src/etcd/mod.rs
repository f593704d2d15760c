//! etcd backend: the [`Store`] on an etcd v3 cluster, so that several servers share one state
//! (DESIGN.md §2, high availability). It passes the same [`conformance`](crate::conformance)
//! suite as the SQLite backend, whose semantics are the reference.
//!
//! # Mapping
//!
//! * Keys are etcd keys byte for byte, values are opaque; nothing is prefixed. Berth's records
//!   live under `/`; a key that is not UTF-8 (written by something else) makes a read fail.
//! * Revisions are etcd's own: `create_revision`, `mod_revision` and `version` as etcd reports
//!   them, and the revision of a result is its response header's. A fresh etcd is at revision 1
//!   (etcd counts its own creation), so its first write is revision 2; as long as nothing else
//!   writes to the cluster, every transaction that changes a key adds exactly one.
//! * [`Store::txn`] is one etcd transaction: each compare is `mod_revision == N` (etcd compares
//!   a missing key's `mod_revision` as 0, so 0 still means "absent"), each op a put or a delete.
//!   etcd refuses a transaction that names a key twice, so the ops on one key fold into the last
//!   of them, in the order keys were first touched (SQLite applies them one after another with
//!   the same outcome). One difference remains: a delete followed by a put of the same key is a
//!   plain put here (the key keeps its `create_revision`), where SQLite re-creates the key.
//! * [`Store::range`] reads pages of at most [`PAGE`] keys, every page at the revision of the
//!   first (etcd reads at a revision), so a large prefix is one consistent snapshot without one
//!   huge message. If that revision is compacted meanwhile, the range starts over.
//! * [`Store::watch`] is an etcd watch of the prefix's key range from `after_revision + 1`.
//!   etcd reports a compacted start revision only later on the stream, so the backend first
//!   reads at `after_revision` (etcd refuses a read below its compacted revision) and fails with
//!   [`StoreError::Compacted`] at once, naming etcd's compacted revision as the oldest (SQLite's
//!   rule: a watch from below the compaction point fails). The one case this cannot see is a
//!   compaction at revision 1, which forgets nothing.
//! * Reconnects: when the watch stream breaks (etcd restarted, the member lost its raft leader,
//!   the network failed), the stream opens the watch again from the revision after the last
//!   event it received, retrying with a growing pause for as long as it takes: while etcd is
//!   unreachable nothing can be written, so nothing is missed. If the history it needs was
//!   compacted meanwhile, the stream yields [`StoreError::Compacted`] and ends; it never skips
//!   events silently. etcd never splits one revision's events across responses, so a resumed
//!   watch neither repeats nor loses part of a transaction.
//! * [`Store::compact`] is etcd's compaction. Compacting at or below the compacted revision is a
//!   no-op (as with SQLite); beyond the current revision it is an error.
//!
//! Every unary request has a [`REQUEST_TIMEOUT`]; a transaction that times out may still have
//! committed (as with any remote store), and the caller's compares make a retry safe.
//!
//! # Setting etcd up
//!
//! One server's group commit can put many operations into one transaction: run etcd with the
//! limits in [`local::RECOMMENDED_FLAGS`], and with auto compaction (for example
//! `--auto-compaction-mode=periodic --auto-compaction-retention=1h`), as nothing in Berth
//! compacts on its own.
//!
//! # Election
//!
//! [`EtcdElection`] (from [`EtcdStore::election`]) elects one leader among the servers on one
//! etcd with a lease and a key created only if absent; see its module.

mod election;
pub mod local;

pub use election::EtcdElection;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare as EtcdCompare, CompareOp, ConnectOptions, EventType, GetOptions, KvClient,
    Txn as EtcdTxn, TxnOp, WatchClient, WatchOptions, WatchStream,
};
use futures::stream::{self, BoxStream, StreamExt};

use crate::{
    Compare, KeyValue, Op, RangeRequest, RangeResult, Result, Store, StoreError, Txn, TxnResult,
    WatchEvent,
};

/// Keys one range request asks etcd for.
pub const PAGE: i64 = 500;
/// How long a unary request to etcd may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest message accepted from etcd (a page of large values, a watch catching up).
const MAX_MESSAGE: usize = 64 << 20;
/// The shortest and the longest pause between attempts to resume a watch.
const RESUME_PAUSE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));
/// How long etcd may take to say which revision a refused watch was compacted at.
const COMPACTION_ANSWER: Duration = Duration::from_secs(10);

/// The [`Store`] on an etcd cluster; see the [module docs](self).
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    endpoints: String,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to the etcd members at `endpoints` (`HOST:PORT`, or a `http://` URL) and checks
    /// that the cluster answers.
    pub async fn connect(endpoints: &[String]) -> Result<EtcdStore> {
        let joined = endpoints.join(",");
        let urls: Vec<String> = endpoints
            .iter()
            .map(|e| {
                if e.contains("://") {
                    e.clone()
                } else {
                    format!("http://{e}")
                }
            })
            .collect();
        // HTTP/2 pings find a dead connection under an open watch; etcd refuses pings more
        // often than every 5 s. Requiring a raft leader makes a member cut off from the others
        // refuse requests (and cancel watches, which then resume elsewhere) instead of stalling.
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(true)
            .with_require_leader(true);
        let client = within(Client::connect(&urls, Some(options)))
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to etcd at {joined}: {e}")))?;
        let store = EtcdStore {
            client,
            endpoints: joined,
        };
        store.revision().await.map_err(|e| {
            StoreError::Backend(format!("etcd at {} does not answer: {e}", store.endpoints))
        })?;
        Ok(store)
    }

    /// The election among the servers on this etcd: the leader holds `key` (outside the keys
    /// the servers' views read) under a lease of `ttl`.
    pub fn election(&self, key: impl Into<String>, ttl: Duration) -> EtcdElection {
        EtcdElection::new(self.client.clone(), key.into(), ttl)
    }

    fn kv(&self) -> KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// One range page, at `revision` (0: the latest).
    async fn page(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        limit: i64,
        revision: i64,
    ) -> Result<etcd_client::GetResponse, Failure> {
        let mut options = GetOptions::new().with_range(end).with_limit(limit);
        if revision > 0 {
            options = options.with_revision(revision);
        }
        within(self.kv().get(start, Some(options))).await
    }

    async fn range_once(&self, req: &RangeRequest) -> Result<RangeResult, Failure> {
        let (lower, end) = key_range(&req.prefix);
        let mut start = match &req.after {
            Some(after) if after.as_str() >= req.prefix.as_str() => successor(after.as_bytes()),
            _ => lower,
        };
        let mut kvs = Vec::new();
        let mut revision = 0;
        loop {
            let want = if req.limit == 0 {
                PAGE
            } else {
                PAGE.min(i64::try_from(req.limit - kvs.len()).unwrap_or(PAGE))
            };
            if !is_open_end(&end) && start >= end {
                // The continuation is past the prefix: nothing (more) to read.
                if revision == 0 {
                    revision = self.revision().await.map_err(Failure::Store)?;
                }
                return Ok(RangeResult {
                    kvs,
                    more: false,
                    revision,
                });
            }
            let mut page = self.page(start, end.clone(), want, revision).await?;
            if revision == 0 {
                revision = header_revision(page.header());
            }
            let more = page.more();
            for kv in page.take_kvs() {
                kvs.push(convert(kv).map_err(Failure::Store)?);
            }
            let full = req.limit > 0 && kvs.len() >= req.limit;
            match kvs.last() {
                Some(last) if more && !full => start = successor(last.key.as_bytes()),
                _ => {
                    return Ok(RangeResult {
                        kvs,
                        more,
                        revision,
                    });
                }
            }
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn revision(&self) -> Result<i64> {
        // Any read answers with the store's revision; a count of one key is the cheapest.
        let options = GetOptions::new().with_count_only();
        let res = within(self.kv().get(b"\0".to_vec(), Some(options)))
            .await
            .map_err(|e| e.into_store("revision read"))?;
        Ok(header_revision(res.header()))
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let mut res = within(self.kv().get(key.as_bytes().to_vec(), None))
            .await
            .map_err(|e| e.into_store("get"))?;
        res.take_kvs().into_iter().next().map(convert).transpose()
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResult> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.range_once(&req).await {
                Ok(res) => return Ok(res),
                // A later page's revision was compacted under it: read again at a newer one.
                Err(e) if e.is_compacted() && attempts < 3 => continue,
                Err(e) => return Err(e.into_store("range")),
            }
        }
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        let compares: Vec<EtcdCompare> = txn
            .compares
            .iter()
            .map(|Compare::ModRevision { key, revision }| {
                EtcdCompare::mod_revision(key.as_bytes(), CompareOp::Equal, *revision)
            })
            .collect();
        let ops: Vec<TxnOp> = fold_ops(txn.ops)
            .into_iter()
            .map(|op| match op {
                Op::Put { key, value } => TxnOp::put(key, value, None),
                Op::Delete { key } => TxnOp::delete(key, None),
            })
            .collect();
        let res = within(self.kv().txn(EtcdTxn::new().when(compares).and_then(ops)))
            .await
            .map_err(|e| e.into_store("transaction"))?;
        Ok(TxnResult {
            succeeded: res.succeeded(),
            revision: header_revision(res.header()),
        })
    }

    async fn watch(
        &self,
        prefix: &str,
        after_revision: i64,
    ) -> Result<BoxStream<'static, Result<WatchEvent>>> {
        let after_revision = after_revision.max(0);
        let (key, end) = key_range(prefix);
        let mut watch = Watch {
            client: self
                .client
                .watch_client()
                .max_decoding_message_size(MAX_MESSAGE),
            prefix: prefix.to_owned(),
            key: key.clone(),
            end: end.clone(),
            cursor: after_revision,
            stream: None,
            pending: VecDeque::new(),
            pause: RESUME_PAUSE.0,
            done: false,
        };
        // A read at `after_revision` fails when it is below etcd's compacted revision (a read at
        // revision 0 would mean "the latest", so revision 1 stands in for it).
        let probe = GetOptions::new()
            .with_range(end)
            .with_keys_only()
            .with_limit(1)
            .with_revision(after_revision.max(1));
        match within(self.kv().get(key, Some(probe))).await {
            Ok(_) => {}
            Err(e) if e.is_future_revision() => {}
            Err(e) if e.is_compacted() => {
                let oldest = watch.compacted_revision(after_revision.max(1)).await?;
                return Err(StoreError::Compacted {
                    requested: after_revision,
                    oldest,
                });
            }
            Err(e) => return Err(e.into_store("watch")),
        }
        watch
            .open(after_revision + 1)
            .await
            .map_err(|e| e.into_store("watch"))?;
        Ok(stream::unfold(watch, |mut w| async move {
            let item = w.next().await?;
            Some((item, w))
        })
        .boxed())
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        if revision <= 0 {
            return Ok(());
        }
        match within(self.kv().compact(revision, None)).await {
            Ok(_) => Ok(()),
            // At or below the compacted revision: already done.
            Err(e) if e.is_compacted() => Ok(()),
            Err(e) => Err(e.into_store("compaction")),
        }
    }
}

/// A watch stream's state.
struct Watch {
    client: WatchClient,
    prefix: String,
    key: Vec<u8>,
    end: Vec<u8>,
    /// Every event up to this revision has been received.
    cursor: i64,
    stream: Option<WatchStream>,
    /// Events received and not yet yielded.
    pending: VecDeque<WatchEvent>,
    /// The pause before the next attempt to resume.
    pause: Duration,
    done: bool,
}

impl Watch {
    fn options(&self, start: i64) -> WatchOptions {
        WatchOptions::new()
            .with_range(self.end.clone())
            .with_start_revision(start)
    }

    /// Opens the etcd watch from `start` and waits until etcd has created it.
    async fn open(&mut self, start: i64) -> Result<(), Failure> {
        let options = self.options(start);
        let mut stream = within(self.client.watch(self.key.clone(), Some(options))).await?;
        match within(stream.message()).await? {
            Some(res) if res.created() && !res.canceled() => {
                self.stream = Some(stream);
                Ok(())
            }
            Some(res) => Err(Failure::Store(StoreError::Backend(format!(
                "etcd refused the watch of '{}': {}",
                self.prefix,
                res.cancel_reason()
            )))),
            None => Err(Failure::Etcd(etcd_client::Error::WatchError(
                "the watch stream ended before etcd created the watch".into(),
            ))),
        }
    }

    /// The revision etcd compacted at, from a watch at `start` (which must be below it).
    async fn compacted_revision(&mut self, start: i64) -> Result<i64> {
        let options = self.options(start);
        let asked = async {
            let mut stream = self.client.watch(self.key.clone(), Some(options)).await?;
            while let Some(res) = stream.message().await? {
                if res.compact_revision() != 0 {
                    return Ok(Some(res.compact_revision()));
                }
            }
            Ok(None)
        };
        match tokio::time::timeout(COMPACTION_ANSWER, asked).await {
            Ok(Ok(Some(oldest))) => Ok(oldest),
            Ok(Err(e)) => Err(Failure::Etcd(e).into_store("watch")),
            Ok(Ok(None)) | Err(_) => Err(StoreError::Backend(format!(
                "etcd refused revision {start} as compacted but did not say up to which revision"
            ))),
        }
    }

    async fn next(&mut self) -> Option<Result<WatchEvent>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            let Some(stream) = self.stream.as_mut() else {
                tokio::time::sleep(self.pause).await;
                self.pause = (self.pause * 2).min(RESUME_PAUSE.1);
                let from = self.cursor + 1;
                match self.open(from).await {
                    Ok(()) => {
                        tracing::info!(prefix = %self.prefix, from, "etcd watch resumed");
                    }
                    Err(e) if e.is_transient() => {
                        tracing::warn!(prefix = %self.prefix, from, error = %e, "etcd watch cannot resume yet; trying again");
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e.into_store("watch")));
                    }
                }
                continue;
            };
            match stream.message().await {
                Ok(Some(res)) => {
                    if res.compact_revision() != 0 {
                        self.done = true;
                        self.stream = None;
                        return Some(Err(StoreError::Compacted {
                            requested: self.cursor,
                            oldest: res.compact_revision(),
                        }));
                    }
                    if res.canceled() {
                        tracing::warn!(prefix = %self.prefix, reason = res.cancel_reason(), "etcd cancelled the watch; resuming it");
                        self.stream = None;
                        continue;
                    }
                    self.pause = RESUME_PAUSE.0;
                    for event in res.events() {
                        match convert_event(event) {
                            Ok(event) => {
                                self.cursor = self.cursor.max(event.revision());
                                self.pending.push_back(event);
                            }
                            Err(e) => {
                                self.done = true;
                                return Some(Err(e));
                            }
                        }
                    }
                }
                Ok(None) => {
                    tracing::warn!(prefix = %self.prefix, "etcd closed the watch stream; resuming it");
                    self.stream = None;
                }
                Err(e) => {
                    tracing::warn!(prefix = %self.prefix, error = %e, "etcd watch stream broke; resuming it");
                    self.stream = None;
                }
            }
        }
    }
}

/// What a request to etcd failed with.
#[derive(Debug)]
enum Failure {
    Etcd(etcd_client::Error),
    TimedOut,
    Store(StoreError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Etcd(e) => write!(f, "{e}"),
            Failure::TimedOut => write!(f, "no answer within {REQUEST_TIMEOUT:?}"),
            Failure::Store(e) => write!(f, "{e}"),
        }
    }
}

impl Failure {
    fn status(&self) -> Option<&tonic::Status> {
        match self {
            Failure::Etcd(etcd_client::Error::GRpcStatus(status)) => Some(status),
            _ => None,
        }
    }

    /// etcd no longer has the revision asked for.
    fn is_compacted(&self) -> bool {
        self.status()
            .is_some_and(|s| s.message().contains("required revision has been compacted"))
    }

    /// The revision asked for is not written yet.
    fn is_future_revision(&self) -> bool {
        self.status().is_some_and(|s| {
            s.message()
                .contains("required revision is a future revision")
        })
    }

    /// Worth trying again: the connection, the member or the cluster may come back.
    fn is_transient(&self) -> bool {
        use tonic::Code;
        match self {
            Failure::TimedOut => true,
            Failure::Store(_) => false,
            Failure::Etcd(e) => match e {
                etcd_client::Error::TransportError(_)
                | etcd_client::Error::IoError(_)
                | etcd_client::Error::WatchError(_) => true,
                etcd_client::Error::GRpcStatus(s) => matches!(
                    s.code(),
                    Code::Unavailable
                        | Code::Unknown
                        | Code::DeadlineExceeded
                        | Code::Cancelled
                        | Code::Aborted
                        | Code::Internal
                        | Code::ResourceExhausted
                ),
                _ => false,
            },
        }
    }

    fn into_store(self, what: &str) -> StoreError {
        let hint = match &self {
            f if f.to_string().contains("too many operations in txn request") => {
                "; start etcd with a larger --max-txn-ops (Berth recommends 10000)"
            }
            f if f.to_string().contains("request is too large") => {
                "; start etcd with a larger --max-request-bytes (Berth recommends 16777216)"
            }
            _ => "",
        };
        match self {
            Failure::Store(e) => e,
            other => StoreError::Backend(format!("etcd {what} failed: {other}{hint}")),
        }
    }
}

/// Runs one request to etcd with the [`REQUEST_TIMEOUT`].
async fn within<T>(
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Failure::Etcd(e)),
        Err(_) => Err(Failure::TimedOut),
    }
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map_or(0, |h| h.revision())
}

/// The etcd key range of a prefix: its first key and its end (`[0]`: no end). The empty prefix
/// starts at `"\0"`, the smallest key etcd accepts.
fn key_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let start = if prefix.is_empty() {
        vec![0]
    } else {
        prefix.as_bytes().to_vec()
    };
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return (start, end);
        }
    }
    (start, vec![0])
}

fn is_open_end(end: &[u8]) -> bool {
    end == [0]
}

/// The smallest key greater than `key`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// The ops of a transaction with each key named once: the last op on a key wins, keys stay in
/// the order they were first touched.
fn fold_ops(ops: Vec<Op>) -> Vec<Op> {
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut folded: Vec<Op> = Vec::with_capacity(ops.len());
    for op in ops {
        let key = match &op {
            Op::Put { key, .. } | Op::Delete { key } => key.clone(),
        };
        match at.get(&key) {
            Some(&i) => folded[i] = op,
            None => {
                at.insert(key, folded.len());
                folded.push(op);
            }
        }
    }
    folded
}

fn utf8_key(key: Vec<u8>) -> Result<String> {
    String::from_utf8(key).map_err(|e| {
        StoreError::Backend(format!(
            "etcd holds a key that is not UTF-8: {:?}",
            String::from_utf8_lossy(e.as_bytes())
        ))
    })
}

fn convert(kv: etcd_client::KeyValue) -> Result<KeyValue> {
    let (create_revision, mod_revision, version) =
        (kv.create_revision(), kv.mod_revision(), kv.version());
    let (key, value) = kv.into_key_value();
    Ok(KeyValue {
        key: utf8_key(key)?,
        value,
        create_revision,
        mod_revision,
        version,
    })
}

fn convert_event(event: &etcd_client::Event) -> Result<WatchEvent> {
    let kv = event
        .kv()
        .ok_or_else(|| StoreError::Backend("etcd sent a watch event without its key".into()))?;
    let key = utf8_key(kv.key().to_vec())?;
    Ok(match event.event_type() {
        EventType::Put => WatchEvent::Put(KeyValue {
            key,
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
        }),
        EventType::Delete => WatchEvent::Delete {
            key,
            mod_revision: kv.mod_revision(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ranges_cover_exactly_the_prefix() {
        assert_eq!(key_range("a/"), (b"a/".to_vec(), b"a0".to_vec()));
        assert_eq!(key_range(""), (vec![0], vec![0]));
        assert_eq!(key_range("a\u{7f}"), (b"a\x7f".to_vec(), b"a\x80".to_vec()));
        assert_eq!(successor(b"p/010"), b"p/010\0".to_vec());
        assert!(is_open_end(&key_range("").1));
    }

    #[test]
    fn ops_on_one_key_fold_into_the_last_in_first_touch_order() {
        let put = |k: &str, v: &str| Op::Put {
            key: k.into(),
            value: v.into(),
        };
        let delete = |k: &str| Op::Delete { key: k.into() };
        let folded = fold_ops(vec![
            put("b", "1"),
            put("a", "1"),
            put("b", "2"),
            put("c", "1"),
            delete("c"),
            delete("a"),
            put("a", "3"),
        ]);
        assert_eq!(folded, vec![put("b", "2"), put("a", "3"), delete("c")]);
    }
}

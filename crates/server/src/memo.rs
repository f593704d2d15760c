//! Values derived from records, kept while the record stays at the revision they were derived
//! from, so that a hot read path (placement builds the scheduler's candidate for every
//! container instance of a cluster on every call) does the work once per change of a record
//! instead of once per request.
//!
//! The [`crate::view::View`] owns one memo and forgets a key's values when the key is deleted or
//! the view loads the store again. A value is stored only for committed revisions (positive):
//! the writes of plans not yet committed carry revisions of their own, and what is derived from
//! them is computed each time. Values of different types derived from one key live side by side.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What was derived from one key: per type, the revision it was derived from and the value.
type Slots = Vec<(TypeId, i64, Arc<dyn Any + Send + Sync>)>;

#[derive(Default)]
pub struct Memo {
    entries: Mutex<HashMap<String, Slots>>,
}

impl Memo {
    /// The value derived from the record at `key` as of `revision`: the one kept from an
    /// earlier call when it was derived from the same revision and `still_good` accepts it,
    /// otherwise a new one from `derive` (kept if `revision` is committed; a failure is not).
    pub fn get_or_derive<V: Any + Send + Sync, E>(
        &self,
        key: &str,
        revision: i64,
        still_good: impl FnOnce(&V) -> bool,
        derive: impl FnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E> {
        let kind = TypeId::of::<V>();
        let kept = self.lock().get(key).and_then(|slots| {
            let (_, at, value) = slots.iter().find(|(k, _, _)| *k == kind)?;
            (*at == revision).then(|| value.clone())
        });
        if let Some(value) = kept.and_then(|v| v.downcast::<V>().ok())
            && still_good(&value)
        {
            return Ok(value);
        }
        let value = Arc::new(derive()?);
        if revision > 0 {
            let mut entries = self.lock();
            let slots = entries.entry(key.to_string()).or_default();
            slots.retain(|(k, _, _)| *k != kind);
            slots.push((kind, revision, value.clone()));
        }
        Ok(value)
    }

    /// Drops every value derived from `key` (the record is gone).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Drops every value.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How many values are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slots>> {
        self.entries.lock().expect("memo lock poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn derives_once_per_revision_while_still_good() {
        let memo = Memo::default();
        let runs = Cell::new(0);
        let derive = |n: u32| {
            runs.set(runs.get() + 1);
            Ok::<_, ()>(n)
        };
        let get = |key, revision, good: fn(&u32) -> bool, value| {
            *memo
                .get_or_derive(key, revision, good, || derive(value))
                .unwrap()
        };
        let any = |_: &u32| true;
        assert_eq!(get("/a", 5, any, 1), 1);
        assert_eq!(get("/a", 5, any, 2), 1);
        assert_eq!(runs.get(), 1);
        // A new revision, or a kept value that is no longer good, derives again.
        assert_eq!(get("/a", 6, any, 3), 3);
        assert_eq!(get("/a", 6, |v| *v != 3, 4), 4);
        assert_eq!(runs.get(), 3);
        // Another type from the same key is kept beside it.
        let text = memo.get_or_derive("/a", 6, |_: &String| true, || Ok::<_, ()>("x".into()));
        assert_eq!(*text.unwrap(), "x");
        assert_eq!(get("/a", 6, any, 5), 4);
        assert_eq!(memo.len(), 2);
        // A failed derivation keeps nothing.
        let failed = memo.get_or_derive("/b", 6, any, || Err::<u32, _>("broken"));
        assert_eq!(failed.unwrap_err(), "broken");
        assert_eq!(memo.len(), 2);
    }

    #[test]
    fn keeps_nothing_for_uncommitted_revisions_and_forgets_deleted_keys() {
        let memo = Memo::default();
        let put = |key, revision, value: u32| {
            *memo
                .get_or_derive(key, revision, |_: &u32| true, || Ok::<_, ()>(value))
                .unwrap()
        };
        put("/a", -3, 1);
        assert_eq!(memo.len(), 0);
        put("/a", 1, 1);
        put("/b", 1, 2);
        memo.forget("/a");
        assert_eq!(memo.len(), 1);
        assert_eq!(put("/a", 1, 7), 7);
        memo.clear();
        assert_eq!(memo.len(), 0);
    }
}

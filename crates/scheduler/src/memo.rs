//! Dense ids for keys that repeat across instances (an attribute's value, the values an
//! expression reads), so that work that depends only on the key is done once per distinct key
//! rather than once per instance.
//!
//! Contract: [`Interner::id`] gives equal keys the same id and different keys different ids,
//! numbered 0, 1, … in order of first appearance, and says when a key is new. The first few
//! distinct keys are compared directly, which beats hashing for the handful of values most
//! attributes have (zones, instance types); past those a hash map takes over, so many distinct
//! keys (instance IDs) cost no more than hashing each.

use std::collections::HashMap;
use std::hash::Hash;

/// Distinct keys looked up by direct comparison before the hash map is used.
const COMPARED: usize = 8;

/// Interns slices of `T`; see the module docs.
#[derive(Debug)]
pub(crate) struct Interner<T> {
    /// The first [`COMPARED`] distinct keys; a key's id is its position.
    compared: Vec<Vec<T>>,
    /// The keys after those, with their ids.
    hashed: HashMap<Vec<T>, usize>,
}

impl<T: Eq + Hash + Clone> Interner<T> {
    pub(crate) fn new() -> Self {
        Interner {
            compared: Vec::new(),
            hashed: HashMap::new(),
        }
    }

    /// The id of `key`, and whether this is the first time it was seen.
    pub(crate) fn id(&mut self, key: &[T]) -> (usize, bool) {
        if let Some(id) = self.compared.iter().position(|k| k.as_slice() == key) {
            return (id, false);
        }
        if self.compared.len() < COMPARED {
            self.compared.push(key.to_vec());
            return (self.compared.len() - 1, true);
        }
        if let Some(&id) = self.hashed.get(key) {
            return (id, false);
        }
        let id = COMPARED + self.hashed.len();
        self.hashed.insert(key.to_vec(), id);
        (id, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_share_an_id_past_the_compared_ones_too() {
        let mut interner = Interner::new();
        let keys: Vec<Vec<u32>> = (0..20).map(|i| vec![i, i % 3]).collect();
        for (id, key) in keys.iter().enumerate() {
            assert_eq!(interner.id(key), (id, true));
        }
        for (id, key) in keys.iter().enumerate().rev() {
            assert_eq!(interner.id(key), (id, false));
        }
        assert_eq!(interner.id(&[]), (20, true));
        assert_eq!(interner.id(&[]), (20, false));
    }
}

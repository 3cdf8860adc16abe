//! An object's field values in schema order, held in shared chunks of [`CHUNK`] values.
//!
//! An object in a published snapshot is shared, so the writer changes a copy of it (see
//! [`super::Object::edit`]). With the values in one vector, that copy cloned every value of the
//! object (about 100 for a VM, with their strings and maps) for each field set, and the replaced
//! copy was freed later on the committer's thread: the writer's largest cost in a durable write
//! (docs/performance.md). In chunks, a copy clones the chunk pointers, and a set copies only the
//! chunk that holds the field.

use std::ops::{Index, IndexMut};
use std::sync::Arc;

use serde::ser::{Serialize, Serializer};

use crate::value::Value;

/// Values per chunk: a VM's field set copies 16 values, not 100; a small object (a blob, 8
/// fields) is one chunk, so the chunks cost it one pointer more than a vector.
const CHUNK: usize = 16;

#[derive(Clone, Default)]
pub struct Fields {
    /// Every chunk holds [`CHUNK`] values but the last, which holds the rest.
    chunks: Vec<Arc<[Value]>>,
}

impl Fields {
    pub fn len(&self) -> usize {
        self.chunks.last().map_or(0, |last| (self.chunks.len() - 1) * CHUNK + last.len())
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn get(&self, field: usize) -> Option<&Value> {
        self.chunks.get(field / CHUNK).and_then(|chunk| chunk.get(field % CHUNK))
    }

    pub fn iter(&self) -> Iter<'_> {
        self.into_iter()
    }

    pub fn to_vec(&self) -> Vec<Value> {
        self.iter().cloned().collect()
    }
}

impl From<Vec<Value>> for Fields {
    fn from(values: Vec<Value>) -> Fields {
        // Moved, not cloned, into the chunks.
        let mut values = values.into_iter();
        let mut chunks = Vec::with_capacity(values.len().div_ceil(CHUNK));
        while values.len() > 0 {
            chunks.push(values.by_ref().take(CHUNK).collect());
        }
        Fields { chunks }
    }
}

impl Index<usize> for Fields {
    type Output = Value;

    fn index(&self, field: usize) -> &Value {
        &self.chunks[field / CHUNK][field % CHUNK]
    }
}

impl IndexMut<usize> for Fields {
    /// The value, in a chunk of this object's own: a chunk another copy shares is copied first.
    fn index_mut(&mut self, field: usize) -> &mut Value {
        &mut Arc::make_mut(&mut self.chunks[field / CHUNK])[field % CHUNK]
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Serialised as the vector of values it holds (the checkpoint image's form).
impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The iterator's exact length becomes the sequence's length prefix.
        serializer.collect_seq(self.iter())
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = &'a Value;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        Iter { chunks: self.chunks.iter(), chunk: [].iter(), left: self.len() }
    }
}

#[derive(Clone)]
pub struct Iter<'a> {
    chunks: std::slice::Iter<'a, Arc<[Value]>>,
    chunk: std::slice::Iter<'a, Value>,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Value;

    fn next(&mut self) -> Option<&'a Value> {
        loop {
            if let Some(value) = self.chunk.next() {
                self.left -= 1;
                return Some(value);
            }
            self.chunk = self.chunks.next()?.iter();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize) -> Vec<Value> {
        (0..n).map(|i| Value::String(format!("v{i}"))).collect()
    }

    #[test]
    fn holds_the_values_in_order_across_chunks() {
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5] {
            let fields = Fields::from(values(n));
            assert_eq!(fields.len(), n);
            assert_eq!(fields.to_vec(), values(n));
            assert_eq!(fields.iter().len(), n);
            assert!((0..n).all(|i| fields[i] == values(n)[i] && fields.get(i) == Some(&values(n)[i])));
            assert_eq!(fields.get(n), None);
        }
    }

    #[test]
    fn a_set_changes_one_copy_and_shares_the_chunks_it_did_not_touch() {
        let original = Fields::from(values(3 * CHUNK));
        let mut copy = original.clone();
        copy[CHUNK + 2] = Value::Int(7);
        assert_eq!(original[CHUNK + 2], Value::String(format!("v{}", CHUNK + 2)), "the original is unchanged");
        assert_eq!(copy[CHUNK + 2], Value::Int(7));
        assert_ne!(original, copy);
        assert!(Arc::ptr_eq(&original.chunks[0], &copy.chunks[0]), "an untouched chunk is shared");
        assert!(!Arc::ptr_eq(&original.chunks[1], &copy.chunks[1]), "the changed chunk is the copy's own");
    }

    #[test]
    fn serialises_as_the_vector_it_holds() {
        let fields = Fields::from(values(CHUNK + 3));
        assert_eq!(
            postcard::to_allocvec(&fields).expect("encode"),
            postcard::to_allocvec(&values(CHUNK + 3)).expect("encode")
        );
    }
}

//! Checkpoint images: a `State` as bytes (postcard) and back, and its content hash.
//!
//! Objects are written in ref order with their fields in schema order, so two states with equal
//! contents always produce the same bytes: `verify` compares re-folded state against stored
//! checkpoints by this hash.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::state::{Deletion, Object, Ref, State, User};
use crate::schema::schema;
use crate::value::Value;

/// Version of the image layout, stored as its first byte.
pub const IMAGE_VERSION: u8 = 2;

#[derive(Serialize, Deserialize)]
struct Image {
    seq: u64,
    classes: Vec<ClassImage>,
    users: Vec<(String, User)>,
    deletions: Vec<Deletion>,
    events_horizon: u64,
}

#[derive(Serialize, Deserialize)]
struct ClassImage {
    name: String,
    fields: Vec<String>,
    objects: Vec<(String, u64, u64, Vec<Value>)>,
}

/// Serialises a state.
pub fn encode(state: &State) -> Vec<u8> {
    let mut out = Vec::new();
    encode_to(state, &mut out).expect("a Vec takes every byte");
    out
}

/// Serialises a state into `out` as it goes, reading the objects where they are: no copy of the
/// state is made, so a checkpoint of a large state costs the bytes of its image and no more (and
/// fewer when `out` passes them on in parts). The bytes are those of [`Image`].
pub fn encode_to(state: &State, out: &mut impl std::io::Write) -> std::io::Result<()> {
    out.write_all(&[IMAGE_VERSION])?;
    postcard::to_io(&ImageOf(state), out).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(())
}

/// An [`Image`] read from a state in place, serialised field for field as `Image` is.
struct ImageOf<'a>(&'a State);

/// A sequence of `len` items, made by `items` when serialised.
struct SeqOf<F>(usize, F);

impl<F, I> Serialize for SeqOf<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.0))?;
        for item in (self.1)() {
            seq.serialize_element(&item)?;
        }
        seq.end()
    }
}

impl Serialize for ImageOf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let state = self.0;
        let s = schema();
        let classes: Vec<_> = s.classes.iter().filter(|c| !state.tables[c.id].objects.is_empty()).collect();
        let class_images = SeqOf(classes.len(), || {
            classes.iter().map(|c| {
                let objects = &state.tables[c.id].objects;
                (
                    &c.name,
                    SeqOf(c.fields.len(), || c.fields.iter().map(|f| &f.name)),
                    SeqOf(objects.len(), || objects.iter().map(|(r, o)| (&**r, o.created, o.modified, &o.fields))),
                )
            })
        });
        let mut image = serializer.serialize_struct("Image", 5)?;
        image.serialize_field("seq", &state.seq)?;
        image.serialize_field("classes", &class_images)?;
        image.serialize_field("users", &SeqOf(state.users.len(), || state.users.iter()))?;
        image.serialize_field("deletions", &SeqOf(state.deletions.len(), || state.deletions.iter()))?;
        image.serialize_field("events_horizon", &state.events_horizon)?;
        image.end()
    }
}

/// Rebuilds a state (indexes included) from an image.
pub fn decode(bytes: &[u8]) -> Result<State, String> {
    let (&version, body) = bytes.split_first().ok_or("empty state image")?;
    if version != IMAGE_VERSION {
        return Err(format!("state image version {version}, expected {IMAGE_VERSION}"));
    }
    let image: Image = postcard::from_bytes(body).map_err(|e| format!("state image: {e}"))?;
    let s = schema();
    let mut state = State::new();
    state.seq = image.seq;
    for ci in image.classes {
        let class = s.class(&ci.name).ok_or_else(|| format!("state image: unknown class {}", ci.name))?;
        let map: Vec<Option<usize>> = ci.fields.iter().map(|f| class.field(f)).collect();
        for (reference, created, modified, values) in ci.objects {
            let mut fields: Vec<Value> = class.fields.iter().map(crate::schema::default_value).collect();
            for (i, v) in values.into_iter().enumerate() {
                if let Some(Some(fid)) = map.get(i) {
                    fields[*fid] = v;
                }
            }
            let table = state.table_mut(class.id);
            let reference = Ref::from(reference);
            if let Some(uuid) = class.uuid_field.and_then(|f| fields[f].as_str()) {
                table.by_uuid.insert(Arc::from(uuid), reference.clone());
            }
            if let Some(label) = class.name_label_field.and_then(|f| fields[f].as_str()) {
                table.by_name_label.entry(Arc::from(label)).or_default().insert(reference.clone());
            }
            table.by_modified.insert((modified, reference.clone()));
            table.objects.insert(reference, Arc::new(Object::new(fields, created, modified)));
        }
    }
    state.users = image.users.into_iter().collect();
    state.deletions = image.deletions.into_iter().collect();
    state.events_horizon = image.events_horizon;
    Ok(state)
}

/// Content hash of a state: blake3 of its image.
pub fn hash(state: &State) -> [u8; 32] {
    *blake3::hash(&encode(state)).as_bytes()
}

//! Row helpers for the report modules: rows read with their keys matched as raw bytes,
//! strings borrowed from the page, and string lists held inline (the hot loop of a
//! refresh, BENCHMARKS.md).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::odata::{deserialize_raw_bytes, next_key};

/// A row read field by field from a JSON object whose keys are matched as raw bytes
/// (see [`next_key`]); keys the row does not use are skipped unparsed. The row types of
/// the registration reports implement it and deserialize with [`deserialize_row`].
pub trait ByteKeyedRow<'de>: Default {
    /// What one row is, for error messages ("a userRegistrationDetails object").
    const EXPECTING: &'static str;

    /// Reads the value of `key` into `self`; `Ok(false)` for a key the row does not use,
    /// whose value is then skipped.
    fn read_field<A: MapAccess<'de>>(&mut self, key: &[u8], map: &mut A) -> Result<bool, A::Error>;
}

/// Deserializes a [`ByteKeyedRow`] (its `Deserialize` impl calls this).
pub fn deserialize_row<'de, D, R>(d: D) -> Result<R, D::Error>
where
    D: serde::Deserializer<'de>,
    R: ByteKeyedRow<'de>,
{
    d.deserialize_map(RowVisitor(std::marker::PhantomData))
}

struct RowVisitor<R>(std::marker::PhantomData<R>);

impl<'de, R: ByteKeyedRow<'de>> Visitor<'de> for RowVisitor<R> {
    type Value = R;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(R::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<R, A::Error> {
        let mut row = R::default();
        while let Some(key) = next_key(&mut map)? {
            if !row.read_field(&key, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(row)
    }
}

/// A JSON string, borrowed from the page when it has no escapes. (serde's own
/// `Cow<str>` always allocates unless a derive marks the field `borrow`.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CowStr<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CowStrVisitor)
    }
}

struct CowStrVisitor;

impl<'de> Visitor<'de> for CowStrVisitor {
    type Value = CowStr<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(CowStr(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(CowStr(Cow::Owned(v.to_owned())))
    }
}

/// A JSON string as its raw (unescaped) bytes, not checked for UTF-8 until used: for
/// values read on every row but needed on few.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawStr<'a>(pub Cow<'a, [u8]>);

impl RawStr<'_> {
    /// The text; invalid UTF-8 (which JSON forbids) shows as U+FFFD.
    pub fn to_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl<'de> Deserialize<'de> for RawStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_raw_bytes(d).map(RawStr)
    }
}

/// A JSON array of strings, borrowed from the page where unescaped, held without a heap
/// allocation for the first [`StrList::INLINE`] items (users have a handful of methods;
/// one `Vec` per row was a measurable share of the fold). Escaped items and items past
/// the inline ones go to a `Vec`. Order is not kept: the folds count distinct values.
#[derive(Debug, Clone, Default)]
pub struct StrList<'a> {
    inline: [&'a str; StrList::INLINE],
    len: usize,
    spill: Vec<Cow<'a, str>>,
}

impl<'a> StrList<'a> {
    /// Items held without allocating. Small, because rows are moved by value.
    pub const INLINE: usize = 8;

    /// The items, in no particular order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.inline[..self.len]
            .iter()
            .copied()
            .chain(self.spill.iter().map(|s| s.as_ref()))
    }

    #[inline]
    fn push(&mut self, item: Cow<'a, str>) {
        match item {
            Cow::Borrowed(s) if self.len < Self::INLINE => {
                self.inline[self.len] = s;
                self.len += 1;
            }
            other => self.spill.push(other),
        }
    }
}

impl<'de> StrList<'de> {
    /// Reads a JSON array of strings (or null, read as empty) into `self`, in place:
    /// rows are built field by field, and moving a list through serde's layers by
    /// value showed up as memcpy in the profile.
    pub fn read<A: MapAccess<'de>>(&mut self, map: &mut A) -> Result<(), A::Error> {
        map.next_value_seed(StrListSeed(self))
    }
}

struct StrListSeed<'l, 'de>(&'l mut StrList<'de>);

impl<'de> DeserializeSeed<'de> for StrListSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for StrListSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of strings or null")
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(CowStr(item)) = seq.next_element()? {
            self.0.push(item);
        }
        Ok(())
    }
}

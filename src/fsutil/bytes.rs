//! An immutable, cheaply clonable byte buffer backed by the heap or by a memory map.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

use super::MappedFile;

#[derive(Clone)]
enum Owner {
    Heap(Arc<[u8]>),
    Mapped(Arc<MappedFile>),
}

impl Owner {
    fn bytes(&self) -> &[u8] {
        match self {
            Owner::Heap(b) => b,
            Owner::Mapped(m) => m.as_slice(),
        }
    }
}

/// A shared, immutable byte slice. Cloning and slicing never copy the bytes; a slice
/// keeps the whole underlying buffer (or mapping) alive.
#[derive(Clone)]
pub struct SharedBytes {
    owner: Owner,
    start: usize,
    end: usize,
}

impl SharedBytes {
    /// The whole mapped file.
    pub fn from_mapped(map: Arc<MappedFile>) -> SharedBytes {
        let end = map.len();
        SharedBytes {
            owner: Owner::Mapped(map),
            start: 0,
            end,
        }
    }

    /// A sub-slice, `None` when `range` is out of bounds or reversed.
    pub fn slice(&self, range: Range<usize>) -> Option<SharedBytes> {
        if range.start > range.end || range.end > self.len() {
            return None;
        }
        Some(SharedBytes {
            owner: self.owner.clone(),
            start: self.start.checked_add(range.start)?,
            end: self.start.checked_add(range.end)?,
        })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.owner.bytes().get(self.start..self.end).unwrap_or(&[])
    }
}

impl Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Arc<[u8]>> for SharedBytes {
    fn from(b: Arc<[u8]>) -> Self {
        let end = b.len();
        SharedBytes {
            owner: Owner::Heap(b),
            start: 0,
            end,
        }
    }
}

impl From<Vec<u8>> for SharedBytes {
    fn from(b: Vec<u8>) -> Self {
        SharedBytes::from(Arc::<[u8]>::from(b))
    }
}

impl From<&[u8]> for SharedBytes {
    fn from(b: &[u8]) -> Self {
        SharedBytes::from(Arc::<[u8]>::from(b))
    }
}

impl PartialEq for SharedBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SharedBytes {}

impl fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedBytes({} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slicing_is_checked() {
        let b = SharedBytes::from(vec![1u8, 2, 3, 4]);
        let s = b.slice(1..3).unwrap();
        assert_eq!(&*s, &[2, 3]);
        assert_eq!(&*s.slice(1..2).unwrap(), &[3]);
        assert!(s.slice(1..3).is_none());
        #[allow(clippy::reversed_empty_ranges)]
        let rev = b.slice(3..1);
        assert!(rev.is_none());
        assert_eq!(b.slice(4..4).unwrap().len(), 0);
    }
}

//! A table indexed by small ids that one thread grows and others read without a lock: fixed chunks of
//! entries, each allocated on first use and never moved.

use std::sync::OnceLock;

const CHUNK: usize = 64;
const CHUNKS: usize = 256;

/// Up to `CHUNK * CHUNKS` (16,384) entries; ids past them have no entry.
pub(crate) struct Table<T> {
    chunks: Box<[OnceLock<Box<[T]>>]>,
}

impl<T: Default> Table<T> {
    pub fn new() -> Self {
        Table { chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect() }
    }

    /// The entry of `id`, allocating its chunk on first use; `None` past the table's capacity.
    #[inline(always)]
    pub fn get(&self, id: u32) -> Option<&T> {
        let id = id as usize;
        let chunk = self.chunks.get(id / CHUNK)?;
        let chunk = match chunk.get() {
            Some(chunk) => chunk,
            None => chunk.get_or_init(new_chunk),
        };
        chunk.get(id % CHUNK)
    }

    /// The entries allocated so far, with their ids.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.chunks.iter().enumerate().filter_map(|(index, chunk)| chunk.get().map(|chunk| (index, chunk))).flat_map(
            |(index, chunk)| chunk.iter().enumerate().map(move |(offset, entry)| (index * CHUNK + offset, entry)),
        )
    }
}

#[cold]
#[inline(never)]
fn new_chunk<T: Default>() -> Box<[T]> {
    (0..CHUNK).map(|_| T::default()).collect()
}

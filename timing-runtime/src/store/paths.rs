//! Every distinct call path recorded in the process, interned to a dense id when a thread first takes it:
//! a path is its caller's path and a span name, and a caller's id is below its callees'. Threads' nodes
//! carry these ids, so a report adds each thread's counters into an array by id instead of matching paths
//! by hashing (a third of a report's time over 64 threads' trees). The table holds each distinct path once
//! (16 bytes and an index entry), whatever the number of threads that take it, and is never shrunk.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use parking_lot::Mutex;

/// The id of the empty path, above every top-level call.
pub(crate) const ROOT: u32 = 0;

struct PathTable {
    /// `(caller's path, span name id)` by path id; the root's first.
    paths: Vec<(u32, u32)>,
    /// Path id by `caller << 32 | name`.
    index: HashMap<u64, u32, BuildHasherDefault<PathHasher>>,
}

static PATHS: Mutex<PathTable> =
    Mutex::new(PathTable { paths: Vec::new(), index: HashMap::with_hasher(BuildHasherDefault::new()) });

/// The id of the path of a call of `name` from path `caller`; `None` once 2^32 - 1 paths exist.
pub(crate) fn intern(caller: u32, name: u32) -> Option<u32> {
    let mut table = PATHS.lock();
    if table.paths.is_empty() {
        table.paths.push((ROOT, u32::MAX));
    }
    let key = u64::from(caller) << 32 | u64::from(name);
    if let Some(id) = table.index.get(&key) {
        return Some(*id);
    }
    let next = u32::try_from(table.paths.len()).ok().filter(|next| *next != u32::MAX)?;
    table.index.insert(key, next);
    table.paths.push((caller, name));
    Some(next)
}

/// Every path so far, `(caller, name)` by id, the root first.
pub(crate) fn all() -> Vec<(u32, u32)> {
    let table = PATHS.lock();
    if table.paths.is_empty() { vec![(ROOT, u32::MAX)] } else { table.paths.clone() }
}

/// Hashes a path key with one folded multiplication; the keys are the runtime's own ids, not input an
/// attacker chooses.
#[derive(Default)]
struct PathHasher(u64);

impl Hasher for PathHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u64(&mut self, key: u64) {
        // The high and low halves of the 128-bit product, folded: every bit of the key moves both the bits
        // that pick the bucket and those that tag it.
        let product = u128::from(key ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
        #[allow(clippy::cast_possible_truncation)]
        let folded = (product >> 64) as u64 ^ product as u64;
        self.0 = folded;
    }
}

//! A growable array that never moves what it holds: elements live in fixed-size chunks, so
//! growing allocates one more chunk instead of copying every element into a buffer twice as
//! large. A table of 8 million rows would otherwise copy 8 million row headers (192 MB) in the
//! one insert that crosses the limit: a frame-long stop for a game.

/// Elements per chunk: 65,536 (a chunk of row headers is 1.5 MiB).
pub const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;
const MASK: usize = CHUNK - 1;

/// A growable array in chunks of [`CHUNK_BITS`] bits' worth of elements.
#[derive(Debug)]
pub struct ChunkedVec<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        ChunkedVec {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> ChunkedVec<T> {
    /// Appends an element; returns its index.
    #[inline]
    pub fn push(&mut self, value: T) -> usize {
        let index = self.len;
        if index & MASK == 0 && index >> CHUNK_BITS == self.chunks.len() {
            // Full capacity up front: a chunk never reallocates (its pages are touched only
            // as elements arrive).
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks[index >> CHUNK_BITS].push(value);
        self.len += 1;
        index
    }

    /// The element at `index`.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index >> CHUNK_BITS)?.get(index & MASK)
    }

    /// Removes every element; returns them in index order.
    pub fn take_all(&mut self) -> Vec<T> {
        self.len = 0;
        std::mem::take(&mut self.chunks)
            .into_iter()
            .flatten()
            .collect()
    }
}

impl<T> std::ops::Index<usize> for ChunkedVec<T> {
    type Output = T;

    #[inline]
    fn index(&self, index: usize) -> &T {
        &self.chunks[index >> CHUNK_BITS][index & MASK]
    }
}

impl<T> std::ops::IndexMut<usize> for ChunkedVec<T> {
    #[inline]
    fn index_mut(&mut self, index: usize) -> &mut T {
        &mut self.chunks[index >> CHUNK_BITS][index & MASK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_hold_across_chunks() {
        let mut v = ChunkedVec::default();
        let n = CHUNK * 2 + 17;
        for i in 0..n {
            assert_eq!(v.push(i as u64), i);
        }
        assert_eq!(v[CHUNK - 1], (CHUNK - 1) as u64);
        assert_eq!(v[CHUNK], CHUNK as u64);
        assert_eq!(v.get(n), None);
        v[CHUNK + 3] = 7;
        assert_eq!(v.get(CHUNK + 3), Some(&7));
        v[0] = 9;
        let all = v.take_all();
        assert_eq!(all.len(), n);
        assert_eq!((all[0], all[CHUNK + 3], all[n - 1]), (9, 7, (n - 1) as u64));
        assert_eq!(v.push(1), 0, "usable again after take_all");
    }

    #[test]
    fn elements_do_not_move_when_it_grows() {
        let mut v = ChunkedVec::default();
        v.push(1u8);
        let first: *const u8 = &v[0];
        for _ in 0..CHUNK * 3 {
            v.push(0);
        }
        assert!(std::ptr::eq(first, &v[0]));
    }
}

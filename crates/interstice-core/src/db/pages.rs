//! Large table memory, allocated and freed off the frame's thread.
//!
//! Two costs of a growing hash table do not depend on how its entries are moved, only on how
//! much memory it has (see `benches/table_growth.rs`):
//!
//! - **First touch.** A new table's pages are zero-filled by the kernel one 4 KiB page fault at
//!   a time, first by the allocation marking every bucket empty, then as entries reach them.
//!   For a table of 16 million buckets that is over 400,000 faults; on a virtual machine, where
//!   a fault can cost 10 µs, that is seconds of a game's frames.
//! - **Freeing.** Returning a table's touched pages to the system costs about 0.1 ms per MB and
//!   holds the process's memory-map lock meanwhile, which the frame's thread needs whenever
//!   the allocator grows the heap.
//!
//! So a helper thread does both. It [`prepare`]s the next, larger table while the current one
//! still has room (allocated, every page faulted in ahead of use by [`fault_in`]), and it
//! [`release`]s tables no longer
//! needed: their elements dropped, their pages returned a step at a time with `MADV_DONTNEED`
//! (which only reads the memory-map lock), then the emptied block freed. Elsewhere than Linux,
//! the helper allocates and frees but does not advise the kernel.

#![allow(
    unsafe_code,
    reason = "allocates, faults in and returns table memory with mmap-level calls"
)]

use std::alloc::Layout;
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Tables whose memory is at least this large are prepared and released by the helper
/// thread; smaller ones cost too little to be worth the hand-off.
pub const HELPER_FROM_BYTES: usize = 1 << 20;

/// Bytes returned per system call: each call holds the memory-map lock (for reading) while it
/// runs, and the frame's thread may be waiting to write it.
const STEP_BYTES: usize = 256 << 10;

type Job = Box<dyn FnOnce() + Send>;

/// A job for the helper thread, and which queue it waits in.
struct Sent {
    kind: Kind,
    job: Job,
}

/// The helper thread's queue; `None` if the thread could not be started (then callers do the
/// work themselves).
///
/// A channel, not a mutex-guarded queue with a condition variable: with the latter, replaying
/// a million-row log on start took 20 % longer (`recovery/1M_rows` in `benches/storage.rs`,
/// about 680 ms against 560 ms, measured back to back), for the same jobs in the same order.
fn helper() -> Option<&'static Mutex<Sender<Sent>>> {
    static HELPER: OnceLock<Option<Mutex<Sender<Sent>>>> = OnceLock::new();
    HELPER
        .get_or_init(|| {
            let (send, receive) = mpsc::channel::<Sent>();
            std::thread::Builder::new()
                .name("interstice-pages".into())
                .spawn(move || run_helper(&receive))
                .ok()
                .map(|_| Mutex::new(send))
        })
        .as_ref()
}

/// The helper thread's loop: preparations first (a growth may be waiting for one), then
/// releases, each in the order they came.
fn run_helper(receive: &Receiver<Sent>) {
    let mut prepare = VecDeque::new();
    let mut release = VecDeque::new();
    loop {
        let waiting = |prepare: &VecDeque<Job>, release: &VecDeque<Job>| {
            !prepare.is_empty() || !release.is_empty()
        };
        // Everything sent so far joins its queue before the next job is chosen.
        let first = if waiting(&prepare, &release) {
            receive.try_recv().ok()
        } else {
            match receive.recv() {
                Ok(sent) => Some(sent),
                // Every sender is gone: nothing more will come.
                Err(_) => return,
            }
        };
        for sent in first.into_iter().chain(receive.try_iter()) {
            match sent.kind {
                Kind::Prepare => prepare.push_back(sent.job),
                Kind::Release => release.push_back(sent.job),
            }
        }
        if let Some(job) = prepare.pop_front().or_else(|| release.pop_front()) {
            job();
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Prepare,
    Release,
}

/// Runs `job` on the helper thread; gives it back if there is none.
fn send(kind: Kind, job: Job) -> Result<(), Job> {
    let Some(helper) = helper() else {
        return Err(job);
    };
    let sender = helper.lock().unwrap_or_else(PoisonError::into_inner);
    sender
        .send(Sent { kind, job })
        .map_err(|mpsc::SendError(sent)| sent.job)
}

/// A value the helper thread can release.
pub trait Releasable: Send + 'static {
    /// Bytes of memory it owns.
    fn owned_bytes(&self) -> usize;
    /// Drops it, returning its memory to the system as cheaply for others as it can.
    fn release(self);
}

impl<T: Send + 'static> Releasable for hashbrown::raw::RawTable<T> {
    fn owned_bytes(&self) -> usize {
        self.allocation_info().1.size()
    }

    fn release(mut self) {
        // Drop the elements first: once the pages are returned the table's control bytes
        // read as zeros, and an empty table never reads them again.
        self.clear();
        if self.owned_bytes() >= HELPER_FROM_BYTES {
            advise_whole_pages(self.allocation_info(), Advice::Discard);
        }
    }
}

/// Drops `value`, on the helper thread if it owns at least [`HELPER_FROM_BYTES`].
pub fn release<T: Releasable>(value: T) {
    if value.owned_bytes() < HELPER_FROM_BYTES {
        return;
    }
    if let Err(job) = send(Kind::Release, Box::new(move || value.release())) {
        job();
    }
}

/// A value the helper thread is making.
pub struct Prepared<T: Releasable> {
    slot: Arc<Mutex<Slot<T>>>,
}

enum Slot<T> {
    /// Not made yet.
    Pending,
    /// Made, not taken yet.
    Ready(T),
    /// No longer wanted: the helper releases it when it is made.
    Abandoned,
}

/// Asks the helper thread to make a value (a large table, allocated and faulted in), to
/// [`Prepared::take`] once it is ready; `None` if there is no helper thread.
pub fn prepare<T: Releasable>(make: impl FnOnce() -> T + Send + 'static) -> Option<Prepared<T>> {
    let slot = Arc::new(Mutex::new(Slot::Pending));
    let filled = Arc::clone(&slot);
    let job: Job = Box::new(move || {
        // Given up on before it started (its map grew without it, or went): not made at all.
        if matches!(
            *filled.lock().unwrap_or_else(PoisonError::into_inner),
            Slot::Abandoned
        ) {
            return;
        }
        let value = make();
        let mut slot = filled.lock().unwrap_or_else(PoisonError::into_inner);
        match *slot {
            Slot::Abandoned => {
                drop(slot);
                value.release();
            }
            _ => *slot = Slot::Ready(value),
        }
    });
    send(Kind::Prepare, job).ok().map(|()| Prepared { slot })
}

impl<T: Releasable> Prepared<T> {
    /// The value, if the helper has made it.
    pub fn take(&self) -> Option<T> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *slot, Slot::Abandoned) {
            Slot::Ready(value) => Some(value),
            other => {
                *slot = other;
                None
            }
        }
    }
}

impl<T: Releasable> Drop for Prepared<T> {
    fn drop(&mut self) {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Slot::Ready(value) = std::mem::replace(&mut *slot, Slot::Abandoned) {
            drop(slot);
            release(value);
        }
    }
}

/// Faults in every page of a new, empty table's buckets (its control bytes were written when
/// it was made), by writing one byte in each. Run by the helper, on a table no one else holds
/// yet.
///
/// Writing, not `MADV_POPULATE_WRITE`: that call holds the memory-map lock while it runs, and
/// the frame's thread waits on it whenever the allocator grows the heap (a table of 1.7 GB
/// made that way slowed every frame meanwhile from 4 to 88 ms), while a write fault on the
/// table's own mapping only locks that mapping.
pub fn fault_in<T>(table: &mut hashbrown::raw::RawTable<T>) {
    let len = table.buckets() * std::mem::size_of::<T>();
    if !table.is_empty() || len < HELPER_FROM_BYTES {
        return;
    }
    let page = page_size();
    // SAFETY: the buckets lie just below `data_end`, `buckets()` of them, all inside the
    // table's allocation.
    let start = unsafe { table.data_end().as_ptr().cast::<u8>().sub(len) };
    let mut offset = start.align_offset(page);
    while offset < len {
        // SAFETY: `offset < len` keeps the byte among the buckets. The table is empty, so no
        // bucket holds a value, and a bucket's bytes are never read before a value is written
        // into it; `&mut` makes this the only access meanwhile.
        unsafe { start.add(offset).write_volatile(0) };
        offset += page;
    }
}

/// The system's page size (the unit a fault maps and `madvise` works in); 4 KiB where it
/// cannot be asked.
fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        #[cfg(unix)]
        {
            // SAFETY: `sysconf` only reads a configuration value.
            let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            if let Ok(size) = usize::try_from(size)
                && size.is_power_of_two()
            {
                return size;
            }
        }
        4096
    })
}

#[derive(Clone, Copy)]
enum Advice {
    /// Return the pages; they read as zeros afterwards.
    Discard,
}

/// Gives the kernel advice on the pages wholly inside a block, a step at a time. The pages at
/// the block's ends are left alone: they may hold the allocator's bookkeeping.
fn advise_whole_pages((start, layout): (NonNull<u8>, Layout), advice: Advice) {
    let page = page_size();
    let start = start.as_ptr() as usize;
    let first = start.next_multiple_of(page);
    let end = (start + layout.size()) & !(page - 1);
    let mut at = first;
    while at < end {
        let step = STEP_BYTES.min(end - at);
        advise(at, step, advice);
        at += step;
    }
}

#[cfg(target_os = "linux")]
fn advise(start: usize, len: usize, advice: Advice) {
    let advice = match advice {
        Advice::Discard => libc::MADV_DONTNEED,
    };
    // SAFETY: the range is whole pages inside a block the caller owns and no one else uses:
    // an emptied table about to be freed (after `MADV_DONTNEED` its pages read as zeros, which
    // an empty table never reads). An error leaves the pages as they were.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, advice);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_start: usize, _len: usize, _advice: Advice) {}

#[cfg(test)]
mod tests {
    use super::*;
    use hashbrown::raw::RawTable;
    use std::sync::mpsc::{Sender, channel};
    use std::time::{Duration, Instant};

    struct Big(Vec<u8>, Sender<std::thread::ThreadId>);

    impl Releasable for Big {
        fn owned_bytes(&self) -> usize {
            self.0.capacity()
        }
        fn release(self) {}
    }

    impl Drop for Big {
        fn drop(&mut self) {
            let _ = self.1.send(std::thread::current().id());
        }
    }

    #[test]
    fn large_values_are_released_by_the_helper_and_small_ones_at_once() {
        let (dropped, drops) = channel();
        release(Big(vec![1; HELPER_FROM_BYTES], dropped.clone()));
        let by = drops
            .recv_timeout(Duration::from_secs(10))
            .expect("the helper drops a large value");
        assert_ne!(by, std::thread::current().id());
        release(Big(vec![1; 16], dropped));
        assert_eq!(drops.try_recv(), Ok(std::thread::current().id()));
    }

    #[test]
    fn a_prepared_table_is_empty_and_usable_and_a_released_one_drops_its_elements() {
        let prepared = prepare(|| {
            let mut table = RawTable::<(u64, String)>::with_capacity(1 << 17);
            fault_in(&mut table);
            table
        })
        .expect("a helper thread");
        let start = Instant::now();
        let mut table = loop {
            if let Some(table) = prepared.take() {
                break table;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "never prepared");
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(table.is_empty() && table.capacity() >= 1 << 17);
        for k in 0..10_000u64 {
            table.insert(k, (k, k.to_string()), |(k, _)| *k);
        }
        for k in (0..10_000u64).step_by(97) {
            let found = table.get(k, |(key, _)| *key == k);
            assert_eq!(found.map(|(_, v)| v.as_str()), Some(k.to_string().as_str()));
        }
        // A table released with elements drops them (a leak checker would see it otherwise)
        // and its memory goes back; then the helper is still there for the next job.
        release(table);
        let (dropped, drops) = channel();
        release(Big(vec![0; HELPER_FROM_BYTES], dropped));
        drops
            .recv_timeout(Duration::from_secs(10))
            .expect("the helper runs jobs after a release");
    }

    #[test]
    fn preparations_waiting_run_before_releases_waiting() {
        let (open, gate) = channel::<()>();
        let (ran, order) = channel();
        // Holds the helper while the next two jobs are queued.
        send(
            Kind::Release,
            Box::new(move || {
                let _ = gate.recv_timeout(Duration::from_secs(10));
            }),
        )
        .ok()
        .expect("a helper thread");
        let released = ran.clone();
        send(
            Kind::Release,
            Box::new(move || {
                let _ = released.send("release");
            }),
        )
        .ok()
        .expect("helper");
        send(
            Kind::Prepare,
            Box::new(move || {
                let _ = ran.send("prepare");
            }),
        )
        .ok()
        .expect("helper");
        open.send(()).expect("the gate job waits");
        let first = order.recv_timeout(Duration::from_secs(10)).expect("runs");
        let second = order.recv_timeout(Duration::from_secs(10)).expect("runs");
        assert_eq!((first, second), ("prepare", "release"));
    }

    #[test]
    fn an_abandoned_preparation_is_never_dropped_by_the_caller() {
        let (made, makes) = channel();
        let (dropped, drops) = channel();
        let prepared = prepare(move || {
            let _ = made.send(());
            Big(vec![0; HELPER_FROM_BYTES], dropped)
        })
        .expect("helper");
        drop(prepared);
        // A release queued now runs after the preparation: then the outcome is known.
        let (done, finished) = channel();
        release(Big(vec![0; HELPER_FROM_BYTES], done));
        finished
            .recv_timeout(Duration::from_secs(10))
            .expect("the helper runs the release");
        match makes.try_recv() {
            // Made before it was abandoned (or while): dropped by the helper.
            Ok(()) => {
                let by = drops
                    .recv_timeout(Duration::from_secs(10))
                    .expect("dropped");
                assert_ne!(by, std::thread::current().id());
            }
            // Abandoned before it started: never made.
            Err(_) => assert!(drops.try_recv().is_err()),
        }
    }
}

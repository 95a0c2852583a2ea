//! The release builds' allocator: mimalloc, called the way Rust's layouts need.
//!
//! The `mimalloc` crate's `GlobalAlloc` sends every request through `mi_malloc_aligned`, which
//! re-derives the size class for the alignment before it reaches the free list: about 90
//! instructions per allocation on the proxy's hot path, where plain `mi_malloc` takes 25. Every
//! block mimalloc hands out is aligned to `MI_MAX_ALIGN_SIZE` (16 on 64-bit targets; 8 for blocks
//! under 16 bytes, whose Rust layouts never ask for more), so only larger alignments need the
//! aligned entry points. It replaces the allocator of this library's Rust code only, never the
//! host's `malloc`.
//!
//! mimalloc serves blocks of up to 1 KiB from its thread's free list in a few instructions, but every
//! larger one goes through its generic path (about 140 instructions: page queue lookup, collection
//! of freed blocks). A proxied request allocates two such blocks (its state machine and its session)
//! and frees them when it ends, so the library's own threads keep the last few freed blocks of that
//! size range (see [`BlockCache`]) and hand them straight back to the next request of the same size.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc, mi_zalloc_aligned,
};

/// What every plain mimalloc block is aligned to.
const MI_MAX_ALIGN_SIZE: usize = 16;

/// mimalloc behind Rust's allocator interface.
pub struct MiMalloc;

// SAFETY: every pointer handed out comes from mimalloc with at least the layout's size and
// alignment (see the module comment), and every pointer taken back goes to mimalloc's own free
// or realloc, which accept any block it handed out whatever the entry point.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if cacheable(layout) {
            if let Some(p) = CACHE.with(|c| c.take(layout.size())) {
                return p;
            }
        }
        if layout.align() <= MI_MAX_ALIGN_SIZE {
            mi_malloc(layout.size()).cast()
        } else {
            mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MI_MAX_ALIGN_SIZE {
            mi_zalloc(layout.size()).cast()
        } else {
            mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if cacheable(layout) && CACHE.with(|c| c.put(ptr, layout.size())) {
            return;
        }
        mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MI_MAX_ALIGN_SIZE {
            mi_realloc(ptr.cast::<c_void>(), new_size).cast()
        } else {
            mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
        }
    }
}

/// Largest block mimalloc serves from its thread's free list (`MI_SMALL_SIZE_MAX`).
const SMALL_MAX: usize = 1024;

/// Largest block kept: a request's state machine and session are a few KiB; bigger blocks (body
/// buffers) are rarer and would make the idle cache costly.
const CACHED_MAX: usize = 16 * 1024;

/// Bins per thread; each keeps blocks of one size at a time (see [`bin_of`]). A request frees five
/// or six blocks of this range (its state machine, session, read buffers...), each of a size that
/// the next request asks for again.
const BINS: usize = 17;

/// Most bytes a thread keeps. A thread interleaves its connections' requests, so a burst of blocks
/// of one size is freed before the next requests ask for them again; a few dozen requests' worth.
const BUDGET: usize = 256 * 1024;

/// Which bin serves a size: one compare to find a block of that size. Sizes are multiples of 8; a
/// prime number of bins keeps sizes a power of two apart (4 KiB and 16 KiB buffers) out of each
/// other's bin.
#[inline]
fn bin_of(size: usize) -> usize {
    (size >> 3) % BINS
}

#[inline]
fn cacheable(layout: Layout) -> bool {
    layout.size() > SMALL_MAX && layout.size() <= CACHED_MAX && layout.align() <= MI_MAX_ALIGN_SIZE
}

/// A thread's last freed blocks of the sizes mimalloc serves slowly, by exact size: blocks of one
/// type come back for the next value of that type. Only threads that turned it on with
/// [`worker_cache`] keep blocks (the library's own workers, which turn it off and free the blocks
/// as they exit); on every other thread, a host's included, it is never used. No destructor, so the
/// thread-local costs no registration and stays valid while a thread exits.
struct BlockCache {
    on: Cell<bool>,
    /// Bytes kept, at most [`BUDGET`].
    bytes: Cell<usize>,
    bins: [Bin; BINS],
}

/// Blocks of `size` bytes (any size while empty), as a list linked through the blocks themselves:
/// a freed block of over 1 KiB has room for the pointer to the next one.
struct Bin {
    size: Cell<usize>,
    head: Cell<*mut u8>,
}

thread_local! {
    static CACHE: BlockCache = const {
        BlockCache {
            on: Cell::new(false),
            bytes: Cell::new(0),
            bins: [const { Bin { size: Cell::new(0), head: Cell::new(std::ptr::null_mut()) } }; BINS],
        }
    };
}

impl BlockCache {
    #[inline]
    fn take(&self, size: usize) -> Option<*mut u8> {
        let bin = &self.bins[bin_of(size)];
        let block = bin.head.get();
        if block.is_null() || bin.size.get() != size {
            return None;
        }
        // SAFETY: a kept block, whose first word `put` set to the next one.
        bin.head.set(unsafe { block.cast::<*mut u8>().read() });
        self.bytes.set(self.bytes.get() - size);
        Some(block)
    }

    /// Keeps `block` if its bin is empty or holds blocks of its size, within the budget; otherwise
    /// it goes back to mimalloc (a bin is not emptied for another size: the size it holds is one
    /// that was asked for, and churn would cost a free per block).
    #[inline]
    fn put(&self, block: *mut u8, size: usize) -> bool {
        let bin = &self.bins[bin_of(size)];
        let head = bin.head.get();
        let bytes = self.bytes.get() + size;
        if !self.on.get() || bytes > BUDGET || (!head.is_null() && bin.size.get() != size) {
            return false;
        }
        // SAFETY: the caller's block of `size` > 1 KiB bytes, ours from now on, 16-byte aligned.
        unsafe { block.cast::<*mut u8>().write(head) };
        bin.head.set(block);
        bin.size.set(size);
        self.bytes.set(bytes);
        true
    }

    /// Gives every kept block back to mimalloc.
    fn drain(&self) {
        for bin in &self.bins {
            let mut block = bin.head.replace(std::ptr::null_mut());
            while !block.is_null() {
                // SAFETY: kept blocks, linked by `put`; each is read before it is freed.
                unsafe {
                    let next = block.cast::<*mut u8>().read();
                    mi_free(block.cast::<c_void>());
                    block = next;
                }
            }
        }
        self.bytes.set(0);
    }
}

/// Turns the calling thread's block cache on (a library worker starting) or off, freeing what it
/// kept (the worker exiting). Harmless on any thread and when mimalloc is not the allocator.
pub(crate) fn worker_cache(on: bool) {
    // `try_with`: the slot stays accessible while the thread exits (no destructor), but an
    // `Err` would only mean nothing is kept.
    let _ = CACHE.try_with(|c| {
        c.on.set(on);
        if !on {
            c.drain();
        }
    });
}

/// Turns mimalloc's transparent huge pages off when the library is loaded (release builds, whose
/// allocator mimalloc is).
#[cfg(not(debug_assertions))]
mod no_thp {
    /// mimalloc's `mi_option_allow_thp` (`mimalloc.h`, v2: the 38th option).
    const MI_OPTION_ALLOW_THP: std::ffi::c_int = 37;

    extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }

    /// Runs when the library is loaded, before any of its code allocates: mimalloc would otherwise
    /// `madvise(MADV_HUGEPAGE)` its arena, and on a kernel in THP `madvise` mode every 2 MiB region
    /// the proxy touches becomes resident whole. Memory then grows in 2 MiB steps whatever the load
    /// (an idle keep-alive connection costs 1.35 KB, but 9,000 of them measured anywhere from 1.35
    /// to 1.65 KB each depending on where the last step fell), and an embedding host's memory
    /// policy changes behind its back. The proxy's working set is a few MiB, well within the TLB's
    /// reach with 4 KiB pages. `MIMALLOC_ALLOW_THP=1` in the environment keeps mimalloc's default.
    extern "C" fn at_load() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            // SAFETY: sets one option value; valid at any time, before or after mimalloc's own init.
            unsafe { mi_option_set(MI_OPTION_ALLOW_THP, 0) };
        }
    }

    #[used]
    #[link_section = ".init_array"]
    static AT_LOAD: extern "C" fn() = at_load;
}

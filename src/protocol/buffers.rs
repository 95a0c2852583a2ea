//! Read buffers recycled per worker thread. An idle keep-alive connection gives its buffer back
//! (so it holds no memory while idle) and takes one again when its next request arrives; the cache
//! makes that a vector push/pop instead of a 4 KiB malloc/free pair per request.

use std::cell::RefCell;

use bytes::BytesMut;

/// Capacity of a recycled buffer.
pub(crate) const BUF_SIZE: usize = 4 * 1024;
/// Buffers kept per thread (256 KiB at most).
const SPARE: usize = 64;

thread_local! {
    static CACHE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with at least [`BUF_SIZE`] capacity.
pub(crate) fn take() -> BytesMut {
    CACHE.with(|c| c.borrow_mut().pop()).unwrap_or_else(|| BytesMut::with_capacity(BUF_SIZE))
}

/// Gives `buf` back (it must be empty). Buffers still shared with live `Bytes` or oversized
/// ones are simply dropped.
pub(crate) fn give(mut buf: BytesMut) {
    debug_assert!(buf.is_empty());
    // `try_reclaim` moves the cursor back to the start of a unique allocation without allocating;
    // it fails when `Bytes` split off earlier still share the allocation.
    buf.clear();
    if buf.capacity() < BUF_SIZE && !buf.try_reclaim(BUF_SIZE) {
        return;
    }
    if buf.capacity() > 4 * BUF_SIZE {
        return;
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() < SPARE {
            c.push(buf);
        }
    });
}

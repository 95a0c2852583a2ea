//! Boxing a large value where it is built.
//!
//! `Box::new(v)` (and `Box::pin`) builds `v` on the stack and then copies all of it into the
//! allocation. For a request's future that is several KiB per request (the size of its largest
//! state, although only its arguments are set yet); for a session, a kilobyte. Built by a closure
//! written straight into an uninitialised box, the value is constructed in place instead.

/// `Box::new(make())`, without the copy.
#[inline(always)]
pub(crate) fn in_box<T>(make: impl FnOnce() -> T) -> Box<T> {
    let mut slot = Box::<T>::new_uninit();
    slot.write(make());
    // SAFETY: written on the line above. (`Box::write` does both steps safely, from Rust 1.87;
    // the crate's MSRV is 1.85.)
    unsafe { slot.assume_init() }
}

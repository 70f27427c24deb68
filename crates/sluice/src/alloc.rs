//! The global allocator: mimalloc, called the way its own `malloc` is fastest.
//!
//! The `mimalloc` crate hands every allocation to `mi_malloc_aligned`, whose fast path needs a
//! free block in the right size class that happens to be aligned; when the class's page is
//! empty, or the block is larger than 1 KiB, mimalloc 3 takes a generic path that
//! over-allocates (size + alignment - 1) for any size that is not a power of two and marks the
//! page as holding interior pointers. About one allocation in seven on a proxied request went
//! that way (bench/README.md, "The allocator's aligned path"). Plain `mi_malloc` already
//! returns blocks aligned to their size class (size classes are multiples of 8 bytes, and of 16
//! above 16, counted from a 16-byte-aligned page start), so a layout aligned to at most 16 whose
//! size is a multiple of its alignment needs nothing more; any other layout keeps the aligned
//! functions.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every mimalloc block of a size that is a multiple of it already has
/// (`MI_MAX_ALIGN_SIZE`).
const NATURAL_ALIGN: usize = 16;

/// mimalloc as the process's allocator.
#[derive(Debug)]
pub(crate) struct Allocator;

/// Whether a plain allocation of `size` bytes is aligned to `align`.
const fn naturally_aligned(size: usize, align: usize) -> bool {
    align <= NATURAL_ALIGN && size.is_multiple_of(align)
}

// SAFETY: every method forwards to mimalloc, which returns blocks of at least the requested
// size (or null), aligned as the layout asks: by the aligned functions, or by the size class
// when `naturally_aligned` holds. Every block, however it was allocated, is released with
// `mi_free`, which mimalloc accepts for all of them, and `mi_realloc`/`mi_realloc_aligned`
// keep the alignment the block was allocated with (the layout's, unchanged by `realloc`).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain FFI calls; `layout` has a non-zero size (the caller's contract).
        unsafe {
            if naturally_aligned(layout.size(), layout.align()) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if naturally_aligned(layout.size(), layout.align()) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract), so from mimalloc.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's contract); the
        // new block keeps `layout.align()`, by its size class or by the aligned function.
        unsafe {
            if naturally_aligned(new_size, layout.align()) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size up to 4 KiB (and some large ones) at every alignment up to 4 KiB, allocated,
    /// grown and shrunk, comes back aligned as asked, whichever path it took.
    #[test]
    #[allow(unsafe_code)]
    fn blocks_are_aligned_as_their_layout_asks() {
        let sizes = (1..=4096).chain([8191, 8192, 65_536, 1 << 20, (1 << 22) + 8]);
        for size in sizes {
            for shift in 0..=12 {
                let align = 1usize << shift;
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                // SAFETY: a non-zero size; each block is freed once, with its own layout.
                unsafe {
                    let p = Allocator.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc {size} aligned {align}");
                    p.write_bytes(0xA5, size);
                    let grown = Allocator.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "grown {size} aligned {align}");
                    assert_eq!(*grown.add(size - 1), 0xA5);
                    let grown_layout = Layout::from_size_align(size * 3, align).unwrap_or(layout);
                    let shrunk = Allocator.realloc(grown, grown_layout, size.div_ceil(2));
                    assert_eq!(shrunk as usize % align, 0, "shrunk {size} aligned {align}");
                    Allocator.dealloc(
                        shrunk,
                        Layout::from_size_align_unchecked(size.div_ceil(2), align),
                    );
                    let z = Allocator.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed {size} aligned {align}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    Allocator.dealloc(z, layout);
                }
            }
        }
    }
}

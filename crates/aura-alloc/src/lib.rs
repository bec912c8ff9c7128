//! The Python extension's global allocator: mimalloc. Rows, frames and IR are
//! built on one thread and freed on another (the event loop and the
//! runtime's workers); glibc's per-thread arenas make those frees take a
//! lock, and mimalloc frees across threads without one.
//!
//! Most allocations ask for an alignment of 8 or less, which every
//! mimalloc block has, so they go through its malloc-style entry points.
//! Its aligned ones serve a size whose block is not a power of two by
//! over-allocating from a larger size class whenever the exact class has
//! no free block at hand: slower, and spread over more memory.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// The alignment of every block mimalloc hands out: block sizes are whole
/// machine words and pages start at least 16-byte aligned.
const BLOCK_ALIGN: usize = std::mem::size_of::<usize>();

pub struct MiMalloc;

// SAFETY: each method forwards to mimalloc, which returns a block of at
// least the requested size, or null on failure, and frees or resizes only
// blocks it returned. A block from `mi_malloc`, `mi_zalloc` or `mi_realloc`
// is aligned to `BLOCK_ALIGN`, so those serve only layouts whose alignment
// is at most that; larger alignments go to the `_aligned` entry points,
// which honour any power of two (a `Layout`'s alignment is one).
// `mi_free` takes a block from any of them.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl; the size is non-zero (`GlobalAlloc`'s contract).
        unsafe {
            match layout.align() <= BLOCK_ALIGN {
                true => mi_malloc(layout.size()),
                false => mi_malloc_aligned(layout.size(), layout.align()),
            }
            .cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            match layout.align() <= BLOCK_ALIGN {
                true => mi_zalloc(layout.size()),
                false => mi_zalloc_aligned(layout.size(), layout.align()),
            }
            .cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (`GlobalAlloc`'s contract).
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the block
        // keeps the alignment it was allocated with (see the impl).
        unsafe {
            match layout.align() <= BLOCK_ALIGN {
                true => mi_realloc(ptr.cast::<c_void>(), new_size),
                false => mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()),
            }
            .cast()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size and alignment a layout can ask for gets a block that
    /// honours both and keeps its contents across a resize.
    #[test]
    fn blocks_honour_size_alignment_and_contents() {
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1usize, 3, 8, 24, 40, 100, 1000, 70_000, 3 << 20] {
                let layout = Layout::from_size_align(size, align).expect("layout");
                // SAFETY: a non-zero size; every block is freed with its layout.
                unsafe {
                    let p = MiMalloc.alloc(layout);
                    assert!(!p.is_null() && p as usize % align == 0, "{size}/{align}");
                    p.write_bytes(0xA5, size);
                    let q = MiMalloc.realloc(p, layout, size * 2);
                    assert!(!q.is_null() && q as usize % align == 0, "{size}/{align}");
                    let kept = std::slice::from_raw_parts(q, size);
                    assert!(kept.iter().all(|b| *b == 0xA5));
                    MiMalloc.dealloc(q, Layout::from_size_align(size * 2, align).expect("layout"));
                    let z = MiMalloc.alloc_zeroed(layout);
                    assert!(!z.is_null() && z as usize % align == 0);
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|b| *b == 0));
                    MiMalloc.dealloc(z, layout);
                }
            }
        }
    }
}

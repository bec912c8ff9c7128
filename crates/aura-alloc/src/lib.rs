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

/// The alignment of every block mimalloc's malloc-style entry points hand
/// out: block sizes are whole machine words, and a page's first block
/// starts at least 16-byte aligned. (A debug build of mimalloc with its
/// guarded-precise option can return unaligned blocks; this crate builds
/// it without debug, and the test below checks the alignment.)
const BLOCK_ALIGN: usize = std::mem::size_of::<usize>();

pub struct MiMalloc;

/// A block for `layout` from `plain` when its alignment is one every block
/// has, else from `aligned`.
///
/// # Safety
/// As `GlobalAlloc::alloc`: `layout` has a non-zero size.
#[inline(always)]
unsafe fn block(
    layout: Layout,
    plain: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    // SAFETY: both are mimalloc allocation entry points, which take any
    // size and a power-of-two alignment (a `Layout`'s is one).
    unsafe {
        match layout.align() <= BLOCK_ALIGN {
            true => plain(layout.size()),
            false => aligned(layout.size(), layout.align()),
        }
        .cast()
    }
}

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
        unsafe { block(layout, mi_malloc, mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe { block(layout, mi_zalloc, mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (`GlobalAlloc`'s contract).
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`. A moved
        // block comes from `mi_malloc` (aligned to `BLOCK_ALIGN`) or, for a
        // larger alignment, from the aligned path with `layout`'s.
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

    extern "C" {
        fn mi_usable_size(p: *const c_void) -> usize;
        fn mi_good_size(size: usize) -> usize;
    }

    /// Many blocks of every small size, and some large ones, each aligned
    /// as asked and of the size class's own block size (the malloc-style
    /// path never over-allocates).
    #[test]
    fn blocks_are_word_aligned_and_of_their_own_size_class() {
        let sizes = (1..=1024).chain([4000, 70_000, 3 << 20]);
        for size in sizes {
            for align in [1usize, 2, 4, 8] {
                let layout = Layout::from_size_align(size, align).expect("layout");
                // SAFETY: a non-zero size; every block is freed with its layout.
                unsafe {
                    let blocks: Vec<*mut u8> = (0..9).map(|_| MiMalloc.alloc(layout)).collect();
                    for &p in &blocks {
                        assert!(
                            !p.is_null() && p as usize % BLOCK_ALIGN == 0,
                            "{size}/{align}"
                        );
                        assert_eq!(mi_usable_size(p.cast()), mi_good_size(size), "{size}");
                    }
                    blocks.into_iter().for_each(|p| MiMalloc.dealloc(p, layout));
                }
            }
        }
    }

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

//! The few calls below Rust's standard library that learnloop makes, each with its `unsafe` kept
//! here and justified, and a safe no-op where the platform lacks it. No workspace dependencies:
//! the store and the stages call it, it calls nothing of theirs.
#![warn(missing_docs)]

/// Hand memory the process freed back to the OS. glibc keeps freed blocks in the arena of the
/// thread that allocated them (a stage's worker threads leave GBs at 100k trades), where a later
/// phase allocating mostly on other threads or in large blocks does not reuse them: its peak
/// would sit on top of them. Called between stages and between the lesson stage's phases.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_freed_memory() {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::os::raw::c_int;
    }
    // SAFETY: malloc_trim takes no pointers; it only returns free pages of glibc's arenas.
    unsafe {
        malloc_trim(0);
    }
}

/// Hand memory the process freed back to the OS (a no-op off glibc).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed_memory() {}

/// Write every file's dirty pages to disk and wait (POSIX `sync`). Only benchmarks call it,
/// between timed phases: otherwise the kernel is still writing back the previous phase's
/// hundreds of megabytes while the next one is timed.
#[cfg(unix)]
pub fn sync_file_systems() {
    extern "C" {
        fn sync();
    }
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe {
        sync();
    }
}

/// Write every file's dirty pages to disk (a no-op off Unix).
#[cfg(not(unix))]
pub fn sync_file_systems() {}

/// Ask the CPU to bring `value`'s cache line in: a hint with no effect on results (a no-op off
/// x86-64). For loops that index large arrays through other arrays, which the hardware
/// prefetcher cannot follow.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    prefetch_address((value as *const T).cast::<i8>());
}

/// [`prefetch`] every cache line `value` spans (a wide record, or a `str`): for a loop that reads
/// records in an order unrelated to where they lie.
#[inline(always)]
pub fn prefetch_all<T: ?Sized>(value: &T) {
    const LINE: usize = 64;
    let start = (value as *const T).cast::<i8>();
    let len = std::mem::size_of_val(value);
    if len == 0 {
        return;
    }
    // From the line holding the first byte to the one holding the last.
    let first_line = start.wrapping_sub(start as usize % LINE);
    let end = start.wrapping_add(len);
    let mut line = first_line;
    while (line as usize) < (end as usize) {
        prefetch_address(line);
        line = line.wrapping_add(LINE);
    }
}

#[inline(always)]
fn prefetch_address(address: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and reads nothing the program sees, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// A zeroed region of `bytes` (rounded up to whole 2 MiB huge pages) for the rest of the process,
/// 2 MiB aligned, which the kernel is asked to back with transparent huge pages: touching it then
/// costs one fault per 2 MiB instead of one per 4 KiB page, which on this project's virtual
/// machines is most of the cost of filling fresh memory. `None` if the mapping fails, and on
/// platforms where it is not implemented. Nothing is resident until touched; the region is never
/// unmapped (its address is handed to a library that keeps it).
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub fn huge_page_region(bytes: usize) -> Option<&'static mut [u8]> {
    use std::os::raw::{c_int, c_long, c_void};
    extern "C" {
        fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: c_int,
            flags: c_int,
            fd: c_int,
            offset: c_long,
        ) -> *mut c_void;
        fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    }
    // The values of x86-64 and aarch64 Linux (other architectures differ).
    const PROT_READ: c_int = 1;
    const PROT_WRITE: c_int = 2;
    const MAP_PRIVATE: c_int = 0x02;
    const MAP_ANONYMOUS: c_int = 0x20;
    const MADV_HUGEPAGE: c_int = 14;
    const HUGE_PAGE: usize = 2 << 20;
    let len = bytes.checked_next_multiple_of(HUGE_PAGE)?;
    if len == 0 {
        return None;
    }
    // One huge page more than asked, so that an aligned start exists inside the mapping (mmap
    // only promises 4 KiB alignment).
    let mapped = len.checked_add(HUGE_PAGE)?;
    // SAFETY: an anonymous private mapping at an address of the kernel's choice touches no
    // existing memory; MAP_FAILED is checked. The advice only changes how pages are backed.
    unsafe {
        let at = mmap(
            std::ptr::null_mut(),
            mapped,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            -1,
            0,
        );
        if at as isize == -1 {
            return None;
        }
        let aligned = at
            .cast::<u8>()
            .add((HUGE_PAGE - at as usize % HUGE_PAGE) % HUGE_PAGE);
        // Best effort: without huge pages the region works the same, one fault per 4 KiB.
        let _ = madvise(aligned.cast(), len, MADV_HUGEPAGE);
        // `aligned..aligned + len` lies inside the mapping, which is readable, writable, zeroed
        // and never unmapped, so a `'static` slice over it is sound; each call maps anew, so it
        // is not aliased.
        Some(std::slice::from_raw_parts_mut(aligned, len))
    }
}

/// Not implemented here: `None`.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub fn huge_page_region(_bytes: usize) -> Option<&'static mut [u8]> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hints_change_nothing_the_program_sees() {
        let values: Vec<u64> = (0..1_000).collect();
        let before = values.clone();
        for v in &values {
            prefetch(v);
        }
        // Whole ranges: a wide slice, a text, an empty one, and a value narrower than a line.
        prefetch_all(values.as_slice());
        prefetch_all("a text of a few cache lines, ".repeat(10).as_str());
        prefetch_all("");
        prefetch_all(&values[0]);
        prefetch_all(&values[1..]);
        release_freed_memory();
        sync_file_systems();
        assert_eq!(values, before);
    }

    #[test]
    fn a_huge_page_region_is_aligned_zeroed_and_writable() {
        let Some(region) = huge_page_region(3 << 20) else {
            return; // not implemented on this platform
        };
        assert_eq!(region.len(), 4 << 20, "whole 2 MiB pages");
        assert_eq!(region.as_ptr() as usize % (2 << 20), 0);
        assert!(region.iter().step_by(4096).all(|&b| b == 0));
        region[0] = 1;
        let last = region.len() - 1;
        region[last] = 2;
        assert_eq!((region[0], region[last]), (1, 2));
    }
}

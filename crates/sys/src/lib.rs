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
}

//! Giving freed heap memory back to the kernel after a flood of pending requests.
//!
//! glibc's malloc keeps what a burst of allocations freed inside its arenas: it returns
//! memory to the kernel only from the top of each heap, and only past a threshold, so
//! requests freed in the middle of a heap (64 KiB commands among longer-lived connection
//! buffers) leave berthd's RSS at its peak after they expire. `malloc_trim(0)` releases
//! every whole free page of every arena. Called only after a sweep freed at least
//! [`TRIM_AFTER_BYTES`], which ordinary use (URLs used at once) never does.
//!
//! This module is the crate's one use of `unsafe`: the foreign call itself.
#![allow(unsafe_code)]

/// Bytes a sweep must free before the allocator is asked to return free pages.
pub(crate) const TRIM_AFTER_BYTES: usize = 1 << 20;

/// Asks the allocator to return its free pages to the kernel (glibc only; elsewhere the
/// allocator's own policy applies and this does nothing).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and touches only the allocator's own free
    // lists, under each arena's lock; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Bytes the allocator holds free in its arenas (glibc's `mallinfo2().fordblks`), the pages
/// a trim already returned included: it grows with what the program frees and shrinks as
/// that is reused, whatever the resident size does. `None` where it is not known (not
/// glibc).
pub fn free_heap_bytes() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments and returns a plain struct by value; it only
        // reads the allocator's own statistics, under each arena's lock.
        let info = unsafe { libc::mallinfo2() };
        Some(info.fordblks as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// Fixes glibc's malloc thresholds: allocations of `mmap_bytes` or more get their own
/// mapping, and a heap's free top beyond `trim_bytes` is given back to the kernel as soon
/// as a free makes it so. By default glibc raises both (up to 32 and 64 MiB) after the
/// first large block is freed, and the free top of a second arena is something
/// `malloc_trim` does not return. Called once at start, before the runtime's threads exist
/// (glibc only; elsewhere a no-op).
pub fn fix_malloc_thresholds(mmap_bytes: i32, trim_bytes: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two integers and changes only the allocator's own settings.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, mmap_bytes);
        libc::mallopt(libc::M_TRIM_THRESHOLD, trim_bytes);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = (mmap_bytes, trim_bytes);
}

/// Caps glibc's malloc at `arenas` arenas. By default it makes up to eight per core, one
/// for each thread that allocates while the others are busy; every arena keeps what its
/// threads freed, fragmented, so a burst on many threads (blocking pool included) leaves
/// the resident size high long after. Called once at start, before the runtime's threads
/// exist (glibc only; elsewhere a no-op).
pub fn limit_arenas(arenas: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two integers and changes only the allocator's own settings.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

//! How the process uses glibc's malloc: set once at start, so resident memory follows what the
//! service holds rather than what it once held. Only on glibc; elsewhere these do nothing.
//!
//! - The mmap threshold is pinned at [`MMAP_THRESHOLD`]. Left alone, glibc raises it to the size
//!   of any mmapped block that is freed, up to 32 MiB, after which large blocks (an argon2
//!   buffer of 19 MiB, the start-up's OpenAPI and Swagger UI text) come from the arenas and stay
//!   resident there after they are freed. Pinned, every block of 1 MiB or more is mapped on its
//!   own and unmapped when freed.
//! - At most [`MAX_ARENAS`] arenas instead of eight per core: the service runs on a few
//!   threads at a time, and each extra arena keeps its own freed memory.
//! - [`trim`] hands freed pages inside the arenas back to the system; it runs after start-up
//!   and from the housekeeping tick.

/// Blocks at least this large are mapped on their own (and unmapped when freed).
pub const MMAP_THRESHOLD: i32 = 1024 * 1024;

/// The most malloc arenas the process uses.
pub const MAX_ARENAS: i32 = 2;

/// Sets the thresholds; call first thing in `main`, before other threads start.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any other thread
    // exists, and an unknown or refused setting just returns 0.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, MAX_ARENAS);
    }
}

/// Returns the freed memory of every arena to the system (what `free` keeps for reuse).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's own locks and releases only free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

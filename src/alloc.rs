//! How the process uses glibc's malloc: set once at start, so resident memory follows what the
//! service holds rather than what it once held. Only on glibc; elsewhere these do nothing.
//!
//! - The mmap threshold is pinned at [`MMAP_THRESHOLD`]. Left alone, glibc raises it to the size
//!   of any mmapped block that is freed, up to 32 MiB, after which large blocks (an argon2
//!   buffer of 19 MiB, the start-up's OpenAPI and Swagger UI text) come from the arenas and stay
//!   resident there after they are freed. Pinned, every block of 1 MiB or more is mapped on its
//!   own and unmapped when freed.
//! - One malloc arena per two cores instead of eight per core (see [`max_arenas`]): each arena
//!   keeps its own freed memory, and under the load run's bookings a second arena on two cores
//!   held 2–3 MB more at the peak with no measurable gain in speed. Small blocks are served
//!   from glibc's per-thread caches without taking the arena's lock anyway.
//! - [`trim`] hands freed pages inside the arenas back to the system; it runs after start-up
//!   and from the housekeeping tick.

/// Blocks at least this large are mapped on their own (and unmapped when freed).
pub const MMAP_THRESHOLD: i32 = 1024 * 1024;

/// The most malloc arenas the process uses: one per two cores, at least one.
pub fn max_arenas() -> i32 {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    i32::try_from(cores / 2).unwrap_or(i32::MAX).max(1)
}

/// Sets the thresholds; call first thing in `main`, before other threads start.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let arenas = max_arenas();
        // SAFETY: mallopt only changes allocator parameters; it is called before any other
        // thread exists, and an unknown or refused setting just returns 0.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
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

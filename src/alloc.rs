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
//! - [`trim`] hands freed pages inside the arenas back to the system; it runs with
//!   [`release_code`], below.
//! - [`release_code`] unmaps the pages of the program's own code and constants, which would
//!   otherwise stay mapped once anything ran through them: start-up (migrations, the demo
//!   clinic, the OpenAPI document and the routes) alone touches most of the 16 MB of code.
//!   The pages stay in the kernel's page cache, and those the service runs again come back
//!   at their next use (a minor fault, no disk read while the cache holds them). Only pages
//!   that are still the file's own are dropped (see [`release_code`]). It runs from
//!   `startup`: after start-up, a second or two after requests stop, and every minute, so
//!   resident memory comes down to what the service uses while idle.

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

/// Unmaps the executable's own code and constants (its read-only segments) with
/// `MADV_DONTNEED`, page by page only where the page is the file's, unchanged: a page the
/// process or the loader wrote (a writable or relocated segment, text relocations, a
/// debugger's breakpoint, code copied to anonymous memory) is never dropped, since dropping
/// it would bring the file's bytes back in its place. `/proc/self/pagemap` tells which pages
/// are file pages; the pages left unmapped stay in the page cache.
pub fn release_code() {
    #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
    {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        // SAFETY: the callback only reads the program headers the loader hands it and pushes
        // to the vector passed as its data, which outlives the call.
        unsafe {
            libc::dl_iterate_phdr(
                Some(read_only_segments),
                (&raw mut ranges).cast::<libc::c_void>(),
            );
        }
        let Ok(pagemap) = std::fs::File::open("/proc/self/pagemap") else {
            return;
        };
        for (start, end) in ranges {
            drop_file_pages(&pagemap, start, end);
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// Collects (into the `Vec<(usize, usize)>` behind `data`) the page-aligned address ranges of
/// the program's read-only segments, less any page they share with a writable segment or
/// the relocated read-only part (`PT_GNU_RELRO`).
#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
unsafe extern "C" fn read_only_segments(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: the loader passes a valid entry whose `dlpi_phdr` points at `dlpi_phnum`
    // headers, and `data` is the vector `release_code` passed.
    let (base, headers, ranges) = unsafe {
        let info = &*info;
        (
            info.dlpi_addr as usize,
            std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)),
            &mut *data.cast::<Vec<(usize, usize)>>(),
        )
    };
    let page = page_size();
    let written: Vec<(usize, usize)> = headers
        .iter()
        .filter(|h| {
            h.p_type == libc::PT_GNU_RELRO
                || (h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W != 0)
        })
        .map(|h| {
            let start = base + h.p_vaddr as usize;
            let end = start + h.p_memsz as usize;
            (start / page * page, end.div_ceil(page) * page)
        })
        .collect();
    for header in headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W == 0)
    {
        // Only the part backed by the file; whole pages inside it.
        let start = base + header.p_vaddr as usize;
        let end = start + header.p_filesz as usize;
        let (mut start, mut end) = (start.div_ceil(page) * page, end / page * page);
        for &(w_start, w_end) in &written {
            if w_start < end && start < w_end {
                // Keep only the part before or after the written range (segments do not nest).
                if w_start > start {
                    end = end.min(w_start);
                } else {
                    start = start.max(w_end);
                }
            }
        }
        if start < end {
            ranges.push((start, end));
        }
    }
    // The first entry is the program itself; the shared libraries are left alone.
    1
}

/// Drops the pages of `start..end` that are the file's own (pagemap bit 61) or not there at
/// all, in runs; a page present or swapped as anonymous memory breaks the run and stays.
#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
fn drop_file_pages(pagemap: &std::fs::File, start: usize, end: usize) {
    use std::os::unix::fs::FileExt;

    let page = page_size();
    let count = (end - start) / page;
    let mut entries = vec![0u8; count * 8];
    if pagemap
        .read_exact_at(&mut entries, (start / page * 8) as u64)
        .is_err()
    {
        return;
    }
    let droppable = |i: usize| {
        let mut entry = [0u8; 8];
        entry.copy_from_slice(&entries[i * 8..i * 8 + 8]);
        let entry = u64::from_le_bytes(entry);
        // A file page, or neither present nor swapped.
        entry >> 61 & 1 == 1 || entry >> 62 == 0
    };
    let mut run = None;
    for i in 0..=count {
        match (i < count && droppable(i), run) {
            (true, None) => run = Some(i),
            (false, Some(first)) => {
                // SAFETY: these pages lie in a read-only segment of this program and hold
                // exactly the file's bytes, which the next access reads back.
                unsafe {
                    libc::madvise(
                        (start + first * page) as *mut libc::c_void,
                        (i - first) * page,
                        libc::MADV_DONTNEED,
                    );
                }
                run = None;
            }
            _ => {}
        }
    }
}

#[cfg(all(
    test,
    target_os = "linux",
    target_env = "gnu",
    target_pointer_width = "64"
))]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;

    /// Constants only this test reads, in the program's read-only segment: 4 MiB, so that
    /// the 2 MiB-aligned block inside it holds nothing else (the kernel maps a faulting
    /// page's neighbours, up to a large folio, but never past such a block).
    static PROBE: [u8; 4 << 20] = [7; 4 << 20];

    /// Whether the page holding `address` is mapped in this process (`/proc/self/pagemap`).
    fn mapped(address: usize) -> bool {
        let pagemap = std::fs::File::open("/proc/self/pagemap").expect("pagemap");
        let mut entry = [0u8; 8];
        pagemap
            .read_exact_at(&mut entry, (address / page_size() * 8) as u64)
            .expect("entry");
        u64::from_le_bytes(entry) >> 63 == 1
    }

    #[test]
    fn a_page_the_process_wrote_is_never_dropped() {
        use std::io::Write;

        let page = page_size();
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(&vec![1u8; 2 * page]).expect("write");
        // SAFETY: a fresh private mapping of a file this test owns, unmapped at the end.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let bytes = base.cast::<u8>();
        // SAFETY: both pages lie inside the mapping.
        unsafe {
            assert_eq!(std::ptr::read_volatile(bytes), 1);
            std::ptr::write_volatile(bytes.add(page), 9);
        }
        assert!(mapped(base as usize) && mapped(base as usize + page));

        let pagemap = std::fs::File::open("/proc/self/pagemap").expect("pagemap");
        drop_file_pages(&pagemap, base as usize, base as usize + 2 * page);

        // The page only read is dropped; the written one (now the process's own copy) stays,
        // with what was written.
        assert!(!mapped(base as usize));
        assert!(mapped(base as usize + page));
        // SAFETY: as above; then the mapping is released.
        unsafe {
            assert_eq!(std::ptr::read_volatile(bytes), 1);
            assert_eq!(std::ptr::read_volatile(bytes.add(page)), 9);
            libc::munmap(base, 2 * page);
        }
    }

    #[test]
    fn released_constants_leave_memory_and_come_back_intact() {
        let start = PROBE.as_ptr() as usize;
        let block = start.div_ceil(2 << 20) * (2 << 20);
        let page = block + (1 << 20);
        let sum = || -> u64 {
            (page - start..page - start + page_size())
                .map(|i| u64::from(std::hint::black_box(PROBE[i])))
                .sum()
        };
        let expected = 7 * page_size() as u64;
        assert_eq!(sum(), expected);
        assert!(mapped(page));

        release_code();

        assert!(!mapped(page), "the probe's page is still mapped");
        // Pages the loader wrote (vtables, relocated pointers) are intact.
        let shown: Box<dyn std::fmt::Display> = Box::new(42);
        assert_eq!(shown.to_string(), "42");
        // Read again, the constants are as they were.
        assert_eq!(sum(), expected);
        assert!(mapped(page));
    }
}

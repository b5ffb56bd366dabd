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
//! - [`release_code`] unmaps the pages of the program's own code and constants, which would
//!   otherwise stay mapped once anything ran through them: start-up (migrations, the demo
//!   clinic, the OpenAPI document and the routes) alone touches most of the 16 MB of code.
//!   The pages stay in the kernel's page cache, and those the service runs again come back
//!   at their next use (a minor fault, no disk read while the cache holds them). It runs from
//!   the housekeeping tick, so resident memory comes down to what the service actually uses
//!   a minute after start-up or a burst of work.

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

/// Unmaps the read-only segments of the executable (its code and constants) with
/// `MADV_DONTNEED`. Pages the process writes are never touched: the writable segments and the
/// part made read-only after relocation (`PT_GNU_RELRO`) are left out, and a page shared with
/// them at a segment's edge too, so nothing but clean file-backed pages is dropped.
pub fn release_code() {
    #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
    // SAFETY: the callback only reads the program headers the loader hands it, and madvise
    // only drops pages that are identical to the executable's file.
    unsafe {
        libc::dl_iterate_phdr(Some(release_program_segments), std::ptr::null_mut());
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
unsafe extern "C" fn release_program_segments(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    _data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: the loader passes a valid entry whose `dlpi_phdr` points at `dlpi_phnum` headers.
    let (base, headers) = unsafe {
        let info = &*info;
        (
            info.dlpi_addr as usize,
            std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)),
        )
    };
    let page = 4096usize.max(
        // SAFETY: sysconf has no preconditions.
        usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096),
    );
    let span = |h: &libc::Elf64_Phdr| {
        let start = base + h.p_vaddr as usize;
        (start, start + h.p_memsz as usize)
    };
    // Pages the process wrote to: writable segments and the relocated, then read-only part.
    let written: Vec<(usize, usize)> = headers
        .iter()
        .filter(|h| {
            h.p_type == libc::PT_GNU_RELRO
                || (h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W != 0)
        })
        .map(|h| {
            let (start, end) = span(h);
            (start / page * page, end.div_ceil(page) * page)
        })
        .collect();
    for header in headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W == 0)
    {
        let (start, end) = span(header);
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
            // SAFETY: the range lies inside a read-only, file-backed segment of this program.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
    // The first entry is the program itself; the shared libraries are left alone.
    1
}

#[cfg(all(
    test,
    target_os = "linux",
    target_env = "gnu",
    target_pointer_width = "64"
))]
mod tests {
    use std::io::{Read, Seek, SeekFrom};

    use super::*;

    /// Constants only this test reads, in the program's read-only segment.
    static PROBE: [u8; 256 * 1024] = [7; 256 * 1024];

    /// Whether the page holding `address` is mapped in this process (`/proc/self/pagemap`).
    fn mapped(address: usize) -> bool {
        let mut pagemap = std::fs::File::open("/proc/self/pagemap").expect("pagemap");
        pagemap
            .seek(SeekFrom::Start((address / 4096 * 8) as u64))
            .expect("seek");
        let mut entry = [0u8; 8];
        pagemap.read_exact(&mut entry).expect("entry");
        u64::from_le_bytes(entry) >> 63 == 1
    }

    /// Resident kB of the executable's relocated read-only data (vtables and other pointers
    /// written at load time, which the program cannot run without).
    fn relocated_kb() -> u64 {
        let exe = std::fs::read_link("/proc/self/exe").expect("exe");
        let exe = exe.to_string_lossy().into_owned();
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut ours = false;
        let mut total = 0;
        for line in smaps.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 5 && fields[0].contains('-') && fields[1].len() == 4 {
                ours = fields[1] == "r--p" && fields.len() >= 6 && fields[5..].join(" ") == exe;
            } else if ours && fields.first() == Some(&"Anonymous:") {
                total += fields[1].parse::<u64>().unwrap_or(0);
            }
        }
        total
    }

    #[test]
    fn released_constants_leave_memory_and_come_back_intact() {
        // A page in the middle of the probe: the kernel maps neighbours of a faulting page
        // only within an aligned 64 kB window, and this one's whole window is the probe's.
        let start = PROBE.as_ptr() as usize;
        let page = (start + PROBE.len() / 2) / 4096 * 4096;
        let sum = || -> u64 {
            (page - start..page - start + 4096)
                .map(|i| u64::from(std::hint::black_box(PROBE[i])))
                .sum()
        };
        assert_eq!(sum(), 7 * 4096);
        assert!(mapped(page));
        let relocated = relocated_kb();

        release_code();

        assert!(!mapped(page), "the probe's page is still mapped");
        // Pages the program wrote are never dropped: vtables and statics still work.
        assert_eq!(relocated_kb(), relocated);
        let shown: Box<dyn std::fmt::Display> = Box::new(42);
        assert_eq!(shown.to_string(), "42");
        // Read again, the constants are as they were.
        assert_eq!(sum(), 7 * 4096);
        assert!(mapped(page));
    }
}

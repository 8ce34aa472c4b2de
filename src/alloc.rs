//! The binary's global allocator: jemalloc for every personality of `k1s` except the pod shim
//! (`k1s __shim ...`), which uses the C library's malloc.
//!
//! Why two: jemalloc keeps the server's RSS lower and its allocations faster (many threads, bursts
//! of JSON), but in a small, single-threaded, long-lived shim its arenas and metadata cost
//! ≈ 0.1–0.2 MB more Pss than glibc's one main arena, and there is one shim per pod
//! (BENCHMARKS.md, "Pod shim allocator").
//!
//! Invariants:
//! - The choice is made once, by the first allocation of the process, before any pointer exists,
//!   and never changes: every block is freed or resized by the allocator that made it. A forked
//!   child inherits the choice with the heap.
//! - Making the choice allocates nothing: it reads `/proc/self/cmdline` into a stack buffer with
//!   raw `open`/`read`/`close`. The first allocation happens on the main thread before any other
//!   thread exists; were two threads ever to race, both read the same command line and agree.
//! - If the command line cannot be read, the process is not treated as a shim (jemalloc).
//! - `K1S_SHIM_ALLOCATOR=jemalloc` in a shim's environment keeps jemalloc there too, so the two can
//!   be compared (`K1S_SHIM_ALLOCATOR=jemalloc k1s bench runtime ...`); read with `getenv`, which
//!   does not allocate either.
//! - jemalloc starts with [`JEMALLOC_CONF`] (exported as the symbol jemalloc reads at its
//!   initialisation); `_RJEM_MALLOC_CONF` in the environment is read after it and wins, so any
//!   option can still be compared by hand. The shim never initialises jemalloc, so the string
//!   does not touch it.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

use tikv_jemallocator::Jemalloc;

/// jemalloc's options for this binary, before `_RJEM_MALLOC_CONF`.
///
/// Why each (measured with `k1s bench pods`, BENCHMARKS.md "Server memory with 100 pods"):
/// - `narenas:2`: one arena a core instead of jemalloc's four. The server's threads are mostly
///   idle (tokio's blocking pool, one exit waiter a container), and every arena keeps its own
///   partly used pages and its own freed pages.
/// - `dirty_decay_ms:1000` (jemalloc: 10 s): freed pages go back to the kernel within about a
///   second of the burst that freed them, not ten; a longer window only saves page faults
///   when the same amount is allocated again within it. (Purged pages are dropped with
///   `MADV_DONTNEED` straight away: jemalloc 5.3's `muzzy_decay_ms` is already 0.)
/// - `tcache:false`: no per-thread caches. With 100 pods the server has ≈ 200 threads (one exit
///   waiter a container, tokio's blocking pool grown by the burst), and each thread's cache kept
///   ≈ 180 KB of freed blocks that no other thread could reuse: 36 MB of the 76 MB anonymous.
///   With the three options the bench gives 74.1 MiB with 100 pods instead of 107 MiB.
pub const JEMALLOC_CONF: &std::ffi::CStr = c"narenas:2,dirty_decay_ms:1000,tcache:false";

/// The symbol jemalloc (as built by tikv-jemalloc-sys, prefixed `_rjem_`) reads its
/// compile-time options from; jemalloc declares it weak so that a program can define it.
// SAFETY: jemalloc reads this symbol as a `const char *` (an `Option<&c_char>` has that layout,
// `None` being NULL); it points into a NUL-terminated literal that lives for the whole program,
// and nothing else defines the symbol.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: Option<&'static std::ffi::c_char> =
    // SAFETY: `as_ptr` of a `'static` C string literal is valid for the whole program.
    Some(unsafe { &*JEMALLOC_CONF.as_ptr() });

const UNDECIDED: u8 = 0;
const JEMALLOC: u8 = 1;
const SYSTEM: u8 = 2;

/// The argument that makes `k1s` a pod shim (dispatched first thing in `main`).
const SHIM_ARG: &[u8] = b"__shim";
/// Enough for `argv[0]` (at most `PATH_MAX`) and `argv[1]`.
const CMDLINE_BUF: usize = 4096 + 64;

/// jemalloc or the system allocator, chosen by the process's first allocation.
pub struct K1sAlloc {
    choice: AtomicU8,
}

impl K1sAlloc {
    /// An allocator that has not chosen yet.
    pub const fn new() -> Self {
        K1sAlloc {
            choice: AtomicU8::new(UNDECIDED),
        }
    }

    /// Whether this process uses the system allocator (choosing on the first call).
    #[inline]
    fn system(&self) -> bool {
        match self.choice.load(Ordering::Relaxed) {
            JEMALLOC => false,
            SYSTEM => true,
            _ => self.choose(),
        }
    }

    #[cold]
    fn choose(&self) -> bool {
        let want = if is_shim() && !jemalloc_asked() {
            SYSTEM
        } else {
            JEMALLOC
        };
        match self
            .choice
            .compare_exchange(UNDECIDED, want, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => want == SYSTEM,
            Err(chosen) => chosen == SYSTEM,
        }
    }
}

impl Default for K1sAlloc {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `argv[1]` is `__shim`, from `/proc/self/cmdline` (NUL-separated arguments).
fn is_shim() -> bool {
    let mut buf = [0u8; CMDLINE_BUF];
    let len = read_cmdline(&mut buf);
    let mut args = buf[..len].split(|&b| b == 0);
    args.next();
    args.next() == Some(SHIM_ARG)
}

/// Whether `K1S_SHIM_ALLOCATOR=jemalloc` is set.
fn jemalloc_asked() -> bool {
    // SAFETY: the name is a NUL-terminated literal; no thread can be changing the environment
    // yet (this runs at the first allocation), and the value is only read before returning.
    unsafe {
        let value = libc::getenv(c"K1S_SHIM_ALLOCATOR".as_ptr());
        !value.is_null() && std::ffi::CStr::from_ptr(value).to_bytes() == b"jemalloc"
    }
}

/// Reads as much of `/proc/self/cmdline` as fits into `buf`; 0 on any error.
fn read_cmdline(buf: &mut [u8]) -> usize {
    // SAFETY: the path is a NUL-terminated literal; open has no other preconditions.
    let fd = unsafe {
        libc::open(
            c"/proc/self/cmdline".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return 0;
    }
    let mut len = 0;
    while len < buf.len() {
        let rest = &mut buf[len..];
        // SAFETY: `rest` is valid for writes of `rest.len()` bytes, and `fd` is open.
        let n = unsafe { libc::read(fd, rest.as_mut_ptr().cast(), rest.len()) };
        match n {
            n if n > 0 => len += n as usize,
            0 => break,
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => {
                len = 0;
                break;
            }
        }
    }
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    len
}

// SAFETY: every method forwards to one of two sound allocators, and the same one for the whole
// life of the process (see the module invariants), so each pointer goes back to its maker.
unsafe impl GlobalAlloc for K1sAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe {
            if self.system() {
                System.alloc(layout)
            } else {
                Jemalloc.alloc(layout)
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe {
            if self.system() {
                System.alloc_zeroed(layout)
            } else {
                Jemalloc.alloc_zeroed(layout)
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from the same allocator (the choice never changes).
        unsafe {
            if self.system() {
                System.dealloc(ptr, layout)
            } else {
                Jemalloc.dealloc(ptr, layout)
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from the same allocator (the choice never changes).
        unsafe {
            if self.system() {
                System.realloc(ptr, layout, new_size)
            } else {
                Jemalloc.realloc(ptr, layout, new_size)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_binary_is_not_a_shim() {
        assert!(!is_shim());
        let mut buf = [0u8; CMDLINE_BUF];
        let len = read_cmdline(&mut buf);
        // argv[0] is this test binary's path.
        let exe = std::env::args_os().next().unwrap();
        assert!(buf[..len].starts_with(exe.as_encoded_bytes()));
    }

    /// The exported options reach jemalloc (this test binary uses the same global allocator).
    #[test]
    fn jemalloc_starts_with_the_built_in_options() {
        // Allocate through the global allocator first so that jemalloc is initialised.
        drop(vec![0u8; 64]);
        assert!(
            std::env::var_os("_RJEM_MALLOC_CONF").is_none(),
            "_RJEM_MALLOC_CONF overrides the built-in options: unset it to run this test"
        );
        let narenas = tikv_jemalloc_ctl::opt::narenas::read().unwrap();
        let conf = JEMALLOC_CONF.to_str().unwrap();
        assert!(conf.contains(&format!("narenas:{narenas}")), "{conf}");
        // SAFETY: `opt.dirty_decay_ms` is an `ssize_t` in jemalloc.
        let decay = unsafe { tikv_jemalloc_ctl::raw::read::<isize>(b"opt.dirty_decay_ms\0") };
        assert!(
            conf.contains(&format!("dirty_decay_ms:{}", decay.unwrap())),
            "{conf}"
        );
        let tcache = tikv_jemalloc_ctl::opt::tcache::read().unwrap();
        assert!(conf.contains(&format!("tcache:{tcache}")), "{conf}");
    }
}

//! Links the `k1s` executable as a fixed-address (non-PIE) executable.
//!
//! Why: the same binary is re-executed once per pod as its shim (`k1s __shim`). As a PIE, the
//! dynamic loader applies ~1 MB of `R_X86_64_RELATIVE` relocations at every start, which turns the
//! pages of `.data.rel.ro` and `.got` it writes into private dirty memory in every shim
//! (BENCHMARKS.md, "Pod shim memory"). Linked at a fixed address, those pages are resolved at link
//! time, stay clean and are shared with the page cache by every k1s process.
//!
//! The objects stay position-independent (rustc's default); only the final link changes, and only
//! for the binaries of this package (`rustc-link-arg-bins`), not for tests or the library crates.
//! The price is ASLR for the executable's own image (libraries, heap and stacks stay randomised).
//! `K1S_LINK_PIE=1` at build time keeps the PIE link, to measure the difference.
//!
//! It also keeps `.text.hot.*` sections together, for the same shims (see `main` below).

fn main() {
    println!("cargo:rerun-if-env-changed=K1S_LINK_PIE");
    println!("cargo:rerun-if-changed=build.rs");
    let pie = std::env::var_os("K1S_LINK_PIE").is_some_and(|v| v == "1");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if !pie && target_os == "linux" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    if target_os == "linux" {
        // Keeps `.text.hot.*` input sections together in one `.text.hot` output section (GNU ld
        // does by default, lld only with this), so the pod shim's steady-state loop, placed in
        // `.text.hot.k1s_shim` (runtime/src/container/shim/mod.rs), spans a few pages.
        println!("cargo:rustc-link-arg-bins=-Wl,-z,keep-text-section-prefix");
    }
}

//! Memory settings of the binaries' allocator (mimalloc).
//!
//! By default mimalloc keeps freed pages committed for a second (its purge delay), commits
//! arena memory eagerly and backs its arena with transparent huge pages, so the process's
//! resident set follows its past peak, in 2 MiB steps, rather than what it holds. [`tune`]
//! makes it return freed pages at once, commit arena memory as it is used, and turns
//! transparent huge pages off for the process. Measured end to end on embedded backends
//! (BENCHMARKS.md, pipeline_bench): peak RSS 537 → 355 MiB from the first two at about the same
//! rate, then 306–312 → 224–239 MiB from the third, again at the same rate.

use std::os::raw::{c_int, c_long};

/// `mi_option_arena_eager_commit` in the bundled mimalloc v3 (`mi_option_e`, in order).
const ARENA_EAGER_COMMIT: c_int = 4;
/// `mi_option_purge_delay` in the bundled mimalloc v3.
const PURGE_DELAY: c_int = 15;
/// `mi_option_allow_thp` in the bundled mimalloc v3.
const ALLOW_THP: c_int = 43;

/// Reads a mimalloc option.
#[cfg(test)]
#[allow(unsafe_code)]
fn option_get(option: c_int) -> c_long {
    // SAFETY: mi_option_get reads one entry of mimalloc's option table; an id below
    // `_mi_option_last` (every id above is) is always valid.
    unsafe { libmimalloc_sys::mi_option_get(option) }
}

/// Sets a mimalloc option.
#[allow(unsafe_code)]
fn option_set(option: c_int, value: c_long) {
    // SAFETY: as for `option_get`; options are plain values mimalloc reads when it decides,
    // so setting one while other threads allocate is allowed.
    unsafe { libmimalloc_sys::mi_option_set(option, value) }
}

/// Returns freed memory to the OS promptly and keeps the resident set close to what the heap
/// holds; call first thing in `main`. An option the user set through the environment
/// (`MIMALLOC_PURGE_DELAY`, `MIMALLOC_ARENA_EAGER_COMMIT`, `MIMALLOC_ALLOW_THP`) is kept.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        option_set(PURGE_DELAY, 0);
    }
    if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
        option_set(ARENA_EAGER_COMMIT, 0);
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        option_set(ALLOW_THP, 0);
        disable_transparent_huge_pages();
    }
}

/// Turns transparent huge pages off for this process, as mimalloc does at start-up when
/// `MIMALLOC_ALLOW_THP=0`: its arena was reserved (and advised for huge pages) before `main`,
/// so the option alone comes too late. With huge pages a partly used 2 MiB page stays resident
/// whole, and the resident set grows far past what the heap holds.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes a flag of this
    // process; a kernel without it returns an error, which leaves things as they were.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

#[cfg(not(target_os = "linux"))]
fn disable_transparent_huge_pages() {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the option ids: a mimalloc update that renumbered its options would make
    /// `tune` change other settings. The defaults identify the options. (One test: `tune`
    /// changes process-wide settings the default checks read.)
    #[test]
    fn option_ids_name_the_options_tune_means() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(
                option_get(PURGE_DELAY),
                1000,
                "purge_delay's default is 1000 ms"
            );
        }
        if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
            assert_eq!(
                option_get(ARENA_EAGER_COMMIT),
                2,
                "arena_eager_commit's default is 2 (eager on overcommit systems)"
            );
        }
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            assert_eq!(
                option_get(ALLOW_THP),
                1,
                "allow_thp's default is 1 on Linux"
            );
        }
        tune();
        assert_eq!(option_get(PURGE_DELAY), 0);
        assert_eq!(option_get(ARENA_EAGER_COMMIT), 0);
        assert_eq!(option_get(ALLOW_THP), 0);
        #[cfg(target_os = "linux")]
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            // SAFETY: PR_GET_THP_DISABLE reads a flag of this process.
            #[allow(unsafe_code)]
            let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
            assert_eq!(disabled, 1, "transparent huge pages off for the process");
        }
    }
}

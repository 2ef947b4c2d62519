//! Memory settings of the binaries' allocator (mimalloc).
//!
//! By default mimalloc keeps freed pages committed for a second (its purge delay) and commits
//! arena memory eagerly, so the process's resident set follows its past peak rather than what
//! it holds. [`tune`] makes it return freed pages at once and commit arena memory as it is
//! used. Measured end to end on embedded backends (BENCHMARKS.md, pipeline_bench): peak RSS
//! 537 → 355 MiB at about the same rate.

use std::os::raw::{c_int, c_long};

/// `mi_option_arena_eager_commit` in the bundled mimalloc v3 (`mi_option_e`, in order).
const ARENA_EAGER_COMMIT: c_int = 4;
/// `mi_option_purge_delay` in the bundled mimalloc v3.
const PURGE_DELAY: c_int = 15;

/// Reads a mimalloc option.
#[cfg(test)]
#[allow(unsafe_code)]
fn option_get(option: c_int) -> c_long {
    // SAFETY: mi_option_get reads one entry of mimalloc's option table; an id below
    // `_mi_option_last` (both ids above are) is always valid.
    unsafe { libmimalloc_sys::mi_option_get(option) }
}

/// Sets a mimalloc option.
#[allow(unsafe_code)]
fn option_set(option: c_int, value: c_long) {
    // SAFETY: as for `option_get`; options are plain values mimalloc reads when it decides,
    // so setting one while other threads allocate is allowed.
    unsafe { libmimalloc_sys::mi_option_set(option, value) }
}

/// Returns freed memory to the OS promptly; call first thing in `main`. An option the user set
/// through the environment (`MIMALLOC_PURGE_DELAY`, `MIMALLOC_ARENA_EAGER_COMMIT`) is kept.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        option_set(PURGE_DELAY, 0);
    }
    if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
        option_set(ARENA_EAGER_COMMIT, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the option ids: a mimalloc update that renumbered its options would make
    /// `tune` change other settings. The defaults identify the options.
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
        tune();
        assert_eq!(option_get(PURGE_DELAY), 0);
        assert_eq!(option_get(ARENA_EAGER_COMMIT), 0);
    }
}

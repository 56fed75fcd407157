//! What berth's tests share: skipping a test that cannot run on this host (not root, a tool
//! missing), said by the test's name, and failing it instead when every test must run.
//!
//! `make test` (tests/run.sh) sets [`NO_SKIP_ENV`]`=1`: it runs as root with every
//! dependency installed, so a test that would skip there is a broken environment or a broken
//! test, and fails loudly. Without it (`cargo test` as a user) a skip prints
//! `note: <test> skipped: <why>` and the test returns.

#![deny(unsafe_code)]

use std::fmt::Display;

/// Set to `1` when no test may skip.
pub const NO_SKIP_ENV: &str = "BERTH_TEST_NO_SKIP";

/// Whether every test must run ([`NO_SKIP_ENV`]`=1`).
pub fn must_run() -> bool {
    std::env::var(NO_SKIP_ENV).is_ok_and(|v| v == "1")
}

/// The running test's name (libtest names each test's thread after it).
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned()
}

/// Reports that the running test cannot run here because of `why`: a note naming it, or a
/// panic when every test must run. The caller returns after it.
pub fn skip(why: impl Display) {
    skip_named(&test_name(), why);
}

/// [`skip`] for a test that names itself.
pub fn skip_named(test: &str, why: impl Display) {
    if must_run() {
        panic!("{test} cannot run: {why} ({NO_SKIP_ENV}=1: no test may skip)");
    }
    eprintln!("note: {test} skipped: {why}");
}

/// Whether the test runs as root; if not, [`skip`]s it saying it needs root for `what`.
pub fn need_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(format_args!("needs root ({what})"));
    false
}

/// Whether the effective user is root.
pub fn is_root() -> bool {
    // /proc/self/status is read rather than calling geteuid(2) to stay free of unsafe and
    // of dependencies; the `Uid:` line lists real, effective, saved and filesystem IDs.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_name_is_the_threads() {
        assert_eq!(test_name(), "tests::the_test_name_is_the_threads");
    }

    #[test]
    fn root_is_what_id_says() {
        let id = std::process::Command::new("id").arg("-u").output().unwrap();
        assert!(id.status.success());
        assert_eq!(is_root(), String::from_utf8_lossy(&id.stdout).trim() == "0");
    }
}

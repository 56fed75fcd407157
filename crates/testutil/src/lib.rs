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

/// Whether `program` can be run (`program --version`); if not, [`skip`]s the test saying
/// it needs `program` from Debian's `package`.
pub fn need_program(program: &str, package: &str) -> bool {
    let runs = std::process::Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !runs {
        skip(format_args!(
            "needs {program} (Debian package {package}; scripts/install-deps.sh test installs it)"
        ));
    }
    runs
}

/// Prometheus' own check of a metrics exposition: `promtool check metrics` reading `text`.
/// `Err` carries its verdict when it reports anything (a lint or a parse error). Call
/// [`need_program`]`("promtool", "prometheus")` first.
pub fn promtool_check_metrics(text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot run promtool: {err}"))?;
    // promtool reads all of stdin before it answers: write, then close.
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(text.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|err| format!("promtool: {err}"))?;
    if let Some(Err(err)) = written {
        return Err(format!("cannot write to promtool: {err}"));
    }
    if out.status.success() && out.stdout.is_empty() && out.stderr.is_empty() {
        return Ok(());
    }
    Err(format!(
        "promtool check metrics: {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
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
    fn promtool_reports_what_it_finds() {
        if !need_program("promtool", "prometheus") {
            return;
        }
        let good = "# HELP x_total Things.\n# TYPE x_total counter\nx_total 1\n";
        assert_eq!(promtool_check_metrics(good), Ok(()));
        let lint = "# HELP x_count Things.\n# TYPE x_count counter\nx_count 1\n";
        let verdict = promtool_check_metrics(lint).unwrap_err();
        assert!(verdict.contains("_total"), "{verdict}");
        assert!(promtool_check_metrics("not{metrics\n").is_err());
    }

    #[test]
    fn root_is_what_id_says() {
        let id = std::process::Command::new("id").arg("-u").output().unwrap();
        assert!(id.status.success());
        assert_eq!(is_root(), String::from_utf8_lossy(&id.stdout).trim() == "0");
    }
}

//! Finding a container's running shim from outside: the PID its state directory records,
//! checked against `/proc` so a stale file or a reused PID is never taken for the shim.

use std::path::Path;

use crate::paths::SHIM_PID_FILE;

/// The PID of container `id`'s shim while it runs: the PID in `<state_dir>/shim.pid`, if
/// that process's `comm` is the shim binary's name (the kernel keeps its first 15 bytes)
/// and its arguments name `id`. A zombie has no arguments, so it does not count.
pub fn live_shim_pid(state_dir: &Path, binary: &Path, id: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(state_dir.join(SHIM_PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 1)?;
    is_shim_of(Path::new(&format!("/proc/{pid}")), binary, id).then_some(pid)
}

/// Whether the process at `proc_dir` runs `binary` with `id` among its arguments.
fn is_shim_of(proc_dir: &Path, binary: &Path, id: &str) -> bool {
    let name = binary
        .file_name()
        .map(|n| n.as_encoded_bytes())
        .unwrap_or_default();
    let name = &name[..name.len().min(15)];
    let comm = std::fs::read(proc_dir.join("comm")).unwrap_or_default();
    if comm.strip_suffix(b"\n").unwrap_or(&comm) != name {
        return false;
    }
    let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    cmdline.split(|b| *b == 0).any(|arg| arg == id.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_binary_naming_the_container_counts() {
        let dir = tempfile::tempdir().unwrap();
        let shim = Path::new("/usr/libexec/berth/berth-shim");
        std::fs::write(dir.path().join("comm"), "berth-shim\n").unwrap();
        std::fs::write(dir.path().join("cmdline"), b"berth-shim\0--id\0abc\0").unwrap();
        assert!(is_shim_of(dir.path(), shim, "abc"));
        assert!(!is_shim_of(dir.path(), shim, "abd"));
        // A shim installed under another name is found by that name.
        assert!(!is_shim_of(
            dir.path(),
            Path::new("/opt/monitor-for-containers"),
            "abc"
        ));
        std::fs::write(dir.path().join("comm"), "monitor-for-con\n").unwrap();
        assert!(is_shim_of(
            dir.path(),
            Path::new("/opt/monitor-for-containers"),
            "abc"
        ));
        std::fs::write(dir.path().join("comm"), "sleep\n").unwrap();
        assert!(!is_shim_of(dir.path(), shim, "abc"));
        assert!(!is_shim_of(&dir.path().join("gone"), shim, "abc"));
        // No pid file, or a pid file naming something else.
        assert_eq!(live_shim_pid(dir.path(), shim, "abc"), None);
        std::fs::write(dir.path().join(SHIM_PID_FILE), "1\n").unwrap();
        assert_eq!(live_shim_pid(dir.path(), shim, "abc"), None);
    }
}

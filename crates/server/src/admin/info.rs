//! `Info`: what berthd runs with, as one JSON object — the first thing to look at when
//! something is wrong:
//!
//! - `berthd`: version, PID, socket;
//! - `runc`: the binary in use and what `runc --version` says (or why it could not run);
//! - `config`: the configuration in effect (the same JSON as `Status(verbose)`'s);
//! - `runtime_handlers`: the handlers pods can ask for (today the one default, runc);
//! - `cgroup`: driver and hierarchy mode;
//! - `storage`: bytes and inodes under the root, the content store and the snapshots.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_admin_api::v1;
use serde_json::{json, Value};

use crate::daemon::Daemon;
use crate::error::ServiceError;
use berth_image::fsusage::usage_of;

/// Longest `runc --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn info(daemon: Arc<Daemon>) -> Result<v1::InfoResponse, ServiceError> {
    let info = tokio::task::spawn_blocking(move || gather(&daemon)).await??;
    Ok(v1::InfoResponse {
        json: info.to_string(),
    })
}

fn gather(daemon: &Daemon) -> Result<Value, ServiceError> {
    let config = &daemon.config;
    // Every configured runtime handler, with the version its binary reports.
    let handlers: Vec<Value> = daemon
        .handlers
        .all()
        .iter()
        .map(|handler| {
            let (binary, version) = match handler.runc() {
                Ok(runc) => {
                    let version = runc_version(&runc.binary);
                    (Some(runc.binary), version)
                }
                Err(err) => (None, Err(err.bounded_message())),
            };
            json!({
                "name": handler.name,
                "default": handler.default,
                "path": binary.unwrap_or_else(|| handler.path.clone()),
                "version": version.as_ref().ok(),
                "error": version.err(),
                "root": handler.root,
                "systemd_cgroup": handler.systemd_cgroup,
                "recursive_read_only_mounts": handler.recursive_read_only,
                "user_namespaces": handler.user_namespaces,
            })
        })
        .collect();
    let default = daemon.default_handler();
    let runc = handlers
        .iter()
        .find(|h| h["name"] == default.name.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    let mut storage = serde_json::Map::new();
    for (name, dir) in [
        ("root", config.root.clone()),
        ("content", daemon.images.content_dir()),
        ("snapshots", daemon.images.snapshots_dir()),
    ] {
        storage.insert(name.to_owned(), measure(&dir)?);
    }
    Ok(json!({
        "berthd": {
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "socket": config.listen,
        },
        "runc": runc,
        "config": config.to_json(),
        "runtime_handlers": handlers,
        "cgroup": {
            "driver": daemon.cgroup_driver.name(),
            "mode": daemon.cgroup_mode.name(),
        },
        "storage": storage,
    }))
}

/// `{"path", "bytes", "inodes"}` of the tree at `dir`.
fn measure(dir: &Path) -> Result<Value, ServiceError> {
    let usage = usage_of(dir).map_err(ServiceError::io("measure", dir))?;
    Ok(json!({ "path": dir, "bytes": usage.bytes, "inodes": usage.inodes }))
}

/// The first line of `runc --version` (`runc version 1.1.12`) without its first two words,
/// or why it could not be had.
fn runc_version(binary: &Path) -> Result<String, String> {
    let mut child = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot run {} --version: {err}", binary.display()))?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                // Our own child, by its handle.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} --version did not answer within {} s",
                    binary.display(),
                    VERSION_TIMEOUT.as_secs()
                ));
            }
            Err(err) => return Err(format!("cannot wait for {}: {err}", binary.display())),
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|err| format!("cannot read {} --version: {err}", binary.display()))?;
    Ok(version_of(&String::from_utf8_lossy(&output.stdout)))
}

/// The version in `runc --version`'s output: its first line without `runc version `.
fn version_of(output: &str) -> String {
    let first = output.lines().next().unwrap_or("").trim();
    first
        .strip_prefix("runc version ")
        .unwrap_or(first)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_the_first_line_without_its_words() {
        assert_eq!(
            version_of("runc version 1.1.12\ncommit: v1.1.12-0-g51d5e94\nspec: 1.0.2-dev\n"),
            "1.1.12"
        );
        assert_eq!(version_of("crun version 1.8\n"), "crun version 1.8");
        assert_eq!(version_of(""), "");
        let err = runc_version(Path::new("/nonexistent/runc")).unwrap_err();
        assert!(err.contains("cannot run"), "{err}");
    }
}

//! The files of one `runc exec` (ExecSync or a streaming exec): the process JSON — the
//! container's own process settings with the exec's argv — and runc's pid file, both in
//! `<state>/containers/<id>/exec/` and removed when the [`ExecFiles`] is dropped.

use std::path::PathBuf;

use crate::container::paths::ContainerPaths;
use crate::error::ServiceError;
use crate::ids::new_id;

/// The process and pid files of one exec.
pub struct ExecFiles {
    /// `--process` for runc exec.
    pub process: PathBuf,
    /// `--pid-file` for runc exec.
    pub pid: PathBuf,
}

impl ExecFiles {
    /// Writes the process JSON for `cmd`, with a terminal or not.
    pub fn prepare(
        paths: &ContainerPaths,
        cmd: &[String],
        terminal: bool,
    ) -> Result<ExecFiles, ServiceError> {
        let exec_id = new_id().map_err(|source| ServiceError::Io {
            action: "read random bytes from",
            path: "/dev/urandom".into(),
            source,
        })?;
        let exec_dir = paths.state.join("exec");
        std::fs::create_dir_all(&exec_dir).map_err(ServiceError::io("create", &exec_dir))?;
        let files = ExecFiles {
            process: exec_dir.join(format!("{}.json", &exec_id[..16])),
            pid: exec_dir.join(format!("{}.pid", &exec_id[..16])),
        };

        let config = paths.bundle().join("config.json");
        let spec_text =
            std::fs::read_to_string(&config).map_err(ServiceError::io("read", &config))?;
        let spec: serde_json::Value =
            serde_json::from_str(&spec_text).map_err(|err| ServiceError::Io {
                action: "parse",
                path: config.clone(),
                source: err.into(),
            })?;
        let mut process = spec.get("process").cloned().unwrap_or_default();
        process["args"] = serde_json::json!(cmd);
        process["terminal"] = serde_json::json!(terminal);
        if !terminal {
            if let Some(p) = process.as_object_mut() {
                p.remove("consoleSize");
            }
        }
        std::fs::write(&files.process, process.to_string())
            .map_err(ServiceError::io("write", &files.process))?;
        Ok(files)
    }

    /// The exec'd process's host PID, once runc wrote it.
    pub fn exec_pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pid)
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }
}

impl Drop for ExecFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.process);
        let _ = std::fs::remove_file(&self.pid);
    }
}

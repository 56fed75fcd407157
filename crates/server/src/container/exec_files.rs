//! The file of one exec (ExecSync or a streaming exec): the process JSON for `runc exec` —
//! the container's own process settings with the exec's argv — in
//! `<state>/containers/<id>/exec/`, removed when the [`ExecFiles`] is dropped.

use std::path::PathBuf;

use crate::container::paths::ContainerPaths;
use crate::error::ServiceError;
use crate::ids::new_id;

/// The process file of one exec.
pub struct ExecFiles {
    /// The exec's ID (16 hex digits), which also names the shim's files of the session.
    pub id: String,
    /// `--process` for runc exec.
    pub process: PathBuf,
}

impl ExecFiles {
    /// Writes the process JSON for `cmd`, with a terminal (of `console` size: width, height)
    /// or not.
    pub fn prepare(
        paths: &ContainerPaths,
        cmd: &[String],
        terminal: bool,
        console: Option<(u16, u16)>,
    ) -> Result<ExecFiles, ServiceError> {
        let exec_id = new_id().map_err(|source| ServiceError::Io {
            action: "read random bytes from",
            path: "/dev/urandom".into(),
            source,
        })?;
        let exec_dir = paths.state.join("exec");
        std::fs::create_dir_all(&exec_dir).map_err(ServiceError::io("create", &exec_dir))?;
        let id = exec_id[..16].to_owned();
        let files = ExecFiles {
            process: exec_dir.join(format!("{id}.json")),
            id,
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
        } else if let Some((width, height)) = console {
            process["consoleSize"] = serde_json::json!({"width": width, "height": height});
        }
        std::fs::write(&files.process, process.to_string())
            .map_err(ServiceError::io("write", &files.process))?;
        Ok(files)
    }
}

impl Drop for ExecFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.process);
    }
}

//! `berthctl info [--json]`: berthd's Info, as sent (`--json`) or as a summary followed by
//! the configuration in effect as TOML.

use std::fmt::Write as _;

use berth_admin_api::v1;
use berth_admin_api::AdminClient;
use serde_json::Value;
use tonic::transport::Channel;

use crate::error::CtlError;

/// `berthctl info [--json]`
pub async fn info(admin: &mut AdminClient<Channel>, json: bool) -> Result<(), CtlError> {
    let response = admin
        .info(v1::InfoRequest {})
        .await
        .map_err(|status| CtlError::Rpc {
            rpc: "Info",
            status,
        })?
        .into_inner();
    let info: Value =
        serde_json::from_str(&response.json).map_err(|err| CtlError::BadInfo(err.to_string()))?;
    if !info.is_object() {
        return Err(CtlError::BadInfo("not an object".into()));
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&info).unwrap_or(response.json)
        );
    } else {
        print!("{}", summary(&info)?);
    }
    Ok(())
}

/// The human form: one line per fact, then `[config]` as TOML.
fn summary(info: &Value) -> Result<String, CtlError> {
    let text = |pointer: &str| match info.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "berthd:     {} (pid {}, socket {})",
        text("/berthd/version"),
        text("/berthd/pid"),
        text("/berthd/socket")
    );
    match info.pointer("/runc/error").and_then(Value::as_str) {
        Some(error) => {
            let _ = writeln!(out, "runc:       {} ({error})", text("/runc/path"));
        }
        None => {
            let _ = writeln!(
                out,
                "runc:       {} ({})",
                text("/runc/version"),
                text("/runc/path")
            );
        }
    }
    let _ = writeln!(
        out,
        "cgroups:    driver {}, mode {}",
        text("/cgroup/driver"),
        text("/cgroup/mode")
    );
    let handlers = info
        .get("runtime_handlers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (n, handler) in handlers.iter().enumerate() {
        let label = if n == 0 { "handlers:" } else { "" };
        let get = |key: &str| handler.get(key).and_then(Value::as_str).unwrap_or("-");
        let default = if handler.get("default").and_then(Value::as_bool) == Some(true) {
            " (default)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{label:<11} {}{default}: {}, root {}",
            get("name"),
            get("path"),
            get("root")
        );
    }
    for (n, area) in ["root", "content", "snapshots"].iter().enumerate() {
        let label = if n == 0 { "storage:" } else { "" };
        let bytes = info
            .pointer(&format!("/storage/{area}/bytes"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "{label:<11} {area:<9} {} in {} inodes ({})",
            human_bytes(bytes),
            text(&format!("/storage/{area}/inodes")),
            text(&format!("/storage/{area}/path"))
        );
    }
    let config = info.get("config").cloned().unwrap_or(Value::Null);
    let table = toml::Value::try_from(without_nulls(config))?;
    let _ = writeln!(
        out,
        "\n# configuration in effect\n{}",
        toml::to_string(&table)?
    );
    Ok(out)
}

/// TOML has no null: keys whose value is null are left out.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// `1.5 GiB`, `12.0 KiB`, `512 B`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for next in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_people_say_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn the_summary_names_each_fact_and_shows_the_config_as_toml() {
        let info = serde_json::json!({
            "berthd": { "version": "0.1.0", "pid": 42, "socket": "/run/berth/berth.sock" },
            "runc": { "path": "/usr/sbin/runc", "version": "1.1.12", "error": null },
            "config": { "root": "/var/lib/berth", "log_level": "info",
                        "runtime": { "runc_path": "runc", "shim_path": "" },
                        "cni": { "bin_dirs": ["/usr/lib/cni"] } },
            "runtime_handlers": [{ "name": "runc", "default": true, "path": "/usr/sbin/runc",
                                   "root": "/run/berth/runc" }],
            "cgroup": { "driver": "systemd", "mode": "unified" },
            "storage": {
                "root": { "path": "/var/lib/berth", "bytes": 3221225472u64, "inodes": 100 },
                "content": { "path": "/var/lib/berth/content", "bytes": 2048, "inodes": 3 },
                "snapshots": { "path": "/var/lib/berth/snapshots", "bytes": 0, "inodes": 1 },
            },
        });
        let text = summary(&info).unwrap();
        for want in [
            "berthd:     0.1.0 (pid 42, socket /run/berth/berth.sock)",
            "runc:       1.1.12 (/usr/sbin/runc)",
            "cgroups:    driver systemd, mode unified",
            "handlers:   runc (default): /usr/sbin/runc, root /run/berth/runc",
            "storage:    root      3.0 GiB in 100 inodes (/var/lib/berth)",
            "content   2.0 KiB in 3 inodes",
            "log_level = \"info\"",
            "[runtime]",
            "runc_path = \"runc\"",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
        // The TOML part parses back to the config.
        let toml_part = text.split("# configuration in effect\n").nth(1).unwrap();
        let parsed: toml::Value = toml::from_str(toml_part).unwrap();
        assert_eq!(parsed["cni"]["bin_dirs"][0].as_str(), Some("/usr/lib/cni"));
    }
}

//! `ContainerStatus`: state, times, exit code and reason, image, mounts and log path;
//! `verbose` adds the OCI spec and paths as JSON.

use std::collections::HashMap;
use std::sync::Arc;

use cri_api::v1;

use berth_oci::{resolve_user, ImageView, UserDb};

use crate::container::convert::{stored_config, to_status};
use crate::container::paths::ContainerPaths;
use crate::container::state::Observed;
use crate::container::userdb::read_in_root;
use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn container_status(
    daemon: Arc<Daemon>,
    request: v1::ContainerStatusRequest,
) -> Result<v1::ContainerStatusResponse, ServiceError> {
    let view = daemon.find_container(&request.container_id)?;
    let observed = Observed::of(&view);
    let record = view.record;
    // The rootfs's passwd/group files and the bundle are read on a blocking thread.
    let (record, user, info) = tokio::task::spawn_blocking(move || {
        let files = status_files(&daemon, &record, request.verbose);
        files.map(|(user, info)| (record, user, info))
    })
    .await??;
    let mut status = to_status(&record, &observed);
    status.user = user;
    Ok(v1::ContainerStatusResponse {
        status: Some(status),
        info,
    })
}

/// What ContainerStatus reads from files: the process's user and, with `verbose`, the
/// `info` map (spec, pid, bundle).
fn status_files(
    daemon: &Daemon,
    record: &berth_store::ContainerRecord,
    verbose: bool,
) -> Result<(Option<v1::ContainerUser>, HashMap<String, String>), ServiceError> {
    let paths = ContainerPaths::new(daemon, &record.id);
    let user = container_user(daemon, record, &paths)?;
    let mut info = HashMap::new();
    if verbose {
        let spec: serde_json::Value = std::fs::read_to_string(paths.bundle().join("config.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let pid = std::fs::read_to_string(paths.shim().join("pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        let verbose = serde_json::json!({
            "sandboxID": record.sandbox_id,
            "pid": pid,
            "bundle": paths.bundle(),
            "runtimeSpec": spec,
        });
        info.insert("info".to_owned(), verbose.to_string());
    }
    Ok((user, info))
}

/// The user the container's process runs as (uid, gid, supplemental groups), resolved as
/// its spec was: from the CRI config, the pod, the image's `User` and the rootfs's
/// passwd/group files. `None` once the rootfs is gone (files no longer readable).
fn container_user(
    daemon: &Daemon,
    record: &berth_store::ContainerRecord,
    paths: &ContainerPaths,
) -> Result<Option<v1::ContainerUser>, ServiceError> {
    let rootfs = paths.rootfs();
    if !rootfs.join("etc").exists() {
        return Ok(None);
    }
    let users = UserDb {
        passwd: read_in_root(&rootfs, "/etc/passwd"),
        group: read_in_root(&rootfs, "/etc/group"),
    };
    let image_config = daemon
        .images
        .status(&record.image_ref)?
        .map(|image| image.config)
        .unwrap_or_default();
    let pod = daemon
        .store
        .sandboxes()
        .try_get(&record.sandbox_id)?
        .map(|sandbox| crate::pod::convert::stored_config(&sandbox))
        .unwrap_or_default();
    let image = ImageView {
        config: &image_config,
        image_ref: &record.image_ref,
    };
    let Ok(user) = resolve_user(&stored_config(record), &pod, &image, &users) else {
        return Ok(None);
    };
    Ok(Some(v1::ContainerUser {
        linux: Some(v1::LinuxContainerUser {
            uid: i64::from(user.uid),
            gid: i64::from(user.gid),
            supplemental_groups: user.additional_gids.iter().map(|&g| i64::from(g)).collect(),
        }),
    }))
}

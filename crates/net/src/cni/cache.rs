//! The attachment cache: `<cache_dir>/<sandbox-id>.json`, one file per attached sandbox.
//!
//! It holds exactly what ADD was run with (the whole network configuration list, the
//! interface name, the netns path, `CNI_ARGS`, the runtime config) and, once the chain
//! succeeded, its result. DEL is run from it, so teardown is correct after the config
//! dir changed or berthd restarted. Written atomically (`berth_atomicfile::write`: temp file,
//! fsync, rename, fsync dir), mode 0600. Format 1.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::conf::NetworkConfigList;
use super::error::CniError;

/// The cache format written by this version.
pub(crate) const CACHE_FORMAT: u32 = 1;

/// One sandbox's attachment, as used for ADD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CachedAttachment {
    pub format: u32,
    pub id: String,
    pub network: NetworkConfigList,
    pub ifname: String,
    pub netns: PathBuf,
    pub cni_args: String,
    pub runtime_config: Map<String, Value>,
    /// The chain's result; `None` until every plugin's ADD succeeded.
    #[serde(default)]
    pub result: Option<Value>,
}

pub(crate) fn path(cache_dir: &Path, id: &str) -> PathBuf {
    cache_dir.join(format!("{id}.json"))
}

pub(crate) fn write(cache_dir: &Path, entry: &CachedAttachment) -> Result<(), CniError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(cache_dir)
        .map_err(|source| CniError::CacheWrite {
            path: cache_dir.to_owned(),
            source,
        })?;
    let target = path(cache_dir, &entry.id);
    let bytes = serde_json::to_vec_pretty(entry).expect("cache entries serialize");
    berth_atomicfile::write(&target, &bytes, 0o600).map_err(|source| CniError::CacheWrite {
        path: target,
        source,
    })
}

pub(crate) fn read(cache_dir: &Path, id: &str) -> Result<Option<CachedAttachment>, CniError> {
    let path = path(cache_dir, id);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CniError::CacheRead { path, source }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| CniError::CacheParse { path, source })
}

pub(crate) fn remove(cache_dir: &Path, id: &str) -> Result<(), CniError> {
    let path = path(cache_dir, id);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CniError::CacheRemove { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_atomically_and_removes_idempotently() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cni-cache");
        let entry = CachedAttachment {
            format: CACHE_FORMAT,
            id: "abc".into(),
            network: NetworkConfigList {
                cni_version: "1.0.0".into(),
                name: "n".into(),
                plugins: vec![serde_json::json!({"type": "bridge"})],
            },
            ifname: "eth0".into(),
            netns: "/run/berth/ns/abc/net".into(),
            cni_args: "IgnoreUnknown=1".into(),
            runtime_config: Map::new(),
            result: None,
        };
        assert_eq!(read(&dir, "abc").unwrap(), None);
        write(&dir, &entry).unwrap();
        assert_eq!(read(&dir, "abc").unwrap(), Some(entry.clone()));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["abc.json"], "no temp file left");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path(&dir, "abc"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        remove(&dir, "abc").unwrap();
        remove(&dir, "abc").unwrap();
        assert_eq!(read(&dir, "abc").unwrap(), None);

        std::fs::write(path(&dir, "bad"), "{").unwrap();
        assert!(matches!(
            read(&dir, "bad"),
            Err(CniError::CacheParse { .. })
        ));
    }
}

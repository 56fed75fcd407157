//! Loading the network configuration list: the lexically first `*.conflist`, `*.conf` or
//! `*.json` file of the configured directory, or berth's built-in bridge network when the
//! directory holds none.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::CniError;
use super::pod_cidr::PodCidr;

/// berth's built-in network: bridge `berth0`, host-local IPAM on 10.88.0.0/16 with
/// masquerade, and portmap for host ports.
pub const BUILT_IN_NETWORK: &str = include_str!("default-network.conflist");

/// File name extensions of network configuration files, as the CNI convention has them.
const CONF_EXTENSIONS: [&str; 3] = ["conflist", "conf", "json"];

/// Where the network configuration came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkSource {
    /// A file of the configuration directory.
    File(PathBuf),
    /// The built-in default network.
    BuiltIn,
}

/// A CNI network configuration list (`*.conflist`), or a single-plugin `*.conf` lifted
/// into one.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct NetworkConfigList {
    /// `cniVersion`
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// `name`
    pub name: String,
    /// `plugins`, each kept as JSON: plugins take arbitrary keys.
    pub plugins: Vec<serde_json::Value>,
}

impl NetworkConfigList {
    /// The plugin types of the chain, in order.
    pub fn plugin_types(&self) -> impl Iterator<Item = &str> {
        self.plugins
            .iter()
            .filter_map(|plugin| plugin.get("type").and_then(serde_json::Value::as_str))
    }

    fn parse(origin: &Path, text: &str) -> Result<NetworkConfigList, CniError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|source| CniError::Parse {
                path: origin.to_owned(),
                source,
            })?;
        let list = if value.get("plugins").is_some() {
            serde_json::from_value::<NetworkConfigList>(value)
        } else {
            // A single-plugin `.conf`: the plugin object carries cniVersion and name itself.
            #[derive(Deserialize)]
            struct Single {
                #[serde(rename = "cniVersion")]
                cni_version: String,
                name: String,
            }
            serde_json::from_value::<Single>(value.clone()).map(|single| NetworkConfigList {
                cni_version: single.cni_version,
                name: single.name,
                plugins: vec![value],
            })
        }
        .map_err(|source| CniError::Parse {
            path: origin.to_owned(),
            source,
        })?;
        if list.plugins.is_empty() {
            return Err(CniError::Shape {
                origin: origin.to_owned(),
                reason: "the plugin list is empty",
            });
        }
        if list.plugin_types().count() != list.plugins.len() {
            return Err(CniError::Shape {
                origin: origin.to_owned(),
                reason: "a plugin has no string `type`",
            });
        }
        Ok(list)
    }
}

/// Loads the network berth uses: the lexically first configuration file of `conf_dir`, or
/// the built-in network (on `pod_cidrs` when there are any) when the directory has none or
/// does not exist.
pub fn load_network(
    conf_dir: &Path,
    pod_cidrs: &[PodCidr],
) -> Result<(NetworkSource, NetworkConfigList), CniError> {
    match first_config_file(conf_dir)? {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| CniError::ReadFile {
                path: path.clone(),
                source,
            })?;
            let list = NetworkConfigList::parse(&path, &text)?;
            Ok((NetworkSource::File(path), list))
        }
        None => {
            let mut list = NetworkConfigList::parse(Path::new("<built-in>"), BUILT_IN_NETWORK)?;
            super::pod_cidr::apply(&mut list, pod_cidrs);
            Ok((NetworkSource::BuiltIn, list))
        }
    }
}

fn first_config_file(conf_dir: &Path) -> Result<Option<PathBuf>, CniError> {
    let entries = match std::fs::read_dir(conf_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CniError::ReadDir {
                dir: conf_dir.to_owned(),
                source,
            })
        }
    };
    let mut candidates: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .filter(|path| {
            path.extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| CONF_EXTENSIONS.contains(&ext))
        })
        .collect();
    candidates.sort();
    Ok(candidates.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_network_when_dir_is_missing_or_empty() {
        let (source, list) = load_network(Path::new("/nonexistent/cni"), &[]).unwrap();
        assert_eq!(source, NetworkSource::BuiltIn);
        assert_eq!(list.name, "berth");
        assert_eq!(
            list.plugin_types().collect::<Vec<_>>(),
            ["bridge", "portmap"]
        );

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README"), "not a config").unwrap();
        assert_eq!(
            load_network(dir.path(), &[]).unwrap().0,
            NetworkSource::BuiltIn
        );
    }

    #[test]
    fn lexically_first_file_wins_and_conf_is_lifted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("20-b.conflist"),
            r#"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"ptp"}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("10-a.conf"),
            r#"{"cniVersion":"1.0.0","name":"a","type":"bridge","bridge":"x0"}"#,
        )
        .unwrap();
        let (source, list) = load_network(dir.path(), &[]).unwrap();
        assert_eq!(source, NetworkSource::File(dir.path().join("10-a.conf")));
        assert_eq!(list.name, "a");
        assert_eq!(list.plugin_types().collect::<Vec<_>>(), ["bridge"]);
    }

    #[test]
    fn malformed_configs_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("10-bad.conflist");
        std::fs::write(&path, "{ not json").unwrap();
        let err = load_network(dir.path(), &[]).unwrap_err().to_string();
        assert!(err.contains("10-bad.conflist"), "{err}");

        std::fs::write(&path, r#"{"cniVersion":"1.0.0","name":"x","plugins":[]}"#).unwrap();
        let err = load_network(dir.path(), &[]).unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");

        std::fs::write(
            &path,
            r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"a":1}]}"#,
        )
        .unwrap();
        let err = load_network(dir.path(), &[]).unwrap_err().to_string();
        assert!(err.contains("type"), "{err}");
    }
}

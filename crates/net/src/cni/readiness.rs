//! Whether pod networking can work: the network configuration loads and every plugin it
//! names (plus `loopback`, which berth runs for each pod's `lo`) is an executable file in
//! one of the plugin directories.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::conf::{load_network, NetworkSource};
use super::plugin_input::LOOPBACK_PLUGIN;

/// Outcome of [`network_readiness`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Pods can be networked with this network.
    Ready {
        /// Network name.
        network: String,
        /// Where its configuration came from.
        source: NetworkSource,
    },
    /// Pods cannot be networked.
    NotReady {
        /// Machine-readable reason (CamelCase, as kubelet shows it).
        reason: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
}

/// Checks the network configuration of `conf_dir` against the plugins in `bin_dirs`.
pub fn network_readiness(conf_dir: &Path, bin_dirs: &[PathBuf]) -> Readiness {
    // Pod CIDRs change the built-in network's ranges, not its plugins.
    let (source, list) = match load_network(conf_dir, &[]) {
        Ok(loaded) => loaded,
        Err(err) => {
            return Readiness::NotReady {
                reason: "NetworkConfigInvalid",
                message: err.to_string(),
            }
        }
    };
    let missing: Vec<&str> = list
        .plugin_types()
        .chain(std::iter::once(LOOPBACK_PLUGIN))
        .filter(|plugin| find_plugin(plugin, bin_dirs).is_none())
        .collect();
    if !missing.is_empty() {
        let dirs: Vec<String> = bin_dirs.iter().map(|d| d.display().to_string()).collect();
        return Readiness::NotReady {
            reason: "NetworkPluginNotFound",
            message: format!(
                "network {:?}: CNI plugin(s) {} not found in {}",
                list.name,
                missing.join(", "),
                dirs.join(":")
            ),
        };
    }
    Readiness::Ready {
        network: list.name,
        source,
    }
}

/// Finds an executable plugin binary named `plugin` in `bin_dirs`.
pub(crate) fn find_plugin(plugin: &str, bin_dirs: &[PathBuf]) -> Option<PathBuf> {
    // A plugin type is a file name, never a path.
    if plugin.is_empty() || plugin.contains('/') || plugin == "." || plugin == ".." {
        return None;
    }
    bin_dirs.iter().map(|dir| dir.join(plugin)).find(|path| {
        std::fs::metadata(path)
            .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_plugins(dir: &Path, names: &[&str]) {
        for name in names {
            let path = dir.join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn ready_when_every_plugin_is_present() {
        let bins = tempfile::tempdir().unwrap();
        fake_plugins(
            bins.path(),
            &["bridge", "portmap", "loopback", "host-local"],
        );
        let readiness = network_readiness(Path::new("/nonexistent"), &[bins.path().into()]);
        assert_eq!(
            readiness,
            Readiness::Ready {
                network: "berth".into(),
                source: NetworkSource::BuiltIn
            }
        );
    }

    #[test]
    fn not_ready_names_the_missing_plugins() {
        let bins = tempfile::tempdir().unwrap();
        fake_plugins(bins.path(), &["bridge"]);
        std::fs::write(bins.path().join("portmap"), "not executable").unwrap();
        match network_readiness(Path::new("/nonexistent"), &[bins.path().into()]) {
            Readiness::NotReady { reason, message } => {
                assert_eq!(reason, "NetworkPluginNotFound");
                assert!(message.contains("portmap, loopback"), "{message}");
            }
            ready => panic!("expected NotReady, got {ready:?}"),
        }
    }

    #[test]
    fn not_ready_on_a_broken_config() {
        let conf = tempfile::tempdir().unwrap();
        std::fs::write(conf.path().join("00.conflist"), "[]").unwrap();
        let readiness = network_readiness(conf.path(), &[]);
        assert!(matches!(
            readiness,
            Readiness::NotReady {
                reason: "NetworkConfigInvalid",
                ..
            }
        ));
    }

    #[test]
    fn plugin_names_are_not_paths() {
        assert_eq!(
            find_plugin("../../bin/sh", &[PathBuf::from("/usr/lib/cni")]),
            None
        );
        assert_eq!(find_plugin("", &[PathBuf::from("/bin")]), None);
    }
}

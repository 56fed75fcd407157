//! Merging the configuration's layers and remembering which one set each key, so that an
//! error names the file at fault.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::Source;
use crate::merge::{leaf_keys, merge_tables};
use crate::{without_location, Config, ConfigError, EMBEDDED_DEFAULT};

/// Which layer set each dotted key last.
#[derive(Debug, Default)]
pub(crate) struct Origins(BTreeMap<String, Source>);

impl Origins {
    pub(crate) fn set(&mut self, key: &str, source: Source) {
        self.0.insert(key.to_owned(), source);
    }

    /// The layer that set `key` or, for a key inside a table set whole, that table; the
    /// embedded default when no file or flag did.
    pub(crate) fn origin_of(&self, key: &str) -> Source {
        let mut probe = key;
        loop {
            if let Some(source) = self.0.get(probe) {
                return source.clone();
            }
            match probe.rsplit_once('.') {
                Some((parent, _)) => probe = parent,
                None => return Source::Embedded,
            }
        }
    }
}

/// The layers merged so far: the merged table, its configuration, and where each key came
/// from.
pub(crate) struct Layers {
    merged: toml::Table,
    config: Config,
    origins: Origins,
    files: Vec<PathBuf>,
}

impl Layers {
    /// The embedded default alone.
    pub(crate) fn embedded() -> Result<Layers, ConfigError> {
        let merged: toml::Table =
            toml::from_str(EMBEDDED_DEFAULT).map_err(|source| ConfigError::Syntax {
                origin: Source::Embedded,
                source: Box::new(source),
            })?;
        let config = deserialize(&merged, Source::Embedded)?;
        Ok(Layers {
            merged,
            config,
            origins: Origins::default(),
            files: Vec::new(),
        })
    }

    /// The configuration of the layers merged so far.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The layer that set `key` last.
    pub(crate) fn origin_of(&self, key: &str) -> Source {
        self.origins.origin_of(key)
    }

    /// Reads `path` and merges it over the layers so far; `drop_in` for a file of the
    /// drop-in directory, which may not move the directory itself.
    pub(crate) fn add_file(&mut self, path: &Path, drop_in: bool) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.add_text(path, &text, drop_in)
    }

    /// Merges `text`, the contents of `path`, over the layers so far. The layers before were
    /// valid, so an unknown key or a wrong type now is this file's.
    pub(crate) fn add_text(
        &mut self,
        path: &Path,
        text: &str,
        drop_in: bool,
    ) -> Result<(), ConfigError> {
        let origin = Source::File(path.to_owned());
        let overlay: toml::Table = toml::from_str(text).map_err(|source| ConfigError::Syntax {
            origin: origin.clone(),
            source: Box::new(source),
        })?;
        if drop_in && overlay.contains_key("config_dir") {
            return Err(ConfigError::Value {
                origin,
                key: "config_dir".into(),
                reason: "a drop-in cannot move the drop-in directory; set it in the --config \
                         file or with --config-dir"
                    .into(),
            });
        }
        let keys = leaf_keys(&overlay);
        let mut merged = self.merged.clone();
        merge_tables(&mut merged, overlay);
        self.config = deserialize(&merged, origin.clone())?;
        self.merged = merged;
        for key in keys {
            self.origins.set(&key, origin.clone());
        }
        self.files.push(path.to_owned());
        Ok(())
    }

    /// The configuration, where each key came from, and the files merged in order.
    pub(crate) fn finish(self) -> (Config, Origins, Vec<PathBuf>) {
        (self.config, self.origins, self.files)
    }
}

fn deserialize(table: &toml::Table, origin: Source) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table.clone())).map_err(|err| {
        ConfigError::Invalid {
            origin,
            key: err.path().to_string(),
            reason: without_location(&err.inner().to_string()),
        }
    })
}

/// The drop-ins of `dir`: its entries named `*.toml` (not hidden), in lexical (byte) order.
/// A missing directory has none; one that cannot be listed is an error.
pub(crate) fn drop_ins(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let read_dir_error = |source| ConfigError::ReadDir {
        path: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(read_dir_error(err)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let name = entry.map_err(read_dir_error)?.file_name();
        let bytes = name.as_bytes();
        if bytes.ends_with(b".toml") && !bytes.starts_with(b".") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names.into_iter().map(|name| dir.join(name)).collect())
}

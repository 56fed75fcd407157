//! The fields of an image config (`.config` of the OCI/Docker image config JSON) that
//! shape a container: Entrypoint, Cmd, Env, WorkingDir, User, StopSignal.

use serde_json::Value;

use crate::SpecError;

/// What the image contributes to a container.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    /// The image config JSON, as fetched (its `.config` object holds the runtime fields).
    pub config: &'a Value,
    /// The image's ID, recorded in the spec's annotations.
    pub image_ref: &'a str,
}

impl ImageView<'_> {
    fn field(&self, name: &str) -> Option<&Value> {
        self.config
            .get("config")
            .and_then(|c| c.get(name))
            .filter(|v| !v.is_null())
    }

    fn strings(&self, name: &'static str) -> Result<Vec<String>, SpecError> {
        let Some(value) = self.field(name) else {
            return Ok(Vec::new());
        };
        let bad = || SpecError::ImageConfig {
            field: name,
            expected: "an array of strings",
        };
        value
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
            .collect()
    }

    fn string(&self, name: &'static str) -> Result<Option<&str>, SpecError> {
        match self.field(name) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or(SpecError::ImageConfig {
                field: name,
                expected: "a string",
            }),
        }
    }

    /// `Entrypoint`, empty when absent.
    pub fn entrypoint(&self) -> Result<Vec<String>, SpecError> {
        self.strings("Entrypoint")
    }

    /// `Cmd`, empty when absent.
    pub fn cmd(&self) -> Result<Vec<String>, SpecError> {
        self.strings("Cmd")
    }

    /// `Env` as `KEY=value` strings, empty when absent.
    pub fn env(&self) -> Result<Vec<String>, SpecError> {
        self.strings("Env")
    }

    /// `WorkingDir`, `None` when absent or empty.
    pub fn working_dir(&self) -> Result<Option<&str>, SpecError> {
        Ok(self.string("WorkingDir")?.filter(|s| !s.is_empty()))
    }

    /// `User` (`uid`, `name`, `uid:gid`, `name:group`…), `None` when absent or empty.
    pub fn user(&self) -> Result<Option<&str>, SpecError> {
        Ok(self.string("User")?.filter(|s| !s.is_empty()))
    }

    /// `StopSignal` (`SIGQUIT`, `QUIT`, `3`…), `None` when absent or empty.
    pub fn stop_signal(&self) -> Result<Option<&str>, SpecError> {
        Ok(self.string("StopSignal")?.filter(|s| !s.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_are_read_from_the_config_object() {
        let config = json!({"architecture": "amd64", "config": {
            "Entrypoint": ["/bin/sh", "-c"], "Cmd": null, "Env": ["A=1"],
            "WorkingDir": "", "User": "1000:1000", "StopSignal": "SIGQUIT"}});
        let image = ImageView {
            config: &config,
            image_ref: "sha256:x",
        };
        assert_eq!(image.entrypoint().unwrap(), ["/bin/sh", "-c"]);
        assert!(image.cmd().unwrap().is_empty());
        assert_eq!(image.env().unwrap(), ["A=1"]);
        assert_eq!(image.working_dir().unwrap(), None);
        assert_eq!(image.user().unwrap(), Some("1000:1000"));
        assert_eq!(image.stop_signal().unwrap(), Some("SIGQUIT"));
    }

    #[test]
    fn a_config_without_config_object_is_empty() {
        let config = json!({});
        let image = ImageView {
            config: &config,
            image_ref: "",
        };
        assert!(image.entrypoint().unwrap().is_empty());
        assert_eq!(image.user().unwrap(), None);
    }

    #[test]
    fn wrong_types_are_errors_naming_the_field() {
        let config = json!({"config": {"Cmd": "sh", "User": 5}});
        let image = ImageView {
            config: &config,
            image_ref: "",
        };
        assert!(matches!(
            image.cmd(),
            Err(SpecError::ImageConfig { field: "Cmd", .. })
        ));
        assert!(matches!(
            image.user(),
            Err(SpecError::ImageConfig { field: "User", .. })
        ));
    }
}

//! `linux.seccomp`: which profile applies, and the filter it becomes.
//!
//! The container's `seccomp` SecurityProfile wins over its deprecated
//! `seccomp_profile_path`; when the container sets neither, the pod's security context
//! decides the same way; with nothing set the container is unconfined (as kubelet and
//! critest expect). Privileged containers are never filtered.

mod default;
mod docker;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use cri_api::v1;
use oci_spec::runtime::{
    Capability, LinuxSeccomp, LinuxSeccompArg, LinuxSeccompArgBuilder, LinuxSeccompOperator,
};

use crate::error::ProfileProblem;
use crate::{HostFeatures, SpecError};

pub use default::runtime_default;

/// The profile a container asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Profile {
    /// No filter.
    Unconfined,
    /// berth's built-in profile.
    RuntimeDefault,
    /// A JSON profile at this absolute host path.
    Localhost(PathBuf),
}

/// Largest profile file read.
const MAX_PROFILE_BYTES: u64 = 4 << 20;

fn from_security_profile(profile: &v1::SecurityProfile) -> Result<Profile, SpecError> {
    use v1::security_profile::ProfileType;
    match ProfileType::try_from(profile.profile_type) {
        Ok(ProfileType::RuntimeDefault) => Ok(Profile::RuntimeDefault),
        Ok(ProfileType::Unconfined) => Ok(Profile::Unconfined),
        Ok(ProfileType::Localhost) => Ok(Profile::Localhost(PathBuf::from(&profile.localhost_ref))),
        Err(_) => Err(SpecError::UnknownEnum {
            field: "seccomp.profile_type",
            value: profile.profile_type,
        }),
    }
}

fn from_path(path: &str) -> Result<Option<Profile>, SpecError> {
    Ok(Some(match path {
        "" => return Ok(None),
        "unconfined" => Profile::Unconfined,
        "runtime/default" | "docker/default" => Profile::RuntimeDefault,
        other => match other.strip_prefix("localhost/") {
            Some(path) => Profile::Localhost(PathBuf::from(path)),
            None => return Err(SpecError::UnknownSeccompProfile(other.to_owned())),
        },
    }))
}

fn from_fields(
    profile: Option<&v1::SecurityProfile>,
    path: &str,
) -> Result<Option<Profile>, SpecError> {
    match profile {
        Some(profile) => from_security_profile(profile).map(Some),
        None => from_path(path),
    }
}

/// A syscall argument condition (the type has no setters; its builder cannot fail).
pub(crate) fn seccomp_arg(
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
) -> LinuxSeccompArg {
    let builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    let builder = match value_two {
        Some(two) => builder.value_two(two),
        None => builder,
    };
    builder.build().unwrap_or_default()
}

/// The profile that applies to the container. The deprecated `seccomp_profile_path` is
/// still honoured (kubelet no longer sends it, other CRI clients may).
#[allow(deprecated)]
pub(crate) fn select(
    container: Option<&v1::LinuxContainerSecurityContext>,
    pod: Option<&v1::LinuxSandboxSecurityContext>,
) -> Result<Profile, SpecError> {
    if let Some(sc) = container {
        if let Some(profile) = from_fields(sc.seccomp.as_ref(), &sc.seccomp_profile_path)? {
            return Ok(profile);
        }
    }
    if let Some(sc) = pod {
        if let Some(profile) = from_fields(sc.seccomp.as_ref(), &sc.seccomp_profile_path)? {
            return Ok(profile);
        }
    }
    Ok(Profile::Unconfined)
}

/// The filter for `profile`, given the container's effective capabilities (profiles may
/// allow syscalls only to holders of a capability).
pub(crate) fn filter(
    profile: &Profile,
    caps: &HashSet<Capability>,
    host: &HostFeatures,
) -> Result<Option<LinuxSeccomp>, SpecError> {
    match profile {
        Profile::Unconfined => Ok(None),
        Profile::RuntimeDefault => Ok(Some(runtime_default(caps))),
        Profile::Localhost(path) => {
            load(path, caps, host)
                .map(Some)
                .map_err(|problem| SpecError::SeccompProfile {
                    path: path.clone(),
                    problem,
                })
        }
    }
}

fn load(
    path: &Path,
    caps: &HashSet<Capability>,
    host: &HostFeatures,
) -> Result<LinuxSeccomp, ProfileProblem> {
    if !path.is_absolute() {
        return Err(ProfileProblem::NotAbsolute);
    }
    // Only a regular file with a size: a device (/dev/zero), a FIFO or a /proc file (size 0,
    // /proc/kmsg blocks) would be read without end or never answer.
    let meta = std::fs::metadata(path).map_err(ProfileProblem::Read)?;
    if !meta.is_file() || meta.len() == 0 {
        return Err(ProfileProblem::NotARegularFile);
    }
    if meta.len() > MAX_PROFILE_BYTES {
        return Err(ProfileProblem::TooLarge(MAX_PROFILE_BYTES));
    }
    // The file may have grown since: read one byte past the limit at most.
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            std::io::Read::read_to_end(
                &mut std::io::Read::take(f, MAX_PROFILE_BYTES + 1),
                &mut text,
            )
        })
        .map_err(ProfileProblem::Read)?;
    if text.len() as u64 > MAX_PROFILE_BYTES {
        return Err(ProfileProblem::TooLarge(MAX_PROFILE_BYTES));
    }
    docker::convert(&text, caps, host)
}

#[cfg(test)]
#[allow(deprecated)] // the deprecated CRI fields are still honoured, so tested
mod tests {
    use std::io::Write;

    use oci_spec::runtime::LinuxSeccompAction;

    use super::*;

    fn sp(t: v1::security_profile::ProfileType, r: &str) -> Option<v1::SecurityProfile> {
        Some(v1::SecurityProfile {
            profile_type: t as i32,
            localhost_ref: r.into(),
        })
    }

    fn container(
        seccomp: Option<v1::SecurityProfile>,
        path: &str,
    ) -> v1::LinuxContainerSecurityContext {
        v1::LinuxContainerSecurityContext {
            seccomp,
            seccomp_profile_path: path.into(),
            ..Default::default()
        }
    }

    #[test]
    fn selection() {
        use v1::security_profile::ProfileType as T;
        let pick = |c: Option<v1::LinuxContainerSecurityContext>| select(c.as_ref(), None).unwrap();
        assert_eq!(pick(None), Profile::Unconfined);
        assert_eq!(pick(Some(container(None, ""))), Profile::Unconfined);
        assert_eq!(
            pick(Some(container(sp(T::RuntimeDefault, ""), ""))),
            Profile::RuntimeDefault
        );
        assert_eq!(
            pick(Some(container(sp(T::Unconfined, ""), "runtime/default"))),
            Profile::Unconfined
        );
        assert_eq!(
            pick(Some(container(sp(T::Localhost, "/p.json"), ""))),
            Profile::Localhost("/p.json".into())
        );
        assert_eq!(
            pick(Some(container(None, "runtime/default"))),
            Profile::RuntimeDefault
        );
        assert_eq!(
            pick(Some(container(None, "docker/default"))),
            Profile::RuntimeDefault
        );
        assert_eq!(
            pick(Some(container(None, "unconfined"))),
            Profile::Unconfined
        );
        assert_eq!(
            pick(Some(container(None, "localhost//x/y.json"))),
            Profile::Localhost("/x/y.json".into())
        );
        assert!(matches!(
            select(Some(&container(None, "bogus")), None),
            Err(SpecError::UnknownSeccompProfile(_))
        ));
    }

    #[test]
    fn the_pod_profile_applies_when_the_container_sets_none() {
        use v1::security_profile::ProfileType as T;
        let pod = v1::LinuxSandboxSecurityContext {
            seccomp: sp(T::RuntimeDefault, ""),
            ..Default::default()
        };
        assert_eq!(
            select(Some(&container(None, "")), Some(&pod)).unwrap(),
            Profile::RuntimeDefault
        );
        assert_eq!(
            select(Some(&container(sp(T::Unconfined, ""), "")), Some(&pod)).unwrap(),
            Profile::Unconfined
        );
    }

    #[test]
    fn localhost_profiles_load_or_fail_clearly() {
        let host = HostFeatures::default();
        let caps = HashSet::new();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(file, r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["sethostname"],"action":"SCMP_ACT_ERRNO"}}]}}"#).unwrap();
        let got = filter(&Profile::Localhost(file.path().into()), &caps, &host)
            .unwrap()
            .unwrap();
        assert_eq!(got.default_action(), LinuxSeccompAction::ScmpActAllow);

        let missing = Profile::Localhost("/nonexistent/profile.json".into());
        assert!(matches!(
            filter(&missing, &caps, &host),
            Err(SpecError::SeccompProfile {
                problem: ProfileProblem::Read(_),
                ..
            })
        ));
        let relative = Profile::Localhost("profile.json".into());
        assert!(matches!(
            filter(&relative, &caps, &host),
            Err(SpecError::SeccompProfile {
                problem: ProfileProblem::NotAbsolute,
                ..
            })
        ));
        // Devices, directories and empty (/proc) files are refused before any read.
        for special in ["/dev/zero", "/dev/null", "/proc/self/status", "/"] {
            assert!(
                matches!(
                    filter(&Profile::Localhost(special.into()), &caps, &host),
                    Err(SpecError::SeccompProfile {
                        problem: ProfileProblem::NotARegularFile,
                        ..
                    })
                ),
                "{special}"
            );
        }
        let mut bad = tempfile::NamedTempFile::new().unwrap();
        write!(bad, "{{not json").unwrap();
        assert!(matches!(
            filter(&Profile::Localhost(bad.path().into()), &caps, &host),
            Err(SpecError::SeccompProfile {
                problem: ProfileProblem::Parse(_),
                ..
            })
        ));
    }
}

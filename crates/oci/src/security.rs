//! The security context's simple parts: where to find it, masked and read-only paths, and
//! the checks for AppArmor and SELinux requests on hosts without them.

use cri_api::v1;

use crate::{HostFeatures, SpecError};

/// Paths masked (bind-mounted over with /dev/null or an empty tmpfs) in an unprivileged
/// container.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths remounted read-only in an unprivileged container.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The container's security context, when it has one.
pub(crate) fn container_context(
    container: &v1::ContainerConfig,
) -> Option<&v1::LinuxContainerSecurityContext> {
    container.linux.as_ref()?.security_context.as_ref()
}

/// The pod's security context, when it has one.
pub(crate) fn pod_context(pod: &v1::PodSandboxConfig) -> Option<&v1::LinuxSandboxSecurityContext> {
    pod.linux.as_ref()?.security_context.as_ref()
}

/// `(masked, readonly)`: none for a privileged container; else the CRI lists, each
/// replacing the default when non-empty (kubelet sends the defaults itself, and an empty
/// list cannot be told apart from an absent one in proto3).
pub(crate) fn masked_and_readonly_paths(
    sc: Option<&v1::LinuxContainerSecurityContext>,
) -> (Vec<String>, Vec<String>) {
    if sc.is_some_and(|s| s.privileged) {
        return (Vec::new(), Vec::new());
    }
    let pick = |given: Option<&Vec<String>>, default: &[&str]| match given {
        Some(given) if !given.is_empty() => given.clone(),
        _ => default.iter().map(|s| s.to_string()).collect(),
    };
    (
        pick(sc.map(|s| &s.masked_paths), DEFAULT_MASKED_PATHS),
        pick(sc.map(|s| &s.readonly_paths), DEFAULT_READONLY_PATHS),
    )
}

/// The AppArmor profile to set on the process. berth loads no profile of its own, so
/// RuntimeDefault and Unconfined leave the process unconfined; a named (localhost)
/// profile is applied when AppArmor is enabled and is an error otherwise. The `apparmor`
/// field wins over the deprecated `apparmor_profile`. A privileged container is unconfined
/// unless it names a profile (as Docker does).
#[allow(deprecated)]
pub(crate) fn apparmor_profile(
    sc: Option<&v1::LinuxContainerSecurityContext>,
    host: &HostFeatures,
) -> Result<Option<String>, SpecError> {
    let Some(sc) = sc else {
        return Ok(None);
    };
    let named = match &sc.apparmor {
        Some(profile) => match v1::security_profile::ProfileType::try_from(profile.profile_type) {
            Ok(v1::security_profile::ProfileType::Localhost) => Some(profile.localhost_ref.clone()),
            Ok(_) => None,
            Err(_) => {
                return Err(SpecError::UnknownEnum {
                    field: "apparmor.profile_type",
                    value: profile.profile_type,
                })
            }
        },
        None => match sc.apparmor_profile.as_str() {
            "" | "unconfined" | "runtime/default" => None,
            other => match other.strip_prefix("localhost/") {
                Some(name) => Some(name.to_owned()),
                None => return Err(SpecError::UnknownAppArmorProfile(other.to_owned())),
            },
        },
    };
    match named {
        None => Ok(None),
        Some(name) if !host.apparmor_enabled || name.is_empty() => {
            Err(SpecError::AppArmorUnavailable(name))
        }
        Some(name) => Ok(Some(name)),
    }
}

/// SELinux labels are ignored on hosts without SELinux (containerd does the same); berth
/// does not label containers, so a host with SELinux enabled refuses a request for one.
pub(crate) fn check_selinux(
    container: &v1::ContainerConfig,
    host: &HostFeatures,
) -> Result<(), SpecError> {
    if !host.selinux_enabled {
        return Ok(());
    }
    let labelled = container_context(container)
        .and_then(|s| s.selinux_options.as_ref())
        .is_some_and(|o| {
            !(o.user.is_empty() && o.role.is_empty() && o.r#type.is_empty() && o.level.is_empty())
        });
    if labelled || container.mounts.iter().any(|m| m.selinux_relabel) {
        return Err(SpecError::Unsupported("SELinux labels"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(deprecated)] // the deprecated CRI fields are still honoured, so tested
mod tests {
    use super::*;

    fn sc(
        f: impl FnOnce(&mut v1::LinuxContainerSecurityContext),
    ) -> v1::LinuxContainerSecurityContext {
        let mut sc = v1::LinuxContainerSecurityContext::default();
        f(&mut sc);
        sc
    }

    #[test]
    fn masked_and_readonly_defaults_overrides_and_privileged() {
        let (masked, ro) = masked_and_readonly_paths(None);
        assert_eq!(masked, DEFAULT_MASKED_PATHS);
        assert_eq!(ro, DEFAULT_READONLY_PATHS);

        let given = sc(|s| {
            s.masked_paths = vec!["/bin/ls".into()];
            s.readonly_paths = vec!["/tmp".into()];
        });
        assert_eq!(
            masked_and_readonly_paths(Some(&given)),
            (vec!["/bin/ls".into()], vec!["/tmp".into()])
        );

        let privileged = sc(|s| {
            s.privileged = true;
            s.masked_paths = vec!["/bin/ls".into()];
        });
        assert_eq!(
            masked_and_readonly_paths(Some(&privileged)),
            (vec![], vec![])
        );
    }

    #[test]
    fn apparmor_requests() {
        let off = HostFeatures::default();
        let on = HostFeatures {
            apparmor_enabled: true,
            ..Default::default()
        };
        let profile = |t: v1::security_profile::ProfileType, r: &str| {
            sc(|s| {
                s.apparmor = Some(v1::SecurityProfile {
                    profile_type: t as i32,
                    localhost_ref: r.into(),
                })
            })
        };
        use v1::security_profile::ProfileType as T;
        assert_eq!(
            apparmor_profile(Some(&profile(T::RuntimeDefault, "")), &off).unwrap(),
            None
        );
        assert_eq!(
            apparmor_profile(Some(&profile(T::Unconfined, "")), &off).unwrap(),
            None
        );
        assert!(matches!(
            apparmor_profile(Some(&profile(T::Localhost, "deny-write")), &off),
            Err(SpecError::AppArmorUnavailable(n)) if n == "deny-write"
        ));
        assert_eq!(
            apparmor_profile(Some(&profile(T::Localhost, "deny-write")), &on).unwrap(),
            Some("deny-write".into())
        );

        let deprecated = |p: &str| sc(|s| s.apparmor_profile = p.into());
        assert_eq!(
            apparmor_profile(Some(&deprecated("runtime/default")), &off).unwrap(),
            None
        );
        assert!(matches!(
            apparmor_profile(Some(&deprecated("localhost/x")), &off),
            Err(SpecError::AppArmorUnavailable(_))
        ));
        assert!(matches!(
            apparmor_profile(Some(&deprecated("bogus")), &on),
            Err(SpecError::UnknownAppArmorProfile(_))
        ));
        // The new field wins over the deprecated one.
        let both = sc(|s| {
            s.apparmor_profile = "localhost/x".into();
            s.apparmor = Some(v1::SecurityProfile {
                profile_type: T::Unconfined as i32,
                ..Default::default()
            });
        });
        assert_eq!(apparmor_profile(Some(&both), &off).unwrap(), None);
        // A privileged container still gets a profile it names.
        let privileged = sc(|s| {
            s.privileged = true;
            s.apparmor_profile = "localhost/x".into();
        });
        assert_eq!(
            apparmor_profile(Some(&privileged), &on).unwrap(),
            Some("x".into())
        );
    }

    #[test]
    fn selinux_is_ignored_without_selinux() {
        let mut container = v1::ContainerConfig::default();
        container.mounts.push(v1::Mount {
            selinux_relabel: true,
            ..Default::default()
        });
        assert!(check_selinux(&container, &HostFeatures::default()).is_ok());
        let selinux = HostFeatures {
            selinux_enabled: true,
            ..Default::default()
        };
        assert!(matches!(
            check_selinux(&container, &selinux),
            Err(SpecError::Unsupported(_))
        ));
    }
}

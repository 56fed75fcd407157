//! The process's capability sets.
//!
//! Unprivileged containers start from the default set that containerd and CRI-O grant;
//! `add_capabilities`/`drop_capabilities` change it, where `ALL` (any case, `CAP_`
//! optional) means every capability the host can grant (those the kernel knows and berthd
//! holds, as containerd does). `ALL` is applied first (add, then drop), then the named adds,
//! then the named drops, so `add ALL, drop CHOWN` is all but CHOWN and `drop ALL, add
//! NET_ADMIN` is NET_ADMIN alone. Privileged containers get every grantable capability;
//! naming one the host cannot grant is an error. The inheritable set stays empty except for
//! ambient capabilities, which the kernel only keeps when they are also permitted and
//! inheritable.

use std::collections::HashSet;

use cri_api::v1;
use oci_spec::runtime::{Capabilities, Capability as Cap, LinuxCapabilities};

use crate::SpecError;

/// Every Linux capability, by number (the index), as named without `CAP_`.
const ALL: [(&str, Cap); 41] = [
    ("CHOWN", Cap::Chown),
    ("DAC_OVERRIDE", Cap::DacOverride),
    ("DAC_READ_SEARCH", Cap::DacReadSearch),
    ("FOWNER", Cap::Fowner),
    ("FSETID", Cap::Fsetid),
    ("KILL", Cap::Kill),
    ("SETGID", Cap::Setgid),
    ("SETUID", Cap::Setuid),
    ("SETPCAP", Cap::Setpcap),
    ("LINUX_IMMUTABLE", Cap::LinuxImmutable),
    ("NET_BIND_SERVICE", Cap::NetBindService),
    ("NET_BROADCAST", Cap::NetBroadcast),
    ("NET_ADMIN", Cap::NetAdmin),
    ("NET_RAW", Cap::NetRaw),
    ("IPC_LOCK", Cap::IpcLock),
    ("IPC_OWNER", Cap::IpcOwner),
    ("SYS_MODULE", Cap::SysModule),
    ("SYS_RAWIO", Cap::SysRawio),
    ("SYS_CHROOT", Cap::SysChroot),
    ("SYS_PTRACE", Cap::SysPtrace),
    ("SYS_PACCT", Cap::SysPacct),
    ("SYS_ADMIN", Cap::SysAdmin),
    ("SYS_BOOT", Cap::SysBoot),
    ("SYS_NICE", Cap::SysNice),
    ("SYS_RESOURCE", Cap::SysResource),
    ("SYS_TIME", Cap::SysTime),
    ("SYS_TTY_CONFIG", Cap::SysTtyConfig),
    ("MKNOD", Cap::Mknod),
    ("LEASE", Cap::Lease),
    ("AUDIT_WRITE", Cap::AuditWrite),
    ("AUDIT_CONTROL", Cap::AuditControl),
    ("SETFCAP", Cap::Setfcap),
    ("MAC_OVERRIDE", Cap::MacOverride),
    ("MAC_ADMIN", Cap::MacAdmin),
    ("SYSLOG", Cap::Syslog),
    ("WAKE_ALARM", Cap::WakeAlarm),
    ("BLOCK_SUSPEND", Cap::BlockSuspend),
    ("AUDIT_READ", Cap::AuditRead),
    ("PERFMON", Cap::Perfmon),
    ("BPF", Cap::Bpf),
    ("CHECKPOINT_RESTORE", Cap::CheckpointRestore),
];

/// The capabilities an unprivileged container gets by default.
pub const DEFAULT_CAPABILITIES: [Cap; 14] = [
    Cap::Chown,
    Cap::DacOverride,
    Cap::Fsetid,
    Cap::Fowner,
    Cap::Mknod,
    Cap::NetRaw,
    Cap::Setgid,
    Cap::Setuid,
    Cap::Setfcap,
    Cap::Setpcap,
    Cap::NetBindService,
    Cap::SysChroot,
    Cap::Kill,
    Cap::AuditWrite,
];

/// `"net_admin"`, `"CAP_NET_ADMIN"` → `NET_ADMIN`; `None` for `ALL`.
fn parse(name: &str) -> Result<Option<Cap>, SpecError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if bare == "ALL" {
        return Ok(None);
    }
    ALL.iter()
        .find(|(n, _)| *n == bare)
        .map(|(_, cap)| Some(*cap))
        .ok_or_else(|| SpecError::UnknownCapability(name.to_owned()))
}

/// Every capability in `grantable` (bit n = capability n).
fn all_grantable(grantable: u64) -> Capabilities {
    ALL.iter()
        .enumerate()
        .filter(|(n, _)| grantable & (1 << n) != 0)
        .map(|(_, (_, cap))| *cap)
        .collect()
}

/// Whether `cap` is in `grantable`.
fn is_grantable(cap: Cap, grantable: u64) -> bool {
    ALL.iter()
        .position(|(_, c)| *c == cap)
        .is_some_and(|n| grantable & (1 << n) != 0)
}

/// The capability sets of the container's process. `grantable` is what the host can give
/// ([`crate::HostFeatures::capabilities`]): privileged and `ALL` mean all of it, the
/// default set is limited to it, and naming a capability outside it is an error.
pub(crate) fn capabilities(
    sc: Option<&v1::LinuxContainerSecurityContext>,
    grantable: u64,
) -> Result<LinuxCapabilities, SpecError> {
    let privileged = sc.is_some_and(|s| s.privileged);
    let requested = sc.and_then(|s| s.capabilities.as_ref());
    let mut set: Capabilities = if privileged {
        all_grantable(grantable)
    } else {
        DEFAULT_CAPABILITIES
            .into_iter()
            .filter(|c| is_grantable(*c, grantable))
            .collect()
    };
    let mut ambient = Capabilities::new();
    if let Some(req) = requested {
        let add = parse_all(&req.add_capabilities, grantable)?;
        let drop = parse_all(&req.drop_capabilities, ALL_MASK)?;
        if add.contains(&None) {
            set = all_grantable(grantable);
        }
        if drop.contains(&None) {
            set.clear();
        }
        set.extend(add.iter().flatten());
        for cap in drop.iter().flatten() {
            set.remove(cap);
        }
        ambient = parse_all(&req.add_ambient_capabilities, grantable)?
            .into_iter()
            .flatten()
            .collect();
    }
    set.extend(&ambient);

    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps.set_inheritable(Some(ambient.clone()));
    caps.set_ambient(Some(ambient));
    Ok(caps)
}

/// Every capability, for names that need not be grantable (drops).
const ALL_MASK: u64 = crate::host::ALL_CAPS;

/// Parses names (`None` for ALL); a named capability outside `grantable` is an error.
fn parse_all(names: &[String], grantable: u64) -> Result<Vec<Option<Cap>>, SpecError> {
    names
        .iter()
        .map(|n| match parse(n)? {
            Some(cap) if !is_grantable(cap, grantable) => {
                Err(SpecError::CapabilityUnavailable(n.clone()))
            }
            parsed => Ok(parsed),
        })
        .collect()
}

/// The effective set, for the seccomp profile's capability-gated rules.
pub(crate) fn effective(caps: &LinuxCapabilities) -> HashSet<Cap> {
    caps.effective().clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(
        privileged: bool,
        add: &[&str],
        drop: &[&str],
        ambient: &[&str],
    ) -> v1::LinuxContainerSecurityContext {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        v1::LinuxContainerSecurityContext {
            privileged,
            capabilities: Some(v1::Capability {
                add_capabilities: strings(add),
                drop_capabilities: strings(drop),
                add_ambient_capabilities: strings(ambient),
            }),
            ..Default::default()
        }
    }

    fn bounding(sc: Option<&v1::LinuxContainerSecurityContext>) -> Capabilities {
        capabilities(sc, ALL_MASK)
            .unwrap()
            .bounding()
            .clone()
            .unwrap()
    }

    #[test]
    fn the_table_is_in_kernel_order() {
        // Spot checks against linux/capability.h.
        assert_eq!(ALL[12].0, "NET_ADMIN");
        assert_eq!(ALL[21].0, "SYS_ADMIN");
        assert_eq!(ALL[29].0, "AUDIT_WRITE");
        assert_eq!(ALL[40].0, "CHECKPOINT_RESTORE");
    }

    #[test]
    fn defaults_without_a_context() {
        let caps = capabilities(None, ALL_MASK).unwrap();
        let default: Capabilities = DEFAULT_CAPABILITIES.into_iter().collect();
        assert_eq!(caps.bounding().as_ref(), Some(&default));
        assert_eq!(caps.effective().as_ref(), Some(&default));
        assert_eq!(caps.permitted().as_ref(), Some(&default));
        assert_eq!(caps.inheritable().as_ref(), Some(&Capabilities::new()));
        assert_eq!(caps.ambient().as_ref(), Some(&Capabilities::new()));
    }

    #[test]
    fn add_and_drop() {
        let set = bounding(Some(&sc(false, &["NET_ADMIN"], &[], &[])));
        assert!(set.contains(&Cap::NetAdmin) && set.contains(&Cap::Chown));
        let set = bounding(Some(&sc(false, &[], &["NET_RAW"], &[])));
        assert!(!set.contains(&Cap::NetRaw) && set.contains(&Cap::Chown));
        let set = bounding(Some(&sc(false, &["cap_sys_time", "Cap_Bpf"], &[], &[])));
        assert!(set.contains(&Cap::SysTime) && set.contains(&Cap::Bpf));
    }

    #[test]
    fn all_semantics() {
        assert_eq!(bounding(Some(&sc(false, &["ALL"], &[], &[]))).len(), 41);
        assert!(bounding(Some(&sc(false, &[], &["ALL"], &[]))).is_empty());
        assert!(bounding(Some(&sc(false, &["NET_ADMIN"], &["all"], &[]))).len() == 1);
        let set = bounding(Some(&sc(false, &["all"], &["CHOWN"], &[])));
        assert_eq!(set.len(), 40);
        assert!(!set.contains(&Cap::Chown));
    }

    #[test]
    fn privileged_gets_every_grantable_capability() {
        let privileged = sc(true, &[], &[], &[]);
        assert_eq!(bounding(Some(&privileged)).len(), 41);
        // A host whose daemon lacks SYS_RESOURCE (24) on a kernel knowing 0..=37.
        let grantable = ((1u64 << 38) - 1) & !(1 << 24);
        let set = capabilities(Some(&privileged), grantable)
            .unwrap()
            .bounding()
            .clone()
            .unwrap();
        assert_eq!(set.len(), 37);
        assert!(set.contains(&Cap::AuditRead) && !set.contains(&Cap::Bpf));
        assert!(!set.contains(&Cap::SysResource));
        let all = capabilities(Some(&sc(false, &["ALL"], &[], &[])), grantable).unwrap();
        assert_eq!(all.bounding().as_ref(), Some(&set));
        // Naming one it cannot grant is an error; dropping it is fine.
        assert!(matches!(
            capabilities(Some(&sc(false, &["SYS_RESOURCE"], &[], &[])), grantable),
            Err(SpecError::CapabilityUnavailable(n)) if n == "SYS_RESOURCE"
        ));
        assert!(capabilities(Some(&sc(false, &[], &["BPF"], &[])), grantable).is_ok());
        // The default set is limited to what can be granted.
        let without_net_raw = ALL_MASK & !(1 << 13);
        let set = capabilities(None, without_net_raw)
            .unwrap()
            .bounding()
            .clone()
            .unwrap();
        assert_eq!(set.len(), 13);
    }

    #[test]
    fn ambient_capabilities_are_also_inheritable_and_permitted() {
        let caps = capabilities(
            Some(&sc(false, &[], &["ALL"], &["NET_BIND_SERVICE"])),
            ALL_MASK,
        )
        .unwrap();
        let one: Capabilities = [Cap::NetBindService].into_iter().collect();
        assert_eq!(caps.ambient().as_ref(), Some(&one));
        assert_eq!(caps.inheritable().as_ref(), Some(&one));
        assert_eq!(caps.permitted().as_ref(), Some(&one));
        assert_eq!(caps.effective().as_ref(), Some(&one));
    }

    #[test]
    fn unknown_names_fail() {
        assert!(matches!(
            capabilities(Some(&sc(false, &["CAP_FLY"], &[], &[])), ALL_MASK),
            Err(SpecError::UnknownCapability(n)) if n == "CAP_FLY"
        ));
    }
}

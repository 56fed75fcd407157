//! Which sysctls a pod may set: only those the kernel keeps per namespace, and only for
//! namespaces the pod owns. Validation happens before any namespace is created.

use std::path::PathBuf;

use nix::errno::Errno;

use super::sys::NsSys;
use super::NsError;

/// IPC-namespaced `kernel.*` sysctls (System V shared memory, message queues, semaphores).
const IPC_KERNEL_SYSCTLS: [&str; 8] = [
    "shm_rmid_forced",
    "shmmax",
    "shmall",
    "shmmni",
    "msgmax",
    "msgmnb",
    "msgmni",
    "sem",
];

/// A validated sysctl: the name as requested, its `/proc/sys` file and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sysctl {
    pub name: String,
    pub path: PathBuf,
    pub value: String,
}

/// Validates `sysctls` for a pod with (or without) its own network and IPC namespaces.
pub(crate) fn validate(
    sysctls: &[(String, String)],
    new_net: bool,
    new_ipc: bool,
) -> Result<Vec<Sysctl>, NsError> {
    sysctls
        .iter()
        .map(|(name, value)| validate_one(name, value, new_net, new_ipc))
        .collect()
}

fn validate_one(name: &str, value: &str, new_net: bool, new_ipc: bool) -> Result<Sysctl, NsError> {
    let refuse = |reason| NsError::SysctlNotAllowed {
        name: name.to_owned(),
        reason,
    };
    // `a/b/c` is the spelling for names whose parts contain dots (`eth0.100`).
    let parts: Vec<&str> = if name.contains('/') {
        name.split('/').collect()
    } else {
        name.split('.').collect()
    };
    if parts
        .iter()
        .any(|part| part.is_empty() || *part == "." || *part == "..")
    {
        return Err(refuse("malformed name (empty, `.` or `..` part)"));
    }
    if value.contains(['\0', '\n']) {
        return Err(refuse("the value contains a NUL or newline"));
    }
    match parts.as_slice() {
        ["net", _, ..] if new_net => {}
        ["net", _, ..] => return Err(refuse(
            "net.* sysctls need the pod's own network namespace (this pod uses the host network)",
        )),
        ["kernel", leaf] if IPC_KERNEL_SYSCTLS.contains(leaf) => {
            if !new_ipc {
                return Err(refuse(
                    "IPC sysctls need the pod's own IPC namespace (this pod uses host IPC)",
                ));
            }
        }
        ["fs", "mqueue", _, ..] => {
            if !new_ipc {
                return Err(refuse(
                    "fs.mqueue.* sysctls need the pod's own IPC namespace (this pod uses host IPC)",
                ));
            }
        }
        _ => return Err(refuse("not a namespaced sysctl berth allows")),
    }
    let mut path = PathBuf::from("/proc/sys");
    path.extend(&parts);
    Ok(Sysctl {
        name: name.to_owned(),
        path,
        value: value.to_owned(),
    })
}

/// Writes `sysctls` as the calling thread sees `/proc/sys` (inside the pod's namespaces it
/// has joined). Where `/proc/sys` is mounted read-only (berthd in a node container: nspawn,
/// or docker without --privileged, mount it so), the writes are retried once with `/proc/sys`
/// writable in a mount namespace of the thread's own ([`NsSys::with_writable_proc_sys`]):
/// the values only reach the pod's own network and IPC namespaces, as [`validate`] allows,
/// never the node's.
pub(crate) fn write_all(sys: &impl NsSys, sysctls: &[Sysctl]) -> Result<(), NsError> {
    let write = || {
        sysctls.iter().try_for_each(|sysctl| {
            sys.write_sysctl(&sysctl.path, &sysctl.value)
                .map_err(|source| NsError::Sysctl {
                    name: sysctl.name.clone(),
                    path: sysctl.path.clone(),
                    source,
                })
        })
    };
    match write() {
        Err(NsError::Sysctl { source, .. })
            if source.raw_os_error() == Some(Errno::EROFS as i32) =>
        {
            sys.with_writable_proc_sys(&mut || write())
        }
        done => done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, net: bool, ipc: bool) -> Result<PathBuf, String> {
        validate(&[(name.to_owned(), "1".to_owned())], net, ipc)
            .map(|mut v| v.remove(0).path)
            .map_err(|err| match err {
                NsError::SysctlNotAllowed { reason, .. } => reason.to_owned(),
                other => panic!("unexpected error {other:?}"),
            })
    }

    #[test]
    fn namespaced_sysctls_are_allowed_with_their_namespace() {
        for (name, path) in [
            (
                "net.ipv4.ip_unprivileged_port_start",
                "/proc/sys/net/ipv4/ip_unprivileged_port_start",
            ),
            (
                "net/ipv4/conf/eth0.100/rp_filter",
                "/proc/sys/net/ipv4/conf/eth0.100/rp_filter",
            ),
            ("kernel.shm_rmid_forced", "/proc/sys/kernel/shm_rmid_forced"),
            ("kernel/sem", "/proc/sys/kernel/sem"),
            ("kernel.msgmnb", "/proc/sys/kernel/msgmnb"),
            ("fs.mqueue.msg_max", "/proc/sys/fs/mqueue/msg_max"),
        ] {
            assert_eq!(check(name, true, true), Ok(PathBuf::from(path)), "{name}");
        }
    }

    #[test]
    fn host_namespaces_forbid_their_sysctls() {
        assert!(check("net.ipv4.ip_forward", false, true)
            .unwrap_err()
            .contains("host network"));
        assert!(check("kernel.shmmax", true, false)
            .unwrap_err()
            .contains("host IPC"));
        assert!(check("fs.mqueue.queues_max", true, false)
            .unwrap_err()
            .contains("host IPC"));
    }

    #[test]
    fn non_namespaced_and_malformed_names_are_refused() {
        for name in [
            "kernel.hostname",
            "kernel.domainname",
            "vm.swappiness",
            "kernel.shm_rmid_forced.x",
            "kernel",
            "net",
            "fs.mqueue",
            "fs.file-max",
            "/net/ipv4/ip_forward",
            "net/../../kernel/core_pattern",
            "net..ipv4",
            "net.ipv4.",
            "net/./ipv4/x",
            "",
        ] {
            assert!(check(name, true, true).is_err(), "{name:?} must be refused");
        }
    }

    #[test]
    fn values_with_nul_or_newline_are_refused() {
        let err = validate(&[("kernel.sem".into(), "1\n2".into())], true, true).unwrap_err();
        assert!(err.to_string().contains("newline"), "{err}");
        let ok = validate(
            &[("kernel.sem".into(), "250 32000 32 128".into())],
            true,
            true,
        );
        assert_eq!(ok.unwrap()[0].value, "250 32000 32 128");
    }
}

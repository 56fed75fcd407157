//! berth's built-in `RuntimeDefault` seccomp profile.
//!
//! Approach: allow by default and deny (EPERM) a list of syscalls, instead of the long
//! allow-list other runtimes ship. The deny-list is what matters for isolation: syscalls
//! that reach kernel state no namespace covers (modules, kexec, reboot, the keyring, the
//! clock, swap, accounting, raw I/O ports), that create or enter namespaces and mounts
//! (the usual first step of container escapes), and large attack surfaces containers rarely
//! need (bpf, perf events, userfaultfd, io_uring, AF_VSOCK sockets, obsolete syscalls).
//! Where a capability legitimately grants the operation, holding it lifts the denial, as the
//! usual default profiles do. `clone3` fails with ENOSYS (its flags cannot be inspected, so
//! libc falls back to `clone`, whose namespace flags are checked). `ptrace`,
//! `process_vm_*` and `kcmp` stay allowed: kernels since 4.8 run seccomp after ptrace, so
//! they no longer bypass the filter.
//!
//! The trade-off is stated plainly: a syscall added to a future kernel is allowed until it
//! is added here, where an allow-list would deny it. In exchange nothing a normal workload
//! does is refused by accident.

use std::collections::HashSet;

use oci_spec::runtime::{
    Arch, Capability as Cap, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg,
    LinuxSeccompOperator, LinuxSyscall,
};

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Syscalls denied unless the container holds one of the capabilities (none: always).
struct Deny {
    names: &'static [&'static str],
    unless: &'static [Cap],
    errno: u32,
}

const DENY: &[Deny] = &[
    // Kernel keyring: not namespaced.
    Deny {
        names: &["add_key", "keyctl", "request_key"],
        unless: &[],
        errno: EPERM,
    },
    // Obsolete or unneeded interfaces with a history of bugs.
    Deny {
        names: &[
            "create_module",
            "get_kernel_syms",
            "query_module",
            "nfsservctl",
            "_sysctl",
            "uselib",
            "vm86",
            "vm86old",
            "lookup_dcookie",
        ],
        unless: &[],
        errno: EPERM,
    },
    Deny {
        names: &["io_uring_setup", "io_uring_enter", "io_uring_register"],
        unless: &[],
        errno: EPERM,
    },
    Deny {
        names: &["userfaultfd"],
        unless: &[Cap::SysPtrace],
        errno: EPERM,
    },
    Deny {
        names: &["init_module", "finit_module", "delete_module"],
        unless: &[Cap::SysModule],
        errno: EPERM,
    },
    Deny {
        names: &["kexec_load", "kexec_file_load", "reboot"],
        unless: &[Cap::SysBoot],
        errno: EPERM,
    },
    Deny {
        names: &["iopl", "ioperm"],
        unless: &[Cap::SysRawio],
        errno: EPERM,
    },
    Deny {
        names: &["acct"],
        unless: &[Cap::SysPacct],
        errno: EPERM,
    },
    Deny {
        names: &["syslog"],
        unless: &[Cap::Syslog],
        errno: EPERM,
    },
    Deny {
        names: &["vhangup"],
        unless: &[Cap::SysTtyConfig],
        errno: EPERM,
    },
    Deny {
        names: &["open_by_handle_at"],
        unless: &[Cap::DacReadSearch],
        errno: EPERM,
    },
    Deny {
        names: &[
            "settimeofday",
            "stime",
            "clock_settime",
            "clock_settime64",
            "clock_adjtime",
            "clock_adjtime64",
        ],
        unless: &[Cap::SysTime],
        errno: EPERM,
    },
    Deny {
        names: &["bpf"],
        unless: &[Cap::SysAdmin, Cap::Bpf],
        errno: EPERM,
    },
    Deny {
        names: &["perf_event_open"],
        unless: &[Cap::SysAdmin, Cap::Perfmon],
        errno: EPERM,
    },
    // Mounts, namespaces and other administration.
    Deny {
        names: &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "mount_setattr",
            "unshare",
            "setns",
            "swapon",
            "swapoff",
            "quotactl",
            "quotactl_fd",
            "fanotify_init",
            "name_to_handle_at",
        ],
        unless: &[Cap::SysAdmin],
        errno: EPERM,
    },
    Deny {
        names: &["clone3"],
        unless: &[Cap::SysAdmin],
        errno: ENOSYS,
    },
];

/// `clone` flags that create namespaces, denied without CAP_SYS_ADMIN.
const CLONE_NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

/// `AF_VSOCK`: host/guest sockets, denied to every container.
const AF_VSOCK: u64 = 40;

fn syscall(names: &[&str], errno: u32, args: Option<Vec<LinuxSeccompArg>>) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.iter().map(|n| n.to_string()).collect());
    s.set_action(LinuxSeccompAction::ScmpActErrno);
    s.set_errno_ret(Some(errno));
    s.set_args(args);
    s
}

fn arg(index: usize, value: u64, value_two: u64, op: LinuxSeccompOperator) -> LinuxSeccompArg {
    super::seccomp_arg(index, value, Some(value_two), op)
}

/// The architectures the filter covers: the native one and those it can also run.
pub(crate) fn native_architectures() -> Vec<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "aarch64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        "x86" => vec![Arch::ScmpArchX86],
        "arm" => vec![Arch::ScmpArchArm],
        _ => vec![Arch::ScmpArchNative],
    }
}

/// The built-in profile for a container with effective capabilities `caps`.
pub fn runtime_default(caps: &HashSet<Cap>) -> LinuxSeccomp {
    let held = |unless: &[Cap]| unless.iter().any(|c| caps.contains(c));
    let mut syscalls: Vec<LinuxSyscall> = DENY
        .iter()
        .filter(|d| !held(d.unless))
        .map(|d| syscall(d.names, d.errno, None))
        .collect();
    if !caps.contains(&Cap::SysAdmin) {
        for flag in CLONE_NAMESPACE_FLAGS {
            let masked = arg(0, *flag, *flag, LinuxSeccompOperator::ScmpCmpMaskedEq);
            syscalls.push(syscall(&["clone"], EPERM, Some(vec![masked])));
        }
    }
    let vsock = arg(0, AF_VSOCK, 0, LinuxSeccompOperator::ScmpCmpEq);
    syscalls.push(syscall(&["socket"], EPERM, Some(vec![vsock])));

    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActAllow);
    profile.set_architectures(Some(native_architectures()));
    profile.set_syscalls(Some(syscalls));
    profile
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(profile: &LinuxSeccomp, name: &str) -> bool {
        profile
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .any(|s| s.names().iter().any(|n| n == name) && s.args().is_none())
    }

    #[test]
    fn default_caps_deny_the_dangerous_syscalls() {
        let caps: HashSet<Cap> = crate::capabilities::DEFAULT_CAPABILITIES
            .into_iter()
            .collect();
        let p = runtime_default(&caps);
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
        for name in [
            "kexec_load",
            "kexec_file_load",
            "open_by_handle_at",
            "init_module",
            "finit_module",
            "delete_module",
            "iopl",
            "ioperm",
            "swapon",
            "swapoff",
            "syslog",
            "reboot",
            "mount",
            "umount2",
            "pivot_root",
            "bpf",
            "perf_event_open",
            "add_key",
            "keyctl",
            "request_key",
            "unshare",
            "setns",
            "userfaultfd",
            "acct",
            "lookup_dcookie",
            "quotactl",
            "nfsservctl",
            "vm86",
            "vm86old",
            "uselib",
            "clock_settime",
            "settimeofday",
            "stime",
            "name_to_handle_at",
            "create_module",
            "get_kernel_syms",
            "query_module",
            "_sysctl",
            "fanotify_init",
            "fsopen",
            "open_tree",
            "clone3",
        ] {
            assert!(denied(&p, name), "{name} not denied");
        }
        for name in ["ptrace", "chmod", "sethostname", "read", "clone"] {
            assert!(!denied(&p, name), "{name} denied outright");
        }
        let all = p.syscalls().as_ref().unwrap();
        let clone3 = all
            .iter()
            .find(|s| s.names().contains(&"clone3".to_string()))
            .unwrap();
        assert_eq!(clone3.errno_ret(), Some(ENOSYS));
        let clone_rules: Vec<_> = all
            .iter()
            .filter(|s| s.names() == &["clone".to_string()])
            .collect();
        assert_eq!(clone_rules.len(), CLONE_NAMESPACE_FLAGS.len());
        let newuser = clone_rules
            .iter()
            .flat_map(|s| s.args().clone().unwrap())
            .find(|a| a.value() == 0x1000_0000)
            .unwrap();
        assert_eq!(
            (newuser.value_two(), newuser.op()),
            (Some(0x1000_0000), LinuxSeccompOperator::ScmpCmpMaskedEq)
        );
    }

    #[test]
    fn capabilities_lift_their_denials() {
        let caps: HashSet<Cap> = [Cap::SysAdmin, Cap::SysTime, Cap::SysBoot]
            .into_iter()
            .collect();
        let p = runtime_default(&caps);
        for name in [
            "mount",
            "unshare",
            "setns",
            "clone3",
            "bpf",
            "clock_settime",
            "reboot",
        ] {
            assert!(!denied(&p, name), "{name} still denied");
        }
        assert!(denied(&p, "init_module") && denied(&p, "keyctl"));
        let clone_rules = p
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|s| s.names() == &["clone".to_string()])
            .count();
        assert_eq!(clone_rules, 0);
    }

    #[test]
    fn serialises_in_the_oci_form() {
        let p = runtime_default(&HashSet::new());
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(json["syscalls"][0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(json["syscalls"][0]["errnoRet"], 1);
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                json["architectures"],
                serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
            );
        }
    }
}

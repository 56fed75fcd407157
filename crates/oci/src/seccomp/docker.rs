//! Localhost seccomp profiles: JSON in Docker's format, which is the OCI `LinuxSeccomp`
//! form plus a few extras this module resolves for the container at hand:
//!
//! - `archMap` (`architecture` + `subArchitectures`): the entry of the native architecture
//!   gives the filter's architectures (a plain `architectures` list is used as it is);
//! - per-rule `name` (old single-name form) next to `names`;
//! - per-rule `includes`/`excludes` with `caps` (all listed must / none may be held),
//!   `arches` (Go names: amd64, arm64…) and `minKernel` (`"4.8"`), which drop rules that do
//!   not apply; `comment` and unknown fields are ignored.

use std::collections::HashSet;
use std::path::PathBuf;

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

use crate::error::ProfileProblem;
use crate::host::parse_kernel;
use crate::HostFeatures;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: LinuxSeccompAction,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<Arch>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    syscalls: Vec<Rule>,
    #[serde(default)]
    flags: Vec<LinuxSeccompFilterFlag>,
    listener_path: Option<PathBuf>,
    listener_metadata: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Vec<Arch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Vec<String>,
    name: Option<String>,
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<Arg>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: LinuxSeccompOperator,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    min_kernel: Option<String>,
}

/// The Go name of the architecture berth was built for, as `arches` filters use.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn native_arch() -> Option<Arch> {
    super::default::native_architectures().into_iter().next()
}

/// Capability names as profiles write them (`CAP_SYS_ADMIN`).
fn holds(caps: &HashSet<Capability>, name: &str) -> bool {
    let quoted = serde_json::Value::String(name.to_owned());
    serde_json::from_value::<Capability>(quoted).is_ok_and(|cap| caps.contains(&cap))
}

fn kernel_at_least(host: &HostFeatures, min: &str) -> bool {
    match (host.kernel, parse_kernel(min)) {
        (Some(have), Some(need)) => have >= need,
        _ => true,
    }
}

impl Rule {
    fn applies(&self, caps: &HashSet<Capability>, host: &HostFeatures) -> bool {
        let inc = &self.includes;
        let exc = &self.excludes;
        inc.caps.iter().all(|c| holds(caps, c))
            && (inc.arches.is_empty() || inc.arches.iter().any(|a| a == go_arch()))
            && inc
                .min_kernel
                .as_deref()
                .is_none_or(|k| kernel_at_least(host, k))
            && !exc.caps.iter().any(|c| holds(caps, c))
            && !exc.arches.iter().any(|a| a == go_arch())
            && exc
                .min_kernel
                .as_deref()
                .is_none_or(|k| !kernel_at_least(host, k))
    }
}

/// Parses `text` and resolves it for a container holding `caps` on `host`.
pub(crate) fn convert(
    text: &[u8],
    caps: &HashSet<Capability>,
    host: &HostFeatures,
) -> Result<LinuxSeccomp, ProfileProblem> {
    let profile: Profile = serde_json::from_slice(text).map_err(ProfileProblem::Parse)?;
    let mut architectures = profile.architectures;
    if architectures.is_empty() {
        if let Some(entry) = profile
            .arch_map
            .iter()
            .find(|m| Some(m.architecture) == native_arch())
        {
            architectures.push(entry.architecture);
            architectures.extend(&entry.sub_architectures);
        }
    }
    let mut syscalls = Vec::with_capacity(profile.syscalls.len());
    for (i, rule) in profile.syscalls.into_iter().enumerate() {
        let mut names = rule.names.clone();
        names.extend(rule.name.clone());
        if names.is_empty() {
            return Err(ProfileProblem::EmptyRule(i));
        }
        if !rule.applies(caps, host) {
            continue;
        }
        let mut s = LinuxSyscall::default();
        s.set_names(names);
        s.set_action(rule.action);
        s.set_errno_ret(rule.errno_ret);
        if !rule.args.is_empty() {
            s.set_args(Some(rule.args.iter().map(to_oci_arg).collect()));
        }
        syscalls.push(s);
    }
    let mut out = LinuxSeccomp::default();
    out.set_default_action(profile.default_action);
    out.set_default_errno_ret(profile.default_errno_ret);
    out.set_architectures(Some(architectures).filter(|a| !a.is_empty()));
    out.set_flags(Some(profile.flags).filter(|f| !f.is_empty()));
    out.set_listener_path(profile.listener_path);
    out.set_listener_metadata(profile.listener_metadata);
    out.set_syscalls(Some(syscalls).filter(|s| !s.is_empty()));
    Ok(out)
}

fn to_oci_arg(arg: &Arg) -> LinuxSeccompArg {
    let two = Some(arg.value_two).filter(|v| *v != 0);
    super::seccomp_arg(arg.index, arg.value, two, arg.op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert_str(text: &str, caps: &[Capability]) -> LinuxSeccomp {
        let caps = caps.iter().copied().collect();
        let host = HostFeatures {
            kernel: Some((6, 1)),
            ..Default::default()
        };
        convert(text.as_bytes(), &caps, &host).unwrap()
    }

    fn names(p: &LinuxSeccomp) -> Vec<Vec<String>> {
        p.syscalls()
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|s| s.names().clone())
            .collect()
    }

    #[test]
    fn critest_block_chmod_profile() {
        let p = convert_str(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO"}]}"#,
            &[],
        );
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
        let rule = &p.syscalls().as_ref().unwrap()[0];
        assert_eq!(rule.names(), &["chmod", "fchmodat"]);
        assert_eq!(rule.action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(rule.errno_ret(), None);
        assert!(p.architectures().is_none());
    }

    #[test]
    fn docker_extras_are_resolved() {
        let text = r#"{
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "basics"},
                {"name": "sethostname", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
                {"names": ["newer"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "9.0"}},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}],
                 "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
                {"names": ["not_on_amd64"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}}
            ]}"#;
        let p = convert_str(text, &[]);
        assert_eq!(p.default_errno_ret(), Some(1));
        let got = names(&p);
        assert!(got.contains(&vec!["sethostname".to_string()]));
        assert!(got.contains(&vec!["ptrace".to_string()]));
        assert!(got.contains(&vec!["personality".to_string()]));
        assert!(!got.contains(&vec!["mount".to_string()]));
        assert!(!got.contains(&vec!["newer".to_string()]));
        let sethostname = p
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .find(|s| s.names()[0] == "sethostname")
            .unwrap();
        assert_eq!(sethostname.errno_ret(), Some(13));
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                p.architectures().as_deref(),
                Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
            );
            assert!(got.contains(&vec!["arch_prctl".to_string()]));
            assert!(!got.contains(&vec!["not_on_amd64".to_string()]));
        }

        let admin = convert_str(text, &[Capability::SysAdmin]);
        let got = names(&admin);
        assert!(got.contains(&vec!["mount".to_string()]));
        assert!(!got.contains(&vec!["personality".to_string()]));
    }

    #[test]
    fn args_and_oci_fields_pass_through() {
        let p = convert_str(
            r#"{"defaultAction": "SCMP_ACT_KILL_PROCESS", "architectures": ["SCMP_ARCH_AARCH64"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#,
            &[],
        );
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActKillProcess);
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64][..])
        );
        assert_eq!(
            p.flags().as_deref(),
            Some(&[LinuxSeccompFilterFlag::SeccompFilterFlagLog][..])
        );
        let arg = p.syscalls().as_ref().unwrap()[0].args().clone().unwrap()[0];
        assert_eq!(
            (arg.index(), arg.value(), arg.value_two(), arg.op()),
            (0, 2114060288, None, LinuxSeccompOperator::ScmpCmpMaskedEq)
        );
    }

    #[test]
    fn malformed_profiles_fail() {
        let caps = HashSet::new();
        let host = HostFeatures::default();
        for text in [
            "{}",
            r#"{"defaultAction": "SCMP_ACT_MAYBE"}"#,
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "bogus"}]}"#,
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]}"#,
        ] {
            assert!(
                matches!(
                    convert(text.as_bytes(), &caps, &host),
                    Err(ProfileProblem::Parse(_))
                ),
                "{text}"
            );
        }
        let empty = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}"#;
        assert!(matches!(
            convert(empty.as_bytes(), &caps, &host),
            Err(ProfileProblem::EmptyRule(0))
        ));
    }
}

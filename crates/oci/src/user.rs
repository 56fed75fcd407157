//! The process's uid, gid and supplementary groups, resolved against the image's
//! `/etc/passwd` and `/etc/group` as containerd does.
//!
//! The user comes from `run_as_user`, else `run_as_username`, else the image's `User`
//! (`uid`, `name`, `uid:gid`, `name:group`, each side by number or name), else root. A name
//! must exist in the image; a number need not (its gid is then 0). `run_as_group` replaces
//! the gid and needs one of the two `run_as_*` user fields. The supplementary groups are the
//! primary gid, the CRI `supplemental_groups` (container and pod) and, with the Merge policy,
//! the groups of `/etc/group` that list the user as a member; sorted, without duplicates.

use cri_api::v1;

use crate::{security, ImageView, SpecError};

/// Contents of the rootfs's `/etc/passwd` and `/etc/group` ("" when absent). The caller
/// reads them from the mounted rootfs without following symlinks out of it.
#[derive(Debug, Clone, Default)]
pub struct UserDb {
    /// `/etc/passwd`.
    pub passwd: String,
    /// `/etc/group`.
    pub group: String,
}

/// The identity the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
    /// Supplementary group IDs, sorted, including the primary gid.
    pub additional_gids: Vec<u32>,
}

struct Passwd<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

struct Group<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

impl UserDb {
    fn users(&self) -> impl Iterator<Item = Passwd<'_>> {
        entries(&self.passwd).filter_map(|f| {
            Some(Passwd {
                name: f.first()?,
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
    }

    fn groups(&self) -> impl Iterator<Item = Group<'_>> {
        entries(&self.group).filter_map(|f| {
            Some(Group {
                name: f.first()?,
                gid: f.get(2)?.parse().ok()?,
                members: f.get(3).copied().unwrap_or(""),
            })
        })
    }

    fn user_named(&self, name: &str) -> Option<Passwd<'_>> {
        self.users().find(|u| u.name == name)
    }

    fn user_with_uid(&self, uid: u32) -> Option<Passwd<'_>> {
        self.users().find(|u| u.uid == uid)
    }

    fn gid_of_group(&self, name: &str) -> Option<u32> {
        self.groups().find(|g| g.name == name).map(|g| g.gid)
    }

    /// gids of the groups listing `user` as a member.
    fn memberships(&self, user: &str) -> Vec<u32> {
        self.groups()
            .filter(|g| g.members.split(',').any(|m| m.trim() == user))
            .map(|g| g.gid)
            .collect()
    }
}

/// Non-comment lines of a colon-separated database, split into fields.
fn entries(db: &str) -> impl Iterator<Item = Vec<&str>> {
    db.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

/// The user the container runs as (also what ContainerStatus.user reports).
pub fn resolve_user(
    container: &v1::ContainerConfig,
    pod: &v1::PodSandboxConfig,
    image: &ImageView,
    users: &UserDb,
) -> Result<ResolvedUser, SpecError> {
    let sc = security::container_context(container);
    let pod_sc = security::pod_context(pod);
    let run_as_user = sc.and_then(|s| s.run_as_user.as_ref()).map(|v| v.value);
    let run_as_username = sc.map_or("", |s| s.run_as_username.as_str());
    let run_as_group = sc.and_then(|s| s.run_as_group.as_ref()).map(|v| v.value);

    let (uid, mut gid, name) = if let Some(uid) = run_as_user {
        by_uid(users, id("run_as_user", uid)?)
    } else if !run_as_username.is_empty() {
        by_user_field(users, run_as_username)?
    } else if run_as_group.is_some() {
        return Err(SpecError::RunAsGroupWithoutUser);
    } else {
        match image.user()? {
            Some(user) => by_image_user(users, user)?,
            None => by_uid(users, 0),
        }
    };
    if let Some(group) = run_as_group {
        gid = id("run_as_group", group)?;
    }

    let mut groups = vec![gid];
    for sc_groups in [
        sc.map(|s| &s.supplemental_groups),
        pod_sc.map(|s| &s.supplemental_groups),
    ]
    .into_iter()
    .flatten()
    {
        for &group in sc_groups {
            groups.push(id("supplemental_groups", group)?);
        }
    }
    if !strict_policy(sc, pod_sc)? {
        if let Some(name) = name {
            groups.extend(users.memberships(&name));
        }
    }
    groups.sort_unstable();
    groups.dedup();
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: groups,
    })
}

/// Strict when the container's or the pod's policy says so.
fn strict_policy(
    sc: Option<&v1::LinuxContainerSecurityContext>,
    pod_sc: Option<&v1::LinuxSandboxSecurityContext>,
) -> Result<bool, SpecError> {
    let policies = [
        sc.map(|s| s.supplemental_groups_policy),
        pod_sc.map(|s| s.supplemental_groups_policy),
    ];
    let mut strict = false;
    for value in policies.into_iter().flatten() {
        match v1::SupplementalGroupsPolicy::try_from(value) {
            Ok(v1::SupplementalGroupsPolicy::Strict) => strict = true,
            Ok(v1::SupplementalGroupsPolicy::Merge) => {}
            Err(_) => {
                return Err(SpecError::UnknownEnum {
                    field: "supplemental_groups_policy",
                    value,
                })
            }
        }
    }
    Ok(strict)
}

/// uid, gid and (when it has one) the name of a numeric user; gid 0 when not in passwd.
fn by_uid(users: &UserDb, uid: u32) -> (u32, u32, Option<String>) {
    match users.user_with_uid(uid) {
        Some(u) => (uid, u.gid, Some(u.name.to_owned())),
        None => (uid, 0, None),
    }
}

/// A user field: a name from passwd, or else a number.
fn by_user_field(users: &UserDb, user: &str) -> Result<(u32, u32, Option<String>), SpecError> {
    if let Some(u) = users.user_named(user) {
        return Ok((u.uid, u.gid, Some(u.name.to_owned())));
    }
    match user.parse::<u32>() {
        Ok(uid) => Ok(by_uid(users, uid)),
        Err(_) => Err(SpecError::UnknownUser(user.to_owned())),
    }
}

/// The image's `User`: `user` or `user:group`, each by name or number.
fn by_image_user(users: &UserDb, spec: &str) -> Result<(u32, u32, Option<String>), SpecError> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let (uid, mut gid, name) = by_user_field(users, user)?;
    if let Some(group) = group.filter(|g| !g.is_empty()) {
        gid = match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => users
                .gid_of_group(group)
                .ok_or_else(|| SpecError::UnknownGroup(group.to_owned()))?,
        };
    }
    Ok((uid, gid, name))
}

fn id(field: &'static str, value: i64) -> Result<u32, SpecError> {
    u32::try_from(value).map_err(|_| SpecError::InvalidId { field, value })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # a comment\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        www-data:x:33:33::/var/www:/bin/false\n\
        default-user:x:1000:1000::/home/default-user:/bin/sh\n\
        broken-line\n";
    const GROUP: &str = "root:x:0:\n\
        www-data:x:33:\n\
        default-user:x:1000:default-user\n\
        staff:x:50:www-data\n\
        group-defined-in-image:x:50000:default-user\n\
        nogroup:x:65534:\n";

    fn db() -> UserDb {
        UserDb {
            passwd: PASSWD.into(),
            group: GROUP.into(),
        }
    }

    fn container(sc: v1::LinuxContainerSecurityContext) -> v1::ContainerConfig {
        v1::ContainerConfig {
            linux: Some(v1::LinuxContainerConfig {
                security_context: Some(sc),
                resources: None,
            }),
            ..Default::default()
        }
    }

    fn resolve(
        sc: v1::LinuxContainerSecurityContext,
        image_user: Option<&str>,
    ) -> Result<ResolvedUser, SpecError> {
        let config = match image_user {
            Some(user) => json!({"config": {"User": user}}),
            None => json!({"config": {}}),
        };
        let image = ImageView {
            config: &config,
            image_ref: "",
        };
        resolve_user(&container(sc), &Default::default(), &image, &db())
    }

    fn int(v: i64) -> Option<v1::Int64Value> {
        Some(v1::Int64Value { value: v })
    }

    fn user(uid: u32, gid: u32, groups: &[u32]) -> ResolvedUser {
        ResolvedUser {
            uid,
            gid,
            additional_gids: groups.to_vec(),
        }
    }

    #[test]
    fn cri_users() {
        let sc = |f: fn(&mut v1::LinuxContainerSecurityContext)| {
            let mut sc = v1::LinuxContainerSecurityContext::default();
            f(&mut sc);
            sc
        };
        #[rustfmt::skip]
        let cases: Vec<(v1::LinuxContainerSecurityContext, Option<&str>, ResolvedUser)> = vec![
            (sc(|_| {}), None, user(0, 0, &[0])),
            (sc(|s| s.run_as_user = int(1001)), None, user(1001, 0, &[0])),
            (sc(|s| s.run_as_user = int(33)), Some("nobody"), user(33, 33, &[33, 50])),
            (sc(|s| s.run_as_username = "nobody".into()), None, user(65534, 65534, &[65534])),
            (sc(|s| s.run_as_username = "4242".into()), None, user(4242, 0, &[0])),
            (sc(|s| { s.run_as_user = int(1001); s.run_as_group = int(1002) }), None, user(1001, 1002, &[1002])),
            (sc(|s| { s.run_as_username = "www-data".into(); s.run_as_group = int(7) }), None, user(33, 7, &[7, 50])),
            (sc(|s| { s.run_as_user = int(1001); s.supplemental_groups = vec![5678, 1234, 1234] }), None, user(1001, 0, &[0, 1234, 5678])),
        ];
        for (sc, image_user, expected) in cases {
            assert_eq!(resolve(sc.clone(), image_user).unwrap(), expected, "{sc:?}");
        }
    }

    #[test]
    fn image_user_forms() {
        #[rustfmt::skip]
        let cases: &[(&str, ResolvedUser)] = &[
            ("1002", user(1002, 0, &[0])),
            ("www-data", user(33, 33, &[33, 50])),
            ("1003:1004", user(1003, 1004, &[1004])),
            ("www-data:1004", user(33, 1004, &[50, 1004])),
            ("nobody:staff", user(65534, 50, &[50])),
            ("1000", user(1000, 1000, &[1000, 50000])),
            ("0:", user(0, 0, &[0])),
        ];
        for (spec, expected) in cases {
            let got = resolve(Default::default(), Some(spec)).unwrap();
            assert_eq!(&got, expected, "{spec}");
        }
    }

    #[test]
    fn unknown_names_fail() {
        let sc = v1::LinuxContainerSecurityContext {
            run_as_username: "ghost".into(),
            ..Default::default()
        };
        assert!(matches!(resolve(sc, None), Err(SpecError::UnknownUser(n)) if n == "ghost"));
        assert!(matches!(
            resolve(Default::default(), Some("ghost")),
            Err(SpecError::UnknownUser(_))
        ));
        assert!(matches!(
            resolve(Default::default(), Some("1000:ghosts")),
            Err(SpecError::UnknownGroup(g)) if g == "ghosts"
        ));
    }

    #[test]
    fn run_as_group_needs_a_user() {
        let sc = v1::LinuxContainerSecurityContext {
            run_as_group: int(1002),
            ..Default::default()
        };
        assert!(matches!(
            resolve(sc, Some("1000")),
            Err(SpecError::RunAsGroupWithoutUser)
        ));
    }

    #[test]
    fn negative_and_huge_ids_fail() {
        for value in [-1, i64::from(u32::MAX) + 1] {
            let sc = v1::LinuxContainerSecurityContext {
                run_as_user: int(value),
                ..Default::default()
            };
            assert!(matches!(
                resolve(sc, None),
                Err(SpecError::InvalidId {
                    field: "run_as_user",
                    ..
                })
            ));
        }
    }

    #[test]
    fn supplemental_groups_policy_merge_and_strict() {
        // critest's predefined-group image: User 1000, member of group 50000; CRI adds 1234.
        for (policy, expected) in [
            (v1::SupplementalGroupsPolicy::Merge, vec![1000, 1234, 50000]),
            (v1::SupplementalGroupsPolicy::Strict, vec![1000, 1234]),
        ] {
            let sc = v1::LinuxContainerSecurityContext {
                supplemental_groups: vec![1234],
                supplemental_groups_policy: policy as i32,
                ..Default::default()
            };
            let got = resolve(sc, Some("1000")).unwrap();
            assert_eq!(got, user(1000, 1000, &expected), "{policy:?}");
        }
    }

    #[test]
    fn pod_level_groups_and_policy_apply() {
        let pod = v1::PodSandboxConfig {
            linux: Some(v1::LinuxPodSandboxConfig {
                security_context: Some(v1::LinuxSandboxSecurityContext {
                    supplemental_groups: vec![777],
                    supplemental_groups_policy: v1::SupplementalGroupsPolicy::Strict as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let config = json!({"config": {"User": "1000"}});
        let image = ImageView {
            config: &config,
            image_ref: "",
        };
        let got = resolve_user(&Default::default(), &pod, &image, &db()).unwrap();
        assert_eq!(got, user(1000, 1000, &[777, 1000]));
    }
}

//! The CRI view of a stored image.

use berth_store::ImageRecord;
use cri_api::v1;

/// `Image` of the CRI from an image record: user from the config's `User` (`uid`, `name`,
/// `uid:gid` or `name:group`: a numeric user is the `uid`, anything else the `username`).
pub(crate) fn to_cri_image(record: &ImageRecord) -> v1::Image {
    let user = record
        .config
        .pointer("/config/User")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let user = user.split(':').next().unwrap_or("");
    let (uid, username) = match user.parse::<i64>() {
        Ok(uid) => (Some(v1::Int64Value { value: uid }), String::new()),
        Err(_) => (None, user.to_owned()),
    };
    v1::Image {
        id: record.id.clone(),
        repo_tags: record.repo_tags.clone(),
        repo_digests: record.repo_digests.clone(),
        size: record.size,
        uid,
        username,
        spec: None,
        pinned: record.pinned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: &str) -> ImageRecord {
        ImageRecord {
            id: "sha256:x".into(),
            repo_tags: vec!["docker.io/library/a:1".into()],
            repo_digests: Vec::new(),
            size: 5,
            manifest_digest: String::new(),
            config: serde_json::json!({ "config": { "User": user } }),
            pinned: false,
            created_at: 0,
            chain_ids: Vec::new(),
        }
    }

    #[test]
    fn user_forms() {
        for (user, uid, name) in [
            ("1002", Some(1002), ""),
            ("www-data", None, "www-data"),
            ("1003:1004", Some(1003), ""),
            ("www-data:1004", None, "www-data"),
            ("", None, ""),
        ] {
            let image = to_cri_image(&record(user));
            assert_eq!(image.uid.map(|u| u.value), uid, "{user}");
            assert_eq!(image.username, name, "{user}");
        }
    }
}

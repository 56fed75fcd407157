//! Archive entry names. A name is only ever a key: nothing of an archive is written at a
//! path derived from it. Names are still checked as strictly as layer entries, so a hostile
//! archive is refused rather than half-understood: a `..` component anywhere, an absolute
//! name, a NUL byte, a name that is not UTF-8 or longer than [`MAX_NAME_BYTES`] refuses the
//! whole archive. Empty and `.` components are dropped (`./manifest.json` is
//! `manifest.json`).

use super::error::ArchiveError;

/// Longest entry or link name accepted, in bytes (image archives use names under 100
/// bytes; with [`MAX_ENTRIES`](super::MAX_ENTRIES) this bounds the memory names take).
pub const MAX_NAME_BYTES: usize = 1024;

/// How much of a refused name an error quotes.
const QUOTE_BYTES: usize = 256;

/// Most links followed to reach a file (`docker save` links a layer shared by two images
/// once; more hops mean a loop).
const MAX_LINK_HOPS: usize = 16;

/// `raw` for an error message: lossy UTF-8 cut to [`QUOTE_BYTES`].
pub(crate) fn quoted(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(QUOTE_BYTES)]).into_owned();
    if raw.len() > QUOTE_BYTES {
        format!("{text}…")
    } else {
        text
    }
}

/// The normalised form of entry name `raw` (components joined by `/`); empty for the
/// archive's top directory (`./`).
pub(crate) fn normalise(raw: &[u8]) -> Result<String, ArchiveError> {
    let bad = |problem| ArchiveError::BadName {
        name: quoted(raw),
        problem,
    };
    if raw.len() > MAX_NAME_BYTES {
        return Err(bad("the name is too long"));
    }
    if raw.contains(&0) {
        return Err(bad("the name contains a NUL byte"));
    }
    let text = std::str::from_utf8(raw).map_err(|_| bad("the name is not UTF-8"))?;
    if text.starts_with('/') {
        return Err(bad("absolute names are not allowed"));
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad("a '..' component is not allowed")),
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// The archive path a symbolic link named `name` (normalised) with target `target` points
/// to: relative to the link's directory, never above the archive's top.
pub(crate) fn symlink_target(name: &str, target: &[u8]) -> Result<String, ArchiveError> {
    let bad = |problem| ArchiveError::BadLink {
        name: name.to_owned(),
        target: quoted(target),
        problem,
    };
    if target.len() > MAX_NAME_BYTES || target.contains(&0) {
        return Err(bad("the target is too long or contains a NUL byte"));
    }
    let text = std::str::from_utf8(target).map_err(|_| bad("the target is not UTF-8"))?;
    if text.starts_with('/') {
        return Err(bad("an absolute target leaves the archive"));
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    parts.pop();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(bad("the target leaves the archive"));
                }
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(bad("the target is the archive's top directory"));
    }
    Ok(parts.join("/"))
}

/// Follows links from `name` until a name that is not a link, at most [`MAX_LINK_HOPS`].
pub(crate) fn follow<'a>(
    name: &'a str,
    link_of: impl Fn(&str) -> Option<&'a str>,
) -> Result<&'a str, ArchiveError> {
    let mut current = name;
    for _ in 0..=MAX_LINK_HOPS {
        match link_of(current) {
            Some(next) => current = next,
            None => return Ok(current),
        }
    }
    Err(ArchiveError::BadLink {
        name: name.to_owned(),
        target: current.to_owned(),
        problem: "too many links in a row (a loop?)",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        for (raw, want) in [
            ("manifest.json", "manifest.json"),
            ("./manifest.json", "manifest.json"),
            ("blobs//sha256/./ab", "blobs/sha256/ab"),
            ("./", ""),
            (".", ""),
            ("abc/layer.tar", "abc/layer.tar"),
        ] {
            assert_eq!(normalise(raw.as_bytes()).unwrap(), want, "{raw}");
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        for raw in [
            &b"../../x"[..],
            b"a/../../x",
            b"a/..",
            b"/etc/passwd",
            b"a\0b",
            b"\xff\xfe",
        ] {
            let err = normalise(raw).unwrap_err();
            assert!(
                matches!(err, ArchiveError::BadName { .. }),
                "{raw:?}: {err}"
            );
        }
        let long = "a/".repeat(MAX_NAME_BYTES);
        assert!(normalise(long.as_bytes()).is_err());
        // The error quotes a bounded part of the name.
        let err = normalise(format!("{}/../x", "b".repeat(10_000)).as_bytes()).unwrap_err();
        assert!(err.to_string().len() < 400, "{err}");
    }

    #[test]
    fn symlinks_resolve_inside_the_archive_only() {
        assert_eq!(
            symlink_target("aa/layer.tar", b"../bb/layer.tar").unwrap(),
            "bb/layer.tar"
        );
        assert_eq!(symlink_target("layer.tar", b"./x.tar").unwrap(), "x.tar");
        for target in [&b"../../x"[..], b"/etc/passwd", b"..", b"../", b"a\0"] {
            let err = symlink_target("aa/layer.tar", target).unwrap_err();
            assert!(matches!(err, ArchiveError::BadLink { .. }), "{target:?}");
        }
    }

    #[test]
    fn link_chains_end_or_are_refused() {
        let links = [("a", "b"), ("b", "c")];
        let link_of = |name: &str| links.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
        assert_eq!(follow("a", link_of).unwrap(), "c");
        assert_eq!(follow("c", link_of).unwrap(), "c");
        let looped = [("a", "b"), ("b", "a")];
        let link_of = |name: &str| looped.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
        assert!(matches!(
            follow("a", link_of).unwrap_err(),
            ArchiveError::BadLink { .. }
        ));
    }
}

//! Checks on request fields that every RPC shares: object IDs and image references.

use crate::error::{FieldProblem, ServiceError};

/// Longest sandbox or container ID accepted. berth's IDs are 64 hex digits; shorter unique
/// prefixes are accepted where an ID is looked up.
pub const MAX_ID_LEN: usize = 64;

/// Longest image reference accepted (a name, tag and digest fit easily).
pub const MAX_IMAGE_REF_LEN: usize = 4096;

/// A sandbox or container ID: 1 to [`MAX_ID_LEN`] bytes of ASCII letters, digits, `-`, `_`
/// or `.`.
pub fn object_id(field: &'static str, value: &str) -> Result<(), ServiceError> {
    let invalid = |problem| ServiceError::InvalidArgument { field, problem };
    if value.is_empty() {
        return Err(invalid(FieldProblem::Empty));
    }
    if value.len() > MAX_ID_LEN {
        return Err(invalid(FieldProblem::TooLong {
            len: value.len(),
            max: MAX_ID_LEN,
        }));
    }
    if let Some((offset, found)) = value
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(invalid(FieldProblem::BadCharacter { found, offset }));
    }
    Ok(())
}

/// An image reference or ID: non-empty, at most [`MAX_IMAGE_REF_LEN`] bytes, no whitespace
/// or control characters. Its grammar is checked where it is parsed.
pub fn image_ref(field: &'static str, value: &str) -> Result<(), ServiceError> {
    let invalid = |problem| ServiceError::InvalidArgument { field, problem };
    if value.is_empty() {
        return Err(invalid(FieldProblem::Empty));
    }
    if value.len() > MAX_IMAGE_REF_LEN {
        return Err(invalid(FieldProblem::TooLong {
            len: value.len(),
            max: MAX_IMAGE_REF_LEN,
        }));
    }
    if let Some((offset, found)) = value
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(FieldProblem::BadCharacter { found, offset }));
    }
    Ok(())
}

/// Longest relative path accepted (PATH_MAX).
pub const MAX_PATH_LEN: usize = 4096;

/// A path that must stay below the directory it is joined to (a container's `log_path`
/// under its pod's log directory): empty, or relative with no `..`, at most
/// [`MAX_PATH_LEN`] bytes, no NUL.
pub fn relative_path(field: &'static str, value: &str) -> Result<(), ServiceError> {
    let invalid = |problem| ServiceError::InvalidArgument { field, problem };
    if value.len() > MAX_PATH_LEN {
        return Err(invalid(FieldProblem::TooLong {
            len: value.len(),
            max: MAX_PATH_LEN,
        }));
    }
    without_nul(field, value)?;
    if value.starts_with('/') {
        return Err(invalid(FieldProblem::BadCharacter {
            found: '/',
            offset: 0,
        }));
    }
    let mut offset = 0;
    for part in value.split('/') {
        if part == ".." {
            return Err(invalid(FieldProblem::BadCharacter { found: '.', offset }));
        }
        offset += part.len() + 1;
    }
    Ok(())
}

/// A path given to the kernel as it is (a mount's host or container path): no NUL, which
/// would end it early.
pub fn without_nul(field: &'static str, value: &str) -> Result<(), ServiceError> {
    match value.find('\0') {
        Some(offset) => Err(ServiceError::InvalidArgument {
            field,
            problem: FieldProblem::BadCharacter {
                found: '\0',
                offset,
            },
        }),
        None => Ok(()),
    }
}

/// Largest command an Exec or ExecSync may carry, measured as [`command_bytes`]: 2 MiB,
/// what execve accepts for arguments and environment together under the default 8 MiB
/// stack limit (a quarter of it), so no command that could run is refused. A streaming
/// exec holds it while its URL is pending.
pub const MAX_COMMAND_BYTES: usize = 2 << 20;

/// The size of `cmd` as execve measures it: each argument with its terminating NUL and its
/// pointer in `argv`.
fn command_bytes(cmd: &[String]) -> usize {
    cmd.iter()
        .map(|arg| arg.len() + 1 + std::mem::size_of::<usize>())
        .sum()
}

/// A command to execute: at least one argument, at most [`MAX_COMMAND_BYTES`].
pub fn command(field: &'static str, cmd: &[String]) -> Result<(), ServiceError> {
    if cmd.is_empty() {
        return Err(ServiceError::InvalidArgument {
            field,
            problem: FieldProblem::Empty,
        });
    }
    let len = command_bytes(cmd);
    if len > MAX_COMMAND_BYTES {
        return Err(ServiceError::InvalidArgument {
            field,
            problem: FieldProblem::TooLong {
                len,
                max: MAX_COMMAND_BYTES,
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(result: Result<(), ServiceError>) -> FieldProblem {
        match result {
            Err(ServiceError::InvalidArgument { problem, .. }) => problem,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn ids() {
        assert!(object_id("id", &"a".repeat(64)).is_ok());
        assert!(object_id("id", "4f3c9a").is_ok());
        assert_eq!(problem(object_id("id", "")), FieldProblem::Empty);
        assert_eq!(
            problem(object_id("id", &"a".repeat(65))),
            FieldProblem::TooLong { len: 65, max: 64 }
        );
        assert_eq!(
            problem(object_id("id", "ab/../c")),
            FieldProblem::BadCharacter {
                found: '/',
                offset: 2
            }
        );
        assert!(matches!(
            problem(object_id("id", "ab\0")),
            FieldProblem::BadCharacter { found: '\0', .. }
        ));
    }

    #[test]
    fn image_refs() {
        assert!(image_ref("image", "registry.k8s.io/pause:3.9").is_ok());
        assert!(image_ref("image", &format!("busybox@sha256:{}", "0".repeat(64))).is_ok());
        assert_eq!(problem(image_ref("image", "")), FieldProblem::Empty);
        assert!(matches!(
            problem(image_ref("image", &"a".repeat(5000))),
            FieldProblem::TooLong { len: 5000, .. }
        ));
        assert_eq!(
            problem(image_ref("image", "busy box")),
            FieldProblem::BadCharacter {
                found: ' ',
                offset: 4
            }
        );
    }

    #[test]
    fn commands_are_measured_as_execve_measures_them() {
        let ptr = std::mem::size_of::<usize>();
        assert_eq!(command_bytes(&[]), 0);
        assert_eq!(command_bytes(&["ls".into(), "-l".into()]), 2 * (3 + ptr));
        // Many empty arguments cost their pointers: a flood of them is bounded too.
        let empties = vec![String::new(); MAX_COMMAND_BYTES / (1 + ptr) + 1];
        assert!(command_bytes(&empties) > MAX_COMMAND_BYTES);
        assert_eq!(
            problem(command("cmd", &empties)),
            FieldProblem::TooLong {
                len: command_bytes(&empties),
                max: MAX_COMMAND_BYTES
            }
        );
        assert_eq!(problem(command("cmd", &[])), FieldProblem::Empty);
        assert!(command("cmd", &["true".into()]).is_ok());
    }

    #[test]
    fn a_nul_in_a_path_is_a_bad_character_at_its_offset() {
        assert!(without_nul("f", "/var/lib/x").is_ok());
        assert!(without_nul("f", "").is_ok());
        assert!(matches!(
            problem(without_nul("f", "/tmp/a\0b")),
            FieldProblem::BadCharacter {
                found: '\0',
                offset: 6
            }
        ));
    }

    #[test]
    fn relative_paths_stay_below() {
        for ok in ["", "c/0.log", "main_0.log", "a/./b.log", "..x/y"] {
            assert!(relative_path("p", ok).is_ok(), "{ok}");
        }
        assert_eq!(
            problem(relative_path("p", "/etc/x")),
            FieldProblem::BadCharacter {
                found: '/',
                offset: 0
            }
        );
        assert_eq!(
            problem(relative_path("p", "c/../../x.log")),
            FieldProblem::BadCharacter {
                found: '.',
                offset: 2
            }
        );
        assert_eq!(
            problem(relative_path("p", "a\0b")),
            FieldProblem::BadCharacter {
                found: '\0',
                offset: 1
            }
        );
        assert!(matches!(
            problem(relative_path("p", &"a".repeat(5000))),
            FieldProblem::TooLong { .. }
        ));
    }
}

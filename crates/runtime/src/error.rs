//! What the runtime core's operations can fail with. The server maps each variant to a gRPC
//! status in its one error module; host failures come through unchanged as `Host`.

use berth_store::{ContainerState, StoreError};

/// A failed runtime operation; `E` is the host's error type.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError<E: std::error::Error + 'static> {
    /// No such object (or the ID prefix matches none).
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// `pod sandbox` or `container`.
        kind: &'static str,
        /// The ID (prefix) asked for, cut to a bounded length.
        id: String,
    },
    /// An ID prefix matches more than one object.
    #[error("{kind} ID prefix {prefix:?} is ambiguous")]
    Ambiguous {
        /// `pod sandbox` or `container`.
        kind: &'static str,
        /// The prefix, cut to a bounded length.
        prefix: String,
    },
    /// Another object has the name (or is being created with it).
    #[error("{kind} name {name:?} is already used by {id}")]
    NameTaken {
        /// `pod sandbox` or `container`.
        kind: &'static str,
        /// The reservation key.
        name: String,
        /// The holder.
        id: String,
    },
    /// The sandbox cannot take new containers.
    #[error("pod sandbox {id} is {why}")]
    SandboxNotReady {
        /// The sandbox.
        id: String,
        /// `not ready`, `being stopped`, `being removed`.
        why: &'static str,
    },
    /// The container is not in the state the operation needs.
    #[error("container {id} is {state}, not {wanted}")]
    WrongState {
        /// The container.
        id: String,
        /// Its state.
        state: ContainerState,
        /// What the operation needs.
        wanted: &'static str,
    },
    /// Another operation on the container is under way (starting, stopping, removing).
    #[error("container {id} is busy: {intent}")]
    Busy {
        /// The container.
        id: String,
        /// The operation in progress.
        intent: &'static str,
    },
    /// The process outlived the stop signal, SIGKILL and the wait after it.
    #[error("container {id} did not stop within {seconds} s")]
    StopTimeout {
        /// The container.
        id: String,
        /// How long was waited.
        seconds: u64,
    },
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A host step failed.
    #[error(transparent)]
    Host(E),
    /// The blocking task running the operation ended abnormally (a panic in a host step).
    #[error("{operation} of {id} ended abnormally: {reason}")]
    Aborted {
        /// The operation.
        operation: &'static str,
        /// The object.
        id: String,
        /// The panic or cancellation.
        reason: String,
    },
}

/// NotFound for `kind` named `id` (quoted to a bounded length).
pub fn not_found<E: std::error::Error>(kind: &'static str, id: &str) -> RuntimeError<E> {
    RuntimeError::NotFound {
        kind,
        id: quote(id),
    }
}

/// Longest client-given text quoted in an error or a log line.
pub const QUOTE_MAX: usize = 256;

/// `text` cut to [`QUOTE_MAX`] bytes for messages and logs.
pub fn quote(text: &str) -> String {
    cut(text, QUOTE_MAX).into_owned()
}

/// `text` cut to at most `max` bytes (on a character boundary), followed by `… (N bytes)`
/// giving its full length when it was longer.
pub fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_input_is_cut() {
        assert_eq!(quote("abc"), "abc");
        let long = "é".repeat(300);
        let cut = quote(&long);
        assert!(cut.ends_with("… (600 bytes)"), "{cut}");
        assert!(cut.len() < 300);
        assert_eq!(super::cut("abcdef", 3), "abc… (6 bytes)");
        assert_eq!(super::cut("abc", 3), "abc");
    }
}

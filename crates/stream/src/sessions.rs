//! Counts of streaming sessions, for metrics: how many started (a URL redeemed) and how many
//! are open now, by kind. A session holds a [`Session`] guard from the redemption of its
//! token to the end of its connection.

use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds of session, as the URL paths name them.
pub const KINDS: [&str; 3] = ["exec", "attach", "portforward"];

/// Sessions of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCount {
    /// `exec`, `attach` or `portforward`.
    pub kind: &'static str,
    /// Sessions started since the server was bound.
    pub started: u64,
    /// Sessions open now.
    pub active: u64,
}

/// The counters of one server.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    started: [AtomicU64; KINDS.len()],
    active: [AtomicU64; KINDS.len()],
}

impl Sessions {
    /// Counts a session of `kind` started and open until the guard is dropped; a kind not
    /// in [`KINDS`] is not counted.
    pub(crate) fn open(&self, kind: &str) -> Session<'_> {
        let index = KINDS.iter().position(|k| *k == kind);
        if let Some(i) = index {
            self.started[i].fetch_add(1, Ordering::Relaxed);
            self.active[i].fetch_add(1, Ordering::Relaxed);
        }
        Session {
            sessions: self,
            index,
        }
    }

    /// Every kind's counts.
    pub(crate) fn counts(&self) -> Vec<SessionCount> {
        KINDS
            .iter()
            .enumerate()
            .map(|(i, kind)| SessionCount {
                kind,
                started: self.started[i].load(Ordering::Relaxed),
                active: self.active[i].load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// An open session; dropping it closes it in the counts.
#[derive(Debug)]
pub(crate) struct Session<'a> {
    sessions: &'a Sessions,
    index: Option<usize>,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.index {
            self.sessions.active[i].fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(sessions: &Sessions, kind: &str) -> (u64, u64) {
        let c = sessions
            .counts()
            .into_iter()
            .find(|c| c.kind == kind)
            .unwrap();
        (c.started, c.active)
    }

    #[test]
    fn sessions_are_counted_while_open() {
        let sessions = Sessions::default();
        assert_eq!(sessions.counts().len(), 3);
        let exec = sessions.open("exec");
        let second = sessions.open("exec");
        let forward = sessions.open("portforward");
        assert_eq!(count(&sessions, "exec"), (2, 2));
        assert_eq!(count(&sessions, "portforward"), (1, 1));
        assert_eq!(count(&sessions, "attach"), (0, 0));
        drop(second);
        drop(forward);
        assert_eq!(count(&sessions, "exec"), (2, 1));
        assert_eq!(count(&sessions, "portforward"), (1, 0));
        drop(exec);
        // Unknown kinds are not counted.
        drop(sessions.open("shell"));
        let all: u64 = sessions.counts().iter().map(|c| c.started + c.active).sum();
        assert_eq!(all, 3);
    }
}

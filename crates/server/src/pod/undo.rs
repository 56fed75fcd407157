//! An undo stack: each step that creates something registers how to remove it; on failure
//! the steps are undone in reverse order, on success the stack is dismissed.

/// One registered removal.
type Action = Box<dyn FnOnce() + Send>;

/// Pending undo actions, run in reverse order unless [`Undo::dismiss`] is called.
#[derive(Default)]
pub struct Undo {
    actions: Vec<(&'static str, Action)>,
}

impl Undo {
    /// Registers the removal of something just created; `what` names it in logs.
    pub fn push(&mut self, what: &'static str, action: impl FnOnce() + Send + 'static) {
        self.actions.push((what, Box::new(action)));
    }

    /// Keeps everything: the operation succeeded.
    pub fn dismiss(mut self) {
        self.actions.clear();
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        while let Some((what, action)) = self.actions.pop() {
            tracing::info!(step = what, "undoing");
            action();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn undoes_in_reverse_unless_dismissed() {
        let log = Arc::new(Mutex::new(Vec::new()));
        {
            let mut undo = Undo::default();
            for step in ["a", "b", "c"] {
                let log = log.clone();
                undo.push(step, move || log.lock().unwrap().push(step));
            }
        }
        assert_eq!(*log.lock().unwrap(), ["c", "b", "a"]);

        log.lock().unwrap().clear();
        let mut undo = Undo::default();
        let inner = log.clone();
        undo.push("x", move || inner.lock().unwrap().push("x"));
        undo.dismiss();
        assert!(log.lock().unwrap().is_empty());
    }
}

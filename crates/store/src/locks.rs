//! Per-key locks.
//!
//! A set of held keys behind one mutex, with a condition variable to wait on. Only the set is
//! guarded by the mutex, never the work done under a key lock, so writers of different keys
//! never wait for each other's I/O. The lock is not reentrant: taking the same key twice on one
//! thread deadlocks, as it would with a mutex.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, PoisonError};

#[derive(Debug, Default)]
pub(crate) struct KeyLocks {
    held: Mutex<HashSet<Vec<u8>>>,
    released: Condvar,
}

/// Holds one key; releases it on drop (also while unwinding from a panicking closure).
#[derive(Debug)]
pub(crate) struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    key: Vec<u8>,
}

impl KeyLocks {
    pub(crate) fn lock(&self, key: &[u8]) -> KeyGuard<'_> {
        // The set is only touched by the code in this module, which cannot panic while holding
        // the mutex, so a poisoned mutex still guards a consistent set.
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        while held.contains(key) {
            held = self
                .released
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
        held.insert(key.to_vec());
        KeyGuard {
            locks: self,
            key: key.to_vec(),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        let mut held = self
            .locks
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        held.remove(&self.key);
        drop(held);
        self.locks.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn same_key_is_exclusive() {
        let locks = Arc::new(KeyLocks::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (locks, inside) = (locks.clone(), inside.clone());
                thread::spawn(move || {
                    for _ in 0..200 {
                        let _g = locks.lock(b"k");
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn different_keys_do_not_block() {
        let locks = KeyLocks::default();
        let _a = locks.lock(b"a");
        let _b = locks.lock(b"b");
    }

    #[test]
    fn released_after_panic() {
        let locks = Arc::new(KeyLocks::default());
        let l = locks.clone();
        let _ = thread::spawn(move || {
            let _g = l.lock(b"k");
            panic!("closure failed");
        })
        .join();
        let _g = locks.lock(b"k");
    }
}

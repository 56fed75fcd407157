//! Single-use random tokens standing for validated streaming requests.
//!
//! A pending request holds memory (an exec's command, the runner's handles) from the RPC
//! that issued its URL until the client connects or the token expires. Clients that ask for
//! URLs and never use them would otherwise make berthd hold any amount, so the store caps
//! the pending requests by count and by the bytes they hold ([`PendingLimits`]), and frees
//! expired ones on every insert and on every [`TokenStore::sweep`] (the server sweeps
//! periodically, so memory is freed even when no request follows).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::StreamRequest;

/// Bytes charged to every pending request on top of what it reports it holds: the token,
/// its map slot, the boxed runner and the request itself (a rounded-up estimate).
pub const ENTRY_BYTES: usize = 256;

/// Caps on the requests pending at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimits {
    /// Pending requests (issued URLs not used yet and not expired).
    pub max_sessions: usize,
    /// Bytes they hold together ([`StreamRequest::held_bytes`] plus [`ENTRY_BYTES`] each).
    pub max_bytes: usize,
}

/// Why a request could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// As many requests as allowed are pending.
    #[error(
        "{max} streaming sessions are pending, the limit (stream.max_pending_sessions); \
         use or let expire the URLs already issued"
    )]
    TooManySessions {
        /// The limit.
        max: usize,
    },
    /// The request would take the pending requests over the byte limit.
    #[error(
        "pending streaming sessions hold {held} bytes and this one needs {needed} more, \
         over the limit of {max} bytes (stream.max_pending_bytes)"
    )]
    TooManyBytes {
        /// Bytes held by the pending requests.
        held: usize,
        /// Bytes this request needs.
        needed: usize,
        /// The limit.
        max: usize,
    },
    /// No random token could be made.
    #[error("cannot read /dev/urandom for a streaming token: {0}")]
    Token(#[source] std::io::Error),
}

/// Pending requests by token.
#[derive(Debug)]
pub struct TokenStore {
    ttl: Duration,
    limits: PendingLimits,
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    by_token: HashMap<String, Slot>,
    /// Sum of the slots' `bytes`.
    bytes: usize,
    /// Bytes of expired requests freed since [`TokenStore::sweep`] last reported them.
    unreported: usize,
}

/// What a sweep freed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Expired requests dropped.
    pub sessions: usize,
    /// Bytes charged for the expired requests freed since the previous
    /// [`TokenStore::sweep`]: by this sweep and by those that inserts made.
    pub bytes: usize,
}

#[derive(Debug)]
struct Slot {
    issued: Instant,
    bytes: usize,
    request: StreamRequest,
}

impl Pending {
    fn remove(&mut self, token: &str) -> Option<Slot> {
        let slot = self.by_token.remove(token)?;
        self.bytes -= slot.bytes;
        Some(slot)
    }

    /// Drops expired requests.
    fn sweep(&mut self, ttl: Duration, now: Instant) -> Swept {
        let before = self.by_token.len();
        let mut freed = 0;
        self.by_token.retain(|_, slot| {
            let keep = now.duration_since(slot.issued) < ttl;
            if !keep {
                freed += slot.bytes;
            }
            keep
        });
        self.bytes -= freed;
        self.unreported += freed;
        if self.by_token.is_empty() {
            // The table itself grew with the flood; give that back too.
            self.by_token.shrink_to_fit();
        }
        Swept {
            sessions: before - self.by_token.len(),
            bytes: freed,
        }
    }
}

impl TokenStore {
    /// A store whose tokens expire `ttl` after they are issued, holding at most `limits`.
    pub fn new(ttl: Duration, limits: PendingLimits) -> TokenStore {
        TokenStore {
            ttl,
            limits,
            pending: Mutex::new(Pending::default()),
        }
    }

    /// Stores `request` under a fresh token (128 random bits, URL-safe), unless that would
    /// take the pending requests over a limit.
    pub fn insert(&self, request: StreamRequest) -> Result<String, RegisterError> {
        let needed = request.held_bytes().saturating_add(ENTRY_BYTES);
        let token = new_token().map_err(RegisterError::Token)?;
        let now = Instant::now();
        let mut pending = self.lock();
        pending.sweep(self.ttl, now);
        if pending.by_token.len() >= self.limits.max_sessions {
            return Err(RegisterError::TooManySessions {
                max: self.limits.max_sessions,
            });
        }
        if pending.bytes.saturating_add(needed) > self.limits.max_bytes {
            return Err(RegisterError::TooManyBytes {
                held: pending.bytes,
                needed,
                max: self.limits.max_bytes,
            });
        }
        pending.bytes += needed;
        pending.by_token.insert(
            token.clone(),
            Slot {
                issued: now,
                bytes: needed,
                request,
            },
        );
        Ok(token)
    }

    /// Removes and returns the request of `token` if it exists and has not expired.
    pub fn take(&self, token: &str) -> Option<StreamRequest> {
        let slot = self.lock().remove(token)?;
        (slot.issued.elapsed() < self.ttl).then_some(slot.request)
    }

    /// Whether `token` is pending and unexpired (without using it).
    pub fn contains(&self, token: &str) -> bool {
        self.lock()
            .by_token
            .get(token)
            .is_some_and(|slot| slot.issued.elapsed() < self.ttl)
    }

    /// Drops the expired requests, freeing what they hold.
    pub fn sweep(&self) -> Swept {
        let mut pending = self.lock();
        let swept = pending.sweep(self.ttl, Instant::now());
        Swept {
            bytes: std::mem::take(&mut pending.unreported),
            ..swept
        }
    }

    /// Requests pending and the bytes charged for them (expired ones not yet swept
    /// included).
    pub fn usage(&self) -> (usize, usize) {
        let pending = self.lock();
        (pending.by_token.len(), pending.bytes)
    }

    /// How long a token stays valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BoxFuture, ExecIo, ExecOptions, PortDialer, Runner};

    struct NoDial;
    impl PortDialer for NoDial {
        fn dial(&self, _port: u16) -> BoxFuture<std::io::Result<tokio::net::TcpStream>> {
            Box::pin(async { Err(std::io::ErrorKind::Unsupported.into()) })
        }
        fn held_bytes(&self) -> usize {
            0
        }
    }

    /// A runner holding `0.len()` bytes, as an exec's command would.
    struct Holding(Vec<u8>);
    impl Runner for Holding {
        fn run(self: Box<Self>, _io: ExecIo) -> BoxFuture<Result<i32, String>> {
            Box::pin(async { Ok(0) })
        }
        fn held_bytes(&self) -> usize {
            self.0.capacity()
        }
    }

    fn request() -> StreamRequest {
        StreamRequest::PortForward {
            dialer: Box::new(NoDial),
        }
    }

    fn holding(bytes: usize) -> StreamRequest {
        StreamRequest::Exec {
            options: ExecOptions::default(),
            runner: Box::new(Holding(vec![0; bytes])),
        }
    }

    const ROOMY: PendingLimits = PendingLimits {
        max_sessions: 1000,
        max_bytes: 1 << 30,
    };

    #[test]
    fn tokens_are_single_use_and_distinct() {
        let store = TokenStore::new(Duration::from_secs(60), ROOMY);
        let a = store.insert(request()).unwrap();
        let b = store.insert(request()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(store.contains(&a));
        assert!(store.take(&a).is_some());
        assert!(store.take(&a).is_none());
        assert!(!store.contains(&a));
        assert!(store.take("unknown").is_none());
        assert!(store.take(&b).is_some());
        assert_eq!(store.usage(), (0, 0));
    }

    #[test]
    fn tokens_expire() {
        let store = TokenStore::new(Duration::from_millis(20), ROOMY);
        let a = store.insert(request()).unwrap();
        std::thread::sleep(Duration::from_millis(40));
        assert!(!store.contains(&a));
        assert!(store.take(&a).is_none());
    }

    #[test]
    fn the_count_is_capped_and_a_used_token_makes_room() {
        let limits = PendingLimits {
            max_sessions: 3,
            ..ROOMY
        };
        let store = TokenStore::new(Duration::from_secs(60), limits);
        let tokens: Vec<_> = (0..3).map(|_| store.insert(request()).unwrap()).collect();
        let err = store.insert(request()).unwrap_err();
        assert!(
            matches!(err, RegisterError::TooManySessions { max: 3 }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("stream.max_pending_sessions"),
            "{err}"
        );
        assert!(store.take(&tokens[1]).is_some());
        store.insert(request()).unwrap();
        assert_eq!(store.usage().0, 3);
    }

    #[test]
    fn bytes_are_capped_and_accounted_per_request() {
        let limits = PendingLimits {
            max_sessions: 1000,
            max_bytes: 3 * (1000 + ENTRY_BYTES),
        };
        let store = TokenStore::new(Duration::from_secs(60), limits);
        let a = store.insert(holding(1000)).unwrap();
        store.insert(holding(1000)).unwrap();
        store.insert(holding(1000)).unwrap();
        assert_eq!(store.usage(), (3, 3 * (1000 + ENTRY_BYTES)));
        // Even the smallest request does not fit any more.
        let err = store.insert(holding(0)).unwrap_err();
        assert!(
            matches!(
                err,
                RegisterError::TooManyBytes {
                    needed: ENTRY_BYTES,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("stream.max_pending_bytes"),
            "{err}"
        );
        assert!(store.take(&a).is_some());
        assert_eq!(store.usage(), (2, 2 * (1000 + ENTRY_BYTES)));
        store.insert(holding(1000)).unwrap();
        // One request larger than the whole budget is refused outright.
        let store = TokenStore::new(Duration::from_secs(60), limits);
        let err = store.insert(holding(10_000)).unwrap_err();
        assert!(
            matches!(err, RegisterError::TooManyBytes { held: 0, .. }),
            "{err:?}"
        );
        assert_eq!(store.usage(), (0, 0));
    }

    #[test]
    fn expired_requests_are_swept_and_free_their_share() {
        let limits = PendingLimits {
            max_sessions: 2,
            max_bytes: 1 << 20,
        };
        let store = TokenStore::new(Duration::from_millis(30), limits);
        store.insert(holding(4096)).unwrap();
        store.insert(holding(4096)).unwrap();
        assert!(matches!(
            store.insert(request()),
            Err(RegisterError::TooManySessions { .. })
        ));
        assert_eq!(store.sweep(), Swept::default());
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            store.sweep(),
            Swept {
                sessions: 2,
                bytes: 2 * (4096 + ENTRY_BYTES)
            }
        );
        assert_eq!(store.usage(), (0, 0));
        // An insert sweeps as well: the cap applies to unexpired requests only.
        store.insert(request()).unwrap();
        store.insert(request()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        store.insert(holding(10)).unwrap();
        assert_eq!(store.usage(), (1, 10 + ENTRY_BYTES));
        // What the insert's sweep freed is reported by the next sweep.
        assert_eq!(
            store.sweep(),
            Swept {
                sessions: 0,
                bytes: 2 * ENTRY_BYTES
            }
        );
        assert_eq!(store.sweep(), Swept::default());
    }

    #[test]
    fn an_expired_token_that_is_taken_frees_its_share() {
        let store = TokenStore::new(Duration::from_millis(20), ROOMY);
        let a = store.insert(holding(100)).unwrap();
        std::thread::sleep(Duration::from_millis(40));
        assert!(store.take(&a).is_none());
        assert_eq!(store.usage(), (0, 0));
    }
}

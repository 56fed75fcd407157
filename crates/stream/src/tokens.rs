//! Single-use random tokens standing for validated streaming requests.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::StreamRequest;

/// Pending requests by token.
#[derive(Debug)]
pub struct TokenStore {
    ttl: Duration,
    pending: Mutex<HashMap<String, (Instant, StreamRequest)>>,
}

impl TokenStore {
    /// A store whose tokens expire `ttl` after they are issued.
    pub fn new(ttl: Duration) -> TokenStore {
        TokenStore {
            ttl,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Stores `request` under a fresh token (128 random bits, URL-safe).
    pub fn insert(&self, request: StreamRequest) -> std::io::Result<String> {
        let token = new_token()?;
        let now = Instant::now();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|_, (issued, _)| now.duration_since(*issued) < self.ttl);
        pending.insert(token.clone(), (now, request));
        Ok(token)
    }

    /// Removes and returns the request of `token` if it exists and has not expired.
    pub fn take(&self, token: &str) -> Option<StreamRequest> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let (issued, request) = pending.remove(token)?;
        (issued.elapsed() < self.ttl).then_some(request)
    }

    /// Whether `token` is pending and unexpired (without using it).
    pub fn contains(&self, token: &str) -> bool {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending
            .get(token)
            .is_some_and(|(issued, _)| issued.elapsed() < self.ttl)
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
    use crate::{BoxFuture, PortDialer};

    struct NoDial;
    impl PortDialer for NoDial {
        fn dial(&self, _port: u16) -> BoxFuture<std::io::Result<tokio::net::TcpStream>> {
            Box::pin(async { Err(std::io::ErrorKind::Unsupported.into()) })
        }
    }

    fn request() -> StreamRequest {
        StreamRequest::PortForward {
            dialer: Box::new(NoDial),
        }
    }

    #[test]
    fn tokens_are_single_use_and_distinct() {
        let store = TokenStore::new(Duration::from_secs(60));
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
    }

    #[test]
    fn tokens_expire() {
        let store = TokenStore::new(Duration::from_millis(20));
        let a = store.insert(request()).unwrap();
        std::thread::sleep(Duration::from_millis(40));
        assert!(!store.contains(&a));
        assert!(store.take(&a).is_none());
    }
}

//! A plain WebSocket client for the streaming URLs (the subprotocols crictl does not offer,
//! and sessions driven from tests without crictl).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::prelude::{Engine as _, BASE64_STANDARD};
use tungstenite::client::IntoClientRequest as _;
use tungstenite::Message;

/// Opens the exec or attach `url` (as an Exec or Attach RPC returned it) over WebSocket
/// offering `protocol` only, and reads until the server closes (at most 30 s); returns what
/// arrived on each channel (decoded from base64 for `base64.channel.k8s.io`). Blocking.
pub fn session(url: &str, protocol: &str) -> BTreeMap<u8, Vec<u8>> {
    let mut request = url
        .replacen("http://", "ws://", 1)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (mut ws, response) = tungstenite::connect(request)
        .unwrap_or_else(|e| panic!("{protocol}: no WebSocket session: {e}"));
    assert_eq!(
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.as_bytes()),
        Some(protocol.as_bytes())
    );
    let mut channels = BTreeMap::<u8, Vec<u8>>::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let (channel, data) = match ws.read() {
            Ok(Message::Binary(data)) if !data.is_empty() => (data[0], data[1..].to_vec()),
            Ok(Message::Text(text)) if !text.is_empty() => (
                text.as_bytes()[0] - b'0',
                BASE64_STANDARD.decode(&text.as_bytes()[1..]).unwrap(),
            ),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        channels.entry(channel).or_default().extend(data);
    }
    channels
}

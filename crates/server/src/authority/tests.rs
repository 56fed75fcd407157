use tokio::io::AsyncReadExt;

use super::*;

/// Frames as a client sends them.
fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame(&mut out, kind, flags, stream_id, payload);
    out
}

/// What h2 would read from `client_bytes` through [`AnyAuthority`].
async fn through(client_bytes: Vec<u8>) -> Vec<u8> {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        // In small pieces, so frames arrive split.
        for piece in client_bytes.chunks(7) {
            client.write_all(piece).await.unwrap();
        }
    });
    let mut wrapped = AnyAuthority::new(server);
    let mut seen = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), wrapped.read(&mut buf))
            .await
            .expect("no hang")
            .unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    writer.await.unwrap();
    seen
}

/// The frames in `bytes` (after the preface): (type, flags, stream, payload).
fn frames(bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
    assert!(bytes.starts_with(PREFACE));
    let mut rest = &bytes[PREFACE.len()..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]);
        out.push((rest[3], rest[4], stream, rest[9..9 + len].to_vec()));
        rest = &rest[9 + len..];
    }
    out
}

/// Decodes the header blocks h2 would see, with a decoder of its own (as h2 has).
fn header_lists(bytes: &[u8]) -> Vec<Vec<(String, String)>> {
    let mut decoder = fluke_hpack::Decoder::new();
    let mut lists = Vec::new();
    let mut block = Vec::new();
    for (kind, flags, _, payload) in frames(bytes) {
        match kind {
            HEADERS => {
                let (_, fragment) = headers_fragment(flags, &payload).unwrap();
                block = fragment.to_vec();
            }
            CONTINUATION => block.extend_from_slice(&payload),
            _ => continue,
        }
        if flags & END_HEADERS != 0 {
            let fields = decoder.decode(&block).unwrap();
            lists.push(
                fields
                    .into_iter()
                    .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
                    .collect(),
            );
        }
    }
    lists
}

fn request(authority: &str, path: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut fields = vec![
        (":scheme".to_owned(), "http".to_owned()),
        (":method".to_owned(), "POST".to_owned()),
        (":authority".to_owned(), authority.to_owned()),
        (":path".to_owned(), path.to_owned()),
        ("content-type".to_owned(), "application/grpc".to_owned()),
    ];
    fields.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    fields
}

fn encode(encoder: &mut fluke_hpack::Encoder<'_>, fields: &[(String, String)]) -> Vec<u8> {
    encoder.encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
}

fn with_authority(fields: &[(String, String)], authority: &str) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(n, v)| {
            let v = if n == ":authority" { authority } else { v };
            (n.clone(), v.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_parsable_authority_passes_through_byte_for_byte() {
    let mut encoder = fluke_hpack::Encoder::new();
    let mut client = PREFACE.to_vec();
    client.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    let first = request(
        "localhost",
        "/runtime.v1.RuntimeService/Version",
        &[("grpc-timeout", "2S")],
    );
    client.extend(frame(
        HEADERS,
        END_HEADERS,
        1,
        &encode(&mut encoder, &first),
    ));
    client.extend(frame(0x0, END_STREAM, 1, b"\0\0\0\0\0"));
    // RFC 7541 C.4.1: a Huffman-coded request, sent on stream 3 (a new decoder state is not
    // needed: it only uses the static table and inserts one entry).
    client.extend(frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &[
            0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab,
            0x90, 0xf4, 0xff,
        ],
    ));
    assert_eq!(through(client.clone()).await, client);
}

#[tokio::test]
async fn an_unparsable_authority_is_replaced_in_every_block() {
    let bad = "tmp%2Fpyb%2Fb.sock";
    assert!(!authority_parses(bad.as_bytes()));
    let mut encoder = fluke_hpack::Encoder::new();
    let first = request(
        bad,
        "/runtime.v1.RuntimeService/Version",
        &[("grpc-timeout", "2S"), ("x-custom", "1")],
    );
    // The second request reuses dynamic-table entries the first inserted.
    let second = request(
        bad,
        "/runtime.v1.RuntimeService/Status",
        &[("grpc-timeout", "2S"), ("x-custom", "1")],
    );
    let mut client = PREFACE.to_vec();
    client.extend(frame(0x4, 0, 0, &[]));
    client.extend(frame(
        HEADERS,
        END_HEADERS,
        1,
        &encode(&mut encoder, &first),
    ));
    client.extend(frame(0x0, END_STREAM, 1, b"\0\0\0\0\0"));
    // The second block split over HEADERS (padded, with priority) and a CONTINUATION.
    let block = encode(&mut encoder, &second);
    let (a, b) = block.split_at(block.len() / 2);
    let mut payload = vec![3u8]; // pad length
    payload.extend_from_slice(&[0, 0, 0, 1, 16]); // priority: depends on 1, weight 16
    payload.extend_from_slice(a);
    payload.extend_from_slice(&[0, 0, 0]);
    client.extend(frame(HEADERS, PADDED | PRIORITY, 3, &payload));
    client.extend(frame(CONTINUATION, END_HEADERS, 3, b));
    client.extend(frame(0x0, END_STREAM, 3, b"\0\0\0\0\0"));

    let seen = through(client).await;
    assert_eq!(
        header_lists(&seen),
        vec![
            with_authority(&first, "localhost"),
            with_authority(&second, "localhost")
        ]
    );
    let kinds: Vec<(u8, u8, u32)> = frames(&seen).iter().map(|f| (f.0, f.1, f.2)).collect();
    assert_eq!(
        kinds,
        vec![
            (0x4, 0, 0),
            (HEADERS, END_HEADERS, 1),
            (0x0, END_STREAM, 1),
            (HEADERS, END_HEADERS | PRIORITY, 3),
            (0x0, END_STREAM, 3),
        ]
    );
    assert_eq!(&frames(&seen)[3].3[..5], &[0, 0, 0, 1, 16]);
}

#[tokio::test]
async fn a_rewritten_block_larger_than_a_frame_is_continued() {
    let mut encoder = fluke_hpack::Encoder::new();
    let big = "v".repeat(40_000);
    let fields = request("a%2Fb", "/x", &[("x-big", &big)]);
    let block = encode(&mut encoder, &fields);
    let mut client = PREFACE.to_vec();
    // Sent in 16 KiB frames, as the client must.
    let mut chunks = block.chunks(MAX_OUT_PAYLOAD).peekable();
    let mut first = true;
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let flags = if last { END_HEADERS } else { 0 } | if first { END_STREAM } else { 0 };
        client.extend(frame(
            if first { HEADERS } else { CONTINUATION },
            flags,
            1,
            chunk,
        ));
        first = false;
    }
    let seen = through(client).await;
    assert_eq!(
        header_lists(&seen),
        vec![with_authority(&fields, "localhost")]
    );
    let out = frames(&seen);
    assert!(out.len() >= 3, "{} frames", out.len());
    assert!(out.iter().all(|f| f.3.len() <= MAX_OUT_PAYLOAD));
    assert_eq!(out[0].1 & END_STREAM, END_STREAM);
}

#[tokio::test]
async fn not_http2_and_broken_hpack_reach_h2_unchanged() {
    let garbage = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    assert_eq!(through(garbage.clone()).await, garbage);

    let mut client = PREFACE.to_vec();
    client.extend(frame(
        HEADERS,
        END_HEADERS,
        1,
        &[0xff, 0xff, 0xff, 0xff, 0x0f],
    ));
    assert_eq!(through(client.clone()).await, client);

    // A connection that ends inside a frame.
    let mut cut = PREFACE.to_vec();
    cut.extend_from_slice(&[0, 0, 50, HEADERS, END_HEADERS, 0, 0, 0, 1, 0x82]);
    assert_eq!(through(cut.clone()).await, cut);
}

#[test]
fn integers_use_the_prefix_then_seven_bit_groups() {
    // RFC 7541 C.1.2: 1337 with a 5-bit prefix.
    let mut out = Vec::new();
    encode_integer(&mut out, 0, 5, 1337);
    assert_eq!(out, [31, 154, 10]);
    let mut out = Vec::new();
    encode_integer(&mut out, 0, 7, 10);
    assert_eq!(out, [10]);
    let mut out = Vec::new();
    encode_integer(&mut out, 0, 7, 127);
    assert_eq!(out, [127, 0]);
}

//! Malformed requests get a clear InvalidArgument naming the field, oversized messages are
//! refused, and none of it disturbs the daemon.

use std::io::Write;

use berth_integration::Berthd;
use cri_api::v1;
use tonic::Code;

fn invalid(result: Result<impl std::fmt::Debug, tonic::Status>) -> String {
    let status = result.expect_err("request must be rejected");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status.message().to_owned()
}

/// Asserts that the refused requests left no pod behind.
async fn assert_no_pods(rt: &mut cri_api::RuntimeServiceClient<tonic::transport::Channel>) {
    let pods = rt
        .list_pod_sandbox(v1::ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(pods.is_empty(), "nothing may be left: {pods:?}");
}

#[tokio::test]
async fn empty_long_and_odd_ids_are_invalid_arguments() {
    let daemon = Berthd::start();
    let mut rt = daemon.runtime().await;

    let message = invalid(
        rt.container_status(v1::ContainerStatusRequest {
            container_id: String::new(),
            verbose: false,
        })
        .await,
    );
    assert_eq!(message, "invalid container_id: must not be empty");

    let message = invalid(
        rt.stop_pod_sandbox(v1::StopPodSandboxRequest {
            pod_sandbox_id: "f".repeat(300),
        })
        .await,
    );
    assert_eq!(
        message,
        "invalid pod_sandbox_id: is 300 bytes long; at most 64 are allowed"
    );

    let message = invalid(
        rt.remove_container(v1::RemoveContainerRequest {
            container_id: "../../etc".into(),
        })
        .await,
    );
    assert!(
        message.starts_with("invalid container_id: character '/'"),
        "{message}"
    );

    let message = invalid(
        rt.exec_sync(v1::ExecSyncRequest {
            container_id: "abc\u{0}".into(),
            cmd: vec![],
            timeout: 0,
        })
        .await,
    );
    assert!(message.contains("container_id"), "{message}");
}

#[tokio::test]
async fn missing_or_oversized_image_references_are_invalid_arguments() {
    let daemon = Berthd::start();
    let mut images = daemon.images().await;
    let message = invalid(
        images
            .image_status(v1::ImageStatusRequest {
                image: None,
                verbose: false,
            })
            .await,
    );
    assert_eq!(message, "invalid image: must not be empty");

    let spec = v1::ImageSpec {
        image: "a".repeat(10_000),
        ..Default::default()
    };
    let message = invalid(
        images
            .pull_image(v1::PullImageRequest {
                image: Some(spec),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(
        message,
        "invalid image: is 10000 bytes long; at most 4096 are allowed"
    );

    let spec = v1::ImageSpec {
        image: "busybox\nlatest".into(),
        ..Default::default()
    };
    let message = invalid(
        images
            .remove_image(v1::RemoveImageRequest { image: Some(spec) })
            .await,
    );
    assert!(message.contains("'\\n'"), "{message}");
}

#[tokio::test]
async fn oversized_messages_are_refused_and_the_daemon_carries_on() {
    let daemon = Berthd::start();
    let mut images = daemon.images().await;
    // 17 MiB: above the 16 MiB limit berth accepts.
    let huge = v1::ImageSpec {
        image: "x".repeat(17 << 20),
        ..Default::default()
    };
    let status = images
        .list_images(v1::ListImagesRequest {
            filter: Some(v1::ImageFilter { image: Some(huge) }),
        })
        .await
        .expect_err("an oversized message must be refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("request message too large: found 17825"),
        "{status:?}"
    );

    // Garbage instead of HTTP/2 on a raw connection.
    let mut raw = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    let _ = raw.write_all(b"GET / HTTP/1.0\r\n\r\n\x00\x01\x02 not grpc at all");
    drop(raw);

    let version = daemon
        .runtime()
        .await
        .version(v1::VersionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.runtime_name, "berth");
}

/// A message shaped like `VersionRequest` but with a varint where its `version` string is.
#[derive(Clone, PartialEq, prost::Message)]
struct NotAVersionRequest {
    #[prost(uint64, tag = "1")]
    version: u64,
}

#[tokio::test]
async fn undecodable_requests_are_invalid_arguments() {
    let daemon = Berthd::start();
    let mut grpc = tonic::client::Grpc::new(daemon.channel().await);
    grpc.ready().await.unwrap();
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/runtime.v1.RuntimeService/Version");
    let codec = tonic_prost::ProstCodec::<NotAVersionRequest, v1::VersionResponse>::default();
    let status = grpc
        .unary(
            tonic::Request::new(NotAVersionRequest { version: 7 }),
            path,
            codec,
        )
        .await
        .expect_err("a request that does not decode must be refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with("cannot decode the message: "),
        "{status:?}"
    );
}

#[tokio::test]
async fn cgroup_parents_the_driver_cannot_use_are_invalid_arguments() {
    let daemon = Berthd::start();
    let mut rt = daemon.runtime().await;
    let driver = rt
        .runtime_config(v1::RuntimeConfigRequest::default())
        .await
        .unwrap()
        .into_inner()
        .linux
        .unwrap()
        .cgroup_driver();
    let (name, refused) = match driver {
        v1::CgroupDriver::Cgroupfs => (
            "cgroupfs",
            [
                "/kubepods/p\u{f6}d",
                "kubepods/relative",
                "/kubepods/../../etc",
                "/kubepods/a\nb",
                "kubepods-besteffort.slice",
            ],
        ),
        v1::CgroupDriver::Systemd => (
            "systemd",
            [
                "/kubepods/p\u{f6}d.slice",
                "/kubepods/pod1",
                "a--b.slice",
                "a:b.slice",
                "/../x.slice",
            ],
        ),
    };
    for parent in refused {
        let config = v1::PodSandboxConfig {
            metadata: Some(v1::PodSandboxMetadata {
                name: "cgroup-parent".into(),
                namespace: "bad-input".into(),
                uid: "cgroup-parent-uid".into(),
                attempt: 0,
            }),
            linux: Some(v1::LinuxPodSandboxConfig {
                cgroup_parent: parent.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let message = invalid(
            rt.run_pod_sandbox(v1::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await,
        );
        assert!(
            message.starts_with("config.linux.cgroup_parent: ")
                && message.ends_with(&format!("(cgroup driver {name})")),
            "{parent:?}: {message}"
        );
    }
    assert_no_pods(&mut rt).await;
}

#[tokio::test]
async fn huge_fields_give_bounded_replies_and_log_lines() {
    let daemon = Berthd::start();
    let mut rt = daemon.runtime().await;
    let mut images = daemon.images().await;
    let huge = "\u{e9}".repeat(1 << 19); // 1 MiB of two-byte characters
    let mut statuses = Vec::new();
    let config = v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: "huge".into(),
            namespace: "bad-input".into(),
            uid: "huge-uid".into(),
            attempt: 0,
        }),
        ..Default::default()
    };
    statuses.push(
        rt.run_pod_sandbox(v1::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: huge.clone(),
        })
        .await
        .expect_err("unknown handler"),
    );
    statuses.push(
        rt.container_status(v1::ContainerStatusRequest {
            container_id: huge.clone(),
            verbose: true,
        })
        .await
        .expect_err("bad ID"),
    );
    statuses.push(
        images
            .pull_image(v1::PullImageRequest {
                image: Some(v1::ImageSpec {
                    image: "127.0.0.1:1/berth-test/huge:1".into(),
                    ..Default::default()
                }),
                auth: Some(v1::AuthConfig {
                    registry_token: format!("{huge}\n"),
                    ..Default::default()
                }),
                sandbox_config: None,
            })
            .await
            .expect_err("a token with a newline"),
    );
    for status in &statuses {
        assert!(
            status.message().len() <= 4096 + 32,
            "{:?}: {} bytes",
            status.code(),
            status.message().len()
        );
    }
    // The handler quoted cut, the token refused without being echoed.
    for (status, says) in [
        (&statuses[0], "bytes)"),
        (&statuses[2], "auth_config.registry_token"),
    ] {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(says), "{status:?}");
    }
    let log = daemon.log_text();
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 8192, "a log line of {longest} bytes");
}

/// A registry on 127.0.0.1 that asks for a bearer token and hands out one that cannot be an
/// HTTP header (it holds a newline). Serves until the test ends; returns its address.
fn hostile_token_registry() -> String {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let realm = format!("http://{addr}/token");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Skip the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let response = if request_line.starts_with("GET /token") {
                let body = "{\"token\":\"bad\\ntoken\"}";
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                format!(
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",service=\"hostile\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    addr
}

#[tokio::test]
async fn a_registry_token_that_cannot_be_a_header_ends_the_pull_with_a_status() {
    let daemon = Berthd::start();
    let registry = hostile_token_registry();
    let mut images = daemon.images().await;
    let status = images
        .pull_image(v1::PullImageRequest {
            image: Some(v1::ImageSpec {
                image: format!("{registry}/berth-test/hostile:1"),
                ..Default::default()
            }),
            auth: None,
            sandbox_config: None,
        })
        .await
        .expect_err("the pull cannot succeed");
    eprintln!("hostile token registry: {status:?}");
    // A status from berthd (the registry client panics on that token; without the pull's
    // own task the stream was reset: CANCELLED with an h2 message).
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(status.message().contains("panicked"), "{status:?}");
    let version = daemon
        .runtime()
        .await
        .version(v1::VersionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.runtime_name, "berth");
}

/// One HTTP/2 frame.
fn h2_frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Calls Version over a hand-made HTTP/2 connection whose `:authority` is `authority`, as
/// clients other than Go's send it; returns the trailers' grpc-status and the response.
fn version_with_authority(socket: &std::path::Path, authority: &str) -> (String, Vec<u8>) {
    use prost::Message as _;
    let message = v1::VersionRequest {
        version: "v1".into(),
    }
    .encode_to_vec();
    raw_h2_call(
        socket,
        "/runtime.v1.RuntimeService/Version",
        authority,
        &[],
        &message,
    )
}

/// Calls `path` with `message` over a hand-made HTTP/2 connection (no client of its own
/// between the test and berthd: no client-side deadline either), with `:authority` and the
/// `extra` headers; returns the grpc-status (trailers, or headers of a trailers-only answer)
/// and the response's DATA.
fn raw_h2_call(
    socket: &std::path::Path,
    path: &str,
    authority: &str,
    extra: &[(&[u8], &[u8])],
    message: &[u8],
) -> (String, Vec<u8>) {
    use std::io::Read;
    let mut conn = std::os::unix::net::UnixStream::connect(socket).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut encoder = fluke_hpack::Encoder::new();
    let mut fields: Vec<(&[u8], &[u8])> = vec![
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", path.as_bytes()),
        (b":authority", authority.as_bytes()),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
    ];
    fields.extend_from_slice(extra);
    let block = encoder.encode(fields);
    let mut data = vec![0u8];
    data.extend_from_slice(&(message.len() as u32).to_be_bytes());
    data.extend_from_slice(message);
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(h2_frame(0x4, 0, 0, &[]));
    out.extend(h2_frame(0x1, 0x4, 1, &block));
    out.extend(h2_frame(0x0, 0x1, 1, &data));
    conn.write_all(&out).unwrap();

    let mut decoder = fluke_hpack::Decoder::new();
    let mut body = Vec::new();
    loop {
        let mut header = [0u8; 9];
        conn.read_exact(&mut header).expect("berthd answers");
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; len];
        conn.read_exact(&mut payload).unwrap();
        match header[3] {
            0x4 if header[4] & 0x1 == 0 => conn.write_all(&h2_frame(0x4, 0x1, 0, &[])).unwrap(),
            0x0 => body.extend_from_slice(&payload),
            0x3 => panic!("stream reset: {payload:?}"),
            0x7 => panic!("connection closed (GOAWAY): {payload:?}"),
            0x1 => {
                let fields = decoder.decode(&payload).unwrap();
                if let Some((_, status)) = fields.iter().find(|(n, _)| n == b"grpc-status") {
                    return (String::from_utf8_lossy(status).into_owned(), body);
                }
            }
            _ => {}
        }
    }
}

/// A pull whose deadline (`grpc-timeout`) passes while the registry says nothing is answered
/// DEADLINE_EXCEEDED (4), as gRPC defines it and critest's "should timeout if requested"
/// expects; tonic's own answer is CANCELLED (1), which a client sees whenever berthd's answer
/// comes before its own timer fires. The raw connection has no timer of its own.
#[tokio::test]
async fn a_pull_past_its_deadline_is_deadline_exceeded() {
    use prost::Message as _;
    // A registry that accepts connections (the kernel's backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let daemon = Berthd::start();
    let message = v1::PullImageRequest {
        image: Some(v1::ImageSpec {
            image: format!("127.0.0.1:{port}/silent/image:1"),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let socket = daemon.socket.clone();
    let started = std::time::Instant::now();
    let (status, _) = tokio::task::spawn_blocking(move || {
        let timeout: (&[u8], &[u8]) = (b"grpc-timeout", b"300m");
        raw_h2_call(
            &socket,
            "/runtime.v1.ImageService/PullImage",
            "localhost",
            &[timeout],
            &message,
        )
    })
    .await
    .unwrap();
    assert_eq!(status, "4", "DEADLINE_EXCEEDED");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[tokio::test]
async fn any_authority_is_accepted_on_the_socket() {
    use prost::Message as _;
    let daemon = Berthd::start();
    // Python's grpcio sends the %-encoded socket path; Go's gRPC sends "localhost".
    for authority in ["tmp%2Fpyb%2Fb.sock", "localhost", "berth.sock"] {
        let socket = daemon.socket.clone();
        let authority_owned = authority.to_owned();
        let (status, body) =
            tokio::task::spawn_blocking(move || version_with_authority(&socket, &authority_owned))
                .await
                .unwrap();
        assert_eq!(status, "0", "{authority}");
        let version = v1::VersionResponse::decode(&body[5..]).unwrap();
        assert_eq!(version.runtime_name, "berth", "{authority}");
    }
}

#[tokio::test]
async fn a_log_path_that_leaves_the_pod_log_directory_is_invalid() {
    let daemon = Berthd::start();
    let mut rt = daemon.runtime().await;
    for log_path in ["../escaped.log", "/var/log/escaped.log", "c/../../x.log"] {
        let message = invalid(
            rt.create_container(v1::CreateContainerRequest {
                pod_sandbox_id: "0123456789ab".into(),
                config: Some(v1::ContainerConfig {
                    metadata: Some(v1::ContainerMetadata {
                        name: "c".into(),
                        attempt: 0,
                    }),
                    log_path: log_path.into(),
                    ..Default::default()
                }),
                sandbox_config: None,
            })
            .await,
        );
        assert!(
            message.starts_with("invalid config.log_path: "),
            "{log_path}: {message}"
        );
    }
}

#[tokio::test]
async fn cni_argument_separators_in_pod_metadata_are_invalid() {
    let daemon = Berthd::start();
    let mut rt = daemon.runtime().await;
    // name, namespace and uid reach the CNI plugins in CNI_ARGS, whose pairs `;` and `=`
    // separate.
    for (field, name, namespace, uid) in [
        ("config.metadata.namespace", "p", "berth=fuzz", "u"),
        ("config.metadata.name", "a;b", "ns", "u"),
        ("config.metadata.uid", "p", "ns", "K8S_POD_NAME=x"),
    ] {
        let message = invalid(
            rt.run_pod_sandbox(v1::RunPodSandboxRequest {
                config: Some(v1::PodSandboxConfig {
                    metadata: Some(v1::PodSandboxMetadata {
                        name: name.into(),
                        namespace: namespace.into(),
                        uid: uid.into(),
                        attempt: 0,
                    }),
                    ..Default::default()
                }),
                runtime_handler: String::new(),
            })
            .await,
        );
        assert!(
            message.starts_with(&format!("invalid {field}: character ")),
            "{field}: {message}"
        );
    }
    assert_no_pods(&mut rt).await;
}

#[tokio::test]
async fn a_nul_in_a_mount_path_is_invalid() {
    let daemon = Berthd::start();
    let mut rt = daemon.runtime().await;
    for (field, host_path, container_path) in [
        ("config.mounts.host_path", "/tmp/a\0b", "/data"),
        ("config.mounts.container_path", "/tmp", "/da\0ta"),
    ] {
        let message = invalid(
            rt.create_container(v1::CreateContainerRequest {
                pod_sandbox_id: "0123456789ab".into(),
                config: Some(v1::ContainerConfig {
                    metadata: Some(v1::ContainerMetadata {
                        name: "c".into(),
                        attempt: 0,
                    }),
                    mounts: vec![v1::Mount {
                        host_path: host_path.into(),
                        container_path: container_path.into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                sandbox_config: None,
            })
            .await,
        );
        assert!(
            message.starts_with(&format!("invalid {field}: character '\\0'")),
            "{field}: {message}"
        );
    }
}

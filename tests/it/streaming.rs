//! Streaming against a real berthd, as root, with crictl (SPDY/3.1, and WebSocket where
//! marked): `crictl exec` without a TTY (output, exit code 7, stdin; also over WebSocket),
//! `crictl exec -it` under a pty (`script`), `crictl attach -i` to a `stdin_once` shell,
//! `crictl port-forward` (also over WebSocket) to a web server in the pod's network
//! namespace, and the streaming server's answers to a bad token (404) and to a request that
//! is no SPDY upgrade (400).
//!
//! Needs root, the shared test registry (`BERTH_TEST_REGISTRY`) and crictl on PATH (as
//! tests/run.sh arranges); otherwise each test prints a note and passes (or fails when
//! `BERTH_REQUIRE_REGISTRY=1`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_integration::crictl::{self, crictl, ok};

const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.29-2";
/// Network slot of this test in its binary (see `TestNet`).
const SLOT: u8 = 0;

/// Sends `request` raw and returns the status line of the answer.
fn status_line(base: &str, request: &str) -> String {
    let addr = base.trim_start_matches("http://");
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = socket.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

fn http_get(port: u16, path: &str) -> Vec<u8> {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(socket, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).unwrap();
    answer
}

/// Runs `cmd` in container `ctr` through an Exec URL over WebSocket with `protocol` only;
/// returns what arrived on each channel (decoded from base64 for `base64.channel.k8s.io`).
fn websocket_exec(
    socket: &std::path::Path,
    ctr: &str,
    protocol: &str,
    cmd: &[&str],
) -> std::collections::BTreeMap<u8, Vec<u8>> {
    use base64::prelude::{Engine as _, BASE64_STANDARD};
    use tungstenite::client::IntoClientRequest as _;
    use tungstenite::Message;

    let url = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let channel = berth_integration::connect(socket).await;
        cri_api::RuntimeServiceClient::new(channel)
            .exec(cri_api::v1::ExecRequest {
                container_id: ctr.to_owned(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                stdout: true,
                stderr: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .url
    });
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
    let mut channels = std::collections::BTreeMap::<u8, Vec<u8>>::new();
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

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn exec_and_port_forward_over_spdy() {
    let test = "exec_and_port_forward_over_spdy";
    let Some(env) = crictl::start_env(test, SLOT) else {
        return;
    };
    let socket = env.daemon.socket.clone();
    let dir = env.daemon.dir.path().to_owned();

    let (pod_json, ctr_json) = crictl::top_pod_configs(&dir, "streaming", BUSYBOX);
    ok(&socket, &["pull", BUSYBOX]);
    let pod = crictl::run_pod(&socket, &pod_json);
    let result = std::panic::catch_unwind(|| {
        let ctr = crictl::create_started(&socket, &pod, &ctr_json, &pod_json);

        // Exec without a TTY: output only on stdout.
        let hello = crictl(&socket, &["exec", &ctr, "echo", "hello"], None);
        assert!(hello.status.success());
        assert_eq!(String::from_utf8_lossy(&hello.stdout), "hello\n");

        // A non-zero exit reaches the client as exit code 7 through the v4 status.
        let seven = crictl(&socket, &["exec", &ctr, "sh", "-c", "exit 7"], None);
        assert!(!seven.status.success());
        let stderr = String::from_utf8_lossy(&seven.stderr);
        assert!(stderr.contains("exit code 7"), "{stderr}");

        // The same over WebSocket (v5.channel.k8s.io): output, the exit code through the
        // status on the error channel, and stdin closed by the v5 close signal.
        let ws = ["exec", "--transport", "websocket"];
        let hello = crictl(&socket, &[&ws[..], &[&ctr, "echo", "hello"]].concat(), None);
        assert!(
            hello.status.success(),
            "{}",
            String::from_utf8_lossy(&hello.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&hello.stdout), "hello\n");
        let seven = crictl(
            &socket,
            &[&ws[..], &[&ctr, "sh", "-c", "exit 7"]].concat(),
            None,
        );
        assert!(!seven.status.success());
        let stderr = String::from_utf8_lossy(&seven.stderr);
        assert!(stderr.contains("exit code 7"), "{stderr}");
        let piped = crictl(
            &socket,
            &[&ws[..], &["-i", &ctr, "wc", "-c"]].concat(),
            Some(b"twelve bytes"),
        );
        assert!(piped.status.success());
        assert_eq!(String::from_utf8_lossy(&piped.stdout).trim(), "12");

        // The older WebSocket subprotocols kubelet's streaming library serves (Kubernetes'
        // conformance spec for exec over websockets offers only `channel.k8s.io`): the
        // output, and the exit as text on the error channel.
        for protocol in [
            "channel.k8s.io",
            "v2.channel.k8s.io",
            "v3.channel.k8s.io",
            "base64.channel.k8s.io",
        ] {
            let channels =
                websocket_exec(&socket, &ctr, protocol, &["sh", "-c", "echo hi; exit 3"]);
            assert_eq!(
                channels.get(&1).map(Vec::as_slice),
                Some(&b"hi\n"[..]),
                "{protocol}: {channels:?}"
            );
            let error = String::from_utf8_lossy(channels.get(&3).map_or(&[][..], Vec::as_slice))
                .into_owned();
            assert!(
                error.contains("exit status 3"),
                "{protocol}: error channel {error:?}"
            );
        }

        // stdin, 300 KB through SPDY flow, and stdout back.
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let piped = crictl(
            &socket,
            &[
                "exec",
                "-i",
                &ctr,
                "sh",
                "-c",
                "mkdir -p /www && cat > /www/big && wc -c < /www/big",
            ],
            Some(&payload),
        );
        assert!(piped.status.success());
        assert_eq!(String::from_utf8_lossy(&piped.stdout).trim(), "300000");
        let back = crictl(&socket, &["exec", &ctr, "cat", "/www/big"], None);
        assert_eq!(back.stdout, payload);

        // Exec with a TTY, under a pty from `script`: the command sees a terminal, its
        // output arrives and its exit code is reported.
        let endpoint = format!("unix://{}", socket.display());
        let tty_exec = Command::new("script")
            .args(["-qec"])
            .arg(format!(
                "crictl --runtime-endpoint {endpoint} exec -it {ctr} sh -c 'tty; echo tty-ok; exit 3'"
            ))
            .arg("/dev/null")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run script");
        let tty_out = tty_exec.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&tty_out.stdout);
        assert!(text.contains("/dev/pts/"), "{text}");
        assert!(text.contains("tty-ok"), "{text}");
        assert!(!tty_out.status.success(), "{text}");

        // Attach to a shell started with stdin and stdin_once: what is written reaches it,
        // its output comes back, and the end of the input ends the shell and the session.
        let sh_json = dir.join("sh.json");
        std::fs::write(
            &sh_json,
            format!(r#"{{"metadata":{{"name":"shell"}},"image":{{"image":"{BUSYBOX}"}},"command":["sh"],"stdin":true,"stdin_once":true,"log_path":"sh.log","linux":{{}}}}"#),
        )
        .unwrap();
        let shell = ok(
            &socket,
            &[
                "create",
                &pod,
                sh_json.to_str().unwrap(),
                pod_json.to_str().unwrap(),
            ],
        )
        .trim()
        .to_owned();
        ok(&socket, &["start", &shell]);
        let attached = crictl(
            &socket,
            &["attach", "-i", &shell],
            Some(b"echo attached-ok; echo to-stderr >&2\n"),
        );
        let out = String::from_utf8_lossy(&attached.stdout);
        assert!(
            attached.status.success(),
            "{out} {}",
            String::from_utf8_lossy(&attached.stderr)
        );
        assert_eq!(out, "attached-ok\n");
        assert!(String::from_utf8_lossy(&attached.stderr).contains("to-stderr"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = ok(
                &socket,
                &[
                    "inspect",
                    "-o",
                    "go-template",
                    "--template",
                    "{{.status.state}}",
                    &shell,
                ],
            );
            if state.trim() == "CONTAINER_EXITED" {
                break;
            }
            assert!(Instant::now() < deadline, "attached shell still {state}");
            std::thread::sleep(Duration::from_millis(100));
        }
        // The shell's output went to its log as well.
        let logs = crictl(&socket, &["logs", &shell], None);
        assert!(String::from_utf8_lossy(&logs.stdout).contains("attached-ok"));

        // Port-forward to a web server on the pod's loopback.
        ok(
            &socket,
            &[
                "exec",
                &ctr,
                "sh",
                "-c",
                "echo hi-from-pod > /www/index.html && httpd -p 8080 -h /www",
            ],
        );
        // Over SPDY, then tunnelled through WebSocket (SPDY/3.1+portforward.k8s.io).
        for (transport, local) in [("spdy", 18047u16), ("websocket", 18048)] {
            let forward = KillOnDrop(
                Command::new("crictl")
                    .arg("--runtime-endpoint")
                    .arg(format!("unix://{}", socket.display()))
                    .args(["port-forward", "--transport", transport, &pod])
                    .arg(format!("{local}:8080"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while TcpStream::connect(("127.0.0.1", local)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "crictl port-forward ({transport}) did not listen"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            for _ in 0..3 {
                let answer = String::from_utf8(http_get(local, "/")).unwrap();
                assert!(
                    answer.lines().next().unwrap_or_default().contains(" 200 "),
                    "{transport}: {answer}"
                );
                assert!(answer.ends_with("hi-from-pod\n"), "{transport}: {answer}");
            }
            let big = http_get(local, "/big");
            assert!(big.ends_with(&payload), "{transport}: {} bytes", big.len());
            drop(forward);
        }

        // Bad input to the streaming server.
        let log = env.daemon.log_text();
        let base = log
            .split("streaming=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("berthd logs its streaming URL")
            .to_owned();
        let upgrade = "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n";
        assert_eq!(
            status_line(
                &base,
                &format!("POST /exec/0123456789abcdef HTTP/1.1\r\nHost: x\r\n{upgrade}\r\n")
            ),
            "HTTP/1.1 404 Not Found"
        );
        assert_eq!(
            status_line(
                &base,
                "POST /exec/0123456789abcdef HTTP/1.1\r\nHost: x\r\n\r\n"
            ),
            "HTTP/1.1 400 Bad Request"
        );
        assert_eq!(
            status_line(&base, "nonsense\r\n\r\n"),
            "HTTP/1.1 400 Bad Request"
        );
        // The server still serves sessions afterwards.
        let again = crictl(&socket, &["exec", &ctr, "echo", "-n", "hello"], None);
        assert_eq!(String::from_utf8_lossy(&again.stdout), "hello");
    });
    let removed = crictl(&socket, &["rmp", "--force", &pod], None);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert!(removed.status.success());
    drop(env);
}

use std::time::Duration;

use super::*;

fn sample() -> Sample {
    Sample {
        containers: ContainerStates {
            created: 1,
            running: 2,
            exited: 3,
            unknown: 0,
        },
        pods: PodStates {
            ready: 4,
            not_ready: 5,
        },
        shims: 3,
        oom_kills: 6,
        image_pull_bytes: 1_234_567,
        gc_runs: 7,
        gc_freed_bytes: 8_192,
        stream_sessions: vec![
            StreamSessions {
                kind: "exec",
                started: 9,
                active: 1,
            },
            StreamSessions {
                kind: "portforward",
                started: 10,
                active: 0,
            },
        ],
    }
}

/// The value of the sample line `series` (name and labels exactly as printed).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().unwrap())
        })
}

/// The `# TYPE` of metric family `name`.
fn type_of<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("# TYPE {name} ")))
}

#[test]
fn a_sample_is_encoded_with_fixed_labels_and_prometheus_names() {
    let text = Metrics::new().encode(sample());
    let expected = [
        ("berth_containers{state=\"created\"}", 1.0),
        ("berth_containers{state=\"running\"}", 2.0),
        ("berth_containers{state=\"exited\"}", 3.0),
        ("berth_containers{state=\"unknown\"}", 0.0),
        ("berth_pods{state=\"ready\"}", 4.0),
        ("berth_pods{state=\"notready\"}", 5.0),
        ("berth_shims", 3.0),
        ("berth_containers_oom_killed_total", 6.0),
        ("berth_image_pull_bytes_total", 1_234_567.0),
        ("berth_image_gc_runs_total", 7.0),
        ("berth_image_gc_freed_bytes_total", 8_192.0),
        ("berth_stream_sessions_total{kind=\"exec\"}", 9.0),
        ("berth_stream_sessions_total{kind=\"portforward\"}", 10.0),
        ("berth_stream_sessions_active{kind=\"exec\"}", 1.0),
        ("berth_stream_sessions_active{kind=\"portforward\"}", 0.0),
    ];
    for (series, want) in expected {
        assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
    }
    for (family, kind) in [
        ("berth_containers", "gauge"),
        ("berth_pods", "gauge"),
        ("berth_shims", "gauge"),
        ("berth_containers_oom_killed_total", "counter"),
        ("berth_image_pull_bytes_total", "counter"),
        ("berth_image_gc_runs_total", "counter"),
        ("berth_image_gc_freed_bytes_total", "counter"),
        ("berth_stream_sessions_total", "counter"),
        ("berth_stream_sessions_active", "gauge"),
        ("berth_image_pull_duration_seconds", "histogram"),
    ] {
        assert_eq!(type_of(&text, family), Some(kind), "{family} in\n{text}");
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no help in\n{text}"
        );
    }
    // The text format 0.0.4: no OpenMetrics end marker or unit lines.
    assert!(
        !text.contains("# EOF") && !text.contains("# UNIT"),
        "{text}"
    );
    assert!(text.ends_with('\n'));
}

#[test]
fn rpcs_are_timed_by_name_and_errors_counted_by_code() {
    let metrics = Metrics::new();
    // Nothing recorded: no series of the RPC families (but the pull histogram, at zero).
    let empty = metrics.encode(Sample::default());
    assert!(!empty.contains("berth_cri_request"), "{empty}");
    assert_eq!(
        value(&empty, "berth_image_pull_duration_seconds_count"),
        Some(0.0)
    );

    metrics.record_rpc("Version", Duration::from_micros(300), None);
    metrics.record_rpc("Version", Duration::from_millis(20), None);
    metrics.record_rpc(
        "ContainerStatus",
        Duration::from_millis(2),
        Some("NotFound"),
    );
    metrics.record_rpc(
        "ContainerStatus",
        Duration::from_secs(500),
        Some("NotFound"),
    );
    metrics.record_rpc(
        "ContainerStatus",
        Duration::from_millis(1),
        Some("InvalidArgument"),
    );
    let text = metrics.encode(Sample::default());
    let rpc = "berth_cri_request_duration_seconds";
    assert_eq!(type_of(&text, rpc), Some("histogram"), "{text}");
    assert_eq!(
        value(&text, &format!("{rpc}_count{{rpc=\"Version\"}}")),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            &format!("{rpc}_bucket{{rpc=\"Version\",le=\"0.0005\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("{rpc}_bucket{{rpc=\"Version\",le=\"0.025\"}}")
        ),
        Some(2.0)
    );
    // Slower than the last bucket: only in +Inf.
    assert_eq!(
        value(
            &text,
            &format!("{rpc}_bucket{{rpc=\"ContainerStatus\",le=\"120\"}}")
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("{rpc}_bucket{{rpc=\"ContainerStatus\",le=\"+Inf\"}}")
        ),
        Some(3.0)
    );
    let errors = "berth_cri_request_errors_total";
    assert_eq!(type_of(&text, errors), Some("counter"));
    assert_eq!(
        value(
            &text,
            &format!("{errors}{{rpc=\"ContainerStatus\",code=\"NotFound\"}}")
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("{errors}{{rpc=\"ContainerStatus\",code=\"InvalidArgument\"}}")
        ),
        Some(1.0)
    );
    // A success is no error.
    assert!(
        !text.contains(&format!("{errors}{{rpc=\"Version\"")),
        "{text}"
    );
}

#[test]
fn pulls_record_durations_and_failures() {
    let metrics = Metrics::new();
    metrics.record_pull(Ok(Duration::from_secs(3)));
    metrics.record_pull(Err("NotFound"));
    metrics.record_pull(Err("NotFound"));
    metrics.record_pull(Err("Unavailable"));
    let text = metrics.encode(Sample::default());
    let pull = "berth_image_pull_duration_seconds";
    assert_eq!(value(&text, &format!("{pull}_count")), Some(1.0), "{text}");
    assert_eq!(value(&text, &format!("{pull}_sum")), Some(3.0));
    assert_eq!(
        value(&text, &format!("{pull}_bucket{{le=\"2.5\"}}")),
        Some(0.0)
    );
    assert_eq!(
        value(&text, &format!("{pull}_bucket{{le=\"5\"}}")),
        Some(1.0)
    );
    let failures = "berth_image_pull_failures_total";
    assert_eq!(type_of(&text, failures), Some("counter"));
    assert_eq!(
        value(&text, &format!("{failures}{{code=\"NotFound\"}}")),
        Some(2.0)
    );
    assert_eq!(
        value(&text, &format!("{failures}{{code=\"Unavailable\"}}")),
        Some(1.0)
    );
}

#[test]
fn no_stream_sessions_no_stream_families() {
    let text = Metrics::new().encode(Sample::default());
    assert!(!text.contains("berth_stream_sessions"), "{text}");
    assert_eq!(value(&text, "berth_shims"), Some(0.0));
}

/// Prometheus' own linter on everything berth encodes (the integration test `metrics` runs
/// it on a live berthd's scrape as well).
#[test]
fn promtool_accepts_the_encoding() {
    if !berth_testutil::need_program("promtool", "prometheus") {
        return;
    }
    let metrics = Metrics::new();
    metrics.record_rpc("Version", Duration::from_millis(1), None);
    metrics.record_rpc("StopPodSandbox", Duration::from_millis(1), Some("NotFound"));
    metrics.record_pull(Ok(Duration::from_secs(1)));
    metrics.record_pull(Err("Unavailable"));
    let text = metrics.encode(sample());
    if let Err(verdict) = berth_testutil::promtool_check_metrics(&text) {
        panic!("{verdict}\non\n{text}");
    }
}

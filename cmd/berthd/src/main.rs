//! berthd: serves the Kubernetes CRI (RuntimeService and ImageService) and berth's own
//! Admin service (for berthctl) on a Unix socket.

#![deny(unsafe_code)]

mod cli;
mod listener;
mod memory;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use berth_config::Config;
use berth_server::Daemon;
use berth_store::Store;
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::StreamExt as _;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let (config, files) = match Config::load_with_files(cli.config.as_deref(), &cli.overrides()) {
        Ok(loaded) => (loaded.config, loaded.files),
        Err(err) => {
            eprintln!("berthd: {err}");
            return ExitCode::from(2);
        }
    };
    if let Err(err) = init_logging(&config.log_level) {
        eprintln!("berthd: invalid log level {:?}: {err}", config.log_level);
        return ExitCode::from(2);
    }
    // Few malloc arenas: what bursts of requests free is found again instead of kept per
    // thread (see memory.rs for the other half).
    berth_stream::limit_arenas(memory::MALLOC_ARENAS);
    berth_stream::fix_malloc_thresholds(memory::MMAP_THRESHOLD, memory::TRIM_THRESHOLD);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("berthd: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, &files)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "berthd stopped");
            eprintln!("berthd: {err}");
            ExitCode::FAILURE
        }
    }
}

/// How long shutdown waits for open client connections to finish.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
enum DaemonError {
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error(transparent)]
    Listen(#[from] listener::ListenError),
    #[error(transparent)]
    Images(#[from] berth_image::ImageError),
    #[error("cannot recover the runtime state: {0}")]
    Recover(#[from] berth_server::ServiceError),
    #[error("cannot install signal handler: {0}")]
    Signal(std::io::Error),
    #[error("cannot listen for streaming on {address}: {source}")]
    Stream {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot listen for metrics on {address} (metrics.address): {source}")]
    Metrics {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error(
        "no berth-shim at {} ({why}): every container and shared PID namespace runs under it; \
         set runtime.shim_path or install it beside berthd",
        path.display()
    )]
    Shim {
        path: std::path::PathBuf,
        why: &'static str,
    },
}

/// Fails unless `path` is an executable file: without the shim berthd could answer but not
/// run a single container, and the failure would only show at the first RunPodSandbox.
fn check_shim(path: &std::path::Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::PermissionsExt as _;
    let why = match std::fs::metadata(path) {
        Err(_) => "not found",
        Ok(meta) if !meta.is_file() => "not a file",
        Ok(meta) if meta.permissions().mode() & 0o111 == 0 => "not executable",
        Ok(_) => return Ok(()),
    };
    Err(DaemonError::Shim {
        path: path.to_owned(),
        why,
    })
}

async fn serve(config: Config, files: &[std::path::PathBuf]) -> Result<(), DaemonError> {
    for dir in [&config.root, &config.state] {
        std::fs::create_dir_all(dir).map_err(|source| DaemonError::CreateDir {
            path: dir.clone(),
            source,
        })?;
    }
    // Before the socket exists: a SIGTERM sent as soon as it accepts (while recovery runs)
    // is a clean shutdown, not the default death.
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    let store = Store::open(&config.root)?;
    let (listener, socket_guard) = listener::bind(&config.listen)?;
    let listen = config.listen.clone();
    let stream_server = bind_stream(&config.stream).await?;
    let metrics_server = match config.metrics.socket_addr() {
        Some(address) => Some(
            berth_metrics::http::MetricsServer::bind(address)
                .await
                .map_err(|source| DaemonError::Metrics { address, source })?,
        ),
        None => None,
    };
    let daemon = Arc::new(Daemon::new(config, store)?);
    check_shim(&daemon.shim_binary())?;
    // Every pod and container is reconciled with the host before the first request.
    daemon.start_core().await?;
    let _ = daemon.stream.set(stream_server.handle());
    let stream_url = stream_server.handle().base_url().to_owned();
    let streaming = tokio::spawn(stream_server.serve());
    tokio::spawn(memory::trim_after_bursts());
    let metrics_url = match &metrics_server {
        Some(server) => server
            .local_addr()
            .map(|addr| format!("http://{addr}{}", berth_metrics::http::PATH))
            .unwrap_or_default(),
        None => "off".to_owned(),
    };
    let metrics = metrics_server
        .map(|server| tokio::spawn(server.serve(daemon.metrics.clone(), daemon.clone())));
    let (runtime_service, image_service) = berth_server::services(daemon.clone());
    let admin_service = berth_server::admin_service(daemon.clone());

    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let name = tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = sigint.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down");
        let _ = stopping_tx.send(());
    };

    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        socket = %listen.display(),
        root = %daemon.config.root.display(),
        state = %daemon.config.state.display(),
        cgroup_driver = daemon.cgroup_driver.name(),
        cgroup_mode = daemon.cgroup_mode.name(),
        streaming = %stream_url,
        metrics = %metrics_url,
        handlers = %handler_names(&daemon.config),
        config = %config_files(files),
        "berthd serving the CRI"
    );
    let server = tonic::transport::Server::builder()
        .layer(tower::util::MapResponseLayer::new(
            berth_server::oversize_status::<tonic::body::Body>,
        ))
        // A client's passed deadline answered DeadlineExceeded (tonic's own: Cancelled).
        .layer(tower::layer::layer_fn(berth_server::Deadline::new))
        .add_service(runtime_service)
        .add_service(image_service)
        .add_service(admin_service)
        .serve_with_incoming_shutdown(
            // Clients that send an :authority h2 refuses (Python's grpcio) are served too.
            UnixListenerStream::new(listener).map(|conn| conn.map(berth_server::AnyAuthority::new)),
            shutdown,
        );
    // Graceful shutdown waits for clients to close their connections; one that never does
    // must not keep the daemon from stopping.
    let grace_expired = async {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        result = server => result,
        () = grace_expired => {
            tracing::warn!(seconds = SHUTDOWN_GRACE.as_secs(), "clients still connected; closing anyway");
            Ok(())
        }
    };
    streaming.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    daemon.core().shutdown();
    drop(socket_guard);
    match daemon.store.flush() {
        Ok(_) => tracing::info!("metadata flushed; stopped"),
        Err(err) => tracing::error!(error = %err, "cannot flush metadata"),
    }
    result.map_err(DaemonError::from)
}

/// The files merged over the embedded default, in order, for the start-up log line.
fn config_files(files: &[std::path::PathBuf]) -> String {
    if files.is_empty() {
        return "embedded default only".to_owned();
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    format!("embedded default + {}", names.join(" + "))
}

/// The runtime handlers, the default one marked, for the start-up log line.
fn handler_names(config: &Config) -> String {
    let names: Vec<String> = config
        .handlers()
        .into_iter()
        .map(|h| match h.default {
            true => format!("{} (default, {})", h.name, h.path.display()),
            false => format!("{} ({})", h.name, h.path.display()),
        })
        .collect();
    names.join(", ")
}

/// Binds the streaming server that Exec, Attach and PortForward URLs point to.
async fn bind_stream(
    config: &berth_config::StreamConfig,
) -> Result<berth_stream::Server, DaemonError> {
    let address = format!("{}:{}", config.address, config.port);
    let ip = config.address.parse().map_err(|_| DaemonError::Stream {
        address: address.clone(),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
    berth_stream::Server::bind(berth_stream::ServerConfig {
        address: ip,
        port: config.port,
        token_ttl: std::time::Duration::from_secs(config.token_ttl_seconds),
        pending: berth_stream::PendingLimits {
            max_sessions: usize::try_from(config.max_pending_sessions).unwrap_or(usize::MAX),
            max_bytes: usize::try_from(config.max_pending_bytes).unwrap_or(usize::MAX),
        },
    })
    .await
    .map_err(|source| DaemonError::Stream { address, source })
}

fn init_logging(filter: &str) -> Result<(), tracing_subscriber::filter::ParseError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => EnvFilter::try_new(env)?,
        _ => EnvFilter::try_new(filter)?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

//! The mock's command line, shared by the `fulcrum-mock` binary and the
//! `fulcrum mock` subcommand: one mock inference server in its own process,
//! for benchmarks, the demo and process-level tests. It prints
//! `listening on http://IP:PORT` once bound (so scripts can pick up a random
//! port) and serves until SIGINT or SIGTERM. Settings can be changed later
//! through `POST /__mock/control`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use crate::{FailureMode, Latency, MockConfig, MockServer};

/// `--mode`'s values and their help come from [`FailureMode::ALL`], the
/// list the parser itself accepts, so `--help` cannot miss one.
impl clap::ValueEnum for FailureMode {
    fn value_variants<'a>() -> &'a [Self] {
        &FailureMode::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(
            clap::builder::PossibleValue::new(self.as_str())
                .aliases(self.aliases().iter().copied())
                .help(self.help()),
        )
    }
}

/// Command-line settings of a mock instance (`fulcrum-mock` and `fulcrum mock`).
#[derive(Debug, Clone, clap::Args)]
pub struct MockArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Instance name, echoed in responses and the x-mock-instance header.
    #[arg(long, default_value = "mock")]
    pub name: String,
    /// Processing delay per request, e.g. 0ms, 50ms, 1s (minimum or median, see below).
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Maximum delay: the latency becomes uniform between --latency and this.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "lognormal_sigma")]
    pub latency_max: Option<Duration>,
    /// Long-tailed latency: log-normal with median --latency and this sigma.
    #[arg(long)]
    pub lognormal_sigma: Option<f64>,
    /// Requests processed concurrently; extra requests wait in FIFO order.
    #[arg(long)]
    pub capacity: Option<usize>,
    /// Probability (0..=1) of answering 500 {"error":"injected"}.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Failure mode (also settable later through POST /__mock/control).
    #[arg(long, value_enum, default_value = "normal")]
    pub mode: FailureMode,
    /// Start with /health answering 503.
    #[arg(long)]
    pub unhealthy: bool,
    /// Tokio worker threads (1 runs a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Seed of the random generator, for reproducible latency and errors.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Runs one mock instance until SIGINT or SIGTERM, printing
/// `listening on http://IP:PORT` once bound.
pub fn run(args: MockArgs) -> Result<(), String> {
    if !(0.0..=1.0).contains(&args.error_rate) {
        return Err(format!(
            "--error-rate must be within 0..=1, got {}",
            args.error_rate
        ));
    }
    if args.capacity == Some(0) {
        return Err("--capacity must be at least 1".to_string());
    }
    let latency = Latency::from_parts(args.latency, args.latency_max, args.lognormal_sigma)?;
    let cfg = MockConfig {
        name: args.name,
        latency,
        capacity: args.capacity,
        error_rate: args.error_rate,
        mode: args.mode,
        healthy: !args.unhealthy,
        seed: args.seed,
    };
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(serve(args.listen, cfg))
}

async fn serve(listen: SocketAddr, cfg: MockConfig) -> Result<(), String> {
    let server = MockServer::start(listen, cfg)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", server.url());
    let _ = stdout.flush();
    shutdown_signal().await?;
    server.kill().await;
    Ok(())
}

async fn shutdown_signal() -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map_err(|e| format!("cannot handle SIGINT: {e}")),
        _ = term.recv() => Ok(()),
    }
}

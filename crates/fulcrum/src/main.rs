//! The `fulcrum` command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use fulcrum_config::{report, ConfigError, ConfigErrors};

mod client;
use std::path::PathBuf;
use std::process::ExitCode;

// mimalloc instead of glibc malloc: the request path makes a few dozen
// small allocations per request, and glibc's malloc/free were ~15 % of the
// proxy's user-space instructions under callgrind (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Fulcrum: a load-balancing gateway for fleets of AI inference services.
///
/// Decides, request by request, which inference instance (object
/// detection, ASR, LLM, TTS) serves the next call, and keeps serving when
/// instances slow down, fill up or die.
#[derive(Debug, Parser)]
#[command(name = "fulcrum", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the gateway. Without -c it uses the embedded default: proxy on
    /// 0.0.0.0:8080; admin API (live stats, overrides) and the service
    /// registry on 127.0.0.1:9090 (registrations kept in ./fulcrum-data);
    /// no static pools.
    Serve {
        /// YAML config file (see README: "Configuration").
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Worker threads (default: one per CPU the process may use).
        #[arg(long, env = "FULCRUM_THREADS", value_name = "N")]
        threads: Option<usize>,
        /// Log filter, e.g. `info`, `debug`, `fulcrum_dataplane=debug`.
        #[arg(
            long,
            env = "FULCRUM_LOG",
            default_value = "info",
            value_name = "FILTER"
        )]
        log: String,
        /// Log format: `text` (one line per event) or `json` (one JSON
        /// object per line, for log shippers); default: the config's
        /// `log.format`, else `text`.
        #[arg(long, env = "FULCRUM_LOG_FORMAT", value_name = "FORMAT")]
        log_format: Option<LogFormat>,
    },
    /// Validate a config file and print every error, each with its
    /// file:line:column and YAML path; exit status 2 if there is any.
    Check {
        /// YAML config file to validate.
        #[arg(
            value_name = "FILE",
            required_unless_present = "config",
            conflicts_with = "config"
        )]
        file: Option<PathBuf>,
        /// The same file, given as for `serve`.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// List the registered services of a running gateway.
    Services {
        #[command(flatten)]
        target: client::Target,
    },
    /// Show every pool and instance of a running gateway (or one pool):
    /// health, weights, in-flight, requests, share vs expected, latency.
    Stats {
        /// Only this pool.
        pool: Option<String>,
        #[command(flatten)]
        target: client::Target,
    },
    /// Stop sending new requests to an instance (in-flight ones finish).
    Drain {
        /// instance_id or endpoint URL.
        instance: String,
        #[command(flatten)]
        target: client::Target,
    },
    /// Undo `drain`.
    Enable {
        /// instance_id or endpoint URL.
        instance: String,
        #[command(flatten)]
        target: client::Target,
    },
    /// Override an instance's weight in every pool (`clear` = configured weight).
    Weight {
        /// instance_id or endpoint URL.
        instance: String,
        /// A weight from 1 to 1000000, or `clear`.
        weight: String,
        #[command(flatten)]
        target: client::Target,
    },
    /// Run a mock inference instance (for trying Fulcrum out, tests and
    /// benchmarks): configurable latency, capacity, errors and failure modes.
    Mock(fulcrum_mock::cli::MockArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { file, config } => match file.or(config) {
            Some(path) => check(&path),
            None => ExitCode::from(2),
        },
        Cmd::Services { target } => print(client::services(&target)),
        Cmd::Stats { pool, target } => print(client::stats(&target, pool.as_deref())),
        Cmd::Drain { instance, target } => print(client::change(&target, &instance, "drain", None)),
        Cmd::Enable { instance, target } => {
            print(client::change(&target, &instance, "enable", None))
        }
        Cmd::Weight {
            instance,
            weight,
            target,
        } => {
            let w = if weight == "clear" {
                Ok(None)
            } else {
                weight.parse::<u32>().map(Some).map_err(|_| {
                    anyhow::anyhow!("weight must be a number or `clear`, not `{weight}`")
                })
            };
            print(w.and_then(|w| client::change(&target, &instance, "weight", Some(w))))
        }
        Cmd::Mock(args) => match fulcrum_mock::cli::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fulcrum mock: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Serve {
            config,
            threads,
            log,
            log_format,
        } => match serve(config, threads, &log, log_format) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fulcrum: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn print(r: anyhow::Result<String>) -> ExitCode {
    match r {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fulcrum: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let errs = ConfigErrors(vec![ConfigError::new("", format!("cannot read: {e}"))]);
            eprint!("{}", report::render(&name, None, &errs));
            return ExitCode::from(2);
        }
    };
    // Certificate, key and CA files are read and checked too.
    let loaded = fulcrum_config::load_text(&text, path).and_then(|cfg| {
        let errs = fulcrum_dataplane::tls::check(&cfg);
        if errs.is_empty() {
            return Ok(cfg);
        }
        let mut errs = ConfigErrors(
            errs.into_iter()
                .map(|(path, message)| ConfigError::new(path, message))
                .collect(),
        );
        errs.locate(&text);
        Err(errs)
    });
    match loaded {
        Ok(cfg) => {
            println!(
                "{name}: ok ({} pools, {} instances, {} routes)",
                cfg.pools.len(),
                cfg.pools.values().map(|p| p.instances.len()).sum::<usize>(),
                cfg.routes.len()
            );
            ExitCode::SUCCESS
        }
        Err(errs) => {
            eprint!("{}", report::render(&name, Some(&text), &errs));
            ExitCode::from(2)
        }
    }
}

/// The config to serve: the file's, or the embedded default. An invalid
/// file's errors are printed as `fulcrum check` prints them.
fn load(path: Option<&std::path::Path>) -> anyhow::Result<fulcrum_config::Config> {
    let Some(p) = path else {
        return Ok(fulcrum_config::embedded_default());
    };
    let text = std::fs::read_to_string(p)
        .with_context(|| format!("cannot read the config file {}", p.display()))?;
    fulcrum_config::load_text(&text, p).map_err(|errs| {
        let name = p.display().to_string();
        let shown = report::render(&name, Some(&text), &errs);
        anyhow::anyhow!("invalid config {name}:\n{}", shown.trim_end())
    })
}

/// The format of the gateway's own log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn serve(
    path: Option<PathBuf>,
    threads: Option<usize>,
    log: &str,
    format: Option<LogFormat>,
) -> anyhow::Result<()> {
    let config = load(path.as_deref())?;
    let format = format.unwrap_or(match config.log.format {
        fulcrum_config::LogFormat::Text => LogFormat::Text,
        fulcrum_config::LogFormat::Json => LogFormat::Json,
    });
    let ansi = format == LogFormat::Text && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let filter = tracing_subscriber::EnvFilter::try_new(log).context("invalid --log filter")?;
    // Every event is one line, whatever its values hold (see logging.rs).
    let writer = move || fulcrum::logging::Escaping::new(std::io::stderr(), ansi);
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt.json().flatten_event(true).init(),
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %path.as_deref().map_or("(embedded default)".into(), |p| p.display().to_string()),
        pools = config.pools.len(),
        instances = config.pools.values().map(|p| p.instances.len()).sum::<usize>(),
        registry = config.registry.enabled,
        "starting fulcrum"
    );
    // Every open connection is a file descriptor (two per proxied request or
    // WebSocket): use all the hard limit allows, as nginx's
    // worker_rlimit_nofile would, instead of the usual soft 1024.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::info!(open_files = n, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
    // One thread: a current-thread runtime, which skips the work-stealing
    // scheduler's cross-thread bookkeeping (measurably cheaper per request).
    let mut rt = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    rt.enable_all();
    if let Some(n) = threads.filter(|&n| n > 1) {
        rt.worker_threads(n);
    }
    let rt = rt.build().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let running = fulcrum::app::start(config).await?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let mut usr1 =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = hup.recv() => match running.reload_file(load(path.as_deref())) {
                    Ok(fixed) => {
                        tracing::info!("configuration reloaded");
                        if !fixed.is_empty() {
                            tracing::warn!("changed settings that need a restart were not applied: {}", fixed.join(", "));
                        }
                    }
                    Err(e) => tracing::error!("reload rejected, keeping the running config: {e:#}"),
                },
                // logrotate: the access log's file is opened again at its path.
                _ = usr1.recv() => running.reopen_access_log(),
            }
        }
        // What is still open when the drain starts (instances are shared
        // by pools, so each is counted once).
        let snap = running.gateway.snapshot();
        let (requests, websockets) = snap.instances.values().fold((0u64, 0u64), |(r, w), i| {
            let st = i.stats(running.gateway.clock.now_ms());
            (
                r + u64::from(st.in_flight.saturating_sub(st.open_websockets)),
                w + u64::from(st.open_websockets),
            )
        });
        drop(snap);
        tracing::info!(
            requests_in_flight = requests,
            websockets_open = websockets,
            "shutting down: no new connections, finishing in-flight requests"
        );
        running.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    })
}

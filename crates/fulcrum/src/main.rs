//! The `fulcrum` command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use fulcrum_config::{report, ConfigError, ConfigErrors};

mod client;
mod demo;
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
#[command(
    name = "fulcrum",
    version = fulcrum_control::version::LINE,
    propagate_version = true
)]
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
        /// Worker threads, 1 or more (default: one per CPU the process may use).
        #[arg(long, env = "FULCRUM_THREADS", value_name = "N", value_parser = threads)]
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
        /// Show the tables again every INTERVAL (default 2s) until Ctrl-C:
        /// redrawn in place on a terminal, one after another into a pipe.
        /// Name a pool before it: `fulcrum stats llm --watch`.
        #[arg(
            long,
            value_name = "INTERVAL",
            num_args = 0..=1,
            default_missing_value = "2s",
            value_parser = watch_interval
        )]
        watch: Option<std::time::Duration>,
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
    /// Print a shell completion script: `fulcrum completions bash >
    /// /etc/bash_completion.d/fulcrum` (zsh: into a directory of $fpath as
    /// `_fulcrum`; fish: ~/.config/fish/completions/fulcrum.fish).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `fulcrum man > /usr/local/share/man/man1/fulcrum.1`.
    Man,
    /// Make a running gateway read its config file again (like SIGHUP)
    /// and print what changed; an invalid file is refused with every
    /// error, and the running config stays.
    Reload {
        #[command(flatten)]
        target: client::Target,
    },
    /// Try Fulcrum in one command: the gateway in front of mock ASR, LLM,
    /// TTS and vision instances (vision ones register themselves), light
    /// traffic, and an incident about every minute (an LLM instance 20×
    /// slower, an ASR instance down). Prints the dashboard's URL first.
    Demo(demo::DemoArgs),
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
        Cmd::Stats {
            pool,
            watch: None,
            target,
        } => print(client::stats(&target, pool.as_deref())),
        Cmd::Stats {
            pool,
            watch: Some(every),
            target,
        } => done(client::watch(&target, pool.as_deref(), every)),
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
                match weight.parse::<u32>() {
                    Ok(0) => Err(anyhow::anyhow!(
                        "a weight is from 1 to 1000000; to stop sending to the instance use \
                         `fulcrum drain`, to go back to its configured weight `fulcrum weight {instance} clear`"
                    )),
                    Ok(w) => Ok(Some(w)),
                    Err(_) => Err(anyhow::anyhow!(
                        "weight must be a number from 1 to 1000000 or `clear`, not `{weight}`"
                    )),
                }
            };
            print(w.and_then(|w| client::change(&target, &instance, "weight", Some(w))))
        }
        Cmd::Reload { target } => print(client::reload(&target)),
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Into memory first: the generator panics on a failed write
            // (`| head`), a Vec never fails.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "fulcrum", &mut script);
            done(
                std::io::Write::write_all(&mut std::io::stdout(), &script)
                    .context("cannot write the completion script"),
            )
        }
        Cmd::Man => done(
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut std::io::stdout())
                .context("cannot write the man page"),
        ),
        Cmd::Demo(args) => done(demo::run(args)),
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
        } => done(serve(config, threads, &log, log_format)),
    }
}

/// `--watch`'s interval: a duration (`500ms`, `2s`) of at least 100 ms.
fn watch_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = fulcrum_config::units::parse_duration(s)?;
    if d < std::time::Duration::from_millis(100) {
        return Err(format!(
            "`{s}` is too short; the shortest interval is 100ms"
        ));
    }
    Ok(d)
}

/// `--threads`: a whole number from 1.
fn threads(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => {
            Err("0 threads cannot serve; give 1 or more (1 runs a single-threaded runtime)".into())
        }
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a number of threads")),
    }
}

/// Exit status of an invalid config file (`check`, `serve`): sysexits'
/// EX_CONFIG, distinct from a usage error (2, clap's) and from a failure
/// at run time (1). The systemd unit does not restart on it.
const EXIT_CONFIG: u8 = 78;

/// A config file that does not validate (its errors already rendered).
#[derive(Debug)]
struct InvalidConfig(String);

impl std::fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidConfig {}

/// Success; or the error on stderr and exit code 1, or [`EXIT_CONFIG`]
/// for an invalid config file.
fn done(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fulcrum: {e:#}");
            if e.downcast_ref::<InvalidConfig>().is_some() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn print(r: anyhow::Result<String>) -> ExitCode {
    done(r.map(|out| println!("{out}")))
}

fn check(path: &std::path::Path) -> ExitCode {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let errs = ConfigErrors(vec![ConfigError::new("", format!("cannot read: {e}"))]);
            eprint!("{}", report::render(&name, None, &errs));
            return ExitCode::from(EXIT_CONFIG);
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
            ExitCode::from(EXIT_CONFIG)
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
        anyhow::Error::new(InvalidConfig(format!(
            "invalid config {name}:\n{}",
            shown.trim_end()
        )))
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
    fulcrum::logging::init(log, format == LogFormat::Json)?;
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
    let grace = config.shutdown.grace;
    rt.block_on(async move {
        // Signals are handled before the gateway says it serves: a SIGHUP
        // sent on "fulcrum is serving" (or on READY) must reload, not kill.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let mut usr1 =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
        let running = fulcrum::app::start_with(config, grace, path.clone()).await?;
        // systemd (Type=notify): serving now. Without NOTIFY_SOCKET this
        // does nothing.
        notify(&[sd_notify::NotifyState::Ready]);
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                // Logged, counted and recorded by the reloader.
                _ = hup.recv() => {
                    let mut states = vec![sd_notify::NotifyState::Reloading];
                    states.extend(sd_notify::NotifyState::monotonic_usec_now().ok());
                    notify(&states);
                    let _ = running.reload_file();
                    notify(&[sd_notify::NotifyState::Ready]);
                }
                // logrotate: the access log's file is opened again at its path.
                _ = usr1.recv() => running.reopen_access_log(),
            }
        }
        notify(&[sd_notify::NotifyState::Stopping]);
        let gateway = running.gateway.clone();
        let (requests, websockets) = open_counts(&gateway);
        tracing::info!(
            requests_in_flight = requests,
            websockets_open = websockets,
            grace = ?grace,
            "shutting down: /readyz answers 503, no new connections, finishing in-flight requests (a second signal stops at once)"
        );
        let drained = running.shutdown();
        tokio::pin!(drained);
        tokio::select! {
            _ = &mut drained => {}
            _ = tokio::signal::ctrl_c() => hard_stop(&gateway),
            _ = term.recv() => hard_stop(&gateway),
        }
        let (requests, websockets) = open_counts(&gateway);
        if requests + websockets > 0 {
            tracing::warn!(
                requests_cut = requests,
                websockets_cut = websockets,
                "the grace period ended with these still open; they were closed"
            );
        }
        tracing::info!("stopped");
        Ok(())
    })
}

/// Requests and WebSockets open now (instances are shared by pools, so
/// each is counted once).
fn open_counts(gateway: &fulcrum_dataplane::Gateway) -> (u64, u64) {
    let snap = gateway.snapshot();
    let now = gateway.clock.now_ms();
    snap.instances.values().fold((0, 0), |(r, w), i| {
        let st = i.stats(now);
        (
            r + u64::from(st.in_flight.saturating_sub(st.open_websockets)),
            w + u64::from(st.open_websockets),
        )
    })
}

/// A second SIGTERM or Ctrl-C during the drain: stop now, saying what is cut.
fn hard_stop(gateway: &fulcrum_dataplane::Gateway) -> ! {
    let (requests, websockets) = open_counts(gateway);
    tracing::warn!(
        requests_cut = requests,
        websockets_cut = websockets,
        "second signal: stopping at once"
    );
    std::process::exit(1)
}

/// Tells systemd (Type=notify) what the gateway is doing; nothing without
/// `NOTIFY_SOCKET`.
fn notify(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}

//! `fulcrum demo`: the gateway in front of a small mock fleet, with light
//! traffic and staged incidents, so a newcomer sees the dashboard move
//! within seconds.
//!
//! Everything runs in this one process, so nothing is left behind: mock
//! instances on `127.0.0.1:0` shaped like the seed fleet (`fleet.rs`:
//! `asr`, `llm`, `tts` from the config, `vision` registering itself over
//! the registry API like the platform's algorithm services), the gateway
//! started as `fulcrum serve` starts it ([`fulcrum::app`]), callers at
//! `--rps` (`traffic.rs`) and a loop of incidents (`incidents.rs`). The
//! registry's store is a scratch directory removed at exit.
//!
//! The first line on stdout is `dashboard: http://ADDR/`; then a
//! description of the fleet, and short lines stamped with the time since
//! start: incidents, what the gateway did about them (its event log), and
//! a traffic summary now and then.

mod fleet;
mod incidents;
mod say;
mod traffic;

use anyhow::Context;
use fulcrum_dataplane::Gateway;
use say::{out, Say};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::Instant;

/// How long requests still in flight get when the gateway stops.
const GRACE: Duration = Duration::from_secs(2);
/// Between two traffic summaries.
const SUMMARY_EVERY: Duration = Duration::from_secs(15);
/// Bounds of `--rps`.
const MIN_RPS: f64 = 0.1;
const MAX_RPS: f64 = 5000.0;

/// `fulcrum demo`'s options.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The gateway's proxy listener (port 0: any free port; printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The admin listener: dashboard, admin API, registry (port 0: any
    /// free port; printed on the first line).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    admin: SocketAddr,
    /// Requests per second over all pools (asr 30 %, llm 30 %, tts 20 %,
    /// vision 20 %).
    #[arg(long, value_name = "N", default_value_t = 20.0, value_parser = rps)]
    rps: f64,
    /// Stop after this long (`60s`, `5m`); default: run until Ctrl-C.
    #[arg(long, value_name = "DUR", value_parser = fulcrum_config::units::parse_duration)]
    duration: Option<Duration>,
    /// The gateway's own log on stderr (`warn`, `info`, …); the demo's
    /// lines on stdout already show what happens.
    #[arg(long, value_name = "FILTER", default_value = "error")]
    log: String,
}

fn rps(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (MIN_RPS..=MAX_RPS).contains(&r) {
        Ok(r)
    } else {
        Err(format!("must be from {MIN_RPS} to {MAX_RPS}"))
    }
}

/// Runs the demo until `--duration` is over, Ctrl-C or `SIGTERM`.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    fulcrum::logging::init(&args.log, false)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(demo(args))
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    // Ctrl-C and SIGTERM are caught from here on, so even one during
    // start-up ends in the clean-up below.
    let signals = Signals::new()?;
    // Name the flag when its address is taken (the gateway would name its
    // config key, which the demo's user never wrote).
    for (addr, flag) in [(args.listen, "--listen"), (args.admin, "--admin")] {
        std::net::TcpListener::bind(addr).map(drop).with_context(|| {
            format!("cannot listen on {addr} ({flag}; is another fulcrum running? {flag} 127.0.0.1:0 takes any free port)")
        })?;
    }
    let scratch = Scratch::create()?;
    let fleet = fleet::Fleet::start().await?;
    let mut config = fleet.config(args.listen, args.admin)?;
    config.registry.path = scratch.0.clone();
    let gw = fulcrum::app::start_with_grace(config, GRACE)
        .await
        .context("cannot start the gateway")?;
    let admin = visible(gw.admin_addr);
    out(format_args!("dashboard: http://{admin}/"));
    let say = Say { t0: Instant::now() };
    let registered = fleet.register(admin, say).await?;
    let mut traffic = traffic::Traffic::start(gw.proxy_addr, args.rps);
    out(format_args!(
        "gateway: http://{}/ (routes /asr/, /llm/, /tts/, /infer/vision)",
        visible(gw.proxy_addr)
    ));
    out(format_args!(
        "in a terminal: fulcrum stats --watch --admin http://{admin}"
    ));
    for line in fleet.describe() {
        out(line);
    }
    out(traffic.describe());
    out(incidents::describe());
    // From the first event on (the registrations just made).
    let (stop_events, stopped) = tokio::sync::watch::channel(());
    let events = tokio::spawn(follow(gw.gateway.clone(), fleet.names(), say, stopped));
    let incidents = tokio::spawn(incidents::run(fleet.slow_llm(), fleet.dying_asr(), say));
    let why = until_stopped(signals, args.duration, &mut traffic, say).await;
    say.line(format_args!(
        "stopping ({why}): traffic, registrations, gateway"
    ));
    incidents.abort();
    let totals = traffic.stop().await;
    registered.unregister(say).await;
    // The last events (the unregistrations) are printed before it ends.
    drop(stop_events);
    let _ = events.await;
    gw.shutdown().await;
    drop(fleet);
    drop(scratch);
    say.line(format_args!("stopped; {totals}"));
    Ok(())
}

/// Ctrl-C and `SIGTERM`.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        let catch = |kind| signal(kind).context("cannot handle Ctrl-C and SIGTERM");
        Ok(Signals {
            interrupt: catch(SignalKind::interrupt())?,
            terminate: catch(SignalKind::terminate())?,
        })
    }
}

/// Waits for the end (`--duration`, Ctrl-C, `SIGTERM`), printing a traffic
/// summary every [`SUMMARY_EVERY`]; says which end came.
async fn until_stopped(
    mut signals: Signals,
    duration: Option<Duration>,
    traffic: &mut traffic::Traffic,
    say: Say,
) -> &'static str {
    let end = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let mut end = std::pin::pin!(end);
    let mut summary = tokio::time::interval_at(say.t0 + SUMMARY_EVERY, SUMMARY_EVERY);
    loop {
        tokio::select! {
            _ = signals.interrupt.recv() => return "Ctrl-C",
            _ = signals.terminate.recv() => return "SIGTERM",
            _ = &mut end => return "--duration is over",
            _ = summary.tick() => say.line(traffic.summary(SUMMARY_EVERY)),
        }
    }
}

/// Prints the gateway's events (health flips, ejections, registrations…)
/// as they come, naming instances as the demo does, until `stop`'s sender
/// is dropped.
async fn follow(
    gw: Arc<Gateway>,
    names: HashMap<String, &'static str>,
    say: Say,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    let mut seen = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.changed() => true,
        };
        let (events, _) = gw.events.after(seen, 100);
        for e in events {
            seen = e.seq;
            let who = e
                .endpoint
                .as_deref()
                .map(|ep| names.get(ep).copied().unwrap_or(ep));
            match who {
                Some(who) => say.line(format_args!("gateway: {who} {}", e.message)),
                None => say.line(format_args!("gateway: {}", e.message)),
            }
        }
        if last {
            return;
        }
    }
}

/// An address to print: a listener on every address is reached on loopback.
fn visible(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// A fresh directory under the system's temp dir for the registry's store,
/// removed with everything in it when dropped (at exit, on every path).
struct Scratch(PathBuf);

impl Scratch {
    fn create() -> anyhow::Result<Scratch> {
        let base = std::env::temp_dir();
        for n in 0..100u32 {
            let dir = base.join(format!("fulcrum-demo-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(Scratch(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create a scratch directory in {}", base.display())
                    })
                }
            }
        }
        anyhow::bail!(
            "cannot create a scratch directory in {}: every name is taken",
            base.display()
        )
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("fulcrum demo: cannot remove {}: {e}", self.0.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rps_is_bounded() {
        assert_eq!(rps("20"), Ok(20.0));
        assert_eq!(rps("0.5"), Ok(0.5));
        for bad in ["0", "-1", "NaN", "inf", "1e9", "x"] {
            assert!(rps(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_listener_on_every_address_is_shown_on_loopback() {
        let v = |s: &str| visible(s.parse().unwrap()).to_string();
        assert_eq!(v("0.0.0.0:9090"), "127.0.0.1:9090");
        assert_eq!(v("[::]:9090"), "[::1]:9090");
        assert_eq!(v("10.1.2.3:80"), "10.1.2.3:80");
    }

    #[test]
    fn the_scratch_directory_goes_away_with_its_contents() {
        let s = Scratch::create().unwrap();
        let dir = s.0.clone();
        std::fs::write(dir.join("registry.redb"), b"x").unwrap();
        drop(s);
        assert!(!dir.exists());
    }
}

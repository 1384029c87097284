//! The command-line client: `fulcrum services`, `fulcrum stats`,
//! `fulcrum drain|enable|weight`, `fulcrum reload` against a running gateway's admin API,
//! printing aligned tables (or the raw JSON with `--json`).

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::time::Duration;
use unicode_width::UnicodeWidthStr;

/// Where the admin API is and how to authenticate.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// Admin API base URL (`127.0.0.1:9090` means `http://127.0.0.1:9090`).
    #[arg(
        long,
        env = "FULCRUM_ADMIN",
        default_value = "http://127.0.0.1:9090",
        global = true,
        value_parser = admin_url
    )]
    pub admin: String,
    /// `admin.token`, for drain/enable/weight.
    #[arg(
        long,
        env = "FULCRUM_ADMIN_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `--admin`: a base URL; `HOST:PORT` alone is taken as `http://HOST:PORT`.
fn admin_url(s: &str) -> Result<String, String> {
    let s = s.trim().trim_end_matches('/');
    let url = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    match url.parse::<http::Uri>() {
        Ok(u) if u.scheme_str() == Some("http") || u.scheme_str() == Some("https") => {
            if u.host().is_none_or(str::is_empty) {
                return Err(format!(
                    "`{s}` names no host; expected e.g. http://127.0.0.1:9090"
                ));
            }
            Ok(url)
        }
        Ok(_) => Err(format!(
            "`{s}`: the admin API speaks http:// (or https://), e.g. http://127.0.0.1:9090"
        )),
        Err(_) => Err(format!(
            "`{s}` is not a URL; expected e.g. http://127.0.0.1:9090"
        )),
    }
}

/// Sends one request; returns the JSON answer, or an error with the API's message.
pub fn call(
    t: &Target,
    method: http::Method,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<Value> {
    runtime()?.block_on(request(t, method, path, body))
}

/// A runtime for one command's requests.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// [`call`] inside a runtime (`stats --watch`, `fulcrum demo`).
pub async fn request(
    t: &Target,
    method: http::Method,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<Value> {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let url = format!("{}{path}", t.admin.trim_end_matches('/'));
    let mut req = http::Request::builder()
        .method(method)
        .uri(&url)
        .header("content-type", "application/json");
    if let Some(tok) = &t.token {
        req = req.header("authorization", format!("Bearer {tok}"));
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .context("bad admin URL")?;
    let resp = tokio::time::timeout(std::time::Duration::from_secs(10), client.request(req))
        .await
        .with_context(|| format!("{url}: no answer within 10 s"))?
        .with_context(|| {
            format!("cannot reach the admin API at {url} (is `fulcrum serve` running? --admin)")
        })?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let v: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    if !status.is_success() {
        let mut msg = v
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string());
        // A refused reload lists every error of the file.
        for e in v["errors"].as_array().into_iter().flatten() {
            msg += &format!("\n  {}", s(e));
        }
        bail!("{status}: {msg}");
    }
    Ok(v)
}

/// Renders rows as an aligned text table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.width()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.width());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c}{}", " ".repeat(widths[i] - c.width())))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out.join("\n")
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(x) => x.clone(),
        Value::Array(a) => a.iter().map(s).collect::<Vec<_>>().join(","),
        Value::Number(n) if n.is_f64() => format!("{:.1}", n.as_f64().unwrap_or_default()),
        other => other.to_string(),
    }
}

fn pct(v: &Value) -> String {
    v.as_f64()
        .map_or("-".into(), |f| format!("{:.1}%", f * 100.0))
}

pub fn services(t: &Target) -> anyhow::Result<String> {
    let v = call(t, http::Method::GET, "/api/v1/ai_analysis/services", None)?;
    if t.json {
        return Ok(serde_json::to_string_pretty(&v)?);
    }
    let rows: Vec<Vec<String>> = v["services"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    vec![
                        s(&r["service_id"]),
                        s(&r["endpoint"]),
                        s(&r["task_types"]),
                        s(&r["call_count"]),
                        if r["healthy"] == true {
                            "up".into()
                        } else {
                            "down".into()
                        },
                        format!("{}s", s(&r["heartbeat_age_s"])),
                        s(&r["instance_id"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(format!(
        "{}\n{} registered",
        table(
            &[
                "SERVICE",
                "ENDPOINT",
                "TASK TYPES",
                "CALLS",
                "HEALTH",
                "HEARTBEAT",
                "INSTANCE ID"
            ],
            &rows
        ),
        rows.len()
    ))
}

pub fn stats(t: &Target, pool: Option<&str>) -> anyhow::Result<String> {
    runtime()?.block_on(stats_now(t, pool))
}

/// The text of `fulcrum stats`: every pool's table, or the JSON.
async fn stats_now(t: &Target, pool: Option<&str>) -> anyhow::Result<String> {
    let v = request(t, http::Method::GET, "/api/v1/pools", None).await?;
    let pools: Vec<&Value> = v["pools"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|p| pool.is_none_or(|n| p["name"] == n))
                .collect()
        })
        .unwrap_or_default();
    if let Some(n) = pool {
        if pools.is_empty() {
            bail!("no pool named `{n}`");
        }
    }
    if t.json {
        return Ok(serde_json::to_string_pretty(&pools)?);
    }
    Ok(pools
        .into_iter()
        .map(pool_table)
        .collect::<Vec<_>>()
        .join("\n\n"))
}

/// `fulcrum stats --watch`: the tables again every `every` until Ctrl-C,
/// drawn in place on a terminal and one after another (each after a
/// header line, then a blank line) into a pipe or a file. An error
/// (the gateway unreachable, say) is shown in place of the tables and the
/// next round tries again.
pub fn watch(t: &Target, pool: Option<&str>, every: Duration) -> anyhow::Result<()> {
    let tty = std::io::stdout().is_terminal();
    let clock = fulcrum_dataplane::clock::Clock::new();
    runtime()?.block_on(async {
        let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
        loop {
            let body = tokio::select! {
                _ = &mut stop => return Ok(()),
                r = stats_now(t, pool) => r.unwrap_or_else(|e| {
                    format!("error: {e:#}\n(trying again every {})", short(every))
                }),
            };
            let header = format!(
                "fulcrum stats {}{} at {} UTC, every {} (Ctrl-C stops)",
                t.admin,
                pool.map_or(String::new(), |p| format!(" pool {p}")),
                clock_time(clock.unix_secs()),
                short(every)
            );
            let mut out = std::io::stdout().lock();
            // A closed stdout (the reader went away) ends the watch.
            if out
                .write_all(frame(tty, &header, &body).as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return Ok(());
            }
            drop(out);
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = tokio::time::sleep(every) => {}
            }
        }
    })
}

/// One round of `--watch`: on a terminal the cursor goes home and the
/// screen is cleared first, so the tables are redrawn in place.
fn frame(tty: bool, header: &str, body: &str) -> String {
    if tty {
        format!("\x1b[H\x1b[2J{header}\n\n{body}\n")
    } else {
        format!("{header}\n{body}\n\n")
    }
}

/// `250ms`, `2s`, `1.5s`: an interval as a user would write it.
pub fn short(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// `HH:MM:SS` of a Unix time (UTC).
fn clock_time(unix_secs: u64) -> String {
    let s = unix_secs % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// One pool of `fulcrum stats`: each column with two numbers is `recent /
/// since start` (the recent window, `stats.window`, is named in the
/// heading), so an old incident shows only on the right. Fits 100 columns
/// with loopback endpoints.
fn pool_table(p: &Value) -> String {
    let rows: Vec<Vec<String>> = p["instances"]
        .as_array()
        .map(|a| a.iter().map(member_row).collect())
        .unwrap_or_default();
    let secs = p["instances"][0]["window"]["secs"]
        .as_u64()
        .map_or("-".into(), |s| s.to_string());
    format!(
        "pool {} ({}, {} queued; a/b = last {secs}s / since start)\n{}",
        s(&p["name"]),
        s(&p["algorithm"]),
        s(&p["queued"]),
        table(
            &["ENDPOINT", "STATE", "WEIGHT", "INFL", "REQS", "SHARE", "EXPECT", "ERR%", "P99 ms"],
            &rows
        )
    )
}

fn member_row(i: &Value) -> Vec<String> {
    let health = if i["drained"] == true {
        "drained"
    } else if i["ejected"] == true {
        "ejected"
    } else if i["healthy"] == true {
        "up"
    } else {
        "down"
    };
    let w = &i["window"];
    // `a/b%`: both numbers percentages.
    let pcts = |a: &Value, b: &Value| {
        let p = |v: &Value| {
            v.as_f64()
                .map_or("-".into(), |f| format!("{:.1}", f * 100.0))
        };
        format!("{}/{}%", p(a), p(b))
    };
    vec![
        s(&i["endpoint"]),
        health.into(),
        format!("{}/{}", s(&i["weight"]), s(&i["effective_weight"])),
        s(&i["in_flight"]),
        format!("{}/{}", s(&w["requests"]), s(&i["requests"])),
        pcts(&w["share"], &i["share"]),
        pct(&i["expected_share"]),
        pcts(&w["error_rate"], &i["error_rate"]),
        format!("{}/{}", ms(&w["p99_ms"]), ms(&i["latency_p99_ms"])),
    ]
}

/// Milliseconds: one decimal below 100, none above (the histograms'
/// buckets are a few percent wide anyway).
fn ms(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f >= 100.0 => format!("{f:.0}"),
        Some(f) => format!("{f:.1}"),
        None => "-".into(),
    }
}

/// `drain`, `enable` or `weight` on the instance `id`.
pub fn change(
    t: &Target,
    id: &str,
    action: &str,
    weight: Option<Option<u32>>,
) -> anyhow::Result<String> {
    let id: String =
        percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string();
    let (method, body) = match weight {
        Some(w) => (
            http::Method::PUT,
            Some(serde_json::json!({ "weight": w }).to_string()),
        ),
        None => (http::Method::POST, None),
    };
    let v = call(t, method, &format!("/api/v1/instances/{id}/{action}"), body)?;
    if t.json {
        return Ok(serde_json::to_string_pretty(&v)?);
    }
    Ok(format!(
        "{}: drained={} weight={}",
        s(&v["endpoint"]),
        s(&v["drained"]),
        v["weight"]
            .as_u64()
            .map_or("configured".into(), |w| w.to_string())
    ))
}

/// `fulcrum reload`: the gateway reads its config file again.
pub fn reload(t: &Target) -> anyhow::Result<String> {
    let v = call(t, http::Method::POST, "/api/v1/config/reload", None)?;
    if t.json {
        return Ok(serde_json::to_string_pretty(&v)?);
    }
    Ok(format!("reloaded: {}", s(&v["summary"])))
}

#[cfg(test)]
mod tests {
    use super::{clock_time, frame, pool_table, short, table};
    use std::time::Duration;

    #[test]
    fn watch_redraws_in_place_on_a_terminal_and_appends_into_a_pipe() {
        assert_eq!(
            frame(true, "head", "t1\nt2"),
            "\x1b[H\x1b[2Jhead\n\nt1\nt2\n"
        );
        assert_eq!(frame(false, "head", "t1\nt2"), "head\nt1\nt2\n\n");
        assert!(!frame(false, "h", "b").contains('\x1b'));
        assert_eq!(clock_time(0), "00:00:00");
        assert_eq!(short(Duration::from_millis(200)), "200ms");
        assert_eq!(short(Duration::from_secs(2)), "2s");
        assert_eq!(short(Duration::from_millis(1500)), "1.5s");
        assert_eq!(clock_time(86_400 + 3600 + 61), "01:01:01");
        assert_eq!(clock_time(1_700_000_000), "22:13:20");
    }

    #[test]
    fn stats_show_the_recent_window_next_to_since_start_in_100_columns() {
        let p = serde_json::json!({
            "name": "asr", "algorithm": "response_time", "queued": 0,
            "instances": [{
                "endpoint": "http://127.0.0.1:18100", "healthy": true, "drained": false,
                "ejected": false, "weight": 2, "effective_weight": 2, "in_flight": 3,
                "requests": 123456, "share": 0.2941, "expected_share": 0.3333,
                "error_rate": 0.02, "latency_p99_ms": 172.032,
                "window": { "secs": 60, "requests": 2004, "share": 0.4192,
                    "error_rate": 0.0, "p99_ms": 11.776 }
            }, {
                "endpoint": "http://127.0.0.1:18101", "healthy": true, "drained": false,
                "ejected": true, "weight": 1, "effective_weight": 1, "in_flight": 0,
                "requests": 7, "share": 0.0, "expected_share": 0.3333, "error_rate": 1.0,
                "latency_p99_ms": null,
                "window": { "secs": 60, "requests": 0, "share": 0.0, "error_rate": 0.0,
                    "p99_ms": null }
            }]
        });
        let t = pool_table(&p);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "pool asr (response_time, 0 queued; a/b = last 60s / since start)"
        );
        assert!(lines[1].starts_with("ENDPOINT"), "{t}");
        let row = lines[2];
        for cell in [
            "up",
            "2/2",
            "2004/123456",
            "41.9/29.4%",
            "33.3%",
            "0.0/2.0%",
            "11.8/172",
        ] {
            assert!(row.contains(cell), "{cell} not in {row}");
        }
        assert!(
            lines[3].contains("ejected")
                && lines[3].contains("0.0/100.0%")
                && lines[3].contains("-/-"),
            "{t}"
        );
        assert!(t.lines().all(|l| l.chars().count() <= 100), "{t}");
    }

    #[test]
    fn tables_align_columns_including_wide_characters() {
        // CJK characters take two columns each on a terminal.
        let t = table(
            &["TASK", "N"],
            &[
                vec!["人数统计".into(), "1".into()],
                vec!["t".into(), "22".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "TASK      N");
        assert_eq!(lines[1], "人数统计  1");
        assert_eq!(lines[2], "t         22");
    }
}

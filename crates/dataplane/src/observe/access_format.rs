//! The access log's two line formats, written from a finished [`Record`]:
//! `text`, nginx's `combined` format followed by the upstream timings and
//! the gateway's own fields as `key=value`, and `json`, one object per
//! line for log shippers. docs/ACCESS_LOG.md documents both, field by
//! field.
//!
//! Anything a caller or an instance controls (the path, the referer, the
//! user agent, the request id, a registered endpoint) is escaped so that
//! one request is always one line and every field parses: in `text` as
//! nginx does (`"`, `\`, control and non-ASCII bytes as `\xHH`; in the
//! `key=value` fields a space too), in `json` as JSON strings.
//!
//! Pure: the wall time of the line is an argument, so this is tested
//! without a clock.

use super::record::{CacheStatus, Outcome, Record};
use crate::http::Blame;
use std::io::Write;
use std::time::Duration;

/// The status logged for a request whose caller left before any answer
/// (nginx's 499, "client closed request").
pub const CLIENT_CLOSED: u16 = 499;

/// Appends `r` as one `text` line (ending in `\n`) to `out`; `unix_ms`
/// is when the request ended.
///
/// `CLIENT - - [TIME] "METHOD PATH PROTOCOL" STATUS BYTES_OUT "REFERER"
/// "USER_AGENT" rt= uct= uht= urt= pool= instance= tries= cache= blame=
/// in= outcome= rid=`
pub fn text(out: &mut Vec<u8>, r: &Record, unix_ms: u64) {
    match r.client {
        Some(a) => {
            let _ = write!(out, "{}", a.ip());
        }
        None => out.push(b'-'),
    }
    out.extend_from_slice(b" - - [");
    let t = Civil::from_unix_ms(unix_ms);
    let _ = write!(
        out,
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000] \"",
        t.day,
        MONTHS[t.month as usize - 1],
        t.year,
        t.hour,
        t.min,
        t.sec
    );
    escape_text(out, r.method.as_str().as_bytes(), false);
    out.push(b' ');
    escape_text(out, target(r).as_bytes(), false);
    let _ = write!(out, " {:?}\" {} {} \"", r.version, status(r), r.bytes_out);
    header_text(out, r.referer.as_ref());
    out.extend_from_slice(b"\" \"");
    header_text(out, r.user_agent.as_ref());
    out.extend_from_slice(b"\" rt=");
    secs_text(out, r.total);
    out.extend_from_slice(b" uct=");
    secs_text(out, r.upstream.connect);
    out.extend_from_slice(b" uht=");
    secs_text(out, r.upstream.head);
    out.extend_from_slice(b" urt=");
    secs_text(out, r.upstream.response);
    out.extend_from_slice(b" pool=");
    opt_text(out, r.pool.as_ref().map(|p| p.cfg.name.as_bytes()));
    out.extend_from_slice(b" instance=");
    opt_text(out, r.instance.as_ref().map(|i| i.endpoint.url.as_bytes()));
    let _ = write!(
        out,
        " tries={} cache={} blame={} in={} outcome={} rid=",
        r.tries,
        cache(r.cache).unwrap_or("-"),
        blame(r.blame).unwrap_or("-"),
        r.bytes_in,
        outcome(r.outcome),
    );
    opt_text(out, r.request_id.as_ref().map(|v| v.as_bytes()));
    out.push(b'\n');
}

/// Appends `r` as one `json` object on a line of its own to `out`.
pub fn json(out: &mut Vec<u8>, r: &Record, unix_ms: u64) {
    let t = Civil::from_unix_ms(unix_ms);
    let _ = write!(
        out,
        "{{\"time\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\",\"client\":",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.min,
        t.sec,
        unix_ms % 1000
    );
    match r.client {
        Some(a) => {
            let _ = write!(out, "\"{}\"", a.ip());
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"method\":");
    json_str(out, Some(r.method.as_str().as_bytes()));
    out.extend_from_slice(b",\"path\":");
    json_str(out, Some(target(r).as_bytes()));
    let _ = write!(
        out,
        ",\"protocol\":\"{:?}\",\"status\":{},\"bytes_in\":{},\"bytes_out\":{},\"referer\":",
        r.version,
        status(r),
        r.bytes_in,
        r.bytes_out
    );
    json_str(out, r.referer.as_ref().map(|v| v.as_bytes()));
    out.extend_from_slice(b",\"user_agent\":");
    json_str(out, r.user_agent.as_ref().map(|v| v.as_bytes()));
    for (key, d) in [
        ("request_time", r.total),
        ("upstream_connect_time", r.upstream.connect),
        ("upstream_header_time", r.upstream.head),
        ("upstream_response_time", r.upstream.response),
    ] {
        let _ = write!(out, ",\"{key}\":");
        match d {
            Some(d) => secs(out, d),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b",\"pool\":");
    json_str(out, r.pool.as_ref().map(|p| p.cfg.name.as_bytes()));
    out.extend_from_slice(b",\"instance\":");
    json_str(out, r.instance.as_ref().map(|i| i.endpoint.url.as_bytes()));
    let _ = write!(out, ",\"tries\":{},\"retried_on\":", r.tries);
    match r.retried_on {
        Some(f) => {
            let _ = write!(out, "\"{f}\"");
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"cache\":");
    json_str(out, cache(r.cache).map(str::as_bytes));
    out.extend_from_slice(b",\"blame\":");
    json_str(out, blame(r.blame).map(str::as_bytes));
    let _ = write!(
        out,
        ",\"outcome\":\"{}\",\"request_id\":",
        outcome(r.outcome)
    );
    json_str(out, r.request_id.as_ref().map(|v| v.as_bytes()));
    out.extend_from_slice(b"}\n");
}

/// The request target as the caller sent it (origin form; the path and
/// query of an HTTP/2 request).
fn target(r: &Record) -> std::borrow::Cow<'_, str> {
    match r.uri.path_and_query() {
        Some(pq) => pq.as_str().into(),
        None => r.uri.to_string().into(),
    }
}

fn status(r: &Record) -> u16 {
    r.status.map_or(CLIENT_CLOSED, |s| s.as_u16())
}

fn cache(c: CacheStatus) -> Option<&'static str> {
    match c {
        CacheStatus::None => None,
        CacheStatus::Hit => Some("HIT"),
        CacheStatus::Miss => Some("MISS"),
        CacheStatus::Bypass => Some("BYPASS"),
    }
}

fn blame(b: Option<Blame>) -> Option<&'static str> {
    b.map(|b| match b {
        Blame::Downstream => "downstream",
        Blame::Upstream => "upstream",
        Blame::Gateway => "gateway",
    })
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Complete => "complete",
        Outcome::BodyFailed => "failed",
        Outcome::Dropped => "dropped",
    }
}

/// Seconds with millisecond precision, as nginx's `$request_time`.
fn secs(out: &mut Vec<u8>, d: Duration) {
    let ms = d.as_millis();
    let _ = write!(out, "{}.{:03}", ms / 1000, ms % 1000);
}

fn secs_text(out: &mut Vec<u8>, d: Option<Duration>) {
    match d {
        Some(d) => secs(out, d),
        None => out.push(b'-'),
    }
}

/// A quoted header field of the combined format: `-` when absent.
fn header_text(out: &mut Vec<u8>, v: Option<&http::HeaderValue>) {
    match v {
        Some(v) => escape_text(out, v.as_bytes(), false),
        None => out.push(b'-'),
    }
}

/// A `key=value` value: `-` when absent, spaces escaped too.
fn opt_text(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(v) if !v.is_empty() => escape_text(out, v, true),
        _ => out.push(b'-'),
    }
}

/// nginx's escaping of logged variables: `"`, `\`, control characters
/// and bytes beyond ASCII as `\xHH` (and a space, in a `key=value` field).
pub fn escape_text(out: &mut Vec<u8>, v: &[u8], space: bool) {
    for &b in v {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) || (space && b == b' ') {
            let _ = write!(out, "\\x{b:02X}");
        } else {
            out.push(b);
        }
    }
}

/// A JSON string (or `null`). Bytes that are not UTF-8 (`obs-text` in a
/// header) are read as ISO-8859-1, as RFC 9110 §5.5 allows.
pub fn json_str(out: &mut Vec<u8>, v: Option<&[u8]>) {
    let Some(v) = v else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'"');
    match std::str::from_utf8(v) {
        Ok(s) => {
            for c in s.chars() {
                json_char(out, c);
            }
        }
        Err(_) => {
            for &b in v {
                json_char(out, char::from(b));
            }
        }
    }
    out.push(b'"');
}

fn json_char(out: &mut Vec<u8>, c: char) {
    match c {
        '"' => out.extend_from_slice(b"\\\""),
        '\\' => out.extend_from_slice(b"\\\\"),
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\t' => out.extend_from_slice(b"\\t"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let mut b = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A UTC date and time of day.
#[derive(Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
}

impl Civil {
    /// Howard Hinnant's `civil_from_days` (proleptic Gregorian calendar).
    fn from_unix_ms(ms: u64) -> Self {
        let secs = ms / 1000;
        let (days, rem) = ((secs / 86_400) as i64, (secs % 86_400) as u32);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            min: rem % 3600 / 60,
            sec: rem % 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::record::UpstreamTimes;
    use http::{HeaderValue, Method, StatusCode, Uri, Version};

    /// 2026-12-02T17:40:00.250Z
    const T: u64 = 1_796_233_200_250;

    fn record() -> Record {
        Record {
            started: tokio::time::Instant::now(),
            method: Method::GET,
            uri: Uri::from_static("/infer/x?a=1"),
            pool: None,
            instance: None,
            tries: 1,
            retried_on: None,
            status: Some(StatusCode::OK),
            head_after: Some(Duration::from_millis(11)),
            total: Some(Duration::from_millis(12)),
            outcome: Outcome::Complete,
            blame: None,
            cache_hit: false,
            client: Some("127.0.0.1:5555".parse().unwrap()),
            version: Version::HTTP_11,
            request_id: Some(HeaderValue::from_static("abc")),
            referer: None,
            user_agent: Some(HeaderValue::from_static("curl/8")),
            bytes_in: 3,
            bytes_out: 512,
            cache: CacheStatus::None,
            upstream: UpstreamTimes {
                sent: Some(Duration::from_micros(300)),
                connect: Some(Duration::ZERO),
                head: Some(Duration::from_millis(10)),
                response: Some(Duration::from_micros(11_700)),
            },
        }
    }

    fn line(f: fn(&mut Vec<u8>, &Record, u64), r: &Record) -> String {
        let mut out = Vec::new();
        f(&mut out, r, T);
        String::from_utf8(out).expect("a log line is UTF-8")
    }

    #[test]
    fn dates_are_utc_civil_dates() {
        let c = Civil::from_unix_ms(T);
        assert_eq!((c.year, c.month, c.day), (2026, 12, 2));
        assert_eq!((c.hour, c.min, c.sec), (17, 40, 0));
        let epoch = Civil::from_unix_ms(0);
        assert_eq!((epoch.year, epoch.month, epoch.day), (1970, 1, 1));
        // A leap day.
        let leap = Civil::from_unix_ms(951_782_400_000);
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
    }

    #[test]
    fn text_is_the_combined_format_then_the_gateways_fields() {
        assert_eq!(
            line(text, &record()),
            "127.0.0.1 - - [02/Dec/2026:17:40:00 +0000] \"GET /infer/x?a=1 HTTP/1.1\" 200 512 \"-\" \"curl/8\" \
             rt=0.012 uct=0.000 uht=0.010 urt=0.011 pool=- instance=- tries=1 cache=- blame=- in=3 outcome=complete rid=abc\n"
        );
    }

    #[test]
    fn a_caller_that_left_before_the_head_is_logged_499_without_upstream_times() {
        let mut r = record();
        r.status = None;
        r.outcome = Outcome::Dropped;
        r.upstream = UpstreamTimes::default();
        r.cache = CacheStatus::Bypass;
        r.blame = Some(Blame::Upstream);
        let l = line(text, &r);
        assert!(l.contains("\" 499 512 "), "{l}");
        assert!(
            l.contains("uct=- uht=- urt=- ") && l.contains("cache=BYPASS blame=upstream"),
            "{l}"
        );
        let j: serde_json::Value = serde_json::from_str(&line(json, &r)).unwrap();
        assert_eq!(j["status"], 499);
        assert_eq!(j["outcome"], "dropped");
        assert!(j["upstream_connect_time"].is_null());
    }

    #[test]
    fn text_escapes_what_callers_control_so_a_line_stays_one_line() {
        let mut r = record();
        r.user_agent = Some(HeaderValue::from_bytes(b"x\" \\ \xff\tz").unwrap());
        r.referer = Some(HeaderValue::from_static("http://e/\"q"));
        r.request_id = Some(HeaderValue::from_static("a b"));
        let l = line(text, &r);
        assert_eq!(l.matches('\n').count(), 1);
        assert!(l.ends_with(" rid=a\\x20b\n"), "{l}");
        assert!(
            l.contains("\"http://e/\\x22q\" \"x\\x22 \\x5C \\xFF\\x09z\""),
            "{l}"
        );
        // Quotes delimit exactly the three quoted fields.
        assert_eq!(l.matches('"').count(), 6, "{l}");
        // What a header value cannot hold, other text may (an endpoint).
        let mut out = Vec::new();
        escape_text(&mut out, b"a\nb\x7f\x1b c", true);
        assert_eq!(out, b"a\\x0Ab\\x7F\\x1B\\x20c");
    }

    #[test]
    fn json_is_one_object_per_line_with_every_string_escaped() {
        let mut r = record();
        r.user_agent = Some(HeaderValue::from_bytes(b"a\"\\\xe9\tb").unwrap());
        r.method = Method::from_bytes(b"PURGE").unwrap();
        r.version = Version::HTTP_2;
        r.retried_on = Some(fulcrum_policy::retry::Failure::ConnectError);
        let l = line(json, &r);
        assert!(l.ends_with("}\n") && l.matches('\n').count() == 1, "{l}");
        let j: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(j["time"], "2026-12-02T17:40:00.250Z");
        assert_eq!(j["client"], "127.0.0.1");
        assert_eq!(j["method"], "PURGE");
        assert_eq!(j["path"], "/infer/x?a=1");
        assert_eq!(j["protocol"], "HTTP/2.0");
        assert_eq!(
            (j["status"].as_u64(), j["bytes_out"].as_u64()),
            (Some(200), Some(512))
        );
        assert_eq!(
            j["user_agent"], "a\"\\\u{e9}\tb",
            "not UTF-8: read as Latin-1"
        );
        assert!(j["referer"].is_null() && j["pool"].is_null() && j["cache"].is_null());
        assert_eq!(j["request_time"].as_f64(), Some(0.012));
        assert_eq!(j["upstream_connect_time"].as_f64(), Some(0.0));
        assert_eq!(j["upstream_header_time"].as_f64(), Some(0.010));
        assert_eq!(j["upstream_response_time"].as_f64(), Some(0.011));
        assert_eq!(j["retried_on"], "connect_error");
        assert_eq!(j["request_id"], "abc");
        assert_eq!(j["outcome"], "complete");
        let mut out = Vec::new();
        json_str(&mut out, Some("é\n\u{1}\u{7f}\r".as_bytes()));
        assert_eq!(String::from_utf8(out).unwrap(), "\"é\\n\\u0001\\u007f\\r\"");
    }
}

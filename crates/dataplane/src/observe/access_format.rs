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
/// in= outcome= priority= rid=`
///
/// Written piece by piece without `core::fmt` (a few hundred
/// nanoseconds less per line: the writer's CPU counts too).
pub fn text(out: &mut Vec<u8>, r: &Record, unix_ms: u64) {
    out.reserve(320);
    client(out, r);
    out.extend_from_slice(b" - - [");
    text_date(out, unix_ms);
    out.extend_from_slice(b" +0000] \"");
    escape_text(out, r.method.as_str().as_bytes(), false);
    out.push(b' ');
    escape_text(out, target(r).as_bytes(), false);
    out.push(b' ');
    out.extend_from_slice(protocol(r.version).as_bytes());
    out.extend_from_slice(b"\" ");
    num(out, u64::from(status(r)));
    out.push(b' ');
    num(out, r.bytes_out);
    out.extend_from_slice(b" \"");
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
    out.extend_from_slice(b" tries=");
    num(out, u64::from(r.tries));
    out.extend_from_slice(b" cache=");
    out.extend_from_slice(cache(r.cache).unwrap_or("-").as_bytes());
    out.extend_from_slice(b" blame=");
    out.extend_from_slice(blame(r.blame).unwrap_or("-").as_bytes());
    out.extend_from_slice(b" in=");
    num(out, r.bytes_in);
    out.extend_from_slice(b" outcome=");
    out.extend_from_slice(outcome(r.outcome).as_bytes());
    out.extend_from_slice(b" priority=");
    out.extend_from_slice(r.class.map_or("-", |c| c.name()).as_bytes());
    out.extend_from_slice(b" rid=");
    opt_text(out, r.request_id.as_ref().map(|v| v.as_bytes()));
    out.push(b'\n');
}

/// `02/Dec/2026:17:40:00`, the second of `unix_ms`: remembered per
/// thread, since the writer formats many lines of the same second.
fn text_date(out: &mut Vec<u8>, unix_ms: u64) {
    const LEN: usize = 20;
    thread_local! {
        static LAST: std::cell::Cell<(u64, [u8; LEN])> =
            const { std::cell::Cell::new((u64::MAX, [0; LEN])) };
    }
    let sec = unix_ms / 1000;
    let (last, date) = LAST.get();
    if last == sec {
        out.extend_from_slice(&date);
        return;
    }
    let at = out.len();
    let t = Civil::from_unix_ms(unix_ms);
    two(out, t.day);
    out.push(b'/');
    out.extend_from_slice(MONTHS[t.month as usize - 1].as_bytes());
    out.push(b'/');
    num(out, t.year.max(0) as u64);
    out.push(b':');
    clock_time(out, &t, b':');
    // (a year of four digits: always, in practice)
    if let Ok(date) = <[u8; LEN]>::try_from(&out[at..]) {
        LAST.set((sec, date));
    }
}

/// Appends `r` as one `json` object on a line of its own to `out`.
pub fn json(out: &mut Vec<u8>, r: &Record, unix_ms: u64) {
    let t = Civil::from_unix_ms(unix_ms);
    out.extend_from_slice(b"{\"time\":\"");
    num(out, t.year.max(0) as u64);
    out.push(b'-');
    two(out, t.month);
    out.push(b'-');
    two(out, t.day);
    out.push(b'T');
    clock_time(out, &t, b':');
    out.push(b'.');
    three(out, (unix_ms % 1000) as u32);
    out.extend_from_slice(b"Z\",\"client\":");
    if r.client.is_some() {
        out.push(b'"');
        client(out, r);
        out.push(b'"');
    } else {
        out.extend_from_slice(b"null");
    }
    out.extend_from_slice(b",\"method\":");
    json_str(out, Some(r.method.as_str().as_bytes()));
    out.extend_from_slice(b",\"path\":");
    json_str(out, Some(target(r).as_bytes()));
    out.extend_from_slice(b",\"protocol\":\"");
    out.extend_from_slice(protocol(r.version).as_bytes());
    out.extend_from_slice(b"\",\"status\":");
    num(out, u64::from(status(r)));
    out.extend_from_slice(b",\"bytes_in\":");
    num(out, r.bytes_in);
    out.extend_from_slice(b",\"bytes_out\":");
    num(out, r.bytes_out);
    out.extend_from_slice(b",\"referer\":");
    json_str(out, r.referer.as_ref().map(|v| v.as_bytes()));
    out.extend_from_slice(b",\"user_agent\":");
    json_str(out, r.user_agent.as_ref().map(|v| v.as_bytes()));
    for (key, d) in [
        (&b",\"request_time\":"[..], r.total),
        (b",\"upstream_connect_time\":", r.upstream.connect),
        (b",\"upstream_header_time\":", r.upstream.head),
        (b",\"upstream_response_time\":", r.upstream.response),
    ] {
        out.extend_from_slice(key);
        match d {
            Some(d) => secs(out, d),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b",\"pool\":");
    json_str(out, r.pool.as_ref().map(|p| p.cfg.name.as_bytes()));
    out.extend_from_slice(b",\"instance\":");
    json_str(out, r.instance.as_ref().map(|i| i.endpoint.url.as_bytes()));
    out.extend_from_slice(b",\"tries\":");
    num(out, u64::from(r.tries));
    out.extend_from_slice(b",\"retried_on\":");
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
    out.extend_from_slice(b",\"outcome\":\"");
    out.extend_from_slice(outcome(r.outcome).as_bytes());
    out.extend_from_slice(b"\",\"priority\":");
    json_str(out, r.class.map(|c| c.name().as_bytes()));
    out.extend_from_slice(b",\"request_id\":");
    json_str(out, r.request_id.as_ref().map(|v| v.as_bytes()));
    out.extend_from_slice(b"}\n");
}

/// The caller's IP address, or `-`.
fn client(out: &mut Vec<u8>, r: &Record) {
    match r.client.map(|a| a.ip()) {
        Some(std::net::IpAddr::V4(ip)) => {
            for (i, o) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                num(out, u64::from(o));
            }
        }
        Some(ip) => {
            let _ = write!(out, "{ip}");
        }
        None => out.push(b'-'),
    }
}

fn protocol(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// `n` in decimal.
fn num(out: &mut Vec<u8>, mut n: u64) {
    // Most numbers in a line are small (octets, statuses, tries, seconds).
    if n < 10 {
        out.push(b'0' + n as u8);
        return;
    }
    if n < 100 {
        two(out, n as u32);
        return;
    }
    if n < 1000 {
        three(out, n as u32);
        return;
    }
    let mut b = [0u8; 20];
    let mut i = b.len();
    loop {
        i -= 1;
        b[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&b[i..]);
}

fn two(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&[b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]);
}

fn three(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 100 % 10) as u8);
    two(out, n % 100);
}

/// `HH:MM:SS`.
fn clock_time(out: &mut Vec<u8>, t: &Civil, sep: u8) {
    two(out, t.hour);
    out.push(sep);
    two(out, t.min);
    out.push(sep);
    two(out, t.sec);
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
    let ms = d.as_millis() as u64;
    num(out, ms / 1000);
    out.push(b'.');
    three(out, (ms % 1000) as u32);
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
    let mask = if space { SAFE_VALUE } else { SAFE_QUOTED };
    let bad = |b: u8| SAFE[usize::from(b)] & mask == 0;
    // Most values need nothing: one table look-up per byte, one copy.
    let Some(first) = v.iter().position(|&b| bad(b)) else {
        out.extend_from_slice(v);
        return;
    };
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&v[..first]);
    for &b in &v[first..] {
        if bad(b) {
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]);
        } else {
            out.push(b);
        }
    }
}

/// In [`SAFE`]: a byte written as it is inside a quoted field.
const SAFE_QUOTED: u8 = 1;
/// In [`SAFE`]: a byte written as it is in a `key=value` value.
const SAFE_VALUE: u8 = 2;

/// Which bytes `escape_text` copies as they are: printable ASCII but `"`
/// and `\` (and a space, in a `key=value` value).
static SAFE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0x20;
    while b < 0x7f {
        if b != b'"' as usize && b != b'\\' as usize {
            t[b] = SAFE_QUOTED | if b == b' ' as usize { 0 } else { SAFE_VALUE };
        }
        b += 1;
    }
    t
};

/// A JSON string (or `null`). Bytes that are not UTF-8 (`obs-text` in a
/// header) are read as ISO-8859-1, as RFC 9110 §5.5 allows.
pub fn json_str(out: &mut Vec<u8>, v: Option<&[u8]>) {
    let Some(v) = v else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'"');
    let plain = |b: &u8| (0x20..0x7f).contains(b) && *b != b'"' && *b != b'\\';
    if v.iter().all(plain) {
        out.extend_from_slice(v);
        out.push(b'"');
        return;
    }
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
            member: None,
            tries: 1,
            retried_on: None,
            status: Some(StatusCode::OK),
            head_after: Some(Duration::from_millis(11)),
            total: Some(Duration::from_millis(12)),
            outcome: Outcome::Complete,
            blame: None,
            client: Some("127.0.0.1:5555".parse().unwrap()),
            version: Version::HTTP_11,
            request_id: Some(HeaderValue::from_static("abc")),
            referer: None,
            user_agent: Some(HeaderValue::from_static("curl/8")),
            bytes_in: 3,
            bytes_out: 512,
            cache: CacheStatus::None,
            class: None,
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
             rt=0.012 uct=0.000 uht=0.010 urt=0.011 pool=- instance=- tries=1 cache=- blame=- in=3 outcome=complete priority=- rid=abc\n"
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
        r.class = Some(fulcrum_policy::RequestClass::Batch);
        let l = line(json, &r);
        assert!(line(text, &r).contains(" priority=batch rid="));
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
        assert_eq!(j["priority"], "batch");
        let mut out = Vec::new();
        json_str(&mut out, Some("é\n\u{1}\u{7f}\r".as_bytes()));
        assert_eq!(String::from_utf8(out).unwrap(), "\"é\\n\\u0001\\u007f\\r\"");
    }
}

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
use crate::runtime::{InstanceState, PoolRuntime};
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Weak};
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
/// Written piece by piece without `core::fmt` (the request path pays for
/// every line): what repeats from line to line (the caller's address, the
/// second, the pool and instance) is formatted once per thread and copied
/// after, numbers go two digits at a time, and escaping scans eight bytes
/// at a time (docs/BENCHMARKS.md, "Observability").
pub fn text(out: &mut Vec<u8>, r: &Record, unix_ms: u64) {
    out.reserve(320);
    client_text(out, r);
    text_date(out, unix_ms);
    // A method is a token (RFC 9110 §9.1; `http::Method` admits nothing
    // else): nothing in it to escape.
    out.extend_from_slice(r.method.as_str().as_bytes());
    out.push(b' ');
    escape_text(out, target(r).as_bytes(), false);
    out.extend_from_slice(match r.version {
        http::Version::HTTP_09 => b" HTTP/0.9\" ",
        http::Version::HTTP_10 => b" HTTP/1.0\" ",
        http::Version::HTTP_2 => b" HTTP/2.0\" ",
        http::Version::HTTP_3 => b" HTTP/3.0\" ",
        _ => b" HTTP/1.1\" ",
    });
    // (a status has three digits: `StatusCode` is 100 to 999)
    let [a, b] = PAIRS[usize::from(status(r) % 100)];
    out.extend_from_slice(&[b'0' + (status(r) / 100 % 10) as u8, a, b, b' ']);
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
    served_by_text(out, r);
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

/// The caller's address in a `text` line: an IPv4 address remembered per
/// thread (a connection's requests, and a load balancer's, come from the
/// same one), anything else formatted each time.
fn client_text(out: &mut Vec<u8>, r: &Record) {
    // The address and its dotted form (at most 15 bytes) with its length.
    type Last = (Option<Ipv4Addr>, [u8; 15], u8);
    thread_local! {
        static LAST: Cell<Last> = const { Cell::new((None, [0; 15], 0)) };
    }
    let Some(IpAddr::V4(ip)) = r.client.map(|a| a.ip()) else {
        return client(out, r);
    };
    let (last, dotted, len) = LAST.get();
    if last == Some(ip) {
        out.extend_from_slice(&dotted[..usize::from(len)]);
        return;
    }
    let at = out.len();
    client(out, r);
    let mut dotted = [0; 15];
    let len = out.len() - at;
    dotted[..len].copy_from_slice(&out[at..]);
    LAST.set((Some(ip), dotted, len as u8));
}

/// ` pool=NAME instance=URL` of a `text` line: escaped once per thread for
/// the pool and instance of the previous line, copied while they stay the
/// same. The cache holds [`Weak`]s, so it keeps no pool or instance alive
/// and no other one can take their address while it holds them.
fn served_by_text(out: &mut Vec<u8>, r: &Record) {
    #[derive(Default)]
    struct Last {
        pool: Option<Weak<PoolRuntime>>,
        instance: Option<Weak<InstanceState>>,
        text: Vec<u8>,
    }
    thread_local! {
        static LAST: RefCell<Last> = RefCell::default();
    }
    fn same<T>(w: &Option<Weak<T>>, a: &Option<Arc<T>>) -> bool {
        match (w, a) {
            (Some(w), Some(a)) => std::ptr::eq(w.as_ptr(), Arc::as_ptr(a)),
            (None, None) => true,
            _ => false,
        }
    }
    let fresh = |out: &mut Vec<u8>| {
        out.extend_from_slice(b" pool=");
        opt_text(out, r.pool.as_ref().map(|p| p.cfg.name.as_bytes()));
        out.extend_from_slice(b" instance=");
        opt_text(out, r.instance.as_ref().map(|i| i.endpoint.url.as_bytes()));
    };
    let copied = LAST.try_with(|last| {
        // (never re-entered: nothing below logs or finishes a request)
        let Ok(mut last) = last.try_borrow_mut() else {
            return false;
        };
        // (`text` is empty only before the thread's first line)
        if last.text.is_empty() || !same(&last.pool, &r.pool) || !same(&last.instance, &r.instance)
        {
            last.text.clear();
            fresh(&mut last.text);
            last.pool = r.pool.as_ref().map(Arc::downgrade);
            last.instance = r.instance.as_ref().map(Arc::downgrade);
        }
        out.extend_from_slice(&last.text);
        true
    });
    if copied != Ok(true) {
        fresh(out);
    }
}

/// ` - - [02/Dec/2026:17:40:00 +0000] "`, the second of `unix_ms`:
/// remembered per thread, since a thread formats many lines of the same
/// second.
fn text_date(out: &mut Vec<u8>, unix_ms: u64) {
    const LEN: usize = 35;
    thread_local! {
        static LAST: Cell<(u64, [u8; LEN])> = const { Cell::new((u64::MAX, [0; LEN])) };
    }
    let sec = unix_ms / 1000;
    let (last, date) = LAST.get();
    if last == sec {
        out.extend_from_slice(&date);
        return;
    }
    let at = out.len();
    let t = Civil::from_unix_ms(unix_ms);
    out.extend_from_slice(b" - - [");
    two(out, t.day);
    out.push(b'/');
    out.extend_from_slice(MONTHS[t.month as usize - 1].as_bytes());
    out.push(b'/');
    num(out, t.year.max(0) as u64);
    out.push(b':');
    clock_time(out, &t, b':');
    out.extend_from_slice(b" +0000] \"");
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
        out.extend_from_slice(&PAIRS[n as usize]);
        return;
    }
    if n < 1000 {
        three(out, n as u32);
        return;
    }
    // Two digits at a time, from the right.
    let mut b = [0u8; 20];
    let mut i = b.len();
    while n >= 100 {
        i -= 2;
        b[i..i + 2].copy_from_slice(&PAIRS[(n % 100) as usize]);
        n /= 100;
    }
    if n >= 10 {
        i -= 2;
        b[i..i + 2].copy_from_slice(&PAIRS[n as usize]);
    } else {
        i -= 1;
        b[i] = b'0' + n as u8;
    }
    out.extend_from_slice(&b[i..]);
}

/// `00` to `99`, the two digits of each number below 100.
static PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// `n % 100` in two digits.
fn two(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&PAIRS[(n % 100) as usize]);
}

/// `n % 1000` in three digits.
fn three(out: &mut Vec<u8>, n: u32) {
    let [a, b] = PAIRS[(n % 100) as usize];
    out.extend_from_slice(&[b'0' + (n / 100 % 10) as u8, a, b]);
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
    let (s, ms) = (d.as_secs(), d.subsec_millis());
    let [a, b] = PAIRS[(ms % 100) as usize];
    let frac = [b'.', b'0' + (ms / 100) as u8, a, b];
    if s < 10 {
        // `S.mmm`, the usual case, in one copy.
        let [p, x, y, z] = frac;
        out.extend_from_slice(&[b'0' + s as u8, p, x, y, z]);
        return;
    }
    num(out, s);
    out.extend_from_slice(&frac);
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
    // Most values need nothing: one scan, one copy.
    let first = clean_prefix(v, space);
    out.extend_from_slice(&v[..first]);
    if first == v.len() {
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
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

/// How many bytes at the start of `v` [`escape_text`] copies as they are:
/// eight at a time while none of them needs escaping (a word test instead
/// of eight table look-ups), then byte by byte.
fn clean_prefix(v: &[u8], space: bool) -> usize {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // The high bit of each byte of `w` below `n` (`n` <= 0x80) is set in
    // `below(w, n)`; `below(w ^ c, 1)` marks the bytes equal to `c`. Both
    // are exact about whether any byte is marked (Hacker's Delight 6-1).
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH;
    let low = if space { 0x21 } else { 0x20 };
    let mut n = 0;
    for c in v.chunks_exact(8) {
        let w = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let marked = below(w, low)
            | (w & HIGH)
            | below(w ^ (ONES * u64::from(b'"')), 1)
            | below(w ^ (ONES * u64::from(b'\\')), 1)
            | below(w ^ (ONES * 0x7f), 1);
        if marked != 0 {
            break;
        }
        n += 8;
    }
    let mask = if space { SAFE_VALUE } else { SAFE_QUOTED };
    n + v[n..]
        .iter()
        .position(|&b| SAFE[usize::from(b)] & mask == 0)
        .unwrap_or(v.len() - n)
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

    /// `escape_text` as it was written before the word-at-a-time scan: the
    /// reference the fast one must agree with.
    fn escape_slowly(v: &[u8], space: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in v {
            if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' && !(space && b == b' ') {
                out.push(b);
            } else {
                out.extend_from_slice(format!("\\x{b:02X}").as_bytes());
            }
        }
        out
    }

    #[test]
    fn the_word_scan_escapes_exactly_what_the_byte_scan_does() {
        let plain = b"/v1/chat/completions?model=llama-3&stream=true#x";
        // Every byte value at every position of values of every length up
        // to three words and two bytes.
        for len in 0..=plain.len().min(26) {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut v = plain[..len].to_vec();
                    v[at] = b;
                    for space in [false, true] {
                        let mut out = Vec::new();
                        escape_text(&mut out, &v, space);
                        assert_eq!(out, escape_slowly(&v, space), "{v:?} {space}");
                    }
                }
            }
        }
        let mut out = Vec::new();
        escape_text(&mut out, b"a b c d e f g h i", false);
        assert_eq!(
            out, b"a b c d e f g h i",
            "a space is plain in a quoted field"
        );
    }

    #[test]
    fn numbers_and_seconds_in_every_range() {
        for n in [
            0,
            7,
            10,
            99,
            100,
            999,
            1000,
            4096,
            65_535,
            100_000,
            1_234_567,
            u64::from(u32::MAX),
            u64::MAX / 3,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            num(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for (ms, text) in [
            (0, "0.000"),
            (7, "0.007"),
            (1_050, "1.050"),
            (9_999, "9.999"),
            (10_000, "10.000"),
            (123_456, "123.456"),
        ] {
            let mut out = Vec::new();
            secs(&mut out, Duration::from_millis(ms));
            assert_eq!(out, text.as_bytes());
        }
    }

    #[test]
    fn what_a_thread_remembers_follows_each_line() {
        // The caller's address and the pool and instance are remembered
        // from one line to the next; each line still shows its own.
        let yaml = r#"
pools:
  a: { instances: [ { endpoint: "http://127.0.0.1:1" }, { endpoint: "http://127.0.0.1:2" } ] }
  b: { instances: [ { endpoint: "http://127.0.0.1:1" } ] }
routes:
  - { path_prefix: /, pool: a }
"#;
        let cfg = fulcrum_config::parse(yaml, &|_| None).unwrap();
        let snap = crate::runtime::Snapshot::build(Arc::new(cfg), None, 0);
        let (a, b) = (snap.pool("a").unwrap(), snap.pool("b").unwrap());
        let served = |pool: &Arc<PoolRuntime>, m: usize, client: &str| {
            let mut r = record();
            r.pool = Some(pool.clone());
            r.instance = Some(pool.members[m].inst.clone());
            r.client = Some(client.parse().unwrap());
            r
        };
        let none = record();
        // (the record, then the line's client, pool and instance's port)
        let cases = [
            (served(a, 0, "10.0.0.1:1"), "10.0.0.1", "a", 1),
            (served(a, 0, "10.0.0.1:2"), "10.0.0.1", "a", 1),
            (served(a, 1, "10.0.0.12:1"), "10.0.0.12", "a", 2),
            (served(b, 0, "[::1]:1"), "::1", "b", 1),
            (none, "127.0.0.1", "-", 0),
            (served(a, 1, "192.0.2.200:1"), "192.0.2.200", "a", 2),
        ];
        for (r, client, pool, port) in cases {
            let l = line(text, &r);
            let instance = match port {
                0 => "-".to_string(),
                p => format!("http://127.0.0.1:{p}"),
            };
            assert!(l.starts_with(&format!("{client} - - [")), "{l}");
            let by = format!(" pool={pool} instance={instance} tries=");
            assert!(l.contains(&by), "{l}");
        }
    }
}

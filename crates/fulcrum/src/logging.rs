//! The log's last line of defence against forging: every value a caller,
//! an instance or a registering service sends may end up in a log field
//! (`service_id`, a path, an upstream error), and a value with a newline
//! could write a fake line (`…\n2026-… ERROR …`). The formatter writes
//! each event in one call ending in `\n`; [`Escaping`] escapes every other
//! control character of that call (`\n` → `\\n`, `\r` → `\\r`, others
//! `\\xNN`), so one event is always one line, whatever its values hold.

use anyhow::Context;
use std::io::{self, Write};

/// Sends the gateway's log to stderr, filtered by `filter` (`--log`): one
/// line per event, as text (coloured on a terminal) or as JSON objects.
pub fn init(filter: &str, json: bool) -> anyhow::Result<()> {
    let ansi = !json && io::IsTerminal::is_terminal(&io::stderr());
    let filter = tracing_subscriber::EnvFilter::try_new(filter).context("invalid --log filter")?;
    // Every event is one line, whatever its values hold.
    let writer = move || Escaping::new(io::stderr(), ansi);
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer)
        .with_ansi(ansi);
    if json {
        fmt.json().flatten_event(true).init();
    } else {
        fmt.init();
    }
    Ok(())
}

/// Wraps the log's writer; `ansi` keeps the formatter's own colour codes.
#[derive(Debug)]
pub struct Escaping<W> {
    inner: W,
    ansi: bool,
}

impl<W: Write> Escaping<W> {
    pub fn new(inner: W, ansi: bool) -> Self {
        Self { inner, ansi }
    }
}

/// `event` with its control characters escaped, except a final newline
/// (and ESC when the formatter colours its output).
pub fn escape_event(event: &[u8], ansi: bool) -> std::borrow::Cow<'_, [u8]> {
    let (body, newline) = match event.strip_suffix(b"\n") {
        Some(b) => (b, true),
        None => (event, false),
    };
    let escaped = |b: u8| (b < 0x20 || b == 0x7f) && !(ansi && b == 0x1b);
    if !body.iter().any(|&b| escaped(b)) {
        return std::borrow::Cow::Borrowed(event);
    }
    let mut out = Vec::with_capacity(event.len() + 16);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if escaped(b) => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            b => out.push(b),
        }
    }
    if newline {
        out.push(b'\n');
    }
    std::borrow::Cow::Owned(out)
}

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(&escape_event(buf, self.ansi))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_forged_line_stays_inside_its_event() {
        let event =
            b"WARN registered service_id=yolo\n2026-12-02T00:00:00Z ERROR admin token leaked\n";
        let out = escape_event(event, false);
        assert_eq!(
            &out[..],
            &b"WARN registered service_id=yolo\\n2026-12-02T00:00:00Z ERROR admin token leaked\n"[..]
        );
        assert_eq!(
            escape_event(b"a\rb\x1b[31mc\x00\n", false).as_ref(),
            b"a\\rb\\x1b[31mc\\x00\n"
        );
        assert_eq!(
            escape_event(b"\x1b[32mINFO\x1b[0m ok\n", true).as_ref(),
            b"\x1b[32mINFO\x1b[0m ok\n"
        );
    }

    #[test]
    fn the_writer_escapes_what_tracing_writes() {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let sink = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Escaping::new(Shared(sink.clone()), false))
            .finish();
        tracing::subscriber::with_default(sub, || {
            let id = "evil\nERROR forged line";
            tracing::warn!(service_id = %id, "instance registered");
            tracing::info!("second event");
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("evil\\nERROR forged line"), "{text}");
    }

    proptest! {
        #[test]
        fn one_event_is_one_line(s in "[\\x00-\\x7f]{0,64}") {
            let event = format!("INFO {s}\n");
            let out = escape_event(event.as_bytes(), false);
            prop_assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
            prop_assert!(out.iter().all(|&b| b >= 0x20 && b != 0x7f || b == b'\n'));
        }
    }
}

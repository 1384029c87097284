//! Config errors as `fulcrum check` (and `fulcrum serve`) print them: one
//! line per error in the compilers' `file:line:column: ` form, which
//! editors and terminals turn into links, then the line of the file with
//! a caret under the column, and a count at the end.
//!
//! ```text
//! fulcrum.yaml:12:16: pools.asr.algorithm: unknown algorithm `round_robbin`; did you mean `round_robin`?
//!    12 |     algorithm: round_robbin
//!       |                ^
//! 1 error
//! ```

use crate::load::{ConfigError, ConfigErrors};
use std::fmt::Write;

/// Every error of `errs` in `file` (the name to print), whose text is
/// `text` when it could be read.
pub fn render(file: &str, text: Option<&str>, errs: &ConfigErrors) -> String {
    let lines: Vec<&str> = text.map_or(vec![], |t| t.lines().collect());
    let width = errs
        .0
        .iter()
        .filter_map(|e| e.line)
        .max()
        .map_or(1, |l| l.to_string().len());
    let mut out = String::new();
    for e in &errs.0 {
        header(&mut out, file, e);
        if let (Some(line), Some(column)) = (e.line, e.column) {
            if let Some(src) = line.checked_sub(1).and_then(|i| lines.get(i)) {
                let pad: String = src
                    .chars()
                    .take(column.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(out, "{line:>width$} | {src}");
                let _ = writeln!(out, "{:>width$} | {pad}^", "");
            }
        }
    }
    let n = errs.0.len();
    let _ = writeln!(out, "{n} error{}", if n == 1 { "" } else { "s" });
    out
}

/// `file:line:column: path: message`, without what is unknown.
fn header(out: &mut String, file: &str, e: &ConfigError) {
    out.push_str(file);
    if let (Some(l), Some(c)) = (e.line, e.column) {
        let _ = write!(out, ":{l}:{c}");
    }
    let _ = writeln!(out, ": {e}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_is_a_line_with_its_place_then_the_source_and_a_caret() {
        let text = "pools:\n  asr:\n    algorithm: round_robbin\n";
        let mut at = ConfigError::new("pools.asr.algorithm", "unknown algorithm");
        (at.line, at.column) = (Some(3), Some(16));
        let errs = ConfigErrors(vec![ConfigError::new("", "the whole file"), at]);
        assert_eq!(
            render("f.yaml", Some(text), &errs),
            "f.yaml: the whole file\n\
             f.yaml:3:16: pools.asr.algorithm: unknown algorithm\n\
             3 |     algorithm: round_robbin\n  \
             |                ^\n\
             2 errors\n"
        );
    }

    #[test]
    fn a_place_beyond_the_text_prints_no_source() {
        let mut e = ConfigError::new("x", "bad");
        (e.line, e.column) = (Some(40), Some(1));
        let errs = ConfigErrors(vec![e]);
        assert_eq!(
            render("f", Some("x: 1"), &errs),
            "f:40:1: x: bad\n1 error\n"
        );
        assert_eq!(render("f", None, &errs), "f:40:1: x: bad\n1 error\n");
    }
}

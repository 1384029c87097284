//! How config errors are worded: serde's messages in plain words, and
//! "did you mean …?" for near misses of keys and values.
//!
//! serde describes types as Rust sees them ("expected u32", "expected
//! struct FileInstance"); a config file's reader knows numbers, text,
//! lists and mappings. [`plain`] is the one place that translates.

use serde_yaml_ng::Value;

/// The closest of `valid` to `word`: the same but for case, or within a
/// small edit distance (1 for short words, up to 3 for long ones, as
/// rustc's suggestions). `None` when nothing is that close.
pub fn closest<'a>(word: &str, valid: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    if let Some(v) = valid.iter().find(|v| v.eq_ignore_ascii_case(word)) {
        return Some(v);
    }
    valid
        .iter()
        .map(|v| {
            (
                strsim::damerau_levenshtein(&lower, &v.to_ascii_lowercase()),
                *v,
            )
        })
        .filter(|&(d, v)| d <= (v.chars().count() / 3).clamp(1, 3))
        .min_by_key(|&(d, _)| d)
        .map(|(_, v)| v)
}

/// "unknown {what} `x`; did you mean `y`?", or the list of valid ones.
pub fn unknown_value(what: &str, value: &str, valid: &[&str]) -> String {
    match closest(value, valid) {
        Some(s) => format!("unknown {what} `{value}`; did you mean `{s}`?"),
        None => format!(
            "unknown {what} `{value}`; expected one of: {}",
            valid.join(", ")
        ),
    }
}

/// "unknown algorithm `x`", with the nearest name or all of them.
pub fn unknown_algorithm(name: &str) -> String {
    let names: Vec<&str> = fulcrum_policy::Algorithm::ALL
        .iter()
        .map(|a| a.name())
        .collect();
    unknown_value("algorithm", name, &names)
}

/// The message for an unknown key among `valid` (none known: just that).
pub fn unknown_key(key: &str, valid: Option<&[&str]>) -> String {
    match valid {
        None => "unknown key".into(),
        Some(valid) => match closest(key, valid) {
            Some(s) => format!("unknown key; did you mean `{s}`?"),
            None => format!("unknown key; valid keys here: {}", valid.join(", ")),
        },
    }
}

/// A YAML value as a reader would name it: "a list", "the text \"x\"".
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the text {s:?}"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => describe(&t.value),
    }
}

/// serde's message in plain words. Messages of our own (units, custom
/// errors) pass unchanged.
pub fn plain(msg: &str) -> String {
    if let Some(field) = missing_field(msg) {
        return format!("missing key `{field}`");
    }
    if let Some(field) = msg
        .strip_prefix("duplicate field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        return format!("`{field}` is written twice");
    }
    for (prefix, invalid_value) in [("invalid type: ", false), ("invalid value: ", true)] {
        let Some(rest) = msg.strip_prefix(prefix) else {
            continue;
        };
        let Some((got, expected)) = rest.split_once(", expected ") else {
            continue;
        };
        return format!(
            "expected {}, got {}",
            expected_words(expected, invalid_value),
            got_words(got)
        );
    }
    msg.to_string()
}

/// The key named by serde's "missing field `x`".
pub fn missing_field(msg: &str) -> Option<&str> {
    msg.strip_prefix("missing field `")?.strip_suffix('`')
}

/// serde's `Unexpected` ("string \"x\"", "integer `5`", "map") in words.
fn got_words(got: &str) -> String {
    let ticked = |p: &str| {
        got.strip_prefix(p)
            .and_then(|r| r.strip_prefix('`'))
            .and_then(|r| r.strip_suffix('`'))
            .map(str::to_string)
    };
    if let Some(s) = got.strip_prefix("string ") {
        return format!("the text {s}");
    }
    if let Some(n) = ticked("integer ").or_else(|| ticked("floating point ")) {
        return format!("the number {n}");
    }
    if let Some(b) = ticked("boolean ") {
        return format!("`{b}`");
    }
    match got {
        "map" => "a mapping".into(),
        "sequence" => "a list".into(),
        "unit value" | "Option value" => "nothing".into(),
        other => other.into(),
    }
}

/// serde's "expected" (a Rust type or a visitor's words) in words; for
/// an invalid value (a number out of range), with the range.
fn expected_words(expected: &str, invalid_value: bool) -> String {
    let whole = |min: &str, max: &str| {
        if invalid_value {
            format!("a whole number from {min} to {max}")
        } else {
            "a whole number".into()
        }
    };
    match expected {
        "u8" => whole("0", "255"),
        "u16" => whole("0", "65535"),
        "u32" => whole("0", "4294967295"),
        "u64" | "usize" => whole("0", "18446744073709551615"),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a string" => "text".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping (key: value pairs)".into(),
        e if e.starts_with("struct ") => "a mapping (key: value pairs)".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested_and_far_ones_are_not() {
        let algs = ["round_robin", "least_connections", "random"];
        assert_eq!(closest("round_robbin", &algs), Some("round_robin"));
        assert_eq!(closest("Random", &algs), Some("random"));
        assert_eq!(closest("fastest", &algs), None);
        assert_eq!(closest("wieght", &["weight", "priority"]), Some("weight"));
        assert_eq!(closest("x", &["y"]), Some("y"), "one edit is close");
        assert_eq!(closest("ab", &["xy"]), None);
        assert_eq!(
            unknown_value("algorithm", "fastest", &algs),
            "unknown algorithm `fastest`; expected one of: round_robin, least_connections, random"
        );
        assert_eq!(
            unknown_key("tris", Some(&["tries", "on"])),
            "unknown key; did you mean `tries`?"
        );
        assert_eq!(
            unknown_key("zzz", Some(&["tries", "on"])),
            "unknown key; valid keys here: tries, on"
        );
    }

    #[test]
    fn serde_messages_are_said_in_plain_words() {
        for (serde, plain_words) in [
            (
                "invalid type: string \"many\", expected u32",
                "expected a whole number, got the text \"many\"",
            ),
            (
                "invalid value: integer `-1`, expected u32",
                "expected a whole number from 0 to 4294967295, got the number -1",
            ),
            (
                "invalid type: integer `5`, expected struct FileInstance",
                "expected a mapping (key: value pairs), got the number 5",
            ),
            (
                "invalid type: map, expected a sequence",
                "expected a list, got a mapping",
            ),
            (
                "invalid type: string \"maybe\", expected a boolean",
                "expected true or false, got the text \"maybe\"",
            ),
            (
                "invalid type: sequence, expected f64",
                "expected a number, got a list",
            ),
            (
                "invalid type: floating point `1.5`, expected usize",
                "expected a whole number, got the number 1.5",
            ),
            (
                "invalid type: boolean `true`, expected a string",
                "expected text, got `true`",
            ),
            ("missing field `endpoint`", "missing key `endpoint`"),
            ("`30` has no unit", "`30` has no unit"),
        ] {
            assert_eq!(plain(serde), plain_words);
        }
    }
}

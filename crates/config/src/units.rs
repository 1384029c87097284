//! Human units in the config file: durations (`500ms`, `30s`, `1h`), sizes
//! (`512KiB`, `64MiB`, `1GiB`) and `${ENV}` expansion.

use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_yaml_ng::Value;
use std::time::Duration;

/// A duration written with a unit. Bare numbers are refused: `timeout: 30`
/// is ambiguous (seconds? milliseconds?), so we ask for `30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml_ng::Value::deserialize(d)?;
        match v {
            serde_yaml_ng::Value::String(s) => {
                parse_duration(&s).map(Dur).map_err(de::Error::custom)
            }
            serde_yaml_ng::Value::Number(n) => Err(de::Error::custom(format!(
                "`{n}` has no unit; write a duration like `{n}s` or `{n}ms`"
            ))),
            _ => Err(de::Error::custom(
                "expected a duration such as `500ms`, `30s` or `1h`",
            )),
        }
    }
}

/// The longest duration accepted anywhere (365 days): larger values are
/// surely typos, and keeping them bounded keeps time arithmetic safe.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration `{s}` ({e}); write e.g. `500ms`, `30s`, `1h`"))?;
    if d > MAX_DURATION {
        return Err(format!("duration `{s}` is longer than the 365-day maximum"));
    }
    Ok(d)
}

/// A byte size: a plain integer (bytes) or a number with a unit
/// (`B`, `KiB`/`K`/`KB`, `MiB`/`M`/`MB`, `GiB`/`G`/`GB`). Units are binary
/// (1 KiB = 1024 B); `KB` is accepted as its nginx-style synonym.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml_ng::Value::deserialize(d)?;
        match v {
            serde_yaml_ng::Value::String(s) => parse_size(&s).map(Size).map_err(de::Error::custom),
            serde_yaml_ng::Value::Number(n) => n.as_u64().map(Size).ok_or_else(|| {
                de::Error::custom(format!(
                    "invalid size `{n}`: must be a whole number of bytes"
                ))
            }),
            _ => Err(de::Error::custom(
                "expected a size such as `512KiB`, `64MiB` or `1GiB`",
            )),
        }
    }
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad =
        || format!("invalid size `{s}`; write e.g. `512KiB`, `64MiB`, `1GiB` or a number of bytes");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "k" | "KB" | "KiB" => 1 << 10,
        "M" | "m" | "MB" | "MiB" => 1 << 20,
        "G" | "g" | "GB" | "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size `{s}` is too large"))
}

/// Replaces `${NAME}` and `${NAME:-default}` in one string with
/// environment values, taken literally. `lookup` is injected so tests need
/// not touch the process environment. An unset variable without a default
/// is an error naming it.
pub fn expand_env(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "`${` without a closing `}`".to_string())?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`${{{inner}}}` is not a valid environment variable reference"
            ));
        }
        match (lookup(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable `{name}` is not set (write `${{{name}:-default}}` for a fallback)"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands `${...}` inside the string values of a parsed document (never
/// in its text, so a value cannot change the YAML around it and a
/// reference in a comment is ignored). The value is taken literally;
/// only a scalar that is one whole reference (`weight: ${W}`) and expands
/// to a plain integer or `true`/`false` becomes that number or boolean, and
/// one that expands to nothing is no value (`token: ${T:-}`).
/// Each failure is returned with the YAML path of its value.
pub fn expand_value(
    v: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    errs: &mut Vec<(String, String)>,
) {
    match v {
        Value::String(s) if s.contains("${") => match expand_env(s, lookup) {
            Ok(x) => {
                let whole = s.starts_with("${") && s.find('}') == Some(s.len() - 1);
                *v = match (whole, x.as_str()) {
                    // `token: ${T:-}` with T unset: no value, as if empty.
                    (true, "") => Value::Null,
                    (true, "true") => Value::Bool(true),
                    (true, "false") => Value::Bool(false),
                    (true, n) if is_integer(n) => n
                        .parse::<i64>()
                        .map(|i| Value::Number(i.into()))
                        .unwrap_or(Value::String(x.clone())),
                    _ => Value::String(x),
                };
            }
            Err(e) => errs.push((path.to_string(), e)),
        },
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                expand_value(item, &format!("{path}[{i}]"), lookup, errs);
            }
        }
        Value::Mapping(map) => {
            for (k, item) in map.iter_mut() {
                let key = k.as_str().unwrap_or("?");
                let p = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                expand_value(item, &p, lookup, errs);
            }
        }
        Value::Tagged(t) => expand_value(&mut t.value, path, lookup, errs),
        _ => {}
    }
}

fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A string value that may have been written (or expanded) as a number:
/// a token of digits is still a token.
pub fn opt_stringish<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(other) => {
            return Err(de::Error::custom(format!(
                "expected a string, found {other:?}"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("5 parsecs")
            .unwrap_err()
            .contains("5 parsecs"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("1TiB").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn env_expansion() {
        let env = |k: &str| (k == "TOKEN").then(|| "s3cret".to_string());
        assert_eq!(
            expand_env("token: ${TOKEN}", &env).unwrap(),
            "token: s3cret"
        );
        assert_eq!(expand_env("a: ${NOPE:-x}", &env).unwrap(), "a: x");
        let err = expand_env("b: ${NOPE}", &env).unwrap_err();
        assert!(err.contains("NOPE"), "{err}");
        assert!(expand_env("a: ${OPEN", &env).is_err());
    }

    proptest! {
        #[test]
        fn text_without_references_is_unchanged(s in "[^$]*") {
            prop_assert_eq!(expand_env(&s, &|_| None).unwrap(), s);
        }

        #[test]
        fn size_units_multiply(n in 0u64..1_000_000, unit in 0usize..4) {
            let (suffix, mult) = [("", 1u64), ("KiB", 1024), ("MiB", 1 << 20), ("GiB", 1 << 30)][unit];
            prop_assert_eq!(parse_size(&format!("{n}{suffix}")).unwrap(), n * mult);
        }
    }
}

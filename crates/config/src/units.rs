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
            other => Err(de::Error::custom(format!(
                "expected a duration like `500ms`, `2s` or `1m`, got {}",
                crate::words::describe(&other)
            ))),
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

/// A byte size: a plain integer (bytes) or a number with a unit. Binary
/// units are powers of 1024 (`KiB`, `MiB`, `GiB`), decimal ones powers of
/// 1000 (`kB`/`KB`, `MB`, `GB`), as IEC 80000-13 and SI say: `64MB` is
/// 64 000 000 bytes, `64MiB` 67 108 864. A bare `K`, `M` or `G` could be
/// either, so it is refused with both spellings as the hint.
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
            other => Err(de::Error::custom(format!(
                "expected a size like `64KiB` or `10MB`, got {}",
                crate::words::describe(&other)
            ))),
        }
    }
}

/// The size units and their bytes.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("kB", 1_000),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
];

pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let n: u64 = num.parse().map_err(|_| {
        format!("invalid size `{s}`; write e.g. `512KiB`, `64MiB`, `10MB` or a number of bytes")
    })?;
    let mult = match SIZE_UNITS.iter().find(|(u, _)| *u == unit) {
        _ if unit.is_empty() => 1,
        Some(&(_, m)) => m,
        None if matches!(unit, "K" | "k" | "M" | "m" | "G" | "g") => {
            let up = unit.to_ascii_uppercase();
            return Err(format!(
                "`{s}` is ambiguous: write `{n}{up}iB` ({n} × 1024{}) or `{n}{up}B` ({n} × 1000{})",
                power(&up),
                power(&up)
            ));
        }
        None => {
            let names: Vec<&str> = SIZE_UNITS.iter().map(|(u, _)| *u).collect();
            return Err(match crate::words::closest(unit, &names) {
                Some(u) => {
                    format!("invalid size `{s}`: unknown unit `{unit}`; did you mean `{n}{u}`?")
                }
                None => format!(
                    "invalid size `{s}`: unknown unit `{unit}`; units are {}",
                    names.join(", ")
                ),
            });
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size `{s}` is too large"))
}

/// The power of 1024 or 1000 a prefix stands for: none for K, `²` for M, `³` for G.
fn power(prefix: &str) -> &'static str {
    match prefix {
        "K" => "",
        "M" => "²",
        _ => "³",
    }
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

/// One item of a list of names (`retry.on`, `cache.methods`,
/// `registry.allowed_hosts`): text, or a number or boolean taken as the
/// text it was written as, so that `on: [error, 503]` is checked as the
/// name `503` and its neighbours are checked too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match opt_stringish(d)? {
            Some(s) => Ok(Text(s)),
            None => Err(de::Error::custom("expected text, got nothing")),
        }
    }
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
                "expected text, got {}",
                crate::words::describe(&other)
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
        assert!(parse_size("99999999999999999999GB").is_err());
    }

    #[test]
    fn decimal_units_are_powers_of_1000_and_bare_letters_are_refused() {
        assert_eq!(parse_size("64MB").unwrap(), 64_000_000);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("10kB").unwrap(), 10_000);
        assert_eq!(parse_size("10KB").unwrap(), 10_000);
        assert_eq!(parse_size("2GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_size("3 B").unwrap(), 3);
        let e = parse_size("64M").unwrap_err();
        assert!(
            e.contains("ambiguous") && e.contains("`64MiB`") && e.contains("`64MB`"),
            "{e}"
        );
        assert!(parse_size("1k").unwrap_err().contains("`1KiB`"));
        let e = parse_size("64Mib").unwrap_err();
        assert!(e.ends_with("did you mean `64MiB`?"), "{e}");
        let e = parse_size("64parsecs").unwrap_err();
        assert!(e.contains("units are B, kB"), "{e}");
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

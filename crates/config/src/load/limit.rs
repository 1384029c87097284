//! `max_concurrent:` of an instance or a pool: a number (a fixed limit),
//! `auto` (learned between 1 and 256), or `{ min: N, max: M }` (learned
//! between N and M).

use super::errors::Errors;
use crate::model::Limit;
use fulcrum_policy::concurrency_limit::Bounds;
use serde_yaml_ng::Value;

/// What `max_concurrent:` may say, for the error messages.
const EXPECTED: &str =
    "a number of requests (at least 1), `auto`, or `{ min: N, max: M }` to learn it within bounds";

/// The keys of `{ min, max }`.
pub const KEYS: &[&str] = &["min", "max"];

/// Reads `v` (at YAML path `path`); `None` (with an error) when it is bad.
pub(super) fn limit(v: &Value, path: &str, errs: &mut Errors) -> Option<Limit> {
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(0) => {
                errs.push(path, "must be at least 1 (omit it for no limit)".into());
                None
            }
            Some(n) => match u32::try_from(n) {
                Ok(n) => Some(Limit::Fixed(n)),
                Err(_) => {
                    errs.push(path, format!("must be at most {}", u32::MAX));
                    None
                }
            },
            None => {
                errs.push(path, format!("`{n}` is not a limit: expected {EXPECTED}"));
                None
            }
        },
        Value::String(s) if s == "auto" => Some(Limit::Learned(Bounds::default())),
        Value::String(s) => {
            let msg = match crate::words::closest(s, &["auto"]) {
                Some(w) => format!("`{s}` is not a limit; did you mean `{w}`?"),
                None => format!("`{s}` is not a limit: expected {EXPECTED}"),
            };
            errs.push(path, msg);
            None
        }
        Value::Mapping(m) => {
            let mut b = Bounds::default();
            let mut ok = true;
            for (k, v) in m {
                let key = k.as_str().unwrap_or("");
                let at = format!("{path}.{key}");
                let n = v.as_u64().and_then(|n| u32::try_from(n).ok());
                match (key, n) {
                    ("min" | "max", Some(0)) => {
                        errs.push(&at, "must be at least 1".into());
                        ok = false;
                    }
                    ("min", Some(n)) => b.min = n,
                    ("max", Some(n)) => b.max = n,
                    ("min" | "max", None) => {
                        errs.push(&at, "must be a whole number of requests".into());
                        ok = false;
                    }
                    _ => {
                        errs.push_key(&at, crate::words::unknown_key(key, Some(KEYS)));
                        ok = false;
                    }
                }
            }
            if ok && b.min > b.max {
                errs.push(path, format!("min ({}) is above max ({})", b.min, b.max));
                ok = false;
            }
            ok.then_some(Limit::Learned(b))
        }
        _ => {
            errs.push(path, format!("expected {EXPECTED}"));
            None
        }
    }
}

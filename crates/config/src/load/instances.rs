//! A pool's `instances:`, each read on its own so that a bad one does not
//! hide the errors of the next.

use super::endpoints::parse_endpoint;
use super::errors::Errors;
use crate::defaults::{DEFAULT_PRIORITY, DEFAULT_WEIGHT, MAX_WEIGHT};
use crate::file::FileInstance;
use crate::model::{Instance, Limit};
use fulcrum_policy::Priority;
use serde_yaml_ng::Value;
use std::collections::HashSet;

/// A pool's `instances:` (`path` is the pool's); the bad ones are left out.
pub(super) fn build_instances(raw: Vec<Value>, path: &str, errs: &mut Errors) -> Vec<Instance> {
    let mut seen = HashSet::new();
    let mut instances = vec![];
    for (i, raw) in raw.into_iter().enumerate() {
        let ipath = format!("{path}.instances[{i}]");
        let Some(inst) = errs.section::<FileInstance>(raw, &ipath) else {
            continue;
        };
        instances.extend(build_instance(inst, &ipath, &mut seen, errs));
    }
    instances
}

/// One instance (`ipath` is its YAML path); `None` when its endpoint is
/// bad. `seen` holds the pool's endpoints so far.
fn build_instance(
    inst: FileInstance,
    ipath: &str,
    seen: &mut HashSet<String>,
    errs: &mut Errors,
) -> Option<Instance> {
    let endpoint = match parse_endpoint(&inst.endpoint) {
        Ok(e) => e,
        Err(m) => {
            errs.push(&format!("{ipath}.endpoint"), m);
            return None;
        }
    };
    if !seen.insert(endpoint.url.clone()) {
        errs.push(
            &format!("{ipath}.endpoint"),
            format!("`{}` is listed twice in this pool", endpoint.url),
        );
    }
    let weight = inst.weight.unwrap_or(DEFAULT_WEIGHT);
    if weight == 0 {
        errs.push(
            &format!("{ipath}.weight"),
            "must be at least 1 (drain an instance instead of weighting it 0)".into(),
        );
    }
    if weight > MAX_WEIGHT {
        errs.push(
            &format!("{ipath}.weight"),
            format!("must be at most {MAX_WEIGHT}"),
        );
    }
    let limit = inst
        .max_concurrent
        .as_ref()
        .and_then(|v| super::limit::limit(v, &format!("{ipath}.max_concurrent"), errs));
    let priority = match inst.priority.as_deref().map(|p| (p, p.parse::<Priority>())) {
        None => DEFAULT_PRIORITY,
        Some((_, Ok(p))) => p,
        Some((p, Err(_))) => {
            errs.push(
                &format!("{ipath}.priority"),
                crate::words::unknown_value("priority", p, Priority::NAMES),
            );
            DEFAULT_PRIORITY
        }
    };
    if let Some(hp) = &inst.health_path {
        if !hp.starts_with('/') {
            errs.push(
                &format!("{ipath}.health_path"),
                "must start with `/`".into(),
            );
        }
    }
    Some(Instance {
        endpoint,
        weight: weight.clamp(1, MAX_WEIGHT),
        max_concurrent: match limit {
            Some(Limit::Fixed(n)) => Some(n),
            _ => None,
        },
        learned_limit: match limit {
            Some(Limit::Learned(b)) => Some(b),
            _ => None,
        },
        priority,
        health_path: inst.health_path,
    })
}

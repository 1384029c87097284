//! # fulcrum-config — from a YAML file to a validated runtime config
//!
//! Config flows in three named stages (as in sozu): [`file`] is the shape
//! of the YAML as serde reads it, [`load`] validates and collects every
//! error with its YAML path, and [`model`] is the runtime configuration the
//! gateway runs on. [`units`] parses durations, sizes and `${ENV}`;
//! [`defaults`] names every default value and limit.

pub mod defaults;
pub mod file;
pub mod load;
pub mod model;
pub mod units;

pub use load::{embedded_default, parse, parse_endpoint, ConfigError, ConfigErrors};
pub use model::*;

/// Reads and validates a config file, expanding `${ENV}` from the process environment.
pub fn load_file(path: &std::path::Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            path: String::new(),
            message: format!("cannot read {}: {e}", path.display()),
        }])
    })?;
    let mut config = parse(&text, &|k| std::env::var(k).ok())?;
    if let Some(dir) = path.parent() {
        config.resolve_paths(dir);
    }
    Ok(config)
}

//! Reloading the config file on request (`POST /api/v1/config/reload`,
//! `fulcrum reload`, `SIGHUP`): what the admin API needs of whoever owns
//! the file ([`Reload`]), and what it answers.
//!
//! The binary implements [`Reload`] (it knows the file's path and the
//! listeners); this crate only calls it, so the admin listener does not
//! depend on start-up code.

use crate::config_view::Changes;
use serde::Serialize;
use utoipa::ToSchema;

/// Reads the config file again and swaps it in when it is valid.
pub trait Reload: Send + Sync + std::fmt::Debug {
    fn reload(&self) -> Result<ReloadReport, ReloadRefused>;
}

/// A reload that was applied.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReloadReport {
    pub ok: bool,
    /// What changed, exactly.
    pub changes: Changes,
    /// Settings that changed in the file but apply only after a restart
    /// (the listeners' addresses, limits and timeouts, TLS on or off, the
    /// access log, …), compared with what the gateway started with.
    pub restart_needed: Vec<String>,
    /// `changes` and `restart_needed` in one line, as logged.
    pub summary: String,
}

/// A reload that was refused: the running config stays.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReloadRefused {
    pub ok: bool,
    pub error: String,
    /// Every error, as `fulcrum check` prints them.
    pub errors: Vec<String>,
    /// Whether the file had nothing to read (no file: 409) rather than
    /// being invalid (422).
    #[serde(skip)]
    pub no_file: bool,
}

impl ReloadRefused {
    pub fn invalid(error: impl Into<String>, errors: Vec<String>) -> Self {
        Self {
            ok: false,
            error: error.into(),
            errors,
            no_file: false,
        }
    }
}

impl ReloadReport {
    pub fn new(changes: Changes, restart_needed: Vec<String>) -> Self {
        let mut summary = changes.summary();
        if !restart_needed.is_empty() {
            summary += &format!("; needs a restart to apply: {}", restart_needed.join(", "));
        }
        Self {
            ok: true,
            changes,
            restart_needed,
            summary,
        }
    }
}

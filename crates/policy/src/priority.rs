//! An instance's priority tier: `high`, `normal`, `low`, `backup`.
//!
//! A leaf: the tier is a fact of the configuration that both the selector
//! ([`crate::select`](mod@crate::select), which serves tiers in order) and some algorithms
//! (`resource_based` scales its score by it) read, so it lives apart from
//! both. The tier semantics follow nginx's `backup` and Envoy's priority
//! levels; see [`crate::select`](mod@crate::select) for how tiers spill.

use std::fmt;
use std::str::FromStr;

/// An instance's priority tier. Lower value = preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    High = 0,
    #[default]
    Normal = 1,
    Low = 2,
    Backup = 3,
}

impl Priority {
    pub const NAMES: &'static [&'static str] = &["high", "normal", "low", "backup"];
    /// Every tier, best first (the order the selector tries them in).
    pub const ALL: [Priority; 4] = [
        Priority::High,
        Priority::Normal,
        Priority::Low,
        Priority::Backup,
    ];
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "high" => Ok(Priority::High),
            "normal" => Ok(Priority::Normal),
            "low" => Ok(Priority::Low),
            "backup" => Ok(Priority::Backup),
            other => Err(format!(
                "unknown priority `{other}`; expected one of: {}",
                Priority::NAMES.join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_tier() {
        for p in Priority::ALL {
            assert_eq!(p.name().parse::<Priority>().unwrap(), p);
        }
        assert!("urgent".parse::<Priority>().unwrap_err().contains("backup"));
    }
}

//! A request's class in the admission queue: `interactive`, `normal`,
//! `batch`.
//!
//! Not to be confused with [`Priority`](crate::Priority), an *instance's*
//! tier (`high`, `normal`, `low`, `backup`: which instances a pool tries
//! first). A request class says which *requests* a pool serves first when
//! every instance is busy: it comes from the route's `priority:` or the
//! caller's `X-Fulcrum-Priority` header, orders the queue, and decides
//! who is refused first under overload (`batch`). A leaf, like
//! [`priority`](crate::priority): config reads the names, the data plane's
//! queue the order.

use std::fmt;
use std::str::FromStr;

/// A request's class. Lower value = served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum RequestClass {
    Interactive = 0,
    #[default]
    Normal = 1,
    Batch = 2,
}

impl RequestClass {
    pub const NAMES: &'static [&'static str] = &["interactive", "normal", "batch"];
    /// Every class, first served first.
    pub const ALL: [RequestClass; 3] = [
        RequestClass::Interactive,
        RequestClass::Normal,
        RequestClass::Batch,
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Its position in [`Self::ALL`] (for arrays of per-class counters).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The class a header value names (ASCII case and surrounding blanks
    /// ignored); `None` for anything else.
    pub fn from_header(v: &[u8]) -> Option<Self> {
        let v = v.trim_ascii();
        Self::ALL
            .into_iter()
            .find(|c| v.eq_ignore_ascii_case(c.name().as_bytes()))
    }
}

impl fmt::Display for RequestClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RequestClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown priority `{s}`; expected one of: {}",
                    Self::NAMES.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_class() {
        for c in RequestClass::ALL {
            assert_eq!(c.name().parse::<RequestClass>().unwrap(), c);
            assert_eq!(RequestClass::ALL[c.index()], c);
        }
        assert!("urgent"
            .parse::<RequestClass>()
            .unwrap_err()
            .contains("batch"));
    }

    #[test]
    fn header_values_ignore_case_and_blanks_and_nothing_else() {
        assert_eq!(
            RequestClass::from_header(b" Interactive "),
            Some(RequestClass::Interactive)
        );
        assert_eq!(
            RequestClass::from_header(b"BATCH"),
            Some(RequestClass::Batch)
        );
        assert_eq!(RequestClass::from_header(b"high"), None);
        assert_eq!(RequestClass::from_header(b""), None);
    }

    #[test]
    fn interactive_is_served_before_normal_before_batch() {
        assert!(RequestClass::Interactive < RequestClass::Normal);
        assert!(RequestClass::Normal < RequestClass::Batch);
    }
}

//! What this binary is: `GET /version`, `fulcrum --version` and the
//! `fulcrum_build_info` metric all read these (`build.rs` sets the commit
//! and the date).

use serde::Serialize;
use utoipa::ToSchema;

/// The crate version, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit the binary was built from (`git rev-parse --short HEAD`, or
/// `FULCRUM_COMMIT`, else `unknown`).
pub const COMMIT: &str = env!("FULCRUM_COMMIT");
/// `YYYY-MM-DD`: `FULCRUM_BUILD_DATE`, else `SOURCE_DATE_EPOCH`'s day,
/// else the commit's date (reproducible: never the build machine's clock).
pub const BUILD_DATE: &str = env!("FULCRUM_BUILD_DATE");

/// `0.1.0 (commit 1a2b3c4, built 2026-12-03)`, for `fulcrum --version`.
pub const LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("FULCRUM_COMMIT"),
    ", built ",
    env!("FULCRUM_BUILD_DATE"),
    ")"
);

/// `GET /version`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Version {
    pub version: &'static str,
    pub commit: &'static str,
    pub build_date: &'static str,
}

impl Version {
    pub const CURRENT: Version = Version {
        version: VERSION,
        commit: COMMIT,
        build_date: BUILD_DATE,
    };
}

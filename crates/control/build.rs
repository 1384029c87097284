//! Gives the build info (`/metrics`, `GET /version`, `fulcrum --version`)
//! its commit: `FULCRUM_COMMIT` when set (a build outside git), else `git
//! rev-parse --short HEAD`, else `unknown`; and its date:
//! `FULCRUM_BUILD_DATE`, else `SOURCE_DATE_EPOCH` (reproducible builds),
//! else the commit's date, else `unknown` — never the clock, so the same
//! commit builds the same binary. Reruns only when HEAD or the branch it
//! points at moves, so an ordinary build does not rebuild this crate.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=FULCRUM_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let commit = std::env::var("FULCRUM_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FULCRUM_COMMIT={commit}");
    println!("cargo:rerun-if-env-changed=FULCRUM_BUILD_DATE");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let date = std::env::var("FULCRUM_BUILD_DATE")
        .ok()
        .filter(|d| !d.is_empty())
        .or_else(|| {
            let epoch: i64 = std::env::var("SOURCE_DATE_EPOCH")
                .ok()?
                .trim()
                .parse()
                .ok()?;
            Some(civil_date(epoch.div_euclid(86_400)))
        })
        .or_else(|| git(&["log", "-1", "--format=%cs"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FULCRUM_BUILD_DATE={date}");
    // HEAD itself (a checkout), and the branch file it names (a commit).
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let head = PathBuf::from(&dir).join("HEAD");
        println!("cargo:rerun-if-changed={}", head.display());
        if let (Ok(text), Some(common)) = (
            std::fs::read_to_string(&head),
            git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
        ) {
            if let Some(r) = text.trim().strip_prefix("ref: ") {
                let common = PathBuf::from(common);
                // Only files that exist: a missing one would rerun every build.
                for f in [common.join(r), common.join("packed-refs")] {
                    if f.exists() {
                        println!("cargo:rerun-if-changed={}", f.display());
                    }
                }
            }
        }
    }
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

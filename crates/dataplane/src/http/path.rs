//! Request paths as routes see them: dot segments (`.`, `..`, and their
//! percent-encoded forms such as `%2e%2E`) are resolved before matching, as
//! nginx does (RFC 3986 §5.2.4), so a route prefix cannot be escaped by
//! `/asr/../admin`; a path that climbs above the root is refused.

use std::borrow::Cow;

/// Why a path was refused.
pub const CLIMBS_ABOVE_ROOT: &str = "the path climbs above the root with `..`";

/// `path` with its dot segments resolved; borrowed (no work) when it has
/// none, which is nearly every request.
pub fn normalize(path: &str) -> Result<Cow<'_, str>, &'static str> {
    if !path.contains('.') && !path.contains("%2e") && !path.contains("%2E") {
        return Ok(Cow::Borrowed(path));
    }
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    if !segments.iter().any(|s| dots(s).is_some()) {
        return Ok(Cow::Borrowed(path));
    }
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match dots(seg) {
            Some(1) => {}
            Some(_) => {
                if out.pop().is_none() {
                    return Err(CLIMBS_ABOVE_ROOT);
                }
            }
            None => out.push(seg),
        }
        // `/a/b/..` and `/a/.` name a directory: keep the trailing slash.
        if i == last && dots(seg).is_some() {
            out.push("");
        }
    }
    let mut s = String::with_capacity(path.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if s.is_empty() {
        s.push('/');
    }
    Ok(Cow::Owned(s))
}

/// 1 for a `.` segment, 2 for `..`, in any mix of `.` and `%2e`/`%2E`.
fn dots(seg: &str) -> Option<u8> {
    let mut rest = seg;
    let mut n = 0u8;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("%2e") {
            rest = &rest[3..];
        } else {
            return None;
        }
        n += 1;
        if n > 2 {
            return None;
        }
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dot_segments_are_resolved_in_every_spelling() {
        for (raw, want) in [
            ("/asr/v1/x", "/asr/v1/x"),
            ("/asr/./x", "/asr/x"),
            ("/asr/../llm/x", "/llm/x"),
            ("/asr/%2e%2e/llm/x", "/llm/x"),
            ("/asr/.%2E/llm", "/llm"),
            ("/asr/%2E/x", "/asr/x"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/..a/b.c/...", "/..a/b.c/..."),
            ("/v1/model.bin", "/v1/model.bin"),
            ("/", "/"),
        ] {
            assert_eq!(normalize(raw).unwrap(), want, "{raw}");
        }
    }

    #[test]
    fn climbing_above_the_root_is_refused() {
        for raw in [
            "/asr/../../admin/secret",
            "/..",
            "/%2e%2e/x",
            "/a/%2E./../b",
        ] {
            assert_eq!(normalize(raw), Err(CLIMBS_ABOVE_ROOT), "{raw}");
        }
    }

    proptest! {
        #[test]
        fn a_normalized_path_has_no_dot_segment_and_is_stable(
            segs in proptest::collection::vec(prop_oneof!["[a-z]{1,3}", Just(".".to_string()), Just("..".to_string()), Just("%2e%2E".to_string())], 0..8)
        ) {
            let raw = format!("/{}", segs.join("/"));
            if let Ok(p) = normalize(&raw) {
                prop_assert!(p.starts_with('/'));
                prop_assert!(p.split('/').all(|s| dots(s).is_none()), "{p}");
                prop_assert_eq!(normalize(&p).unwrap(), p.clone());
            }
        }
    }
}

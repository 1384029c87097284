//! `Accept-Encoding` (RFC 9110 §12.5.3): which of the codings a route
//! offers the caller accepts, and which one it prefers.
//!
//! Each element is a coding with an optional weight (`gzip;q=0.5`); a
//! weight of 0 refuses it, `*` stands for every coding not named, and
//! `x-gzip` is `gzip` (§8.4.1.3). An element that does not parse (a weight
//! of `2` or `abc`, a header line that is not ASCII) is skipped, as if the
//! caller had not written it; nothing a caller sends can make this fail.

use fulcrum_config::ContentCoding;
use http::HeaderValue;

/// A weight in thousandths (`q=0.5` is 500; 1000 when none is written).
type Weight = u16;

/// The coding to answer with: of `offered` (most preferred first), the
/// one with the highest weight above 0 in the caller's `Accept-Encoding`
/// lines, ties going to the earlier one in `offered`. `None` — send the
/// answer as it is — without the header, when nothing offered is
/// acceptable, or when the caller gives `identity` a higher weight.
pub fn negotiate<'a>(
    lines: impl IntoIterator<Item = &'a HeaderValue>,
    offered: &[ContentCoding],
) -> Option<ContentCoding> {
    let mut named: [Option<Weight>; 2] = [None; 2];
    let mut star = None;
    let mut identity = None;
    for line in lines {
        let Ok(line) = line.to_str() else { continue };
        for (name, w) in line.split(',').filter_map(element) {
            let slot = if name.eq_ignore_ascii_case("*") {
                &mut star
            } else if name.eq_ignore_ascii_case("identity") {
                &mut identity
            } else if name.eq_ignore_ascii_case("x-gzip") {
                &mut named[slot(ContentCoding::Gzip)]
            } else {
                match ContentCoding::from_name(name) {
                    Some(c) => &mut named[slot(c)],
                    None => continue,
                }
            };
            // Named twice: the higher weight counts.
            *slot = Some(slot.map_or(w, |old: Weight| old.max(w)));
        }
    }
    let mut best: Option<(ContentCoding, Weight)> = None;
    for &c in offered {
        let w = named[slot(c)].or(star).unwrap_or(0);
        if w > 0 && best.is_none_or(|(_, b)| w > b) {
            best = Some((c, w));
        }
    }
    let (coding, w) = best?;
    match identity {
        Some(i) if i > w => None,
        _ => Some(coding),
    }
}

fn slot(c: ContentCoding) -> usize {
    match c {
        ContentCoding::Zstd => 0,
        ContentCoding::Gzip => 1,
    }
}

/// One element, `coding *( OWS ";" OWS parameter )`: its coding and
/// weight, or `None` when it is empty or its weight does not parse.
fn element(e: &str) -> Option<(&str, Weight)> {
    let mut parts = e.split(';');
    let name = parts.next()?.trim();
    if name.is_empty() {
        return None;
    }
    let mut weight = 1000;
    for p in parts {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("q") {
            weight = qvalue(v.trim())?;
        }
    }
    Some((name, weight))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
fn qvalue(v: &str) -> Option<Weight> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: Weight = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += Weight::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContentCoding::{Gzip, Zstd};

    const BOTH: &[ContentCoding] = &[Zstd, Gzip];

    fn pick(lines: &[&str], offered: &[ContentCoding]) -> Option<ContentCoding> {
        let v: Vec<HeaderValue> = lines
            .iter()
            .map(|l| HeaderValue::from_str(l).unwrap())
            .collect();
        negotiate(&v, offered)
    }

    #[test]
    fn the_route_order_breaks_ties_and_weights_decide_otherwise() {
        assert_eq!(pick(&["gzip, deflate, br, zstd"], BOTH), Some(Zstd));
        assert_eq!(pick(&["gzip, zstd"], &[Gzip, Zstd]), Some(Gzip));
        assert_eq!(pick(&["gzip"], BOTH), Some(Gzip));
        assert_eq!(pick(&["zstd;q=0.5, gzip"], BOTH), Some(Gzip));
        assert_eq!(pick(&["zstd;q=0.5, gzip;q=0.499"], BOTH), Some(Zstd));
        assert_eq!(pick(&["zstd"], &[Gzip]), None, "only what the route offers");
    }

    #[test]
    fn a_weight_of_zero_refuses_a_coding() {
        assert_eq!(pick(&["gzip;q=0"], BOTH), None);
        assert_eq!(pick(&["zstd;q=0, gzip"], BOTH), Some(Gzip));
        assert_eq!(
            pick(&["gzip; Q=0.000"], BOTH),
            None,
            "q is case-insensitive"
        );
        assert_eq!(pick(&["*;q=0"], BOTH), None);
    }

    #[test]
    fn the_wildcard_covers_every_coding_not_named() {
        assert_eq!(pick(&["*"], BOTH), Some(Zstd));
        assert_eq!(pick(&["zstd;q=0, *"], BOTH), Some(Gzip));
        assert_eq!(pick(&["*;q=0.2, gzip;q=0.3"], BOTH), Some(Gzip));
        assert_eq!(pick(&["*;q=0.5, gzip;q=0.1"], BOTH), Some(Zstd));
    }

    #[test]
    fn identity_wins_only_when_preferred_outright() {
        assert_eq!(pick(&["identity"], BOTH), None);
        assert_eq!(
            pick(&["gzip, identity"], BOTH),
            Some(Gzip),
            "a tie compresses"
        );
        assert_eq!(pick(&["gzip;q=0.5, identity"], BOTH), None);
        assert_eq!(pick(&["identity;q=0, gzip;q=0.1"], BOTH), Some(Gzip));
    }

    #[test]
    fn no_header_or_an_empty_one_asks_for_nothing() {
        assert_eq!(pick(&[], BOTH), None);
        assert_eq!(pick(&[""], BOTH), None);
        assert_eq!(pick(&[" , ,"], BOTH), None);
    }

    #[test]
    fn several_lines_and_aliases_count_and_case_does_not_matter() {
        assert_eq!(pick(&["br", "GZip"], BOTH), Some(Gzip));
        assert_eq!(pick(&["x-gzip"], BOTH), Some(Gzip));
        assert_eq!(pick(&["gzip;q=0", "gzip;q=0.8"], BOTH), Some(Gzip));
    }

    #[test]
    fn elements_that_do_not_parse_are_skipped() {
        assert_eq!(pick(&["gzip;q=2"], BOTH), None);
        assert_eq!(pick(&["gzip;q=1.5, zstd;q=abc"], BOTH), None);
        assert_eq!(pick(&["gzip;q=0.1234"], BOTH), None);
        assert_eq!(pick(&["gzip;q"], BOTH), None);
        assert_eq!(pick(&["gzip;q=, zstd"], BOTH), Some(Zstd));
        assert_eq!(pick(&["compress, deflate, br"], BOTH), None);
        assert_eq!(
            pick(&["gzip;level=9"], BOTH),
            Some(Gzip),
            "other parameters are ignored"
        );
        let odd = HeaderValue::from_bytes(b"gzip\xff").unwrap();
        assert_eq!(negotiate([&odd], BOTH), None);
    }

    #[test]
    fn qvalues_parse_as_the_grammar_says() {
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("1.000"), Some(1000));
        assert_eq!(qvalue("1.001"), None);
        assert_eq!(qvalue("0.5"), Some(500));
        assert_eq!(qvalue("0.05"), Some(50));
        assert_eq!(qvalue("0."), Some(0));
        assert_eq!(qvalue(".5"), None);
        assert_eq!(qvalue("0.-1"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_header_is_answered_without_panicking(s in "[ -~]{0,200}") {
            if let Ok(v) = HeaderValue::from_str(&s) {
                let _ = negotiate([&v], BOTH);
            }
        }
    }
}

//! Blanking of comments and literals.
//!
//! Doc comments and strings often mention paths (`[`crate::foo`]`,
//! `"crate::x"`) that are not imports. [`strip`] replaces every comment and
//! every string, byte-string, raw-string and char literal by spaces, keeping
//! newlines, so that later stages see only code and line numbers stay those
//! of the original file. Lifetimes and labels (`'a`) are kept.

/// Returns `src` with comments and string/char literals replaced by spaces
/// (newlines kept, so line numbers are unchanged).
pub fn strip(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let end = if c == '/' && next == Some('/') {
            line_comment_end(&chars, i)
        } else if c == '/' && next == Some('*') {
            block_comment_end(&chars, i)
        } else if let Some(end) = string_literal_end(&chars, i) {
            end
        } else if c == '\'' {
            char_literal_end(&chars, i).unwrap_or(i + 1)
        } else {
            i + 1
        };
        if end > i + 1 {
            blank(&chars[i..end], &mut out);
        } else {
            out.push(c);
        }
        i = end;
    }
    out
}

/// Pushes spaces for `span`, keeping its newlines.
fn blank(span: &[char], out: &mut String) {
    for &c in span {
        out.push(if c == '\n' { '\n' } else { ' ' });
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// End (exclusive) of the `//` comment starting at `i`: the newline, kept.
fn line_comment_end(chars: &[char], i: usize) -> usize {
    let mut j = i;
    while j < chars.len() && chars[j] != '\n' {
        j += 1;
    }
    j
}

/// End (exclusive) of the `/* */` comment starting at `i` (they nest).
fn block_comment_end(chars: &[char], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while j < chars.len() {
        if chars[j] == '/' && chars.get(j + 1) == Some(&'*') {
            depth += 1;
            j += 2;
        } else if chars[j] == '*' && chars.get(j + 1) == Some(&'/') {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return j;
            }
        } else {
            j += 1;
        }
    }
    chars.len()
}

/// If a string literal (`"…"`, `b"…"`, `c"…"`, `r#"…"#`, `br"…"`, `cr"…"`)
/// starts at `i`, its end (exclusive).
fn string_literal_end(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && is_ident_char(chars[i - 1]) {
        return None; // inside an identifier such as `attr` or `b`-suffixed names
    }
    let mut j = i;
    if matches!(chars.get(j), Some('b') | Some('c')) {
        j += 1;
    }
    let raw = chars.get(j) == Some(&'r');
    if raw {
        j += 1;
        let mut hashes = 0;
        while chars.get(j) == Some(&'#') {
            hashes += 1;
            j += 1;
        }
        if chars.get(j) != Some(&'"') {
            return None;
        }
        j += 1;
        while j < chars.len() {
            if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                return Some(j + 1 + hashes);
            }
            j += 1;
        }
        return Some(chars.len());
    }
    if chars.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 2,
            '"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    Some(chars.len())
}

/// If a char literal (`'x'`, `'\n'`, `'\u{1F600}'`, `'\''`) starts at `i`,
/// its end (exclusive); `None` for a lifetime or label such as `'a`.
fn char_literal_end(chars: &[char], i: usize) -> Option<usize> {
    match chars.get(i + 1) {
        Some('\\') => {
            let mut j = i + 3; // past the quote, the backslash and the escaped char
            while j < chars.len() && chars[j] != '\'' && chars[j] != '\n' {
                j += 1;
            }
            Some((j + 1).min(chars.len()))
        }
        Some(_) if chars.get(i + 2) == Some(&'\'') => Some(i + 3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::strip;

    #[test]
    fn comments_are_blanked_and_lines_kept() {
        let src = "//! see crate::a\nuse x; // crate::b\n/* crate::c /* nested */ crate::d */ y\n";
        let out = strip(src);
        assert!(!out.contains("crate"), "{out}");
        assert_eq!(out.lines().count(), src.lines().count());
        assert!(out.contains("use x;"));
        assert!(out.trim_end().ends_with('y'));
    }

    #[test]
    fn strings_and_chars_are_blanked() {
        let src = r####"let a = "crate::x \" crate::y"; let b = r#"crate::z "q" "#; let c = b"crate"; let d = '"'; let e = '\''; crate::real"####;
        let out = strip(src);
        assert_eq!(out.matches("crate").count(), 1, "{out}");
        assert!(out.contains("crate::real"));
    }

    #[test]
    fn lifetimes_are_kept() {
        let out = strip("fn f<'a>(x: &'a str) -> &'a str { 'outer: loop { break 'outer; } }");
        assert!(out.contains("<'a>"), "{out}");
        assert!(out.contains("break 'outer;"), "{out}");
    }

    #[test]
    fn identifiers_ending_in_r_or_b_are_not_raw_strings() {
        let out = strip("let br = 1; let ptr = \"x\"; crate::q");
        assert!(out.contains("let br = 1;"));
        assert!(out.contains("crate::q"));
    }
}

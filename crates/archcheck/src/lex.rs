//! Tokens of blanked source.
//!
//! [`lex`] turns the output of [`crate::strip::strip`] into a flat list of
//! identifiers (keywords included, `r#name` read as `name`), `::` and single
//! punctuation characters, each with its 1-based line. Numbers are skipped:
//! no stage looks at them.

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// An identifier or keyword.
    Ident(String),
    /// `::`.
    PathSep,
    /// Any other punctuation character.
    Punct(char),
}

/// A token and the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// 1-based line number.
    pub line: usize,
}

impl Token {
    /// The identifier, if this token is one.
    pub fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this token is the identifier or keyword `word`.
    pub fn is(&self, word: &str) -> bool {
        self.ident() == Some(word)
    }

    /// Whether this token is the punctuation character `c`.
    pub fn is_punct(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }

    /// Whether this token is `::`.
    pub fn is_path_sep(&self) -> bool {
        self.tok == Tok::PathSep
    }
}

/// Splits blanked source into tokens.
pub fn lex(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let word: String = chars[i..j].iter().collect();
            if word == "r" && chars.get(j) == Some(&'#') {
                i = j + 1; // raw identifier: the name follows
                continue;
            }
            out.push(Token {
                tok: Tok::Ident(word),
                line,
            });
            i = j;
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Token {
                tok: Tok::PathSep,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(c),
                line,
            });
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{lex, Tok};

    #[test]
    fn paths_and_lines() {
        let toks = lex("use crate::a;\nlet r#type = 1u8 : x;");
        let kinds: Vec<&Tok> = toks.iter().map(|t| &t.tok).collect();
        assert_eq!(kinds[0], &Tok::Ident("use".into()));
        assert_eq!(kinds[2], &Tok::PathSep);
        assert!(toks.iter().any(|t| t.is("type") && t.line == 2));
        assert!(toks.iter().any(|t| t.is_punct(':') && t.line == 2));
        assert!(
            !toks.iter().any(|t| t.is("u8")),
            "numbers are skipped whole"
        );
    }
}

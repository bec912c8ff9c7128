//! What differs between the SQL databases: identifier quoting, parameter
//! placeholders, column types and a few function spellings. Everything else
//! in the compiler is shared.

use aura_core::{Error, ErrorCode, Result};

/// A SQL database family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

/// The LIKE escape character. `!` rather than a backslash: `ESCAPE '!'` is
/// the same valid literal on every dialect and in every MySQL SQL mode
/// (a single-backslash literal is not, API.md §16 row 35).
pub const LIKE_ESCAPE: char = '!';

/// `text` as a LIKE pattern matching itself literally (`contains`,
/// `startswith`, `endswith` wrap it in `%`).
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | LIKE_ESCAPE) {
            out.push(LIKE_ESCAPE);
        }
        out.push(c);
    }
    out
}

/// A user `like()` pattern: `%` and `_` stay wildcards; only the escape
/// character itself is escaped, so every other character is literal, as in
/// the memory engine.
pub fn like_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        if c == LIKE_ESCAPE {
            out.push(LIKE_ESCAPE);
        }
        out.push(c);
    }
    out
}

impl Dialect {
    /// Backend name as in API.md §7 (used in capability errors).
    pub fn backend(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
        }
    }

    fn quote_char(self) -> char {
        match self {
            Dialect::Mysql => '`',
            Dialect::Sqlite | Dialect::Postgres => '"',
        }
    }

    /// `name` quoted, the quote character doubled. NUL cannot be quoted on
    /// any dialect, so it is an `AuraDialectError`; so is an empty name.
    pub fn quote(self, name: &str) -> Result<String> {
        if name.is_empty() || name.contains('\0') {
            return Err(Error::new(
                ErrorCode::DialectError,
                "SQL identifiers must be non-empty and cannot contain NUL characters",
            )
            .with_context("dialect", self.backend()));
        }
        let q = self.quote_char();
        let mut out = String::with_capacity(name.len() + 2);
        out.push(q);
        for c in name.chars() {
            if c == q {
                out.push(q);
            }
            out.push(c);
        }
        out.push(q);
        Ok(out)
    }

    /// The placeholder of the `n`-th parameter (1-based).
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite | Dialect::Mysql => "?".to_owned(),
        }
    }

    /// ORDER BY suffix giving the memory engine's null order (nulls first
    /// ascending, last descending). SQLite and MySQL already sort NULL lowest.
    pub fn nulls_order(self, desc: bool) -> &'static str {
        match (self, desc) {
            (Dialect::Postgres, false) => " NULLS FIRST",
            (Dialect::Postgres, true) => " NULLS LAST",
            _ => "",
        }
    }

    /// `OFFSET` needs a `LIMIT` on SQLite and MySQL: this stands for "no limit".
    pub fn no_limit(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => Some("-1"),
            Dialect::Mysql => Some("18446744073709551615"),
            Dialect::Postgres => None,
        }
    }
}

pub(crate) fn dialect_error(dialect: Dialect, message: String) -> Error {
    Error::new(ErrorCode::DialectError, message).with_context("dialect", dialect.backend())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(Dialect::Sqlite.quote("a\"b").unwrap(), "\"a\"\"b\"");
        assert_eq!(Dialect::Postgres.quote("User").unwrap(), "\"User\"");
        assert_eq!(Dialect::Mysql.quote("a`b").unwrap(), "`a``b`");
        assert_eq!(Dialect::Mysql.quote("a\"b").unwrap(), "`a\"b`");
    }

    #[test]
    fn nul_and_empty_identifiers_are_dialect_errors() {
        for bad in ["a\0b", ""] {
            let err = Dialect::Sqlite.quote(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::DialectError);
            assert_eq!(
                err.message,
                "SQL identifiers must be non-empty and cannot contain NUL characters"
            );
        }
    }

    #[test]
    fn placeholders_per_dialect() {
        assert_eq!(Dialect::Sqlite.placeholder(3), "?");
        assert_eq!(Dialect::Postgres.placeholder(3), "$3");
        assert_eq!(Dialect::Mysql.placeholder(1), "?");
    }

    #[test]
    fn like_escaping() {
        assert_eq!(escape_like("50%_off!"), "50!%!_off!!");
        assert_eq!(like_pattern("a%b_c!d\\"), "a%b_c!!d\\");
    }

    /// Reads a quoted identifier back the way the SQL lexer does.
    fn unquote(quoted: &str, q: char) -> Option<String> {
        let inner = quoted.strip_prefix(q)?.strip_suffix(q)?;
        let mut out = String::new();
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            if c == q {
                // Inside the quotes a quote char only appears doubled.
                if chars.next() != Some(q) {
                    return None;
                }
            }
            out.push(c);
        }
        Some(out)
    }

    /// Reads an escaped LIKE pattern back to the literal text it matches.
    fn unescape_like(pattern: &str) -> Option<String> {
        let mut out = String::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                LIKE_ESCAPE => out.push(chars.next()?),
                '%' | '_' => return None,
                other => out.push(other),
            }
        }
        Some(out)
    }

    proptest! {
        #[test]
        fn any_identifier_round_trips_through_quoting(name in "[^\u{0}]{1,40}") {
            for (dialect, q) in [(Dialect::Sqlite, '"'), (Dialect::Postgres, '"'), (Dialect::Mysql, '`')] {
                let quoted = dialect.quote(&name).unwrap();
                prop_assert_eq!(unquote(&quoted, q), Some(name.clone()));
            }
        }

        #[test]
        fn escaped_text_has_no_free_wildcards(text in ".{0,40}") {
            prop_assert_eq!(unescape_like(&escape_like(&text)), Some(text));
        }

        #[test]
        fn like_patterns_keep_wildcards_and_literal_escapes(text in "[a!%_]{0,20}") {
            let escaped = like_pattern(&text);
            // Dropping each escape gives the user's pattern back.
            let mut restored = String::new();
            let mut chars = escaped.chars();
            while let Some(c) = chars.next() {
                if c == LIKE_ESCAPE {
                    prop_assert_eq!(chars.next(), Some(LIKE_ESCAPE));
                }
                restored.push(c);
            }
            prop_assert_eq!(restored, text);
        }
    }
}

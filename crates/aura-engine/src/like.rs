//! SQL `LIKE` without regexes: `%` matches any run, `_` one character,
//! anchored at both ends, case-sensitive.
//!
//! The pattern is split at `%` into segments; the first is anchored at the
//! start, the last at the end, and the middle ones are matched greedily at
//! their leftmost position, which is optimal for `%` patterns. No step ever
//! backtracks over an earlier segment, so matching is linear in the text for
//! each segment (no exponential blow-up on patterns like `%a%a%a%b`).

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    AnyChar,
    Char(char),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LikePattern {
    first: Vec<Token>,
    /// `None` when the pattern has no `%`: then `first` must match the whole text.
    rest: Option<Rest>,
}

#[derive(Debug, Clone, PartialEq)]
struct Rest {
    middle: Vec<Vec<Token>>,
    last: Vec<Token>,
}

fn tokens(segment: &str) -> Vec<Token> {
    segment
        .chars()
        .map(|c| {
            if c == '_' {
                Token::AnyChar
            } else {
                Token::Char(c)
            }
        })
        .collect()
}

/// Byte length of the prefix of `text` matched by `seg`, if it matches.
fn match_prefix(seg: &[Token], text: &str) -> Option<usize> {
    let mut chars = text.char_indices();
    for token in seg {
        let (_, c) = chars.next()?;
        if let Token::Char(want) = token {
            if *want != c {
                return None;
            }
        }
    }
    Some(chars.next().map_or(text.len(), |(at, _)| at))
}

/// Leftmost match of `seg` in `text`: (start, end) byte offsets.
fn find(seg: &[Token], text: &str) -> Option<(usize, usize)> {
    let mut starts = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()));
    starts.find_map(|start| match_prefix(seg, &text[start..]).map(|len| (start, start + len)))
}

/// Byte offset where the last `n` characters of `text` begin.
fn suffix_start(text: &str, n: usize) -> Option<usize> {
    if n == 0 {
        return Some(text.len());
    }
    text.char_indices().rev().nth(n - 1).map(|(i, _)| i)
}

impl LikePattern {
    pub fn new(pattern: &str) -> Self {
        let mut parts = pattern.split('%');
        let first = tokens(parts.next().unwrap_or(""));
        let mut rest: Vec<Vec<Token>> = parts.map(tokens).collect();
        let rest = rest.pop().map(|last| Rest {
            middle: rest.into_iter().filter(|s| !s.is_empty()).collect(),
            last,
        });
        LikePattern { first, rest }
    }

    pub fn is_match(&self, text: &str) -> bool {
        let Some(mut pos) = match_prefix(&self.first, text) else {
            return false;
        };
        let Some(rest) = &self.rest else {
            return pos == text.len();
        };
        let Some(tail) = suffix_start(text, rest.last.len()) else {
            return false;
        };
        if tail < pos || match_prefix(&rest.last, &text[tail..]) != Some(text.len() - tail) {
            return false;
        }
        for seg in &rest.middle {
            match find(seg, &text[pos..tail]) {
                Some((_, end)) => pos += end,
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::LikePattern;

    fn like(pattern: &str, text: &str) -> bool {
        LikePattern::new(pattern).is_match(text)
    }

    #[test]
    fn anchored_literals() {
        assert!(like("abc", "abc"));
        assert!(!like("abc", "abcd"));
        assert!(!like("abc", "ab"));
        assert!(!like("abc", "ABC"), "case-sensitive");
        assert!(like("", ""));
        assert!(!like("", "a"));
    }

    #[test]
    fn wildcards() {
        assert!(like("a%", "abc"));
        assert!(like("%c", "abc"));
        assert!(like("%b%", "abc"));
        assert!(like("%", ""));
        assert!(like("%%", "xyz"));
        assert!(like("a_c", "abc"));
        assert!(!like("a_c", "ac"));
        assert!(like("_%_", "ab"));
        assert!(!like("_%_", "a"));
        assert!(like("a%b%c", "aXbYc"));
        assert!(like("a%b%c", "abc"));
        assert!(!like("a%b%c", "acb"));
        assert!(like("%a%a%b", "aaaaab"));
        assert!(!like("ab%ba", "aba"), "prefix and suffix must not overlap");
        assert!(like("ab%ba", "abba"));
    }

    #[test]
    fn unicode_underscore_is_one_character() {
        assert!(like("caf_", "café"));
        assert!(like("_é%", "xé!"));
        assert!(like("%é", "cafe\u{301}é"));
        assert!(!like("caf_", "caf"));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let text = "a".repeat(20_000);
        let pattern = format!("{}b", "%a".repeat(50));
        let start = std::time::Instant::now();
        assert!(!like(&pattern, &text));
        assert!(start.elapsed().as_secs() < 2);
    }
}

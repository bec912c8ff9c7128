//! The tokenizer of API.md §5.2 (one definition for the memory engine's
//! BM25 and the SQL backends' full-text query terms): lowercase (Unicode), then maximal runs of
//! alphanumeric characters; everything else separates tokens. No stop
//! words, stemming or accent folding.

use std::borrow::Cow;

/// Tokens of `text`, in order, duplicates kept.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    each_token(text, |token| out.push(token.into_owned()));
    out
}

/// Calls `each` with the tokens of `text`, in order, duplicates kept (the
/// tokens `tokens` returns). In ASCII text a token already in lowercase
/// is borrowed from `text` (no allocation); a token with an uppercase
/// letter, and every token of a text that is not ASCII, is a new string.
pub fn each_token<'a>(text: &'a str, mut each: impl FnMut(Cow<'a, str>)) {
    if !text.is_ascii() {
        let lower = text.to_lowercase();
        lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
            .for_each(|t| each(Cow::Owned(t.to_owned())));
        return;
    }
    // On ASCII the Unicode rules reduce to bytes: only `A-Z` lowercase
    // (to `a-z`), and the alphanumeric characters are `[A-Za-z0-9]`.
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if !bytes[at].is_ascii_alphanumeric() {
            at += 1;
            continue;
        }
        let start = at;
        let mut upper = false;
        while let Some(b) = bytes.get(at).filter(|b| b.is_ascii_alphanumeric()) {
            upper |= b.is_ascii_uppercase();
            at += 1;
        }
        // Every byte index of ASCII text is a character boundary.
        if let Some(token) = text.get(start..at) {
            each(match upper {
                true => Cow::Owned(token.to_ascii_lowercase()),
                false => Cow::Borrowed(token),
            });
        }
    }
}

/// Distinct tokens in order of first appearance.
pub fn distinct(tokens: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tokens {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_on_non_alphanumerics_and_lowercases() {
        assert_eq!(tokens("x_y z"), vec!["x", "y", "z"]);
        assert_eq!(tokens("Café … CAFÉ!"), vec!["café", "café"]);
        assert_eq!(tokens("  a-b,C3  "), vec!["a", "b", "c3"]);
        assert!(tokens(" ... ").is_empty());
        assert_eq!(distinct(&tokens("b a b")), vec!["b", "a"]);
    }

    /// The tokens as §5.2 defines them, without the ASCII shortcut.
    fn by_definition(text: &str) -> Vec<String> {
        text.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_ascii_shortcut_gives_the_tokens_of_the_definition() {
        // Every ASCII character in every position, mixed case, runs of
        // separators, and texts with one non-ASCII character (the general
        // path) built from the same pieces.
        let ascii: String = (0u8..128).map(char::from).collect();
        let mut texts = vec![
            ascii.clone(),
            ascii.chars().rev().collect(),
            "Hello, WORLD! x_y-Z 42abc ABC42 \t\n".into(),
            "MiXeD CaSe mixed case".into(),
            "  ".into(),
            String::new(),
        ];
        texts.extend(texts.clone().iter().map(|t| format!("{t} ÉTÉ")));
        for text in &texts {
            assert_eq!(tokens(text), by_definition(text), "{text:?}");
        }
        // Each pair of ASCII characters, the shortest texts that can get
        // a boundary or a case wrong.
        for a in 0u8..128 {
            for b in 0u8..128 {
                let text: String = [char::from(a), char::from(b)].into_iter().collect();
                assert_eq!(tokens(&text), by_definition(&text), "{text:?}");
            }
        }
    }

    proptest! {
        /// ASCII text (the shortcut): printable characters, tabs and
        /// newlines.
        #[test]
        fn ascii_tokens_follow_the_definition(text in "[ -~\t\n]{0,64}") {
            prop_assert_eq!(tokens(&text), by_definition(&text));
        }

        /// Text with Latin-1 letters among them (the general path).
        #[test]
        fn tokens_follow_the_definition(text in "[ -~\t\nÀ-ÿ]{0,40}") {
            prop_assert_eq!(tokens(&text), by_definition(&text));
        }
    }
}

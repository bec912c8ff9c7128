//! The tokenizer of API.md §5.2 (one definition for the memory engine's
//! BM25 and the SQL backends' full-text query terms): lowercase (Unicode), then maximal runs of
//! alphanumeric characters; everything else separates tokens. No stop
//! words, stemming or accent folding.

/// Tokens of `text`, in order, duplicates kept.
pub fn tokens(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
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

    #[test]
    fn splits_on_non_alphanumerics_and_lowercases() {
        assert_eq!(tokens("x_y z"), vec!["x", "y", "z"]);
        assert_eq!(tokens("Café … CAFÉ!"), vec!["café", "café"]);
        assert_eq!(tokens("  a-b,C3  "), vec!["a", "b", "c3"]);
        assert!(tokens(" ... ").is_empty());
        assert_eq!(distinct(&tokens("b a b")), vec!["b", "a"]);
    }
}

//! BM25 inverted index of one `full_text` string field: per term, the slots
//! holding it with their term frequency (ascending slots), plus each slot's
//! token count. Postings are shared between snapshots and copied per term
//! on write.

use std::collections::HashMap;
use std::sync::Arc;

use aura_core::Value;

use super::chunked::Chunked;
use super::tokenize;

/// Length of a slot whose row has no string value.
pub const NO_DOC: u32 = u32::MAX;

pub type Postings = Arc<Vec<(u32, u32)>>;

#[derive(Debug, Clone)]
pub(crate) struct TextIndex {
    pub pos: usize,
    pub postings: imbl::HashMap<String, Postings>,
    /// Token count per slot, `NO_DOC` when not in the corpus.
    pub lens: Chunked<u32>,
    /// Rows whose value is a string (`N`) and their total token count.
    pub docs: u64,
    pub total_len: u64,
}

fn term_counts(text: &str) -> (Vec<(String, u32)>, u32) {
    let tokens = tokenize::tokens(text);
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for t in &tokens {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    let list = counts.into_iter().map(|(t, n)| (t.to_owned(), n)).collect();
    (list, u32::try_from(tokens.len()).unwrap_or(u32::MAX - 1))
}

impl TextIndex {
    pub fn new(pos: usize) -> Self {
        TextIndex {
            pos,
            postings: imbl::HashMap::new(),
            lens: Chunked::new(1),
            docs: 0,
            total_len: 0,
        }
    }

    pub fn push(&mut self, row: &[Value]) {
        let Some(Value::Str(text)) = row.get(self.pos) else {
            self.lens.push(&[NO_DOC]);
            return;
        };
        let (counts, len) = term_counts(text);
        let slot = self.lens.push(&[len]) as u32;
        for (term, tf) in counts {
            let list = self.postings.entry(term).or_default();
            Arc::make_mut(list).push((slot, tf));
        }
        self.docs += 1;
        self.total_len += u64::from(len);
    }

    pub fn remove(&mut self, slot: usize, row: &[Value]) {
        let Some(Value::Str(text)) = row.get(self.pos) else {
            return;
        };
        let (counts, len) = term_counts(text);
        for (term, _) in counts {
            let Some(list) = self.postings.get_mut(&term) else {
                continue;
            };
            let list = Arc::make_mut(list);
            if let Ok(at) = list.binary_search_by_key(&(slot as u32), |p| p.0) {
                list.remove(at);
            }
            if list.is_empty() {
                self.postings.remove(&term);
            }
        }
        self.lens.get_mut(slot)[0] = NO_DOC;
        self.docs = self.docs.saturating_sub(1);
        self.total_len = self.total_len.saturating_sub(u64::from(len));
    }

    /// The slot's token count, if its row is in the corpus.
    #[inline]
    pub fn len_of(&self, slot: usize) -> Option<u32> {
        let n = self.lens.get(slot)[0];
        (n != NO_DOC).then_some(n)
    }
}

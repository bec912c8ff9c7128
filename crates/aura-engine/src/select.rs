//! The read pipeline: plan, filter, order (or rank), window, includes.

use aura_core::ir::{Expr, Filtered, Select};
use aura_core::{Error, ModelSchema, Result, Row};

use crate::deadline::Deadline;
use crate::field_access::FieldAccess;
use crate::filter::{self, Predicate};
use crate::include;
use crate::output::Scores;
use crate::output::{QueryOutput, ResultRow};
use crate::planner::{self, AccessPath};
use crate::rank::collect::{Collector, Hit, RankOrder};
use crate::rank::{self, cursor};
use crate::sort::{self, SortKey};
use crate::table::{lookup, Table, Tables};

/// `offset`/`limit` of a result.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub offset: usize,
    pub limit: Option<usize>,
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Window {
    pub fn new(offset: Option<u64>, limit: Option<u64>) -> Self {
        Window {
            offset: offset.map_or(0, to_usize),
            limit: limit.map(to_usize),
        }
    }

    /// How many ordered rows must be produced to serve the window.
    pub fn keep(&self) -> Option<usize> {
        self.limit.map(|l| self.offset.saturating_add(l))
    }
}

/// A query's compiled filter and the rows it reaches, for one table.
pub(crate) struct Matcher<'t> {
    pub table: &'t Table,
    pub predicate: Predicate,
    plan: planner::Plan,
}

impl<'t> Matcher<'t> {
    pub fn new(table: &'t Table, filters: &[Expr]) -> Result<Self> {
        let predicate = filter::compile(&table.schema, filters)?;
        let plan = planner::plan(table, &predicate);
        Ok(Matcher {
            table,
            predicate,
            plan,
        })
    }

    /// True when every row matches (no filter narrows the scan).
    pub fn is_everything(&self) -> bool {
        matches!(
            (&self.predicate, &self.plan),
            (Predicate::Const(true), planner::Plan::Scan)
        )
    }

    pub fn access_path(&self) -> AccessPath {
        self.plan.access_path(self.table)
    }

    /// Calls `visit` for every matching row in primary-key order until it
    /// returns false.
    pub fn each(self, deadline: &Deadline, mut visit: impl FnMut(&'t Row) -> bool) -> Result<()> {
        for row in planner::candidates(self.table, self.plan) {
            deadline.step()?;
            if self.predicate.matches(row) && !visit(row) {
                break;
            }
        }
        deadline.check()
    }

    /// Room for every candidate when no filter can drop one (full fetches).
    fn capacity_hint(&self) -> usize {
        match (&self.predicate, &self.plan) {
            (Predicate::Const(true), planner::Plan::Scan) => self.table.rows.len(),
            _ => 0,
        }
    }

    pub fn collect(self, deadline: &Deadline) -> Result<Vec<&'t Row>> {
        let mut out = Vec::with_capacity(self.capacity_hint());
        self.each(deadline, |row| {
            out.push(row);
            true
        })?;
        Ok(out)
    }
}

/// Matching rows of `model` (shared, in primary-key order).
pub(crate) fn matching_rows(
    tables: &Tables,
    model: &str,
    filters: &[Expr],
    deadline: &Deadline,
) -> Result<Vec<Row>> {
    let table = lookup(tables, model)?;
    let rows = Matcher::new(table, filters)?.collect(deadline)?;
    Ok(rows.into_iter().cloned().collect())
}

fn check_projection(schema: &ModelSchema, projection: &[String]) -> Result<()> {
    projection
        .iter()
        .try_for_each(|name| FieldAccess::resolve(schema, name, None).map(drop))
}

pub(crate) fn select(tables: &Tables, q: &Select) -> Result<QueryOutput> {
    let table = lookup(tables, &q.model)?;
    check_projection(&table.schema, &q.projection)?;
    let includes = include::resolve_all(tables, table, &q.include)?;
    let order = sort::compile(&table.schema, &q.sort)?;
    let matcher = Matcher::new(table, &q.filters)?;
    let ranker = rank::prepare(table, q, &matcher)?;
    let access_path = matcher.access_path();
    let deadline = Deadline::new(q.timeout_ms);
    let mut rows = match ranker {
        Some(ranker) => {
            let window = Window::new(q.offset, ranker.limit(q));
            let rank_order = RankOrder {
                keys: &order,
                pk: table.pk.unwrap_or(0),
            };
            let mut out = Collector::new(rank_order, window.keep(), None);
            ranker.collect(table, matcher, &mut out, &deadline)?;
            let (hits, _) = out.finish(&deadline)?;
            ranked_rows(hits, window.offset, 0)
        }
        None => ordered(matcher, &order, Window::new(q.offset, q.limit), &deadline)?,
    };
    include::attach(tables, table, &includes, &mut rows, &deadline)?;
    deadline.check()?;
    Ok(QueryOutput { rows, access_path })
}

/// Hits from position `skip` on, ranked globally from `first_rank`.
fn ranked_rows(hits: Vec<Hit<'_>>, skip: usize, first_rank: u64) -> Vec<ResultRow> {
    hits.into_iter()
        .enumerate()
        .skip(skip)
        .map(|(i, hit)| ResultRow {
            row: hit.row.clone(),
            scores: Some(Scores {
                score: hit.score,
                text_score: hit.text,
                vector_score: hit.vector,
                rank: first_rank + i as u64 + 1,
            }),
            includes: Vec::new(),
        })
        .collect()
}

/// The message of §4.2 for paging an unranked query.
pub(crate) const RANKED_REQUIRED: &str =
    "search_pages requires a ranked clause (search_text, search_vector, or search_hybrid)";

/// One page of a ranked query and the cursor of the next (None at the end).
/// Only the page (plus one look-ahead row) is kept while scoring.
pub(crate) fn search_page(tables: &Tables, q: &Select) -> Result<(QueryOutput, Option<String>)> {
    let table = lookup(tables, &q.model)?;
    check_projection(&table.schema, &q.projection)?;
    let includes = include::resolve_all(tables, table, &q.include)?;
    let page = match q.page_size {
        Some(n) if n > 0 => to_usize(n),
        _ => return Err(Error::query("page_size must be a positive int")),
    };
    if !q.sort.is_empty() {
        return Err(Error::query(
            "search_pages orders by score and key; order_by cannot be combined with it",
        ));
    }
    let matcher = Matcher::new(table, &q.filters)?;
    let ranker = rank::prepare(table, q, &matcher)?
        .ok_or_else(|| Error::query(RANKED_REQUIRED))?
        .exact();
    let fingerprint = cursor::fingerprint(q);
    let after = q
        .cursor
        .as_ref()
        .map(|c| cursor::decode(c, &fingerprint))
        .transpose()?;
    let access_path = matcher.access_path();
    let deadline = Deadline::new(q.timeout_ms);
    let offset = if after.is_some() {
        0
    } else {
        to_usize(q.offset.unwrap_or(0))
    };
    let order = RankOrder {
        keys: &[],
        pk: table.pk.unwrap_or(0),
    };
    let mut out = Collector::new(order, Some(offset + page + 1), after.as_ref());
    ranker.collect(table, matcher, &mut out, &deadline)?;
    let (hits, skipped) = out.finish(&deadline)?;
    let first_rank = skipped;
    // The window bound (limit / top_k) counts from the query's offset.
    let end = ranker
        .limit(q)
        .map(|l| to_usize(q.offset.unwrap_or(0)).saturating_add(to_usize(l)));
    let in_window = |i: usize| end.is_none_or(|e| to_usize(first_rank) + i < e);
    let kept = hits.len().min(offset + page);
    let more = hits.len() > offset + page && in_window(offset + page);
    let mut rows: Vec<ResultRow> = ranked_rows(hits, offset, first_rank)
        .into_iter()
        .take(kept.saturating_sub(offset))
        .enumerate()
        .filter(|(i, _)| in_window(offset + i))
        .map(|(_, r)| r)
        .collect();
    let next = match rows.last() {
        Some(last) if more => {
            let score = last.scores.map_or(0.0, |s| s.score);
            Some(cursor::encode(score, &last.row[order.pk], &fingerprint))
        }
        _ => None,
    };
    include::attach(tables, table, &includes, &mut rows, &deadline)?;
    deadline.check()?;
    Ok((QueryOutput { rows, access_path }, next))
}

/// Unranked rows: primary-key order unless sorted, then the window.
fn ordered(
    matcher: Matcher<'_>,
    order: &[SortKey],
    window: Window,
    deadline: &Deadline,
) -> Result<Vec<ResultRow>> {
    if order.is_empty() {
        return first_rows(matcher, window, deadline);
    }
    let mut rows: Vec<(usize, &Row)> = matcher.collect(deadline)?.into_iter().enumerate().collect();
    // Position (primary-key order) breaks ties, which keeps the sort stable.
    sort::sort_prefix(&mut rows, window.keep(), deadline, |a, b| {
        sort::compare_rows(order, a.1, b.1).then(a.0.cmp(&b.0))
    })?;
    Ok(rows
        .into_iter()
        .skip(window.offset)
        .map(|(_, row)| ResultRow::plain(row.clone()))
        .collect())
}

/// Streams in primary-key order and stops as soon as the window is full.
fn first_rows(matcher: Matcher<'_>, window: Window, deadline: &Deadline) -> Result<Vec<ResultRow>> {
    let (mut skip, limit) = (window.offset, window.limit.unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(matcher.capacity_hint().saturating_sub(skip).min(limit));
    if limit == 0 {
        return Ok(out);
    }
    matcher.each(deadline, |row| {
        if skip > 0 {
            skip -= 1;
        } else {
            out.push(ResultRow::plain(row.clone()));
        }
        out.len() < limit
    })?;
    Ok(out)
}

pub(crate) fn count(tables: &Tables, q: &Filtered) -> Result<u64> {
    let table = lookup(tables, &q.model)?;
    let deadline = Deadline::new(q.timeout_ms);
    let mut n = 0u64;
    Matcher::new(table, &q.filters)?.each(&deadline, |_| {
        n += 1;
        true
    })?;
    Ok(n)
}

pub(crate) fn exists(tables: &Tables, q: &Filtered) -> Result<bool> {
    let table = lookup(tables, &q.model)?;
    let deadline = Deadline::new(q.timeout_ms);
    let mut found = false;
    Matcher::new(table, &q.filters)?.each(&deadline, |_| {
        found = true;
        false
    })?;
    Ok(found)
}

/// The access path a select would take (for `explain`).
pub(crate) fn plan(tables: &Tables, q: &Select) -> Result<(AccessPath, Option<serde_json::Value>)> {
    let table = lookup(tables, &q.model)?;
    let matcher = Matcher::new(table, &q.filters)?;
    let search = rank::prepare(table, q, &matcher)?.map(|r| r.describe(table));
    Ok((matcher.access_path(), search))
}

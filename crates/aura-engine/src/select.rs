//! The read pipeline: plan, filter, order (or rank), window, includes.

use aura_core::ir::{Expr, Filtered, Select};
use aura_core::{ModelSchema, Result, Row};

use crate::deadline::Deadline;
use crate::field_access::FieldAccess;
use crate::filter::{self, Predicate};
use crate::include;
use crate::output::{QueryOutput, ResultRow};
use crate::planner::{self, AccessPath};
use crate::rank::{self, vector::VectorQuery};
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
    rank::check_supported(q)?;
    check_projection(&table.schema, &q.projection)?;
    let includes = include::resolve_all(tables, table, &q.include)?;
    let order = sort::compile(&table.schema, &q.sort)?;
    let vector = q
        .vector
        .as_ref()
        .map(|clause| VectorQuery::prepare(&table.schema, clause))
        .transpose()?;
    let matcher = Matcher::new(table, &q.filters)?;
    let access_path = matcher.access_path();
    let deadline = Deadline::new(q.timeout_ms);
    let window = Window::new(q.offset, q.limit);
    let mut rows = match vector {
        Some(vq) => rank::vector::search(
            table,
            &vq,
            matcher.collect(&deadline)?,
            &order,
            window,
            &deadline,
        )?,
        None => ordered(matcher, &order, window, &deadline)?,
    };
    include::attach(tables, table, &includes, &mut rows, &deadline)?;
    deadline.check()?;
    Ok(QueryOutput { rows, access_path })
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
pub(crate) fn plan(tables: &Tables, q: &Select) -> Result<AccessPath> {
    let table = lookup(tables, &q.model)?;
    Ok(Matcher::new(table, &q.filters)?.access_path())
}

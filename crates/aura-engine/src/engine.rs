//! The engine handle: committed state behind one lock, snapshot transactions
//! with first-committer-wins commits (API.md §6, §16 rows 1-3).
//!
//! Reads clone the table map (O(1)) under the lock and run without it.
//! Autocommit writes run under the lock on a clone that replaces the
//! committed map on success. A transaction owns a private copy of the map
//! taken at `begin`; its commit replays only its write set.

use std::collections::HashMap;
use std::sync::Arc;

use aura_core::ir::{Filtered, Select, Traverse, Update, Upsert};
use aura_core::{Error, Key, ModelSchema, Result, Row};
use parking_lot::Mutex;

use crate::mutate::{self, OnConflict};
use crate::output::QueryOutput;
use crate::planner::AccessPath;
use crate::table::{lookup, Table, Tables};
use crate::write_log::WriteLog;
use crate::{aggregate, rank, raw, select, traverse};

pub type TxnId = u64;

/// State of one open transaction.
struct TxnState {
    tables: Tables,
    writes: WriteLog,
}

struct OpenTxn {
    start_ts: u64,
    state: Arc<Mutex<TxnState>>,
}

/// Committed state plus the transaction registry.
#[derive(Default)]
struct Shared {
    tables: Tables,
    commit_ts: u64,
    /// Commit timestamp of recently written keys, per table; kept only while
    /// some open transaction could conflict with them.
    last_write: HashMap<String, HashMap<Key, u64>>,
    open: HashMap<TxnId, OpenTxn>,
    next_txn: TxnId,
}

impl Shared {
    /// Installs a successful write and stamps its keys.
    fn publish(&mut self, tables: Tables, writes: &WriteLog) {
        self.tables = tables;
        self.commit_ts += 1;
        if self.open.is_empty() {
            return;
        }
        let ts = self.commit_ts;
        for (model, keys) in writes.tables() {
            let stamps = self.last_write.entry(model.clone()).or_default();
            stamps.extend(keys.iter().map(|k| (k.clone(), ts)));
        }
    }

    /// Forgets stamps no open transaction can conflict with.
    fn prune(&mut self) {
        match self.open.values().map(|t| t.start_ts).min() {
            None => self.last_write.clear(),
            Some(oldest) => {
                for stamps in self.last_write.values_mut() {
                    stamps.retain(|_, ts| *ts > oldest);
                }
                self.last_write.retain(|_, stamps| !stamps.is_empty());
            }
        }
    }

    fn conflict_check(&self, start_ts: u64, writes: &WriteLog) -> Result<()> {
        for (model, keys) in writes.tables() {
            let Some(stamps) = self.last_write.get(model) else {
                continue;
            };
            if keys
                .iter()
                .any(|k| stamps.get(k).is_some_and(|ts| *ts > start_ts))
            {
                return Err(conflict(model));
            }
        }
        Ok(())
    }
}

fn conflict(model: &str) -> Error {
    Error::conflict(format!(
        "transaction conflict: {model} was modified by a concurrent transaction; retry it"
    ))
    .with_context("model", model)
}

fn inactive(txn: TxnId) -> Error {
    Error::transaction(format!("transaction {txn} is not active"))
        .with_context("transaction_id", txn)
}

/// Replays a transaction's final rows for its written keys onto `tables`:
/// all removals first, then inserts (unique constraints re-checked against
/// the current state).
fn replay(tables: &mut Tables, txn: &TxnState) -> Result<()> {
    for (model, keys) in txn.writes.tables() {
        let source = lookup(&txn.tables, model)?;
        let target = tables
            .get_mut(model.as_str())
            .ok_or_else(|| conflict(model))?;
        if !Arc::ptr_eq(&target.schema, &source.schema) && target.schema != source.schema {
            return Err(conflict(model));
        }
        for key in keys {
            target.remove(key);
        }
        for key in keys {
            if let Some(row) = source.rows.get(key) {
                target.insert(row.clone(), key.clone())?;
            }
        }
    }
    Ok(())
}

fn check_schema(schema: &ModelSchema) -> Result<()> {
    if let Some(pk) = &schema.primary_key {
        if schema.field_index(pk).is_none() {
            return Err(Error::schema(format!(
                "{} primary key '{pk}' is not one of its fields",
                schema.name
            )));
        }
    }
    for (i, f) in schema.fields.iter().enumerate() {
        if schema.fields[..i].iter().any(|g| g.storage == f.storage) {
            return Err(Error::schema(format!(
                "{} declares field '{}' twice",
                schema.name, f.storage
            )));
        }
    }
    Ok(())
}

/// The in-memory engine. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct Engine {
    shared: Mutex<Shared>,
}

impl Engine {
    pub fn new() -> Self {
        Engine::default()
    }

    // ----- DDL (committed state only) -----------------------------------

    /// Creates a table. Idempotent; a different schema under the same name
    /// replaces the old one only while the table is empty.
    pub fn create_table(&self, schema: Arc<ModelSchema>) -> Result<()> {
        check_schema(&schema)?;
        let mut shared = self.shared.lock();
        if let Some(existing) = shared.tables.get(schema.name.as_str()) {
            if *existing.schema == *schema {
                return Ok(());
            }
            if !existing.rows.is_empty() {
                return Err(Error::schema(format!(
                    "{} already exists with a different schema and holds rows",
                    schema.name
                )));
            }
        }
        let name = schema.name.clone();
        shared.tables.insert(name, Table::new(schema));
        Ok(())
    }

    pub fn drop_table(&self, name: &str) -> Result<bool> {
        let mut shared = self.shared.lock();
        let dropped = shared.tables.remove(name).is_some();
        shared.last_write.remove(name);
        Ok(dropped)
    }

    pub fn schema(&self, name: &str) -> Option<Arc<ModelSchema>> {
        self.shared
            .lock()
            .tables
            .get(name)
            .map(|t| t.schema.clone())
    }

    /// Table names, sorted.
    pub fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.shared.lock().tables.keys().cloned().collect();
        names.sort();
        names
    }

    /// Number of committed rows of a table (`None` for an unknown table).
    pub fn row_count(&self, name: &str) -> Option<usize> {
        self.shared.lock().tables.get(name).map(|t| t.rows.len())
    }

    // ----- transactions ------------------------------------------------

    pub fn begin(&self) -> TxnId {
        let mut shared = self.shared.lock();
        shared.next_txn += 1;
        let id = shared.next_txn;
        let state = TxnState {
            tables: shared.tables.clone(),
            writes: WriteLog::new(true),
        };
        let start_ts = shared.commit_ts;
        shared.open.insert(
            id,
            OpenTxn {
                start_ts,
                state: Arc::new(Mutex::new(state)),
            },
        );
        id
    }

    /// First-committer-wins: a conflict fails with the retryable `conflict`
    /// code and applies nothing. The transaction ends either way.
    pub fn commit(&self, txn: TxnId) -> Result<()> {
        let mut shared = self.shared.lock();
        let open = shared.open.remove(&txn).ok_or_else(|| inactive(txn))?;
        let state = open.state.lock();
        let result = Self::apply_commit(&mut shared, open.start_ts, &state);
        shared.prune();
        result
    }

    fn apply_commit(shared: &mut Shared, start_ts: u64, txn: &TxnState) -> Result<()> {
        if txn.writes.is_empty() {
            return Ok(());
        }
        shared.conflict_check(start_ts, &txn.writes)?;
        let mut tables = shared.tables.clone();
        replay(&mut tables, txn)?;
        shared.publish(tables, &txn.writes);
        Ok(())
    }

    pub fn rollback(&self, txn: TxnId) -> Result<()> {
        let mut shared = self.shared.lock();
        shared.open.remove(&txn).ok_or_else(|| inactive(txn))?;
        shared.prune();
        Ok(())
    }

    /// True while `txn` is open.
    pub fn is_active(&self, txn: TxnId) -> bool {
        self.shared.lock().open.contains_key(&txn)
    }

    /// The transaction's state, with tables created after its `begin`
    /// adopted into its snapshot so it can use them.
    fn txn_state(&self, txn: TxnId) -> Result<Arc<Mutex<TxnState>>> {
        let (state, committed) = {
            let shared = self.shared.lock();
            let open = shared.open.get(&txn).ok_or_else(|| inactive(txn))?;
            (open.state.clone(), shared.tables.clone())
        };
        {
            let mut st = state.lock();
            for (name, table) in committed.iter() {
                if !st.tables.contains_key(name.as_str()) {
                    st.tables.insert(name.clone(), table.clone());
                }
            }
        }
        Ok(state)
    }

    // ----- execution plumbing -----------------------------------------

    fn read<T>(&self, txn: Option<TxnId>, run: impl FnOnce(&Tables) -> Result<T>) -> Result<T> {
        match txn {
            None => {
                let tables = self.shared.lock().tables.clone();
                run(&tables)
            }
            Some(id) => {
                // Reads work on an O(1) clone so they do not hold the
                // transaction's lock while they run.
                let tables = self.txn_state(id)?.lock().tables.clone();
                run(&tables)
            }
        }
    }

    fn write<T>(
        &self,
        txn: Option<TxnId>,
        run: impl FnOnce(&mut Tables, &mut WriteLog) -> Result<T>,
    ) -> Result<T> {
        match txn {
            None => {
                let mut shared = self.shared.lock();
                let mut log = WriteLog::new(!shared.open.is_empty());
                let mut tables = shared.tables.clone();
                let out = run(&mut tables, &mut log)?;
                shared.publish(tables, &log);
                Ok(out)
            }
            Some(id) => {
                let state = self.txn_state(id)?;
                let mut st = state.lock();
                let mut log = WriteLog::new(true);
                let mut tables = st.tables.clone();
                let out = run(&mut tables, &mut log)?;
                st.tables = tables;
                st.writes.merge(log);
                Ok(out)
            }
        }
    }

    // ----- statements --------------------------------------------------

    /// All-or-nothing; returns rows written (ignored duplicates not counted).
    pub fn insert(
        &self,
        txn: Option<TxnId>,
        model: &str,
        rows: Vec<Row>,
        on_conflict: OnConflict,
    ) -> Result<u64> {
        self.write(txn, |tables, log| {
            mutate::insert(tables, log, model, rows, on_conflict)
        })
    }

    pub fn select(&self, txn: Option<TxnId>, q: &Select) -> Result<QueryOutput> {
        self.ensure_ann(txn, q)?;
        self.read(txn, |tables| select::select(tables, q))
    }

    pub fn count(&self, txn: Option<TxnId>, q: &Filtered) -> Result<u64> {
        self.read(txn, |tables| select::count(tables, q))
    }

    pub fn exists(&self, txn: Option<TxnId>, q: &Filtered) -> Result<bool> {
        self.read(txn, |tables| select::exists(tables, q))
    }

    /// Returns the number of matched rows.
    pub fn update(&self, txn: Option<TxnId>, q: &Update) -> Result<u64> {
        self.write(txn, |tables, log| mutate::update(tables, log, q))
    }

    pub fn delete(&self, txn: Option<TxnId>, q: &Filtered) -> Result<u64> {
        self.write(txn, |tables, log| mutate::delete(tables, log, q))
    }

    /// Matching on all key fields updates with `values` and returns the
    /// stored row; otherwise inserts `insert_row` (built by the caller from
    /// key ∪ values with defaults) and returns it.
    pub fn upsert(
        &self,
        txn: Option<TxnId>,
        q: &Upsert,
        insert_row: Option<Row>,
    ) -> Result<Option<Row>> {
        self.write(txn, |tables, log| {
            mutate::upsert(tables, log, q, insert_row)
        })
    }

    /// Returns the final model's name and its rows.
    pub fn traverse(&self, txn: Option<TxnId>, q: &Traverse) -> Result<(String, Vec<Row>)> {
        self.read(txn, |tables| traverse::traverse(tables, q))
    }

    pub fn raw(
        &self,
        txn: Option<TxnId>,
        statement: &str,
        params: &serde_json::Value,
    ) -> Result<(String, Vec<Row>)> {
        self.read(txn, |tables| raw::raw(tables, statement, params))
    }

    /// The access path `select` would use (for `explain`).
    pub fn plan(&self, q: &Select) -> Result<AccessPath> {
        self.read(None, |tables| select::plan(tables, q).map(|p| p.0))
    }

    /// How a ranked query would rank: exact scan, HNSW or inverted index,
    /// with candidate counts (`None` for unranked queries).
    pub fn plan_search(&self, q: &Select) -> Result<Option<serde_json::Value>> {
        self.read(None, |tables| select::plan(tables, q).map(|p| p.1))
    }

    /// One page of a ranked query and the next page's cursor.
    pub fn search_page(
        &self,
        txn: Option<TxnId>,
        q: &Select,
    ) -> Result<(QueryOutput, Option<String>)> {
        self.read(txn, |tables| select::search_page(tables, q))
    }

    /// Facets and metrics as the `AggregateResult` dict of API.md §4.3.
    pub fn aggregate(&self, txn: Option<TxnId>, q: &Select) -> Result<serde_json::Value> {
        self.read(txn, |tables| aggregate::aggregate(tables, q))
    }

    /// Builds the HNSW graph an approximate query asks for, once: in the
    /// committed state (or the transaction's snapshot), under its lock.
    /// From then on every write keeps the graph up to date.
    fn ensure_ann(&self, txn: Option<TxnId>, q: &Select) -> Result<()> {
        if q.vector_ann.is_none() {
            return Ok(());
        }
        let build = |tables: &mut Tables| -> Result<()> {
            let Some((pos, params)) = rank::vector::ann_build(lookup(tables, &q.model)?, q)? else {
                return Ok(());
            };
            let table = lookup(tables, &q.model)?;
            let built = table
                .search
                .vector(pos)
                .is_none_or(|c| c.ann(params.metric).is_some());
            if !built {
                let table = crate::table::lookup_mut(tables, &q.model)?;
                if let Some((column, slots)) = table.search.vector_mut(pos) {
                    column.build_ann(params, slots);
                }
            }
            Ok(())
        };
        match txn {
            None => build(&mut self.shared.lock().tables),
            Some(id) => build(&mut self.txn_state(id)?.lock().tables),
        }
    }
}

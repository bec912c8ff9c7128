//! Differential test: random statement sequences, with up to two open
//! transactions, against a plain BTreeMap reference with the same snapshot
//! and first-committer-wins rules. Every result and the final state agree.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aura_engine::aura_core::ir::{CompareOp as Op, Expr, Select, Update};
use aura_engine::aura_core::{Error, ErrorCode, FieldKind, Value};
use aura_engine::{Engine, OnConflict, TxnId};
use common::*;
use proptest::prelude::*;
use serde_json::json;

/// `T(id pk, v int, u int? unique)`: id -> (v, u).
type State = BTreeMap<i64, (i64, Option<i64>)>;

#[derive(Debug, Clone, Copy)]
enum Filter {
    All,
    IdEq(i64),
    IdLt(i64),
    VEq(i64),
    UIsNull,
    UEq(i64),
    IdEqOrVEq(i64, i64),
}

impl Filter {
    fn matches(self, id: i64, v: i64, u: Option<i64>) -> bool {
        match self {
            Filter::All => true,
            Filter::IdEq(x) => id == x,
            Filter::IdLt(x) => id < x,
            Filter::VEq(x) => v == x,
            Filter::UIsNull => u.is_none(),
            Filter::UEq(x) => u == Some(x),
            Filter::IdEqOrVEq(a, b) => id == a || v == b,
        }
    }

    fn to_ir(self) -> Vec<Expr> {
        match self {
            Filter::All => vec![],
            Filter::IdEq(x) => vec![eq("T", "id", json!(x))],
            Filter::IdLt(x) => vec![cmp(Op::Lt, "T", "id", json!(x))],
            Filter::VEq(x) => vec![eq("T", "v", json!(x))],
            Filter::UIsNull => vec![cmp(Op::IsNull, "T", "u", json!(null))],
            Filter::UEq(x) => vec![eq("T", "u", json!(x))],
            Filter::IdEqOrVEq(a, b) => vec![Expr::or(vec![
                eq("T", "id", json!(a)),
                eq("T", "v", json!(b)),
            ])],
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Insert(Option<usize>, Vec<(i64, i64, Option<i64>)>, OnConflict),
    Update(
        Option<usize>,
        Filter,
        Option<i64>,
        Option<Option<i64>>,
        Option<i64>,
    ),
    Delete(Option<usize>, Filter),
    Select(Option<usize>, Filter, bool, Option<u64>),
    Count(Option<usize>, Filter),
    Begin(usize),
    Commit(usize),
    Rollback(usize),
}

/// What a step returned, comparable between engine and reference.
#[derive(Debug, PartialEq)]
enum Outcome {
    Skipped,
    Done,
    Number(u64),
    Rows(Vec<(i64, i64, Option<i64>)>),
    Failed(ErrorCode, String),
}

fn failed(e: Error) -> Outcome {
    Outcome::Failed(e.code, e.message)
}

// ---------------------------------------------------------------------------
// Reference model

struct RefTxn {
    start: u64,
    state: State,
    writes: BTreeSet<i64>,
}

#[derive(Default)]
struct Reference {
    committed: State,
    ts: u64,
    last_write: HashMap<i64, u64>,
    txns: [Option<RefTxn>; 2],
}

const DUP: &str = "T already has a row with this primary key";
const NOT_UNIQUE: &str = "T.u must be unique";

fn constraint(message: &str) -> Outcome {
    Outcome::Failed(ErrorCode::ConstraintViolation, message.to_owned())
}

fn unique_taken(state: &State, id: i64, u: Option<i64>) -> bool {
    u.is_some() && state.iter().any(|(k, (_, u2))| *k != id && *u2 == u)
}

/// One write statement on `state`; Err leaves the caller's state untouched.
fn ref_write(step: &Step, state: &mut State, keys: &mut BTreeSet<i64>) -> Result<u64, Outcome> {
    let mut next = state.clone();
    let n = match step {
        Step::Insert(_, rows, mode) => {
            let mut written = 0;
            for &(id, v, u) in rows {
                if next.contains_key(&id) {
                    match mode {
                        OnConflict::Error => return Err(constraint(DUP)),
                        OnConflict::Ignore => continue,
                        OnConflict::Replace => {
                            next.remove(&id);
                        }
                    }
                }
                if *mode == OnConflict::Ignore && unique_taken(&next, id, u) {
                    continue;
                }
                if unique_taken(&next, id, u) {
                    return Err(constraint(NOT_UNIQUE));
                }
                next.insert(id, (v, u));
                keys.insert(id);
                written += 1;
            }
            written
        }
        Step::Update(_, filter, set_v, set_u, set_id) => {
            let matched: Vec<(i64, (i64, Option<i64>))> = next
                .iter()
                .filter(|(id, (v, u))| filter.matches(**id, *v, *u))
                .map(|(id, r)| (*id, *r))
                .collect();
            for (id, _) in &matched {
                next.remove(id);
                keys.insert(*id);
            }
            for (id, (v, u)) in &matched {
                let (id, v, u) = (
                    set_id.unwrap_or(*id),
                    set_v.unwrap_or(*v),
                    set_u.unwrap_or(*u),
                );
                if next.contains_key(&id) {
                    return Err(constraint(DUP));
                }
                if unique_taken(&next, id, u) {
                    return Err(constraint(NOT_UNIQUE));
                }
                next.insert(id, (v, u));
                keys.insert(id);
            }
            matched.len() as u64
        }
        Step::Delete(_, filter) => {
            let doomed: Vec<i64> = next
                .iter()
                .filter(|(id, (v, u))| filter.matches(**id, *v, *u))
                .map(|(id, _)| *id)
                .collect();
            for id in &doomed {
                next.remove(id);
                keys.insert(*id);
            }
            doomed.len() as u64
        }
        _ => unreachable!("not a write"),
    };
    *state = next;
    Ok(n)
}

fn ref_read(step: &Step, state: &State) -> Outcome {
    match step {
        Step::Select(_, filter, by_v_desc, limit) => {
            let mut rows: Vec<(i64, i64, Option<i64>)> = state
                .iter()
                .filter(|(id, (v, u))| filter.matches(**id, *v, *u))
                .map(|(id, (v, u))| (*id, *v, *u))
                .collect();
            if *by_v_desc {
                rows.sort_by_key(|r| std::cmp::Reverse(r.1));
            }
            rows.truncate(limit.map_or(usize::MAX, |l| l as usize));
            Outcome::Rows(rows)
        }
        Step::Count(_, filter) => Outcome::Number(
            state
                .iter()
                .filter(|(id, (v, u))| filter.matches(**id, *v, *u))
                .count() as u64,
        ),
        _ => unreachable!("not a read"),
    }
}

impl Reference {
    fn any_open(&self) -> bool {
        self.txns.iter().any(Option::is_some)
    }

    fn prune(&mut self) {
        match self.txns.iter().flatten().map(|t| t.start).min() {
            None => self.last_write.clear(),
            Some(oldest) => self.last_write.retain(|_, ts| *ts > oldest),
        }
    }

    fn publish(&mut self, state: State, keys: &BTreeSet<i64>) {
        self.committed = state;
        self.ts += 1;
        if self.any_open() {
            for k in keys {
                self.last_write.insert(*k, self.ts);
            }
        }
    }

    fn commit(&mut self, txn: RefTxn) -> Outcome {
        let outcome = self.try_commit(&txn);
        self.prune();
        outcome
    }

    fn try_commit(&mut self, txn: &RefTxn) -> Outcome {
        if txn.writes.is_empty() {
            return Outcome::Done;
        }
        if txn
            .writes
            .iter()
            .any(|k| self.last_write.get(k).is_some_and(|ts| *ts > txn.start))
        {
            return Outcome::Failed(
                ErrorCode::Conflict,
                "transaction conflict: T was modified by a concurrent transaction; retry it".into(),
            );
        }
        let mut next = self.committed.clone();
        for k in &txn.writes {
            next.remove(k);
        }
        for k in &txn.writes {
            if let Some(&(v, u)) = txn.state.get(k) {
                if unique_taken(&next, *k, u) {
                    return constraint(NOT_UNIQUE);
                }
                next.insert(*k, (v, u));
            }
        }
        self.publish(next, &txn.writes);
        Outcome::Done
    }

    fn apply(&mut self, step: &Step) -> Outcome {
        match step {
            Step::Begin(slot) if self.txns[*slot].is_none() => {
                self.txns[*slot] = Some(RefTxn {
                    start: self.ts,
                    state: self.committed.clone(),
                    writes: BTreeSet::new(),
                });
                Outcome::Done
            }
            Step::Commit(slot) => match self.txns[*slot].take() {
                Some(txn) => self.commit(txn),
                None => Outcome::Skipped,
            },
            Step::Rollback(slot) => match self.txns[*slot].take() {
                Some(_) => {
                    self.prune();
                    Outcome::Done
                }
                None => Outcome::Skipped,
            },
            Step::Begin(_) => Outcome::Skipped,
            Step::Select(slot, ..) | Step::Count(slot, ..) => match slot {
                None => ref_read(step, &self.committed),
                Some(s) => match &self.txns[*s] {
                    Some(txn) => ref_read(step, &txn.state),
                    None => Outcome::Skipped,
                },
            },
            Step::Insert(slot, ..) | Step::Update(slot, ..) | Step::Delete(slot, ..) => {
                self.write(*slot, step)
            }
        }
    }

    fn write(&mut self, slot: Option<usize>, step: &Step) -> Outcome {
        let mut keys = BTreeSet::new();
        match slot {
            None => {
                let mut state = self.committed.clone();
                match ref_write(step, &mut state, &mut keys) {
                    Ok(n) => {
                        self.publish(state, &keys);
                        Outcome::Number(n)
                    }
                    Err(e) => e,
                }
            }
            Some(s) => match &mut self.txns[s] {
                Some(txn) => match ref_write(step, &mut txn.state, &mut keys) {
                    Ok(n) => {
                        txn.writes.extend(keys);
                        Outcome::Number(n)
                    }
                    Err(e) => e,
                },
                None => Outcome::Skipped,
            },
        }
    }
}

// ---------------------------------------------------------------------------
// Engine side

struct Harness {
    engine: Engine,
    slots: [Option<TxnId>; 2],
}

fn opt(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::Int)
}

fn decode(rows: &[aura_engine::ResultRow]) -> Vec<(i64, i64, Option<i64>)> {
    rows.iter()
        .map(|r| {
            let u = match &r.row[2] {
                Value::Null => None,
                v => Some(as_int(v)),
            };
            (as_int(&r.row[0]), as_int(&r.row[1]), u)
        })
        .collect()
}

impl Harness {
    fn new() -> Self {
        let engine = Engine::new();
        engine
            .create_table(schema(
                "T",
                Some("id"),
                vec![
                    field("id", FieldKind::Int),
                    field("v", FieldKind::Int),
                    field("u", FieldKind::Int).unique().nullable(),
                ],
            ))
            .unwrap();
        Harness {
            engine,
            slots: [None, None],
        }
    }

    /// The engine transaction for a slot; `Err` when the slot is empty.
    fn txn(&self, slot: Option<usize>) -> Result<Option<TxnId>, Outcome> {
        match slot {
            None => Ok(None),
            Some(s) => self.slots[s].map(Some).ok_or(Outcome::Skipped),
        }
    }

    fn apply(&mut self, step: &Step) -> Outcome {
        let result = match step {
            Step::Begin(s) if self.slots[*s].is_none() => {
                self.slots[*s] = Some(self.engine.begin());
                return Outcome::Done;
            }
            Step::Begin(_) => return Outcome::Skipped,
            Step::Commit(s) => match self.slots[*s].take() {
                Some(t) => self.engine.commit(t).map(|()| Outcome::Done),
                None => return Outcome::Skipped,
            },
            Step::Rollback(s) => match self.slots[*s].take() {
                Some(t) => self.engine.rollback(t).map(|()| Outcome::Done),
                None => return Outcome::Skipped,
            },
            _ => match self.statement(step) {
                Ok(r) => r,
                Err(skipped) => return skipped,
            },
        };
        result.unwrap_or_else(failed)
    }

    fn statement(&self, step: &Step) -> Result<aura_engine::aura_core::Result<Outcome>, Outcome> {
        let e = &self.engine;
        Ok(match step {
            Step::Insert(slot, rows, mode) => {
                let rows = rows
                    .iter()
                    .map(|(id, v, u)| row(vec![int(*id), int(*v), opt(*u)]))
                    .collect();
                e.insert(self.txn(*slot)?, "T", rows, *mode)
                    .map(Outcome::Number)
            }
            Step::Update(slot, filter, set_v, set_u, set_id) => {
                let mut set = serde_json::Map::new();
                set_v.map(|v| set.insert("v".into(), json!(v)));
                set_u.map(|u| set.insert("u".into(), json!(u)));
                set_id.map(|id| set.insert("id".into(), json!(id)));
                if set.is_empty() {
                    set.insert("v".into(), json!(0));
                }
                let q = Update {
                    model: "T".into(),
                    filters: filter.to_ir(),
                    set,
                };
                e.update(self.txn(*slot)?, &q).map(Outcome::Number)
            }
            Step::Delete(slot, filter) => e
                .delete(self.txn(*slot)?, &filtered("T", filter.to_ir()))
                .map(Outcome::Number),
            Step::Select(slot, filter, by_v_desc, limit) => {
                let q = Select {
                    sort: if *by_v_desc { vec![desc("v")] } else { vec![] },
                    limit: *limit,
                    ..query("T", filter.to_ir())
                };
                e.select(self.txn(*slot)?, &q)
                    .map(|out| Outcome::Rows(decode(&out.rows)))
            }
            Step::Count(slot, filter) => e
                .count(self.txn(*slot)?, &filtered("T", filter.to_ir()))
                .map(Outcome::Number),
            _ => unreachable!("handled by apply"),
        })
    }
}

// ---------------------------------------------------------------------------
// Strategies

fn slot() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![2 => Just(None), 1 => Just(Some(0)), 1 => Just(Some(1))]
}

fn filter() -> impl Strategy<Value = Filter> {
    prop_oneof![
        Just(Filter::All),
        (0..8i64).prop_map(Filter::IdEq),
        (0..8i64).prop_map(Filter::IdLt),
        (0..4i64).prop_map(Filter::VEq),
        Just(Filter::UIsNull),
        (0..3i64).prop_map(Filter::UEq),
        (0..8i64, 0..4i64).prop_map(|(a, b)| Filter::IdEqOrVEq(a, b)),
    ]
}

fn unique_value() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![2 => Just(None), 1 => (0..3i64).prop_map(Some)]
}

fn step() -> impl Strategy<Value = Step> {
    let mode = prop_oneof![
        Just(OnConflict::Error),
        Just(OnConflict::Ignore),
        Just(OnConflict::Replace)
    ];
    let rows = prop::collection::vec((0..8i64, 0..4i64, unique_value()), 1..4);
    prop_oneof![
        4 => (slot(), rows, mode).prop_map(|(s, r, m)| Step::Insert(s, r, m)),
        3 => (slot(), filter(), prop::option::of(0..4i64), prop::option::of(unique_value()), prop::option::weighted(0.2, 0..8i64))
            .prop_map(|(s, f, v, u, id)| Step::Update(s, f, v, u, id)),
        2 => (slot(), filter()).prop_map(|(s, f)| Step::Delete(s, f)),
        2 => (slot(), filter(), any::<bool>(), prop::option::of(0..5u64)).prop_map(|(s, f, o, l)| Step::Select(s, f, o, l)),
        1 => (slot(), filter()).prop_map(|(s, f)| Step::Count(s, f)),
        2 => (0..2usize).prop_map(Step::Begin),
        2 => (0..2usize).prop_map(Step::Commit),
        1 => (0..2usize).prop_map(Step::Rollback),
    ]
}

/// An update with no assignment sets `v = 0` on both sides.
fn normalize(step: Step) -> Step {
    match step {
        Step::Update(s, f, None, None, None) => Step::Update(s, f, Some(0), None, None),
        other => other,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_reference(steps in prop::collection::vec(step().prop_map(normalize), 1..60)) {
        let mut engine = Harness::new();
        let mut reference = Reference::default();
        for (i, step) in steps.iter().enumerate() {
            let got = engine.apply(step);
            let want = reference.apply(step);
            prop_assert_eq!(&got, &want, "step {} {:?}", i, step);
        }
        let everything = Step::Select(None, Filter::All, false, None);
        prop_assert_eq!(engine.apply(&everything), reference.apply(&everything));
    }
}

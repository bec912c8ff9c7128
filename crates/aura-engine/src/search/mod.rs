//! Per-table search structures, part of every snapshot like the row map:
//! a slot per stored row version, contiguous f32 columns for vector fields
//! (with optional HNSW graphs), and BM25 inverted indexes for `full_text`
//! string fields. All are kept up to date by `Table::insert`/`remove`.
//!
//! Slots are append-only: an update is a removal (the old slot dies) plus an
//! insertion (a new slot), so HNSW node ids and postings never move.

pub(crate) mod chunked;
pub(crate) mod hnsw;
pub(crate) mod kernels;
pub(crate) mod postings;
pub(crate) mod term_table;
pub(crate) mod text_index;
pub(crate) mod tokenize;

use std::sync::Arc;

use aura_core::{FieldKind, Key, ModelSchema, Row, Value};
use imbl::OrdMap;

use chunked::Chunked;
use hnsw::{Hnsw, HnswParams};
pub(crate) use text_index::TextIndex;

/// Marks a slot whose row has no usable vector.
pub const ABSENT: f32 = -1.0;

/// Row versions by slot, and the live slot of each primary key.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    of: OrdMap<Key, u32>,
    rows: Chunked<Option<Row>>,
}

impl Slots {
    fn new() -> Self {
        Slots {
            of: OrdMap::new(),
            rows: Chunked::new(1),
        }
    }

    /// The live row of `slot`, if any.
    #[inline]
    pub fn row(&self, slot: usize) -> Option<&Row> {
        self.rows.get(slot)[0].as_ref()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn live(&self) -> usize {
        self.of.len()
    }
}

/// One vector field stored as contiguous f32 records.
#[derive(Debug, Clone)]
pub(crate) struct VectorColumn {
    pub pos: usize,
    pub dim: usize,
    pub data: Chunked<f32>,
    /// Norm of each record; `ABSENT` when the row has no vector.
    pub norms: Chunked<f32>,
    /// HNSW graphs built on demand, one per metric; maintained on writes.
    pub anns: Vec<Arc<Hnsw>>,
}

impl VectorColumn {
    fn new(pos: usize, dim: usize) -> Self {
        VectorColumn {
            pos,
            dim,
            data: Chunked::new(dim),
            norms: Chunked::new(1),
            anns: Vec::new(),
        }
    }

    /// The f32 record of a row's vector, if it has one of this dimension.
    pub fn record_of(&self, row: &[Value]) -> Option<Vec<f32>> {
        match row.get(self.pos) {
            Some(Value::Vector(v)) if v.len() == self.dim => {
                Some(v.iter().map(|x| *x as f32).collect())
            }
            _ => None,
        }
    }

    fn push(&mut self, row: &[Value]) {
        let record = self.record_of(row);
        let slot = match &record {
            Some(r) => {
                self.norms.push(&[kernels::norm(r)]);
                self.data.push(r)
            }
            None => {
                self.norms.push(&[ABSENT]);
                self.data.push(&[])
            }
        };
        if record.is_some() {
            for ann in &mut self.anns {
                Arc::make_mut(ann).insert(slot, &self.data, &self.norms);
            }
        }
    }

    pub fn is_present(&self, slot: usize) -> bool {
        self.norms.get(slot)[0] != ABSENT
    }

    /// The graph for `metric`, if one was built.
    pub fn ann(&self, metric: hnsw::Metric) -> Option<&Arc<Hnsw>> {
        self.anns.iter().find(|a| a.params().metric == metric)
    }

    /// Builds the HNSW graph for `params.metric` over every live vector.
    pub fn build_ann(&mut self, params: HnswParams, slots: &Slots) {
        if self.ann(params.metric).is_some() {
            return;
        }
        let mut graph = Hnsw::new(params);
        for slot in 0..self.data.len() {
            if slots.row(slot).is_some() && self.is_present(slot) {
                graph.insert(slot, &self.data, &self.norms);
            }
        }
        self.anns.push(Arc::new(graph));
    }
}

/// Everything search keeps for one table.
#[derive(Debug, Clone)]
pub(crate) struct SearchState {
    pub slots: Slots,
    pub vectors: Vec<VectorColumn>,
    pub texts: Vec<TextIndex>,
}

impl SearchState {
    pub fn new(schema: &ModelSchema) -> Self {
        let mut vectors = Vec::new();
        let mut texts = Vec::new();
        for (pos, f) in schema.fields.iter().enumerate() {
            match (f.kind, f.vector_dim) {
                (FieldKind::Vector, Some(dim)) => vectors.push(VectorColumn::new(pos, dim)),
                (FieldKind::Str, _) if f.full_text => texts.push(TextIndex::new(pos)),
                _ => {}
            }
        }
        SearchState {
            slots: Slots::new(),
            vectors,
            texts,
        }
    }

    fn enabled(&self) -> bool {
        !self.vectors.is_empty() || !self.texts.is_empty()
    }

    pub fn insert(&mut self, row: &Row, pk: &Key) {
        if !self.enabled() {
            return;
        }
        let slot = self.slots.rows.push(&[Some(row.clone())]) as u32;
        self.slots.of.insert(pk.clone(), slot);
        for col in &mut self.vectors {
            col.push(row);
        }
        for text in &mut self.texts {
            text.push(slot, row);
        }
    }

    pub fn remove(&mut self, pk: &Key, row: &Row) {
        let Some(slot) = self.slots.of.remove(pk) else {
            return;
        };
        self.slots.rows.get_mut(slot as usize)[0] = None;
        for text in &mut self.texts {
            text.remove(slot, row);
        }
    }

    pub fn vector(&self, pos: usize) -> Option<&VectorColumn> {
        self.vectors.iter().find(|c| c.pos == pos)
    }

    pub fn vector_mut(&mut self, pos: usize) -> Option<(&mut VectorColumn, &Slots)> {
        let slots = &self.slots;
        self.vectors
            .iter_mut()
            .find(|c| c.pos == pos)
            .map(|c| (c, slots))
    }

    pub fn text(&self, pos: usize) -> Option<&TextIndex> {
        self.texts.iter().find(|t| t.pos == pos)
    }
}

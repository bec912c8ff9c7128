//! AWP 1, the AuraDB wire protocol (spec/AWP1.md).
//!
//! * [`frame`]: the byte-level codec (44-byte header, CRCs, limits).

pub mod frame;

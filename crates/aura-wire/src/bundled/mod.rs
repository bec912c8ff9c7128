//! The bundled reference protocol of API.md §14 (`aura://`, `aura+tcp://`,
//! `auras://`): a binary framed protocol distinct from AWP 1, whose bodies
//! carry the Query IR itself.
//!
//! * [`frame`]: the 32-byte-header codec (CRCs, zlib, fail-closed decoding);
//! * [`rows`]: positional rows, scores and includes in result bodies;
//! * [`server`]: a server over the in-memory engine;
//! * [`client`]: a multiplexed client (responses matched by request id).

pub mod client;
pub mod frame;
pub mod rows;
pub mod server;

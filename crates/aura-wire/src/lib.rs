//! AWP 1, the AuraDB wire protocol (spec/AWP1.md).
//!
//! * [`frame`]: the byte-level codec (44-byte header, CRCs, limits);
//! * [`io`]: whole frames on async streams;
//! * [`awp`]: the one translation between the Query IR and AWP's JSON;
//! * [`server`]: an AWP 1 server over the in-memory engine (`aura serve`);
//! * [`client`]: a multiplexing AWP 1 client (TCP or TLS, token auth),
//!   on the connection core it shares with the bundled client (`mux`);
//! * [`auth`], [`tls`]: token verifier, rustls configurations.

pub mod auth;
pub mod awp;
pub mod bundled;
pub mod client;
pub mod frame;
pub mod io;
pub mod listener;
pub(crate) mod mux;
pub mod server;
pub mod tls;
pub mod typed;

//! `aura._core`: the PyO3 bindings of aura-connector. This crate only adapts:
//! conversions (convert.rs), model plans (plan.rs), row hydration (rows.rs),
//! the one error mapping (errors.rs) and one module per backend.

mod auradb;
mod bridge;
mod builder_fast;
mod bundled;
mod convert;
mod errors;
mod ir_de;
mod ir_fast;
mod memory;
mod metrics;
#[cfg(feature = "mongodb")]
mod mongo;
mod native;
mod plan;
#[cfg(feature = "redis")]
mod redis_kv;
mod remote;
mod rows;
mod server;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod sql_pool;
mod sqlite;

use pyo3::prelude::*;

/// mimalloc (`aura-alloc` says why and how it is called).
#[global_allocator]
static GLOBAL: aura_alloc::MiMalloc = aura_alloc::MiMalloc;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<plan::ModelPlan>()?;
    m.add_class::<rows::NativeF64s>()?;
    m.add_class::<metrics::Metrics>()?;
    m.add_function(wrap_pyfunction!(builder_fast::builder_step, m)?)?;
    m.add_function(wrap_pyfunction!(builder_fast::builder_search_text, m)?)?;
    m.add_function(wrap_pyfunction!(ir_fast::ir_parse_paths, m)?)?;
    m.add_function(wrap_pyfunction!(ir_fast::node_parse_paths, m)?)?;
    m.add_class::<metrics::LatencyHistogram>()?;
    m.add_class::<memory::MemoryEngine>()?;
    m.add_class::<memory::MemoryConnection>()?;
    m.add_class::<memory::MemoryCursor>()?;
    m.add_class::<auradb::AuraDbConnection>()?;
    m.add_class::<auradb::AuraDbCursor>()?;
    m.add_class::<bundled::BundledConnection>()?;
    m.add_class::<bundled::BundledCursor>()?;
    m.add_function(wrap_pyfunction!(bundled::bundled_encode_frame, m)?)?;
    m.add_function(wrap_pyfunction!(bundled::bundled_decode_frame, m)?)?;
    m.add_class::<server::AwpServer>()?;
    #[cfg(feature = "mongodb")]
    {
        m.add_class::<mongo::MongoConnection>()?;
        m.add_class::<mongo::MongoCursor>()?;
    }
    #[cfg(feature = "redis")]
    m.add_class::<redis_kv::RedisConnection>()?;
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    {
        m.add_class::<sql_pool::SqlPoolConnection>()?;
        m.add_class::<sql_pool::SqlPoolTxn>()?;
        m.add_class::<sql_pool::SqlPoolCursor>()?;
    }
    #[cfg(feature = "postgres")]
    m.add_function(wrap_pyfunction!(sql_pool::postgres_connection, m)?)?;
    #[cfg(feature = "mysql")]
    m.add_function(wrap_pyfunction!(sql_pool::mysql_connection, m)?)?;
    m.add_class::<sqlite::SqliteConnection>()?;
    m.add_class::<sqlite::SqliteTxn>()?;
    m.add_class::<sqlite::SqliteCursor>()?;
    m.add_function(wrap_pyfunction!(native::native_crc32, m)?)?;
    m.add_function(wrap_pyfunction!(native::native_validate_vector, m)?)?;
    m.add_function(wrap_pyfunction!(native::native_finite_floats, m)?)?;
    m.add_function(wrap_pyfunction!(native::native_pack_f32_vector, m)?)?;
    m.add_function(wrap_pyfunction!(native::native_unpack_f32_vector, m)?)?;
    m.add_function(wrap_pyfunction!(native::backend_name, m)?)?;
    Ok(())
}

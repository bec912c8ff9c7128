//! `aura._core`: the PyO3 bindings of aura-connector. This crate only adapts:
//! conversions (convert.rs), model plans (plan.rs), row hydration (rows.rs),
//! the one error mapping (errors.rs) and one module per backend.

mod convert;
mod errors;
mod memory;
mod native;
mod plan;
mod rows;
mod sqlite;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<plan::ModelPlan>()?;
    m.add_class::<memory::MemoryEngine>()?;
    m.add_class::<memory::MemoryConnection>()?;
    m.add_class::<memory::MemoryCursor>()?;
    m.add_class::<sqlite::SqliteConnection>()?;
    m.add_class::<sqlite::SqliteTxn>()?;
    m.add_class::<sqlite::SqliteCursor>()?;
    m.add_function(wrap_pyfunction!(native::native_crc32, m)?)?;
    m.add_function(wrap_pyfunction!(native::native_validate_vector, m)?)?;
    m.add_function(wrap_pyfunction!(native::native_pack_f32_vector, m)?)?;
    m.add_function(wrap_pyfunction!(native::native_unpack_f32_vector, m)?)?;
    m.add_function(wrap_pyfunction!(native::backend_name, m)?)?;
    Ok(())
}

//! Small shared leaves that many modules use: they import nothing from the rest of the crate.

pub mod cache;
pub mod telemetry;
pub mod workers;

//! Small shared leaves that many modules use: they import nothing from the rest of the crate.

pub mod cache;
pub mod clock;
pub mod ids;
pub mod limits;
pub mod netguard;
pub mod query;
pub mod secret;
pub mod telemetry;
pub mod workers;
pub mod zip;

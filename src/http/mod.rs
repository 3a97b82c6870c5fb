//! HTTP: the listener and connections (`server`), routes (`router`) and response building
//! (`response`). Invariant: only `http::*` builds a `Response`.

pub mod response;
pub mod router;
pub mod server;

//! HTTP plumbing, knowing no route and no domain type: connections (`server`, which calls a
//! `Handler`), what a request says about its client (`request`), and response building
//! (`response`). Invariant: only `http::*` builds a `Response`.

pub mod request;
pub mod response;
pub mod server;

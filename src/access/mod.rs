//! Who may do what: API keys and scopes (`auth`), rate limits (`ratelimit`), and which stored
//! objects are private or expiring (`visibility`). Used by both planes; knows no HTTP.

pub mod accounts;
pub mod auth;
pub mod ratelimit;
pub mod visibility;

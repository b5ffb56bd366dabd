//! Staff authentication: argon2id password hashes and opaque, hashed session tokens.

pub mod password;
pub mod throttle;
pub mod token;

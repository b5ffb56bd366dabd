//! Webhook delivery figures (filled in below).
fn main() {}

//! entra-mfa-exporter binary.
fn main() {}

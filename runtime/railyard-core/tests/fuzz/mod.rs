//! What every fuzz harness shares (core and connectors; the connectors' harnesses include this
//! file by path).

use proptest::prelude::ProptestConfig;

/// `default` cases, so `cargo test` stays quick, or `PROPTEST_CASES` (`benches/fuzz/run.sh`);
/// failures are printed with their minimal input, not written to regression files.
pub fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

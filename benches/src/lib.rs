//! Shared fixtures for the benchmarks in `benches/`.

pub mod fixtures;

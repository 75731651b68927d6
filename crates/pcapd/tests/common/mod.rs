//! Helpers shared by the integration tests and the benchmark generator.

pub mod synth;

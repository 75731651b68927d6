//! Helpers shared by the integration tests and the benchmark generator.

pub mod hostile;
pub mod live;
pub mod synth;

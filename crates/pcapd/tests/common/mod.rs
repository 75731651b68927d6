//! Helpers shared by pcapd's integration tests (generated traffic is `testbed::synth`).

pub mod hostile;
pub mod live;
pub mod reorder;

//! End-to-end tests live in `tests/*.rs` files declared below; this library is empty.

//! Meaning and per-flow state over the [`wire`] views.
//!
//! - [`decode`]: one captured packet → [`Decoded`], every layer as far as it goes, with the
//!   first failure as a [`DecodeError`] `{layer, kind, offset}` and snaplen truncation told
//!   apart from malformed lengths.
//! - [`flow`]: direction-independent flow keys and 64-bit flow ids (FNV-1a over the real,
//!   ordered 5-tuple — no sums, so 1000→80 and 999→81 differ), and the daemon's
//!   [`flow::shard_key`].
//! - [`community_id`]: Community ID v1 (Corelight spec), for joining with Zeek, Suricata,
//!   Wireshark, Elastic.
//! - [`table`]: the bounded flow table (cap + idle eviction, by packet time) and
//!   [`table::FlowState`], the per-connection state (TCP handshake facts, window scale,
//!   FIN/RST, the L7 state and the HTTP/1.x and HTTP/2 connection states).
//! - [`l7`]: the application-layer dispatch point: DNS, HTTP/1.x, HTTP/2, TLS, or an
//!   opaque payload.
//! - [`reassembly`]: each TCP direction as an in-order byte stream for the HTTP parsers
//!   (retransmissions not parsed twice, out-of-order segments held within a budget, gaps
//!   that never fill skipped and reported).
//! - [`http1`]: HTTP/1.x messages with bounded per-connection state (header-block
//!   reassembly, body continuations, request/response pairing) and trace-context parsing.
//! - [`http2`]: HTTP/2 over cleartext TCP (h2c): frames, per-stream pairing, gRPC status,
//!   RST_STREAM/GOAWAY codes, with bounded per-connection state; [`hpack`] decodes its
//!   header blocks (per connection and direction, tolerant of a capture that starts
//!   mid-connection).
//! - [`services`]: IANA service names of well-known ports.

// Untrusted bytes: besides the workspace's lints (no unwrap, expect or panic), no indexing
// that could panic. Tests index freely.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod community_id;
pub mod decode;
pub mod flow;
pub mod hpack;
pub mod http1;
pub mod http2;
pub mod l7;
pub mod reassembly;
pub mod services;
pub mod table;
pub mod tcp_analysis;

pub use decode::{decode, DecodeError, Decoded, Layer, Link, Network, Transport};
pub use flow::{FlowKey, Side};
pub use table::{FlowState, FlowTable};

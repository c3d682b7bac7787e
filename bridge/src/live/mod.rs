//! Live rooms into LL-HLS: one [`RoomBridge`] per live stream, run by [`Bridges`].
//!
//! A stream that goes live gets a room tap (the SFU's in-process subscriber), a preroll that
//! waits for the source to settle, a transcoder ([`crate::transcode`]) on the ladder chosen
//! for its size, the slate in front of its renditions for when the publisher is away, and
//! the origin's renditions behind that. The stream ending stops it all and finalises the
//! VOD. `docs/bridge.md` has the diagram.

mod bridges;
mod exposition;
mod health;
mod room_bridge;
mod settings;

pub use bridges::Bridges;
pub use exposition::BridgeMetrics;
pub use health::{BridgeHealth, BridgeState, BridgeStats};
pub use room_bridge::{OpenStream, PacketSource, RoomBridge, SourceVideo};
pub use settings::{BridgeConfig, DEFAULT_LADDER, StreamSettings};

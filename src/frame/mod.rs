//! The wire format (RFC 6455 §5): usable on its own, without a
//! [`Connection`](crate::Connection).
//!
//! * [`FrameHeader`]: parse and encode headers (7/16/64-bit lengths, FIN, RSV,
//!   opcode, masking key).
//! * [`FrameDecoder`]: incremental decoding with role and size rules,
//!   zero-copy payloads.
//! * [`encode_frame`]: write a whole frame.
//! * [`CloseCode`], [`CloseFrame`]: the close payload.

mod close;
mod decoder;
mod encoder;
mod header;
mod opcode;

pub use close::{CloseCode, CloseFrame};
pub use decoder::{Frame, FrameDecoder};
pub use encoder::encode_frame;
pub use header::FrameHeader;
pub use opcode::OpCode;

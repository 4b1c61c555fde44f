//! The local fleet: the pieces the `local` target starts and steers in-process.
//!
//! - [`router`]: the ALB-like reverse proxy in front of the runtime replicas.

pub mod router;

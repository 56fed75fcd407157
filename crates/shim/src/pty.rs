//! Terminal helpers for berthd, which denies `unsafe` and so cannot issue the ioctls itself.
//! The implementation lives in the shim's `server::tty` module (one of the few allowed
//! `unsafe`); this is its safe public face.

pub use crate::server::tty::resize;

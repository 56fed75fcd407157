//! Pod networking: CNI network configuration (spec 1.0) and its readiness.
//!
//! Plugin invocation (ADD/DEL with rollback) and namespace pinning build on this module.

#![deny(unsafe_code)]

pub mod cni;

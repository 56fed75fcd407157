//! Pod networking: the pod's pinned namespaces ([`ns`]) and CNI (spec 1.0) network
//! configuration, readiness and plugin execution ([`cni`]).

#![deny(unsafe_code)]

pub mod cni;
pub mod ns;

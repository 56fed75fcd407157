//! CNI (spec 1.0) for berth: which network is used and whether it is usable
//! (`conf`, `readiness`), and attaching pods to it by executing plugins (`exec`, with
//! `invoke` for one plugin run, `plugin_input` for what plugins read, `cache` for what
//! teardown needs, `result` for the pod's IPs).
//!
//! Host setup: none beyond the plugins. With the built-in network the `bridge` plugin
//! (`isGateway`) turns on `net.ipv4.ip_forward`, and `portmap` (SNAT on, the default)
//! sets `route_localnet=1` on the bridge itself, so host ports also answer on
//! `127.0.0.1`. Both need a working `iptables` (legacy or nft backend).

mod cache;
mod conf;
mod error;
mod exec;
mod invoke;
mod plugin_input;
mod pod_cidr;
mod readiness;
mod result;

#[cfg(test)]
mod root_tests;
#[cfg(test)]
mod tests;

pub use conf::{load_network, NetworkConfigList, NetworkSource, BUILT_IN_NETWORK};
pub use error::CniError;
pub use exec::{Attachment, Cni, NetworkStatus, DEFAULT_PLUGIN_TIMEOUT};
pub use invoke::CniCommand;
pub use plugin_input::{PortMapping, Protocol};
pub use pod_cidr::PodCidr;
pub use readiness::{network_readiness, Readiness};

//! CNI network configuration: which network berth uses, and whether it is usable.

mod conf;
mod readiness;

pub use conf::{load_network, CniError, NetworkConfigList, NetworkSource, BUILT_IN_NETWORK};
pub use readiness::{network_readiness, Readiness};

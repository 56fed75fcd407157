//! The node's pod CIDRs (kubelet's `UpdateRuntimeConfig`), and the built-in network's address
//! ranges that follow them: one host-local range per CIDR (IPv4 and IPv6 for a dual-stack
//! node) with a default route per family, on a bridge named after the CIDRs
//! (`berth-<8 hex digits>`): the bridge plugin will not give a bridge that already has a
//! gateway address a second one, and pods attached before keep their bridge. Without pod
//! CIDRs the built-in network keeps `berth0` on 10.88.0.0/16. A network configuration file
//! in the configuration directory is used as it is: it has its own ranges.

use std::net::IpAddr;

use serde_json::{json, Value};

use super::conf::NetworkConfigList;

/// One pod CIDR, checked: an address and a prefix length that fits its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCidr {
    addr: IpAddr,
    prefix: u8,
}

impl PodCidr {
    /// Parses `a.b.c.d/n` or `x::y/n`; `Err` says what is wrong.
    pub fn parse(text: &str) -> Result<PodCidr, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a CIDR (address/prefix)"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?}: {addr:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?;
        Ok(PodCidr { addr, prefix })
    }

    /// Parses kubelet's comma-separated list (`"10.244.1.0/24,fd00:1::/64"`); empty is none.
    pub fn parse_list(text: &str) -> Result<Vec<PodCidr>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PodCidr::parse)
            .collect()
    }

    /// Kubelet's comma-separated form of `cidrs` (what [`PodCidr::parse_list`] reads).
    pub fn format_list(cidrs: &[PodCidr]) -> String {
        cidrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }
}

impl std::fmt::Display for PodCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Gives the built-in network's bridge plugin the ranges and routes of `cidrs` (nothing
/// changes when `cidrs` is empty).
pub(crate) fn apply(list: &mut NetworkConfigList, cidrs: &[PodCidr]) {
    if cidrs.is_empty() {
        return;
    }
    let ranges: Vec<Value> = cidrs
        .iter()
        .map(|c| json!([{ "subnet": c.to_string() }]))
        .collect();
    let mut routes = Vec::new();
    if cidrs.iter().any(PodCidr::is_ipv4) {
        routes.push(json!({ "dst": "0.0.0.0/0" }));
    }
    if cidrs.iter().any(|c| !c.is_ipv4()) {
        routes.push(json!({ "dst": "::/0" }));
    }
    let bridge = bridge_name(cidrs);
    for plugin in &mut list.plugins {
        if plugin.get("bridge").is_some() {
            plugin["bridge"] = json!(bridge);
        }
        if let Some(ipam) = plugin.get_mut("ipam") {
            ipam["ranges"] = Value::Array(ranges.clone());
            ipam["routes"] = Value::Array(routes.clone());
        }
    }
}

/// `berth-` and the 32-bit FNV-1a hash of the CIDRs in hex: stable for the same CIDRs, 14
/// bytes (interface names take 15).
fn bridge_name(cidrs: &[PodCidr]) -> String {
    let hash = PodCidr::format_list(cidrs)
        .bytes()
        .fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
    format!("berth-{hash:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubelets_lists() {
        let list = PodCidr::parse_list("10.244.1.0/24, fd00:10:244:1::/64").unwrap();
        assert_eq!(
            list.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["10.244.1.0/24", "fd00:10:244:1::/64"]
        );
        assert!(PodCidr::parse_list("").unwrap().is_empty());
        for bad in [
            "10.244.1.0",
            "10.244.1.0/33",
            "fd00::/129",
            "x/8",
            "10.0.0.0/-1",
        ] {
            assert!(PodCidr::parse(bad).is_err(), "{bad}");
        }
        assert!(PodCidr::parse_list("10.0.0.0/8,nonsense").is_err());
    }

    #[test]
    fn bridge_names_are_stable_and_short() {
        let a = PodCidr::parse_list("10.244.1.0/24").unwrap();
        let b = PodCidr::parse_list("10.244.2.0/24").unwrap();
        assert_eq!(bridge_name(&a), bridge_name(&a.clone()));
        assert_ne!(bridge_name(&a), bridge_name(&b));
        assert_eq!(bridge_name(&a).len(), 14);
        // FNV-1a of "" is its offset basis.
        assert_eq!(bridge_name(&[]), "berth-811c9dc5");
    }
}

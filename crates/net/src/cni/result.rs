//! Reading the pod's addresses from a CNI result (spec 0.3.0 and later: `ips[].address`
//! in CIDR notation).

use std::net::IpAddr;

use serde_json::Value;

use super::error::CniError;

/// The result's IPs, IPv4 before IPv6, otherwise in result order (the first is the
/// pod's primary IP).
pub(crate) fn result_ips(network: &str, result: &Value) -> Result<Vec<IpAddr>, CniError> {
    let invalid = |reason, value: &Value| CniError::ResultInvalid {
        network: network.to_owned(),
        reason,
        value: value.to_string(),
    };
    let ips = match result.get("ips") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(ips)) => ips,
        Some(other) => return Err(invalid("`ips` is not an array", other)),
    };
    let mut parsed = Vec::with_capacity(ips.len());
    for ip in ips {
        let address = ip
            .get("address")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("an `ips` entry has no string `address`", ip))?;
        let (addr, prefix) = address
            .split_once('/')
            .ok_or_else(|| invalid("an address is not in CIDR notation", ip))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| invalid("an address is not an IP address", ip))?;
        let max_prefix = if addr.is_ipv4() { 32 } else { 128 };
        if !prefix.parse::<u8>().is_ok_and(|p| p <= max_prefix) {
            return Err(invalid("an address has an invalid prefix length", ip));
        }
        parsed.push(addr);
    }
    parsed.sort_by_key(|addr| addr.is_ipv6());
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ipv4_first_then_result_order() {
        let result = json!({"ips": [
            {"address": "fd00::5/64"},
            {"address": "10.1.0.5/16", "gateway": "10.1.0.1"},
            {"address": "10.2.0.5/24"},
        ]});
        let ips = result_ips("n", &result).unwrap();
        let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
        assert_eq!(ips, ["10.1.0.5", "10.2.0.5", "fd00::5"]);
        assert!(result_ips("n", &json!({})).unwrap().is_empty());
    }

    #[test]
    fn malformed_addresses_are_errors() {
        for bad in [
            json!({"ips": {}}),
            json!({"ips": [{"address": "10.0.0.1"}]}),
            json!({"ips": [{"address": "nope/24"}]}),
            json!({"ips": [{"address": "10.0.0.1/33"}]}),
            json!({"ips": [{}]}),
        ] {
            assert!(
                matches!(result_ips("n", &bad), Err(CniError::ResultInvalid { .. })),
                "{bad}"
            );
        }
    }
}

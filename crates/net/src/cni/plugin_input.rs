//! What each plugin reads on stdin: its own configuration from the list, with the
//! network's `name` and `cniVersion`, the previous plugin's result as `prevResult`, and
//! `runtimeConfig` entries for the capabilities it declares (spec 1.0, "Section 3:
//! Execution of Network Configurations" and the capability-arguments convention).

use serde::Serialize;
use serde_json::{Map, Value};

use super::conf::NetworkConfigList;

/// The plugin berth runs for each pod's `lo`, with its own tiny configuration.
pub(crate) const LOOPBACK_PLUGIN: &str = "loopback";

/// Layer-4 protocol of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP
    Tcp,
    /// UDP
    Udp,
    /// SCTP
    Sctp,
}

/// A host port forwarded to the pod, as the `portMappings` capability carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// Port on the host (0: not forwarded, skipped).
    pub host_port: u16,
    /// Port in the pod.
    pub container_port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// Host address to bind (empty: all addresses).
    pub host_ip: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PortMappingJson<'a> {
    host_port: u16,
    container_port: u16,
    protocol: Protocol,
    #[serde(rename = "hostIP", skip_serializing_if = "str::is_empty")]
    host_ip: &'a str,
}

/// The `runtimeConfig` berth offers, keyed by capability name.
pub(crate) fn runtime_config(port_mappings: &[PortMapping]) -> Map<String, Value> {
    let mappings: Vec<Value> = port_mappings
        .iter()
        .filter(|m| m.host_port != 0)
        .map(|m| {
            serde_json::to_value(PortMappingJson {
                host_port: m.host_port,
                container_port: m.container_port,
                protocol: m.protocol,
                host_ip: &m.host_ip,
            })
            .expect("port mappings serialize")
        })
        .collect();
    let mut config = Map::new();
    config.insert("portMappings".into(), Value::Array(mappings));
    config
}

/// The stdin of `plugin` (an element of `list.plugins`).
pub(crate) fn plugin_input(
    list: &NetworkConfigList,
    plugin: &Value,
    prev_result: Option<&Value>,
    runtime_config: &Map<String, Value>,
) -> Vec<u8> {
    let mut conf = plugin.as_object().cloned().unwrap_or_default();
    conf.insert("name".into(), Value::String(list.name.clone()));
    conf.insert("cniVersion".into(), Value::String(list.cni_version.clone()));
    if let Some(prev) = prev_result {
        conf.insert("prevResult".into(), prev.clone());
    }
    let enabled: Vec<(&String, &Value)> = runtime_config
        .iter()
        .filter(|(capability, _)| {
            plugin
                .get("capabilities")
                .and_then(|caps| caps.get(capability.as_str()))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
        .collect();
    if !enabled.is_empty() {
        let runtime = conf
            .entry("runtimeConfig")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(runtime) = runtime {
            for (capability, value) in enabled {
                runtime.insert(capability.clone(), value.clone());
            }
        }
    }
    serde_json::to_vec(&Value::Object(conf)).expect("JSON values serialize")
}

/// The configuration of the `loopback` plugin for `lo`.
pub(crate) fn loopback_input(cni_version: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "cniVersion": cni_version,
        "name": "cni-loopback",
        "type": LOOPBACK_PLUGIN,
    }))
    .expect("JSON values serialize")
}

/// Whether DEL carries `prevResult`: from spec 0.4.0 on.
pub(crate) fn del_takes_prev_result(cni_version: &str) -> bool {
    let mut parts = cni_version
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= (0, 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list() -> NetworkConfigList {
        NetworkConfigList {
            cni_version: "1.0.0".into(),
            name: "net1".into(),
            plugins: vec![
                json!({"type": "bridge", "bridge": "b0"}),
                json!({"type": "portmap", "capabilities": {"portMappings": true, "bandwidth": false},
                       "runtimeConfig": {"other": 1}}),
            ],
        }
    }

    fn mapping(host_port: u16, host_ip: &str) -> PortMapping {
        PortMapping {
            host_port,
            container_port: 80,
            protocol: Protocol::Tcp,
            host_ip: host_ip.into(),
        }
    }

    #[test]
    fn injects_name_version_prev_result_and_capabilities() {
        let list = list();
        let rc = runtime_config(&[
            mapping(8080, ""),
            mapping(0, ""),
            mapping(9090, "127.0.0.1"),
        ]);
        let first: Value =
            serde_json::from_slice(&plugin_input(&list, &list.plugins[0], None, &rc)).unwrap();
        assert_eq!(
            first,
            json!({"type": "bridge", "bridge": "b0", "name": "net1", "cniVersion": "1.0.0"})
        );

        let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]});
        let second: Value =
            serde_json::from_slice(&plugin_input(&list, &list.plugins[1], Some(&prev), &rc))
                .unwrap();
        assert_eq!(second["prevResult"], prev);
        assert_eq!(
            second["runtimeConfig"],
            json!({"other": 1, "portMappings": [
                {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                {"hostPort": 9090, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"},
            ]})
        );
    }

    #[test]
    fn del_prev_result_from_0_4_0() {
        assert!(del_takes_prev_result("1.0.0"));
        assert!(del_takes_prev_result("0.4.0"));
        assert!(!del_takes_prev_result("0.3.1"));
        assert!(!del_takes_prev_result("garbage"));
    }
}

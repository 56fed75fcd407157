//! The files a pod's containers mount: `/etc/resolv.conf`, `/etc/hostname` and `/etc/hosts`,
//! written into the sandbox's state directory.

use std::fmt::Write as _;

use cri_api::v1;

/// The host's resolver configuration, used when the pod gives no DNS settings.
pub const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// resolv.conf for `dns`: its servers, searches and options when it has any, otherwise the
/// host's file (`host` is its content).
pub fn resolv_conf(dns: Option<&v1::DnsConfig>, host: &str) -> String {
    let Some(dns) =
        dns.filter(|d| !d.servers.is_empty() || !d.searches.is_empty() || !d.options.is_empty())
    else {
        return host.to_owned();
    };
    let mut text = String::new();
    if !dns.searches.is_empty() {
        let _ = writeln!(text, "search {}", dns.searches.join(" "));
    }
    for server in &dns.servers {
        let _ = writeln!(text, "nameserver {server}");
    }
    if !dns.options.is_empty() {
        let _ = writeln!(text, "options {}", dns.options.join(" "));
    }
    text
}

/// /etc/hosts of a pod: loopback names, and the pod's own address under its hostname.
pub fn hosts(hostname: &str, ip: Option<&str>) -> String {
    let mut text = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if let (Some(ip), false) = (ip, hostname.is_empty()) {
        let _ = writeln!(text, "{ip}\t{hostname}");
    }
    text
}

/// Checks a DNS setting from the request: no line breaks, which would inject lines.
pub fn dns_is_safe(dns: &v1::DnsConfig) -> Result<(), String> {
    for value in dns.servers.iter().chain(&dns.searches).chain(&dns.options) {
        if value.contains(['\n', '\r', '\0']) || value.trim().is_empty() {
            return Err(format!("{value:?} is empty or contains a line break"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_from_dns_config() {
        let dns = v1::DnsConfig {
            servers: vec!["10.10.10.10".into()],
            searches: vec!["google.com".into()],
            options: vec!["ndots:8".into()],
        };
        let text = resolv_conf(Some(&dns), "nameserver 1.1.1.1\n");
        assert_eq!(
            text,
            "search google.com\nnameserver 10.10.10.10\noptions ndots:8\n"
        );
        assert_eq!(
            resolv_conf(Some(&v1::DnsConfig::default()), "host\n"),
            "host\n"
        );
        assert_eq!(resolv_conf(None, "host\n"), "host\n");
    }

    #[test]
    fn hosts_lists_the_pod() {
        let text = hosts("web-0", Some("10.88.0.5"));
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(text.ends_with("10.88.0.5\tweb-0\n"));
        assert!(!hosts("web-0", None).contains("web-0"));
    }

    #[test]
    fn injected_lines_are_refused() {
        let dns = v1::DnsConfig {
            servers: vec!["1.1.1.1\nnameserver 6.6.6.6".into()],
            ..Default::default()
        };
        assert!(dns_is_safe(&dns).is_err());
    }
}

//! The network chain: addressing, per-qube firewall rules, the nftables ruleset of a netvm, and
//! (for the sandbox backend) the veth plumbing between network namespaces.
//!
//! * [`rules`]: the rule model (Qubes' fields), parsing and validation.
//! * [`nft`]: a netvm's whole ruleset as text for `nft -f`, from plain data. Pure functions, so
//!   a Xen backend (whose netvms are real VMs running nft) generates the same ruleset.
//! * [`link`]: `ip`/`nft` run inside the sandbox qubes' network namespaces.
//!
//! See `docs/networking.md`.

pub mod chain;
pub mod link;
pub mod nft;
pub mod rules;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::QubeName;

pub use rules::{Rule, RuleError};

/// How the network chain is set up. Stored as JSON (`DATA/network.json`); absent: no network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// Client addresses: `A.B.(qid >> 8).(qid & 255)` in this /16 (Qubes: 10.137.0.0).
    #[serde(default = "default_client_net")]
    pub client_net: Ipv4Addr,
    /// Disposables' addresses, the same way (Qubes: 10.138.0.0).
    #[serde(default = "default_disp_net")]
    pub disp_net: Ipv4Addr,
    /// The two virtual DNS servers every qube is told about (Qubes: 10.139.1.1 and .2).
    #[serde(default = "default_dns")]
    pub virtual_dns: [Ipv4Addr; 2],
    /// The real resolvers the uplink netvm forwards the virtual DNS addresses to. Empty: DNS
    /// to the virtual addresses is routed on unchanged (and so goes nowhere).
    #[serde(default)]
    pub upstream_dns: Vec<IpAddr>,
    /// IPv6, off unless configured.
    #[serde(default)]
    pub ipv6: Option<Ipv6Config>,
    /// sys-net's uplink: a veth to a namespace (needs root).
    #[serde(default)]
    pub uplink: Option<Uplink>,
    /// Or user-mode networking (slirp4netns) as sys-net's uplink: what an unprivileged
    /// manager can have.
    #[serde(default)]
    pub user_uplink: Option<UserUplink>,
    /// The `nft` program (a test may wrap it).
    #[serde(default = "default_nft")]
    pub nft: PathBuf,
}

/// IPv6 for qubes: every qube gets `prefix` with its IPv4 address in the low 32 bits (as Qubes
/// derives its addresses), routed hop by hop unless `nat66`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipv6Config {
    /// A delegated global prefix or a ULA, as the user chose; at most /96.
    pub prefix: Ipv6Addr,
    pub prefix_len: u8,
    /// Masquerade IPv6 at every netvm (NAT66). Off: the prefix is routed to sys-net, and the
    /// upstream must route it there (the uplink netns gets that route when the manager sets up
    /// the uplink).
    #[serde(default)]
    pub nat66: bool,
}

/// sys-net's uplink: a veth from the uplink qube's namespace to `netns`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uplink {
    /// The qube that gets it (normally `sys-net`).
    pub qube: QubeName,
    /// The network namespace at the other end: `/proc/1/ns/net` for the host's own, or a
    /// namespace file such as `/run/netns/NAME`.
    pub netns: PathBuf,
    /// Address of the outer end (the uplink qube's gateway) and of the qube's end, in one
    /// subnet of length `prefix_len`.
    pub outer: Ipv4Addr,
    pub inner: Ipv4Addr,
    pub prefix_len: u8,
    /// IPv6 of the two ends (needed for IPv6), subnet length `prefix6_len`.
    #[serde(default)]
    pub outer6: Option<Ipv6Addr>,
    #[serde(default)]
    pub inner6: Option<Ipv6Addr>,
    #[serde(default = "default_prefix6")]
    pub prefix6_len: u8,
    /// Masquerade what leaves `netns` through its other interfaces, and enable forwarding
    /// there (the host case).
    #[serde(default)]
    pub nat: bool,
}

/// sys-net's uplink through user-mode networking: `slirp4netns` attached to the uplink qube's
/// network namespace gives it `eth0` (10.0.2.100/24, gateway 10.0.2.2, DNS forwarder
/// 10.0.2.3) and turns its traffic into the manager's user's own sockets on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserUplink {
    /// The qube that gets it (normally `sys-net`).
    pub qube: QubeName,
    /// The slirp4netns program.
    #[serde(default = "default_slirp")]
    pub program: PathBuf,
    /// Let the qubes reach the host's own loopback (127.0.0.1) as 10.0.2.2. Off by default:
    /// services listening only on the host's loopback are not for qubes.
    #[serde(default)]
    pub host_loopback: bool,
}

fn default_slirp() -> PathBuf {
    PathBuf::from("slirp4netns")
}

fn default_client_net() -> Ipv4Addr {
    Ipv4Addr::new(10, 137, 0, 0)
}
fn default_disp_net() -> Ipv4Addr {
    Ipv4Addr::new(10, 138, 0, 0)
}
fn default_dns() -> [Ipv4Addr; 2] {
    [Ipv4Addr::new(10, 139, 1, 1), Ipv4Addr::new(10, 139, 1, 2)]
}
fn default_nft() -> PathBuf {
    PathBuf::from("nft")
}
fn default_prefix6() -> u8 {
    64
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            client_net: default_client_net(),
            disp_net: default_disp_net(),
            virtual_dns: default_dns(),
            upstream_dns: Vec::new(),
            ipv6: None,
            uplink: None,
            user_uplink: None,
            nft: default_nft(),
        }
    }
}

/// Why a configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network configuration: {0}")]
pub struct ConfigError(pub String);

impl NetConfig {
    /// The qube that has the uplink, of either kind.
    pub fn uplink_qube(&self) -> Option<&QubeName> {
        self.uplink
            .as_ref()
            .map(|u| &u.qube)
            .or(self.user_uplink.as_ref().map(|u| &u.qube))
    }

    /// Checks what the types do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let e = |m: String| Err(ConfigError(m));
        for (what, n) in [("client_net", self.client_net), ("disp_net", self.disp_net)] {
            if n.octets()[2..] != [0, 0] {
                return e(format!(
                    "{what} {n} must be a /16 network address (x.y.0.0)"
                ));
            }
        }
        if self.client_net == self.disp_net {
            return e("client_net and disp_net must differ".into());
        }
        if let Some(v6) = &self.ipv6 {
            if v6.prefix_len > 96 || v6.prefix_len == 0 {
                return e(format!(
                    "ipv6 prefix /{} must be 1 to 96 bits (the low 32 bits name the qube)",
                    v6.prefix_len
                ));
            }
            if rules::Cidr::new(IpAddr::V6(v6.prefix), v6.prefix_len).is_err() {
                return e(format!("ipv6 prefix {} has host bits set", v6.prefix));
            }
        }
        if self.uplink.is_some() && self.user_uplink.is_some() {
            return e("give uplink or user_uplink, not both".into());
        }
        if self.user_uplink.is_some() && self.ipv6.is_some() {
            return e("ipv6 is not available with user_uplink (slirp4netns) yet".into());
        }
        if let Some(u) = &self.uplink {
            if u.prefix_len == 0 || u.prefix_len > 30 {
                return e("uplink prefix_len must be 1 to 30".into());
            }
            let mask = u32::MAX << (32 - u.prefix_len);
            if u32::from(u.outer) & mask != u32::from(u.inner) & mask || u.outer == u.inner {
                return e("uplink outer and inner must be two addresses of one subnet".into());
            }
            if self.ipv6.is_some() && (u.outer6.is_none() || u.inner6.is_none()) {
                return e("ipv6 needs uplink outer6 and inner6".into());
            }
        }
        Ok(())
    }

    /// A qube's IPv4 address.
    pub fn ipv4(&self, qid: u32, disposable: bool) -> Option<Ipv4Addr> {
        if qid == 0 || qid > 0xffff {
            return None;
        }
        let base = if disposable {
            self.disp_net
        } else {
            self.client_net
        }
        .octets();
        Some(Ipv4Addr::new(base[0], base[1], (qid >> 8) as u8, qid as u8))
    }

    /// A qube's IPv6 address: the prefix with the IPv4 address in the low 32 bits.
    pub fn ipv6(&self, v4: Ipv4Addr) -> Option<Ipv6Addr> {
        let c = self.ipv6.as_ref()?;
        Some(Ipv6Addr::from(
            u128::from(c.prefix) | u128::from(u32::from(v4)),
        ))
    }
}

/// The addresses of one qube.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    pub v4: Ipv4Addr,
    pub v6: Option<Ipv6Addr>,
}

/// The interface name of client `qid` in its netvm (Qubes: `vifN.0`).
pub fn vif_name(qid: u32) -> String {
    format!("vif{qid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_qid() {
        let mut c = NetConfig::default();
        assert_eq!(c.ipv4(5, false), Some(Ipv4Addr::new(10, 137, 0, 5)));
        assert_eq!(c.ipv4(258, true), Some(Ipv4Addr::new(10, 138, 1, 2)));
        assert_eq!(c.ipv4(0, false), None);
        assert_eq!(c.ipv4(70000, false), None);
        assert_eq!(c.ipv6(Ipv4Addr::new(10, 137, 0, 5)), None);
        c.ipv6 = Some(Ipv6Config {
            prefix: "2001:db8:c0::".parse().unwrap(),
            prefix_len: 64,
            nat66: false,
        });
        assert_eq!(
            c.ipv6(Ipv4Addr::new(10, 137, 0, 5)),
            Some("2001:db8:c0::a89:5".parse().unwrap())
        );
        c.validate().unwrap();
        c.ipv6.as_mut().unwrap().prefix_len = 112;
        assert!(c.validate().is_err());
        c.ipv6 = None;
        c.client_net = Ipv4Addr::new(10, 137, 1, 0);
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_user_mode_uplink_is_one_or_the_other_and_has_no_ipv6_yet() {
        let c: NetConfig = serde_json::from_str(r#"{"user_uplink": {"qube": "sys-net"}}"#).unwrap();
        c.validate().unwrap();
        let u = c.user_uplink.as_ref().unwrap();
        assert_eq!(u.program, PathBuf::from("slirp4netns"));
        assert!(
            !u.host_loopback,
            "the host's loopback is closed unless asked for"
        );
        assert_eq!(c.uplink_qube().map(QubeName::as_str), Some("sys-net"));
        let both: NetConfig = serde_json::from_str(
            r#"{"user_uplink": {"qube": "sys-net"},
                "uplink": {"qube": "sys-net", "netns": "/proc/1/ns/net",
                           "outer": "192.0.2.1", "inner": "192.0.2.2", "prefix_len": 30}}"#,
        )
        .unwrap();
        assert!(both.validate().is_err());
        let v6: NetConfig = serde_json::from_str(
            r#"{"user_uplink": {"qube": "sys-net"},
                "ipv6": {"prefix": "2001:db8:c0::", "prefix_len": 64}}"#,
        )
        .unwrap();
        assert!(v6.validate().is_err());
        assert!(
            serde_json::from_str::<NetConfig>(r#"{"user_uplink": {"qube": "sys-net", "x": 1}}"#)
                .is_err()
        );
    }
}

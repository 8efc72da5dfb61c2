//! A netvm's whole nftables ruleset, generated from plain data (no I/O), so every backend that
//! runs nft in its netvms (the sandbox's namespaces, Xen's VMs) shares it.
//!
//! One table, `inet corral`, replaced atomically by one `nft -f` (`table` + `delete table` +
//! the new table in one transaction: the kernel has the old ruleset or the new one, never a
//! mix). Its `forward` chain has policy drop and is in place before any client interface is
//! up. Each client `vifN` gets a chain `fw_N` (its rules, then the final drop), reached through
//! the verdict map `fw` for packets *from* the client (conntrack direction original) and packets
//! *to* it (direction reply). The rules match the connection's original tuple
//! (`ct original ip daddr`, `ct original proto-dst`), so the same chain decides both
//! directions on every packet: a rule added later cuts a connection that is already open,
//! without flushing conntrack.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::rules::{Action, Cidr, Proto, Rule};

/// The table every netvm gets.
pub const TABLE: &str = "corral";

/// A rule with its `dsthost` resolved to networks (`None`: any destination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub rule: Rule,
    pub hosts: Option<Vec<Cidr>>,
}

/// One client of a netvm, as the ruleset sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFw {
    pub qid: u32,
    /// Its interface in the netvm.
    pub ifname: String,
    /// Source addresses it may use: its own, and for a netvm client with IPv6 routed (no
    /// NAT66), those of the qubes behind it.
    pub src4: Vec<Ipv4Addr>,
    pub src6: Vec<Ipv6Addr>,
    /// Its rules, or why they could not be prepared (then it gets `drop` only: fail closed).
    pub rules: Result<Vec<Resolved>, String>,
}

/// Everything a netvm's ruleset depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterSpec {
    /// The netvm's upstream interface.
    pub uplink_if: String,
    pub virtual_dns: [Ipv4Addr; 2],
    /// Where this netvm sends the virtual DNS addresses (only the uplink netvm has these;
    /// others route them upstream unchanged). IPv4 resolvers only.
    pub dns_targets: Vec<Ipv4Addr>,
    pub nat66: bool,
    /// A VPN qube's tunnel interface: clients' traffic may leave only through it (and is
    /// masqueraded there), so with the tunnel down or gone they have no network, whatever the
    /// routes say. Validated with [`valid_ifname`].
    pub egress_only: Option<String>,
    pub clients: Vec<ClientFw>,
}

/// An interface name we put in a ruleset from configuration: 1–15 of `[A-Za-z0-9_-]`, not one
/// of ours (`lo`, `eth0`, `vif*`).
pub fn valid_ifname(untrusted: &str) -> Result<&str, String> {
    let ok = (1..=15).contains(&untrusted.len())
        && untrusted
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !matches!(untrusted, "lo" | "eth0")
        && !untrusted.starts_with("vif");
    if ok {
        Ok(untrusted)
    } else {
        Err(format!(
            "{untrusted:?} is not a usable interface name (1-15 of A-Z a-z 0-9 _ -, not lo, eth0 or vif*)"
        ))
    }
}

fn set_of<T: std::fmt::Display>(items: &[T]) -> String {
    if items.len() == 1 {
        items[0].to_string()
    } else {
        let v: Vec<String> = items.iter().map(ToString::to_string).collect();
        format!("{{ {} }}", v.join(", "))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fam {
    V4,
    V6,
    Any,
}

/// The nft statements for one rule (a rule can need several: one per address family, one per
/// protocol, and for `icmptype` one per direction).
pub fn rule_lines(r: &Resolved, virtual_dns: &[Ipv4Addr; 2]) -> Vec<String> {
    let rule = &r.rule;
    // Destination, per family.
    let mut dests: Vec<(String, Fam)> = Vec::new();
    if rule.dns {
        dests.push((
            format!("ct original ip daddr {}", set_of(virtual_dns)),
            Fam::V4,
        ));
    } else if let Some(hosts) = &r.hosts {
        let v4: Vec<&Cidr> = hosts.iter().filter(|c| c.is_v4()).collect();
        let v6: Vec<&Cidr> = hosts.iter().filter(|c| !c.is_v4()).collect();
        if !v4.is_empty() {
            dests.push((format!("ct original ip daddr {}", set_of(&v4)), Fam::V4));
        }
        if !v6.is_empty() {
            dests.push((format!("ct original ip6 daddr {}", set_of(&v6)), Fam::V6));
        }
        if dests.is_empty() {
            // Resolved to nothing: the rule matches nothing.
            return Vec::new();
        }
    } else {
        dests.push((String::new(), Fam::Any));
    }
    let verdict = match rule.action {
        Action::Accept => "accept",
        Action::Drop => "drop",
    };
    let expire = rule
        .expire
        .map(|e| format!(" meta time < {e}"))
        .unwrap_or_default();
    let mut out = Vec::new();
    for (dest, fam) in &dests {
        // (protocol match, ICMP type keyword when it is ICMP)
        let mut protos: Vec<(String, Option<&str>)> = Vec::new();
        match (rule.proto, rule.dns) {
            (Some(Proto::Tcp), _) => protos.push(("meta l4proto tcp".into(), None)),
            (Some(Proto::Udp), _) => protos.push(("meta l4proto udp".into(), None)),
            (None, true) => {
                protos.push(("meta l4proto tcp".into(), None));
                protos.push(("meta l4proto udp".into(), None));
            }
            (Some(Proto::Icmp), _) => {
                if matches!(fam, Fam::V4 | Fam::Any) {
                    let f = if *fam == Fam::Any {
                        "meta nfproto ipv4 "
                    } else {
                        ""
                    };
                    protos.push((format!("{f}meta l4proto icmp"), Some("icmp")));
                }
                if matches!(fam, Fam::V6 | Fam::Any) {
                    let f = if *fam == Fam::Any {
                        "meta nfproto ipv6 "
                    } else {
                        ""
                    };
                    protos.push((format!("{f}meta l4proto icmpv6"), Some("icmpv6")));
                }
            }
            (None, false) => protos.push((String::new(), None)),
        }
        for (proto, icmp) in protos {
            let ports = if rule.dns {
                " ct original proto-dst 53".to_owned()
            } else {
                rule.dstports
                    .map(|p| format!(" ct original proto-dst {p}"))
                    .unwrap_or_default()
            };
            let head = [dest.as_str(), proto.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            let variants: Vec<String> = match (rule.icmptype, icmp) {
                // The type is in the request; its replies belong to it.
                (Some(t), Some(kw)) => vec![
                    format!(" ct direction original {kw} type {t}"),
                    " ct direction reply".to_owned(),
                ],
                _ => vec![String::new()],
            };
            for v in variants {
                let line = format!("{head}{ports}{v}{expire} {verdict}");
                out.push(line.trim_start().to_owned());
            }
        }
    }
    out
}

/// The chain body of one client: its rules, then the final drop.
pub fn client_chain(c: &ClientFw, virtual_dns: &[Ipv4Addr; 2]) -> Vec<String> {
    let mut lines = Vec::new();
    if let Ok(rules) = &c.rules {
        for r in rules {
            lines.extend(rule_lines(r, virtual_dns));
        }
    }
    lines.push("drop".into());
    lines
}

/// The whole ruleset of a netvm, for one `nft -f`.
pub fn router_ruleset(spec: &RouterSpec) -> String {
    let mut s = String::new();
    let up = quote(&spec.uplink_if);
    // Create-if-missing, delete, create: one transaction.
    let _ = writeln!(
        s,
        "table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{"
    );
    let src4: Vec<String> = spec
        .clients
        .iter()
        .flat_map(|c| {
            c.src4
                .iter()
                .map(move |a| format!("{} . {a}", quote(&c.ifname)))
        })
        .collect();
    let src6: Vec<String> = spec
        .clients
        .iter()
        .flat_map(|c| {
            c.src6
                .iter()
                .map(move |a| format!("{} . {a}", quote(&c.ifname)))
        })
        .collect();
    let fw: Vec<String> = spec
        .clients
        .iter()
        .map(|c| format!("{} : jump fw_{}", quote(&c.ifname), c.qid))
        .collect();
    let elements = |v: &[String]| {
        if v.is_empty() {
            String::new()
        } else {
            format!(" elements = {{ {} }};", v.join(", "))
        }
    };
    let _ = writeln!(
        s,
        "  set src4 {{ type ifname . ipv4_addr;{} }}",
        elements(&src4)
    );
    let _ = writeln!(
        s,
        "  set src6 {{ type ifname . ipv6_addr;{} }}",
        elements(&src6)
    );
    let _ = writeln!(s, "  map fw {{ type ifname : verdict;{} }}", elements(&fw));
    for c in &spec.clients {
        let _ = writeln!(s, "  chain fw_{} {{", c.qid);
        for l in client_chain(c, &spec.virtual_dns) {
            let _ = writeln!(s, "    {l}");
        }
        let _ = writeln!(s, "  }}");
    }
    let egress = spec
        .egress_only
        .as_deref()
        .map(|t| format!("\n    iifname \"vif*\" oifname != {} drop", quote(t)))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "  chain forward {{
    type filter hook forward priority filter; policy drop;
    iifname \"vif*\" oifname \"vif*\" drop{egress}
    oifname \"vif*\" ct direction original drop
    iifname \"vif*\" ct direction reply drop
    iifname \"vif*\" meta nfproto ipv4 iifname . ip saddr != @src4 drop
    iifname \"vif*\" meta nfproto ipv6 iifname . ip6 saddr != @src6 drop
    iifname vmap @fw
    oifname vmap @fw
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname \"vif*\" ct state established,related accept
    iifname \"vif*\" meta l4proto {{ icmp, icmpv6 }} accept
    iifname \"vif*\" drop
  }}"
    );
    let _ = writeln!(
        s,
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;"
    );
    if !spec.dns_targets.is_empty() {
        for (i, d) in spec.virtual_dns.iter().enumerate() {
            let to = spec.dns_targets[i.min(spec.dns_targets.len() - 1)];
            let _ = writeln!(
                s,
                "    iifname \"vif*\" ip daddr {d} meta l4proto {{ tcp, udp }} th dport 53 dnat ip to {to}"
            );
        }
    }
    let _ = writeln!(s, "  }}");
    let _ = writeln!(
        s,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname {up} meta nfproto ipv4 masquerade"
    );
    if spec.nat66 {
        let _ = writeln!(s, "    oifname {up} meta nfproto ipv6 masquerade");
    }
    if let Some(t) = &spec.egress_only {
        let _ = writeln!(s, "    oifname {} masquerade", quote(t));
    }
    let _ = writeln!(s, "  }}\n}}");
    s
}

/// The uplink namespace's table when it is the host's (`nat`): sys-net's address is
/// masqueraded as it leaves by another interface, and nothing from the qubes reaches the host
/// itself (the GUI domain, like Qubes' dom0, is not on the qubes' network): packets from the
/// uplink link to the host's own addresses are dropped, only replies to the host's own
/// connections come in. Forwarded traffic (the qubes' way out) is not touched here.
pub fn uplink_nat_ruleset(table: &str, veth: &str, inner: Ipv4Addr) -> String {
    let v = quote(veth);
    format!(
        "table inet {table}\ndelete table inet {table}\ntable inet {table} {{
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname {v} ct state established,related accept
    iifname {v} drop
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    meta nfproto ipv4 ip saddr {inner} oifname != {v} masquerade
  }}
}}
"
    )
}

/// Interface names come from us (`vifN`, `eth0`), never from a qube; quoting keeps nft from
/// reading them as keywords.
fn quote(name: &str) -> String {
    debug_assert!(
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    format!("\"{name}\"")
}

/// Resolves a rule list for applying: expired rules dropped, names looked up with `resolve`
/// (an error or an empty answer fails the whole list, as in Qubes).
pub fn resolve_rules(
    rules: &[Rule],
    now: u64,
    resolve: &mut dyn FnMut(&str) -> Result<Vec<IpAddr>, String>,
) -> Result<Vec<Resolved>, String> {
    let mut out = Vec::new();
    for r in rules.iter().filter(|r| !r.expired(now)) {
        let hosts = match &r.dsthost {
            None => None,
            Some(super::rules::DstHost::Net(c)) => Some(vec![*c]),
            Some(super::rules::DstHost::Name(n)) => {
                let addrs = resolve(n.as_str()).map_err(|e| format!("{}: {e}", n.as_str()))?;
                if addrs.is_empty() {
                    return Err(format!("{}: no addresses", n.as_str()));
                }
                Some(
                    addrs
                        .into_iter()
                        .map(|a| Cidr {
                            addr: a,
                            len: if a.is_ipv4() { 32 } else { 128 },
                        })
                        .collect(),
                )
            }
        };
        out.push(Resolved {
            rule: r.clone(),
            hosts,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DNS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 139, 1, 1), Ipv4Addr::new(10, 139, 1, 2)];

    fn lines(text: &str) -> Vec<String> {
        let r = Rule::parse(text, 1000).unwrap();
        let res =
            resolve_rules(&[r], 1000, &mut |_| Ok(vec!["192.0.2.7".parse().unwrap()])).unwrap();
        rule_lines(&res[0], &DNS)
    }

    #[test]
    fn rules_become_statements_on_the_original_tuple() {
        assert_eq!(lines("accept"), vec!["accept"]);
        assert_eq!(
            lines("drop dsthost=203.0.113.0/24 proto=tcp dstports=80-90"),
            vec![
                "ct original ip daddr 203.0.113.0/24 meta l4proto tcp ct original proto-dst 80-90 drop"
            ]
        );
        assert_eq!(
            lines("accept specialtarget=dns"),
            vec![
                "ct original ip daddr { 10.139.1.1, 10.139.1.2 } meta l4proto tcp ct original proto-dst 53 accept",
                "ct original ip daddr { 10.139.1.1, 10.139.1.2 } meta l4proto udp ct original proto-dst 53 accept",
            ]
        );
        assert_eq!(
            lines("accept proto=icmp icmptype=8 expire=+5"),
            vec![
                "meta nfproto ipv4 meta l4proto icmp ct direction original icmp type 8 meta time < 1005 accept",
                "meta nfproto ipv4 meta l4proto icmp ct direction reply meta time < 1005 accept",
                "meta nfproto ipv6 meta l4proto icmpv6 ct direction original icmpv6 type 8 meta time < 1005 accept",
                "meta nfproto ipv6 meta l4proto icmpv6 ct direction reply meta time < 1005 accept",
            ]
        );
        assert_eq!(
            lines("accept dsthost=example.org proto=udp"),
            vec!["ct original ip daddr 192.0.2.7 meta l4proto udp accept"]
        );
        assert_eq!(
            lines("accept dsthost=2001:db8::/32 proto=icmp"),
            vec!["ct original ip6 daddr 2001:db8::/32 meta l4proto icmpv6 accept"]
        );
        // Expired rules are left out.
        let r = Rule::parse("accept expire=+5", 0).unwrap();
        assert!(
            resolve_rules(&[r], 10, &mut |_| unreachable!())
                .unwrap()
                .is_empty()
        );
        // A name that does not resolve fails the list.
        let r = Rule::parse("accept dsthost=nowhere.invalid", 0).unwrap();
        assert!(resolve_rules(&[r], 0, &mut |_| Err("no".into())).is_err());
    }

    #[test]
    fn ruleset_has_a_drop_policy_and_one_chain_per_client() {
        let spec = RouterSpec {
            uplink_if: "eth0".into(),
            virtual_dns: DNS,
            dns_targets: vec![Ipv4Addr::new(198, 51, 100, 53)],
            nat66: false,
            egress_only: None,
            clients: vec![
                ClientFw {
                    qid: 5,
                    ifname: "vif5".into(),
                    src4: vec![Ipv4Addr::new(10, 137, 0, 5)],
                    src6: vec![],
                    rules: Ok(vec![]),
                },
                ClientFw {
                    qid: 6,
                    ifname: "vif6".into(),
                    src4: vec![Ipv4Addr::new(10, 137, 0, 6)],
                    src6: vec![],
                    rules: Err("bad".into()),
                },
            ],
        };
        let t = router_ruleset(&spec);
        assert!(t.contains("policy drop;"), "{t}");
        assert!(
            t.contains("\"vif5\" : jump fw_5, \"vif6\" : jump fw_6"),
            "{t}"
        );
        assert!(t.contains("chain fw_6 {\n    drop\n  }"), "{t}");
        assert!(t.contains("dnat ip to 198.51.100.53"), "{t}");
        assert!(!t.contains("meta nfproto ipv6 masquerade"));
    }
}

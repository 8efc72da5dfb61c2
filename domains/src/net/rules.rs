//! Per-qube firewall rules with Qubes' fields and semantics.
//!
//! A rule is written as `key=value` words, the way `qvm-firewall` takes them:
//! `action=accept dsthost=203.0.113.0/24 proto=tcp dstports=80-443 expire=+3600 comment="web"`.
//! The stored (canonical) form is the same text with `expire` made absolute, so `corral.json`
//! stays readable, and every rule read back from it passes through [`Rule::parse`] again.
//!
//! The list is evaluated in order, first match wins, and a built-in final `drop` follows it.
//! A qube that never had rules set gets the default list: one `action=accept`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Most rules one qube may have (Qubes has no limit; ours keeps a ruleset bounded).
pub const MAX_RULES: usize = 256;
/// Longest comment, in bytes.
pub const MAX_COMMENT: usize = 256;
/// Longest rule text accepted (a comment plus every field fits well within it).
pub const MAX_RULE_TEXT: usize = 1024;

/// Why a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("firewall rule: {0}")]
pub struct RuleError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError(msg.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accept,
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    /// ICMP for IPv4 destinations, ICMPv6 for IPv6 ones.
    Icmp,
}

/// An address with a prefix length, host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    pub fn new(addr: IpAddr, len: u8) -> Result<Cidr, RuleError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return err(format!("prefix length /{len} is longer than {max}"));
        }
        // Host bits must be zero (as Qubes requires): `10.0.0.1/8` is a typo for something.
        let masked = match addr {
            IpAddr::V4(a) => {
                let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
            }
            IpAddr::V6(a) => {
                let m = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
            }
        };
        if masked != addr {
            return err(format!(
                "{addr}/{len} has host bits set (did you mean {masked}/{len}?)"
            ));
        }
        Ok(Cidr { addr, len })
    }

    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.is_v4() { 32 } else { 128 };
        if self.len == full {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// A DNS host name: letters, digits, `-` and `.`, labels of 1–63 bytes, at most 253 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName(String);

impl HostName {
    pub fn new(untrusted: &str) -> Result<HostName, RuleError> {
        let s = untrusted.strip_suffix('.').unwrap_or(untrusted);
        if s.is_empty() || s.len() > 253 {
            return err("host name must be 1 to 253 characters");
        }
        for label in s.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return err(format!("{s:?} is not a valid host name"));
            }
        }
        Ok(HostName(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DstHost {
    Net(Cidr),
    /// Resolved when the rules are applied (as Qubes does); a name that does not resolve makes
    /// the qube's rules fail to apply, so it gets no network.
    Name(HostName),
}

impl fmt::Display for DstHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DstHost::Net(c) => c.fmt(f),
            DstHost::Name(n) => f.write_str(n.as_str()),
        }
    }
}

/// A port or an inclusive range, `first <= last`, no port 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub first: u16,
    pub last: u16,
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// One rule. Fields left out match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub action: Action,
    pub dsthost: Option<DstHost>,
    pub proto: Option<Proto>,
    pub dstports: Option<Ports>,
    pub icmptype: Option<u8>,
    /// `specialtarget=dns`: the virtual DNS servers (10.139.1.1 and .2 by default), TCP and UDP
    /// port 53.
    pub dns: bool,
    /// Seconds since the epoch after which the rule no longer matches.
    pub expire: Option<u64>,
    pub comment: Option<String>,
}

impl Rule {
    /// `action=accept` and nothing else: the default list's one rule.
    pub fn accept_all() -> Rule {
        Rule {
            action: Action::Accept,
            dsthost: None,
            proto: None,
            dstports: None,
            icmptype: None,
            dns: false,
            expire: None,
            comment: None,
        }
    }

    /// Parses `key=value` words (see the module doc). `expire=+N` is taken relative to `now`
    /// (seconds since the epoch). Values may be quoted with `"` (for comments with spaces).
    pub fn parse(untrusted: &str, now: u64) -> Result<Rule, RuleError> {
        if untrusted.len() > MAX_RULE_TEXT {
            return err(format!("rule text longer than {MAX_RULE_TEXT} bytes"));
        }
        let words = split_words(untrusted)?;
        let mut action = None;
        let mut r = Rule::accept_all();
        let mut seen = Vec::new();
        for w in &words {
            let (k, v) = match w.split_once('=') {
                Some(kv) => kv,
                // A bare `accept` / `drop` is the action, as in `qvm-firewall add accept`.
                None if w == "accept" || w == "drop" => ("action", w.as_str()),
                None => return err(format!("expected key=value, got {w:?}")),
            };
            if seen.contains(&k) {
                return err(format!("{k} given twice"));
            }
            seen.push(k);
            match k {
                "action" => {
                    action = Some(match v {
                        "accept" => Action::Accept,
                        "drop" => Action::Drop,
                        _ => return err(format!("action must be accept or drop, not {v:?}")),
                    })
                }
                "dsthost" => r.dsthost = Some(parse_host(v)?),
                "proto" => {
                    r.proto = Some(match v {
                        "tcp" => Proto::Tcp,
                        "udp" => Proto::Udp,
                        "icmp" => Proto::Icmp,
                        _ => return err(format!("proto must be tcp, udp or icmp, not {v:?}")),
                    })
                }
                "dstports" => r.dstports = Some(parse_ports(v)?),
                "icmptype" => {
                    r.icmptype = Some(
                        v.parse()
                            .map_err(|_| RuleError(format!("icmptype must be 0-255, not {v:?}")))?,
                    )
                }
                "specialtarget" => {
                    if v != "dns" {
                        return err(format!("specialtarget must be dns, not {v:?}"));
                    }
                    r.dns = true;
                }
                "expire" => r.expire = Some(parse_expire(v, now)?),
                "comment" => {
                    if v.len() > MAX_COMMENT {
                        return err(format!("comment longer than {MAX_COMMENT} bytes"));
                    }
                    if v.chars().any(char::is_control) {
                        return err("comment contains control characters");
                    }
                    r.comment = Some(v.to_owned());
                }
                _ => return err(format!("unknown field {k:?}")),
            }
        }
        r.action = action.ok_or_else(|| RuleError("action= is required".into()))?;
        r.check()?;
        Ok(r)
    }

    /// The combinations Qubes refuses.
    fn check(&self) -> Result<(), RuleError> {
        if self.dstports.is_some() && !matches!(self.proto, Some(Proto::Tcp | Proto::Udp)) {
            return err("dstports needs proto=tcp or proto=udp");
        }
        if self.icmptype.is_some() && self.proto != Some(Proto::Icmp) {
            return err("icmptype needs proto=icmp");
        }
        if self.dns
            && (self.dsthost.is_some() || self.dstports.is_some() || self.icmptype.is_some())
        {
            return err("specialtarget=dns cannot be combined with dsthost, dstports or icmptype");
        }
        if self.dns && self.proto == Some(Proto::Icmp) {
            return err("specialtarget=dns means tcp or udp port 53");
        }
        Ok(())
    }

    /// Whether the rule has expired at `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.expire.is_some_and(|e| e <= now)
    }
}

impl fmt::Display for Rule {
    /// The canonical text: fields in a fixed order, absolute expiry, comment quoted last.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = match self.action {
            Action::Accept => "accept",
            Action::Drop => "drop",
        };
        write!(f, "action={a}")?;
        if let Some(h) = &self.dsthost {
            write!(f, " dsthost={h}")?;
        }
        if let Some(p) = self.proto {
            write!(f, " proto={}", proto_name(p))?;
        }
        if let Some(p) = self.dstports {
            write!(f, " dstports={p}")?;
        }
        if let Some(t) = self.icmptype {
            write!(f, " icmptype={t}")?;
        }
        if self.dns {
            write!(f, " specialtarget=dns")?;
        }
        if let Some(e) = self.expire {
            write!(f, " expire={e}")?;
        }
        if let Some(c) = &self.comment {
            write!(
                f,
                " comment=\"{}\"",
                c.replace('\\', "\\\\").replace('"', "\\\"")
            )?;
        }
        Ok(())
    }
}

pub fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Icmp => "icmp",
    }
}

impl FromStr for Rule {
    type Err = RuleError;
    /// Parses a stored rule: relative expiry is refused (stored rules are absolute).
    fn from_str(s: &str) -> Result<Rule, RuleError> {
        if s.contains("expire=+") {
            return err("a stored rule has a relative expire");
        }
        Rule::parse(s, 0)
    }
}

// Stored as its canonical text; reading it back re-validates it.
impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rule, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Splits on spaces; `"..."` quotes a value (with `\"` and `\\` escapes).
fn split_words(s: &str) -> Result<Vec<String>, RuleError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => match chars.next() {
                Some(n @ ('"' | '\\')) => cur.push(n),
                _ => return err("bad escape in quoted value"),
            },
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return err("unterminated quote");
    }
    if in_word {
        out.push(cur);
    }
    if out.is_empty() {
        return err("empty rule");
    }
    Ok(out)
}

fn parse_host(v: &str) -> Result<DstHost, RuleError> {
    if let Some((a, l)) = v.split_once('/') {
        let addr: IpAddr = a
            .parse()
            .map_err(|_| RuleError(format!("{a:?} is not an IP address")))?;
        let len: u8 = l
            .parse()
            .map_err(|_| RuleError(format!("{l:?} is not a prefix length")))?;
        return Ok(DstHost::Net(Cidr::new(addr, len)?));
    }
    if let Ok(addr) = v.parse::<IpAddr>() {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        return Ok(DstHost::Net(Cidr::new(addr, len)?));
    }
    Ok(DstHost::Name(HostName::new(v)?))
}

fn parse_ports(v: &str) -> Result<Ports, RuleError> {
    let num = |s: &str| -> Result<u16, RuleError> {
        match s.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => err(format!("{s:?} is not a port (1-65535)")),
        }
    };
    let (first, last) = match v.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let p = num(v)?;
            (p, p)
        }
    };
    if first > last {
        return err(format!("port range {v} is reversed"));
    }
    Ok(Ports { first, last })
}

fn parse_expire(v: &str, now: u64) -> Result<u64, RuleError> {
    let bad = || {
        RuleError(format!(
            "expire must be seconds since the epoch or +seconds, not {v:?}"
        ))
    };
    // Bounded so the value fits nft's nanosecond clock (u64 ns ends in 2554).
    const MAX: u64 = 1 << 33;
    let t = match v.strip_prefix('+') {
        Some(rel) => now.checked_add(rel.parse::<u64>().map_err(|_| bad())?),
        None => v.parse::<u64>().ok(),
    }
    .ok_or_else(bad)?;
    if t > MAX {
        return Err(bad());
    }
    Ok(t)
}

/// Checks a whole list.
pub fn check_list(rules: &[Rule]) -> Result<(), RuleError> {
    if rules.len() > MAX_RULES {
        return err(format!("at most {MAX_RULES} rules per qube"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_canonical_text_round_trip() {
        let r = Rule::parse(
            "action=accept dsthost=203.0.113.0/24 proto=tcp dstports=80-443 expire=+60 comment=\"web \\\"x\\\"\"",
            1000,
        )
        .unwrap();
        assert_eq!(r.expire, Some(1060));
        assert_eq!(
            r.dstports,
            Some(Ports {
                first: 80,
                last: 443
            })
        );
        let text = r.to_string();
        assert_eq!(
            text,
            "action=accept dsthost=203.0.113.0/24 proto=tcp dstports=80-443 expire=1060 comment=\"web \\\"x\\\"\""
        );
        assert_eq!(text.parse::<Rule>().unwrap(), r);
        let d = Rule::parse("drop specialtarget=dns", 0).unwrap();
        assert!(d.dns && d.action == Action::Drop);
        assert_eq!(
            Rule::parse("accept dsthost=Example.COM.", 0)
                .unwrap()
                .dsthost,
            Some(DstHost::Name(HostName("example.com".into())))
        );
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        for (text, why) in [
            ("", "empty"),
            ("proto=tcp", "action= is required"),
            ("action=allow", "accept or drop"),
            ("accept dstports=80", "needs proto"),
            ("accept proto=icmp dstports=80", "needs proto"),
            ("accept proto=tcp icmptype=8", "icmptype needs"),
            ("accept proto=tcp dstports=0", "not a port"),
            ("accept proto=tcp dstports=90-80", "reversed"),
            ("accept proto=tcp dstports=70000", "not a port"),
            ("accept dsthost=10.0.0.1/8", "host bits"),
            ("accept dsthost=10.0.0.0/33", "longer than 32"),
            ("accept dsthost=bad_name", "not a valid host name"),
            ("accept dsthost=-a.com", "not a valid host name"),
            (
                "accept specialtarget=dns dsthost=1.2.3.4",
                "cannot be combined",
            ),
            ("accept specialtarget=ntp", "must be dns"),
            ("accept expire=soon", "expire must be"),
            ("accept expire=+99999999999999999999", "expire must be"),
            ("accept comment=\"a", "unterminated"),
            ("accept proto=tcp proto=udp", "twice"),
            ("accept colour=red", "unknown field"),
            ("accept comment=\"a\u{7}\"", "control"),
        ] {
            let e = Rule::parse(text, 0).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        assert!("accept expire=+5".parse::<Rule>().is_err());
        assert!(Rule::parse(&"a".repeat(2000), 0).is_err());
    }

    #[test]
    fn stored_rules_are_validated_when_read() {
        let r: Rule = serde_json::from_str("\"action=drop proto=udp dstports=53\"").unwrap();
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            "\"action=drop proto=udp dstports=53\""
        );
        for bad in [
            "\"action=allow\"",
            "\"accept expire=+5\"",
            "\"accept dstports=1\"",
            "5",
        ] {
            assert!(serde_json::from_str::<Rule>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expiry() {
        let r = Rule::parse("accept expire=+10", 100).unwrap();
        assert!(!r.expired(109));
        assert!(r.expired(110));
    }
}

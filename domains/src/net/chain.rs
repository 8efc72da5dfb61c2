//! The chain as a whole, for the sandbox backend: which links a started or stopped qube needs,
//! and every running netvm's ruleset, computed from the model and applied.

use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Mutex;

use super::link::{self, Ends, Netns};
use super::nft::{self, ClientFw, RouterSpec};
use super::rules::Rule;
use super::{ConfigError, NetConfig, vif_name};
use crate::QubeName;
use crate::model::{Class, Model};

/// The network chain of one manager.
#[derive(Debug)]
pub struct Chain {
    cfg: NetConfig,
    /// One change at a time: each computes from the model and the running set as a whole.
    lock: Mutex<()>,
    /// (netvm, client) links taken down because the netvm's ruleset did not apply. Taking a
    /// link down flushes its IPv6 addresses and routes, so these are linked afresh once a
    /// ruleset applies again.
    cut: Mutex<std::collections::BTreeSet<(QubeName, QubeName)>>,
    /// Netvm namespaces (by sandbox pid) whose forwarding is on.
    forwarding: Mutex<std::collections::BTreeSet<(QubeName, i32)>>,
    /// The running user-mode uplink (`user_uplink`), while its qube runs.
    user_uplink: Mutex<Option<link::UserUplinkProc>>,
}

/// The qube feature naming a VPN qube's tunnel interface (`wg0`, `tun0`): its clients' traffic
/// may leave only through it.
pub const VPN_FEATURE: &str = "vpn-interface";

/// The qube feature that lets a qube manage its own network (a VPN qube running OpenVPN or
/// WireGuard itself): at its next start its root gets CAP_NET_ADMIN over the qube's own
/// namespaces (`corralctl run --root`) and the sandbox backend gives it `/dev/net/tun`.
pub const NET_ADMIN_FEATURE: &str = "net-admin";

/// Whether a boolean feature's text means on (Qubes writes `1`; a feature absent or any
/// other text is off, so a typo never grants anything).
pub fn feature_on(v: Option<&str>) -> bool {
    matches!(v, Some("1" | "True" | "true" | "yes"))
}

/// The pid of a running qube's sandbox (its network namespace is `/proc/PID/ns/net`).
pub type PidOf<'a> = &'a dyn Fn(&QubeName) -> Option<i32>;
/// The current model (read under the chain's lock).
pub type ModelOf<'a> = &'a dyn Fn() -> Model;

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A qube's rule list: its own, or the default (one accept).
pub fn rules_of(m: &Model, n: &QubeName) -> Vec<Rule> {
    m.qubes
        .get(n)
        .and_then(|q| q.firewall.clone())
        .unwrap_or_else(|| vec![Rule::accept_all()])
}

impl Chain {
    pub fn new(cfg: NetConfig) -> Result<Chain, ConfigError> {
        cfg.validate()?;
        Ok(Chain {
            cfg,
            lock: Mutex::new(()),
            cut: Mutex::new(std::collections::BTreeSet::new()),
            forwarding: Mutex::new(std::collections::BTreeSet::new()),
            user_uplink: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    fn routed6(&self) -> bool {
        self.cfg.ipv6.as_ref().is_some_and(|c| !c.nat66)
    }

    /// A qube's addresses.
    pub fn addrs(&self, m: &Model, n: &QubeName) -> Option<Ends> {
        let q = m.qubes.get(n)?;
        let v4 = self.cfg.ipv4(q.qid, q.class == Class::DispVM)?;
        Some(Ends {
            v4,
            v6: self.cfg.ipv6(v4),
        })
    }

    /// `n` and the netvms above it, nearest first (bounded; the model refuses loops).
    fn path(m: &Model, n: &QubeName) -> Vec<QubeName> {
        let mut out = vec![n.clone()];
        let mut cur = n.clone();
        while let Some(next) = m.effective_netvm(&cur) {
            if out.contains(&next) || out.len() > 64 {
                break;
            }
            out.push(next.clone());
            cur = next;
        }
        out
    }

    /// Brings up what a just-started qube needs: links to its clients (a restarted netvm),
    /// its uplink, its link to its own netvm; then every running netvm's ruleset again.
    /// Errors are collected: whatever failed leaves the affected qube without network.
    pub fn started(
        &self,
        model: ModelOf<'_>,
        n: &QubeName,
        pid_of: PidOf<'_>,
    ) -> Result<(), String> {
        let _g = self.lock.lock().unwrap();
        // The model is read under the lock, so a change applied after another cannot be
        // overwritten by an older snapshot.
        let m = &model();
        let mut errs = Vec::new();
        let Some(q) = m.qubes.get(n) else {
            return Ok(());
        };
        if q.provides_network {
            for (c, _) in m.qubes.iter() {
                if m.effective_netvm(c).as_ref() == Some(n)
                    && pid_of(c).is_some()
                    && let Err(e) = self.connect(m, n, c, pid_of)
                {
                    errs.push(e);
                }
            }
        }
        if let Some(u) = &self.cfg.uplink
            && &u.qube == n
            && let Some(pid) = pid_of(n)
        {
            let routed = self
                .cfg
                .ipv6
                .as_ref()
                .filter(|c| !c.nat66)
                .map(|c| (c.prefix, c.prefix_len));
            if let Err(e) =
                link::connect_uplink(u, &Netns::of_pid(pid), q.qid, routed, &self.cfg.nft)
            {
                errs.push(format!("uplink: {e}"));
            }
        }
        if let Some(u) = &self.cfg.user_uplink
            && &u.qube == n
            && let Some(pid) = pid_of(n)
        {
            let mut cur = self.user_uplink.lock().unwrap();
            // One from before (its namespace is gone) is told to exit first.
            *cur = None;
            match link::start_user_uplink(u, &Netns::of_pid(pid)) {
                Ok(p) => *cur = Some(p),
                Err(e) => errs.push(format!("uplink: {e}")),
            }
        }
        match m.effective_netvm(n) {
            Some(net) => {
                if pid_of(&net).is_some()
                    && let Err(e) = self.connect(m, &net, n, pid_of)
                {
                    errs.push(e);
                }
            }
            // No netvm (any more: its netvm was set to none while it ran): no link. The
            // uplink qube's eth0 is its uplink, not a client link.
            None => {
                let is_uplink = self.cfg.uplink_qube() == Some(n);
                if !is_uplink
                    && let Some(pid) = pid_of(n)
                    && let Err(e) =
                        link::run_in(&Netns::of_pid(pid).path, &["ip", "link", "del", "eth0"])
                    && !e.contains("Cannot find device")
                {
                    errs.push(format!("{n}: removing its link: {e}"));
                }
            }
        }
        let mut only = self.affected(m, n);
        if q.provides_network {
            only.push(n.clone());
        }
        if let Err(e) = self.refresh_locked(m, pid_of, &only) {
            errs.push(e);
        }
        all_done(errs)
    }

    /// After `n` stopped: its uplink goes, and the rulesets forget it.
    pub fn stopped(
        &self,
        model: ModelOf<'_>,
        n: &QubeName,
        pid_of: PidOf<'_>,
    ) -> Result<(), String> {
        let _g = self.lock.lock().unwrap();
        // The model is read under the lock, so a change applied after another cannot be
        // overwritten by an older snapshot.
        let m = &model();
        self.cut.lock().unwrap().retain(|(r, c)| r != n && c != n);
        self.forwarding.lock().unwrap().retain(|(r, _)| r != n);
        if let Some(u) = &self.cfg.uplink
            && &u.qube == n
            && let Some(q) = m.qubes.get(n)
        {
            link::disconnect_uplink(u, q.qid, &self.cfg.nft);
        }
        if self.cfg.user_uplink.as_ref().is_some_and(|u| &u.qube == n) {
            *self.user_uplink.lock().unwrap() = None;
        }
        self.refresh_locked(m, pid_of, &self.affected(m, n))
    }

    /// Applies netvm `router`'s own ruleset again (its `vpn-interface` changed).
    pub fn refresh_router(
        &self,
        model: ModelOf<'_>,
        router: &QubeName,
        pid_of: PidOf<'_>,
    ) -> Result<(), String> {
        let _g = self.lock.lock().unwrap();
        let m = &model();
        self.refresh_locked(m, pid_of, std::slice::from_ref(router))
    }

    /// The netvms whose ruleset depends on whether `n` runs: its netvm, and with routed IPv6
    /// (the source sets name qubes further down) every netvm above.
    fn affected(&self, m: &Model, n: &QubeName) -> Vec<QubeName> {
        let path = Self::path(m, n);
        let upto = if self.routed6() {
            path.len()
        } else {
            path.len().min(2)
        };
        path[1..upto].to_vec()
    }

    /// Every qube was stopped (the manager is going away): undo what lives outside the
    /// qubes, the uplink's NAT table in the uplink namespace.
    pub fn all_stopped(&self, m: &Model) {
        let _g = self.lock.lock().unwrap();
        self.cut.lock().unwrap().clear();
        if let Some(u) = &self.cfg.uplink
            && let Some(q) = m.qubes.get(&u.qube)
        {
            link::disconnect_uplink(u, q.qid, &self.cfg.nft);
        }
        *self.user_uplink.lock().unwrap() = None;
    }

    /// Applies the ruleset of `n`'s netvm again (after a change of `n`'s rules).
    pub fn refresh(
        &self,
        model: ModelOf<'_>,
        n: &QubeName,
        pid_of: PidOf<'_>,
    ) -> Result<(), String> {
        let _g = self.lock.lock().unwrap();
        // The model is read under the lock, so a change applied after another cannot be
        // overwritten by an older snapshot.
        let m = &model();
        let netvm: Vec<QubeName> = m.effective_netvm(n).into_iter().collect();
        self.refresh_locked(m, pid_of, &netvm)
    }

    fn connect(
        &self,
        m: &Model,
        netvm: &QubeName,
        client: &QubeName,
        pid_of: PidOf<'_>,
    ) -> Result<(), String> {
        let (Some(np), Some(cp)) = (pid_of(netvm), pid_of(client)) else {
            return Ok(());
        };
        let (Some(ca), Some(ga)) = (self.addrs(m, client), self.addrs(m, netvm)) else {
            return Err(format!("{client}: no address for its qid"));
        };
        let qid = m.qubes[client].qid;
        link::connect_client(
            &Netns::of_pid(np),
            &Netns::of_pid(cp),
            &vif_name(qid),
            ca,
            ga,
        )
        .map_err(|e| format!("{client} to {netvm}: {e}"))
    }

    /// Applies the rulesets of the running netvms in `only`, and (routed IPv6) the routes to
    /// qubes more than one hop down.
    fn refresh_locked(
        &self,
        m: &Model,
        pid_of: PidOf<'_>,
        only: &[QubeName],
    ) -> Result<(), String> {
        let mut errs = Vec::new();
        // Running qubes and their paths up the chain.
        let running: Vec<&QubeName> = m.qubes.keys().filter(|n| pid_of(n).is_some()).collect();
        let paths: BTreeMap<&QubeName, Vec<QubeName>> =
            running.iter().map(|n| (*n, Self::path(m, n))).collect();
        for r in &running {
            if !m.qubes[*r].provides_network || !only.contains(r) {
                continue;
            }
            if let Err(e) = self.apply_router(m, r, &paths, pid_of) {
                errs.push(format!("{r}: {e}"));
            }
        }
        if self.routed6() {
            // Routes in each netvm to the qubes more than one hop below it.
            for path in paths.values() {
                let Some(dst) = self.addrs(m, &path[0]).and_then(|a| a.v6) else {
                    continue;
                };
                for i in 2..path.len() {
                    let (router, via) = (&path[i], &path[i - 1]);
                    let (Some(rp), Some(via6)) =
                        (pid_of(router), self.addrs(m, via).and_then(|a| a.v6))
                    else {
                        continue;
                    };
                    if pid_of(via).is_none() {
                        continue;
                    }
                    let dev = vif_name(m.qubes[via].qid);
                    if let Err(e) = link::route6(&Netns::of_pid(rp).path, dst, via6, &dev) {
                        errs.push(e);
                    }
                }
            }
        }
        all_done(errs)
    }

    /// The ruleset of one running netvm, from its running clients.
    pub fn router_spec(
        &self,
        m: &Model,
        router: &QubeName,
        paths: &BTreeMap<&QubeName, Vec<QubeName>>,
    ) -> RouterSpec {
        let now = now();
        let mut clients = Vec::new();
        for (c, path) in paths {
            if path.get(1) != Some(router) {
                continue;
            }
            let Some(a) = self.addrs(m, c) else { continue };
            let mut src6: Vec<_> = a.v6.into_iter().collect();
            if self.routed6() {
                // Qubes behind this client keep their IPv6 source (no NAT66).
                for p in paths.values() {
                    if p.len() > 2
                        && p[1..].contains(c)
                        && let Some(v6) = self.addrs(m, &p[0]).and_then(|x| x.v6)
                    {
                        src6.push(v6);
                    }
                }
            }
            let rules = nft::resolve_rules(&rules_of(m, c), now, &mut resolve_host);
            clients.push(ClientFw {
                qid: m.qubes[*c].qid,
                ifname: vif_name(m.qubes[*c].qid),
                src4: vec![a.v4],
                src6,
                rules,
            });
        }
        let is_uplink = self.cfg.uplink_qube() == Some(router);
        RouterSpec {
            uplink_if: "eth0".into(),
            virtual_dns: self.cfg.virtual_dns,
            dns_targets: if is_uplink {
                self.cfg
                    .upstream_dns
                    .iter()
                    .filter_map(|a| match a {
                        IpAddr::V4(v4) => Some(*v4),
                        IpAddr::V6(_) => None,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            nat66: self.cfg.ipv6.as_ref().is_some_and(|c| c.nat66),
            egress_only: m
                .qubes
                .get(router)
                .and_then(|q| q.features.get(VPN_FEATURE))
                .cloned(),
            clients,
        }
    }

    /// Applies a netvm's ruleset; on failure its clients' links go down (fail closed) and the
    /// error says why.
    fn apply_router(
        &self,
        m: &Model,
        router: &QubeName,
        paths: &BTreeMap<&QubeName, Vec<QubeName>>,
        pid_of: PidOf<'_>,
    ) -> Result<(), String> {
        let Some(pid) = pid_of(router) else {
            return Ok(());
        };
        let ns = Netns::of_pid(pid).path;
        let spec = self.router_spec(m, router, paths);
        let names: Vec<&QubeName> = paths
            .iter()
            .filter(|(_, p)| p.get(1) == Some(router))
            .map(|(c, _)| *c)
            .collect();
        let text = nft::router_ruleset(&spec);
        let applied = match spec.egress_only.as_deref().map(nft::valid_ifname) {
            Some(Err(e)) => Err(format!("feature {VPN_FEATURE}: {e}")),
            _ => link::nft_apply(&ns, &self.cfg.nft, &text),
        };
        if let Err(e) = applied {
            // Fail closed: every client link down. If even that fails, say so: the clients
            // may still be routed by the previous ruleset.
            let mut down_errors = Vec::new();
            for c in &spec.clients {
                if let Err(down) = link::set_link(&ns, &c.ifname, false) {
                    down_errors.push(down);
                }
            }
            if !down_errors.is_empty() {
                return Err(format!(
                    "the ruleset could not be applied ({e}) and taking its clients' links down \
                     failed too, so they may still be routed by the previous ruleset: {}",
                    down_errors.join("; ")
                ));
            }
            let mut cut = self.cut.lock().unwrap();
            for c in &names {
                cut.insert((router.clone(), (*c).clone()));
            }
            return Err(format!(
                "the ruleset could not be applied, so its clients have no network: {e}"
            ));
        }
        let mut errs = Vec::new();
        for c in names {
            let was_cut = self
                .cut
                .lock()
                .unwrap()
                .remove(&(router.clone(), c.clone()));
            if was_cut && let Err(e) = self.connect(m, router, c, pid_of) {
                errs.push(e);
            }
        }
        for c in &spec.clients {
            if let Err(e) = &c.rules {
                errs.push(format!(
                    "{}: rules could not be applied, it has no network: {e}",
                    vif_name(c.qid)
                ));
            }
        }
        // Once per netvm namespace (a restarted netvm has a new pid), after its first ruleset.
        if self
            .forwarding
            .lock()
            .unwrap()
            .insert((router.clone(), pid))
            && let Err(e) = link::enable_forwarding(&ns, self.cfg.ipv6.is_some())
        {
            self.forwarding
                .lock()
                .unwrap()
                .remove(&(router.clone(), pid));
            return Err(e);
        }
        all_done(errs)
    }
}

/// Looks a `dsthost` name up with the host's resolver (as Qubes resolves in dom0).
fn resolve_host(name: &str) -> Result<Vec<IpAddr>, String> {
    (name, 0u16)
        .to_socket_addrs()
        .map(|it| {
            let mut v: Vec<IpAddr> = it.map(|a| a.ip()).collect();
            v.sort();
            v.dedup();
            v.truncate(64);
            v
        })
        .map_err(|e| e.to_string())
}

/// Every step's error, joined; `Ok` when there were none. (A step's failure does not stop the
/// others: each link or ruleset that can be set up is.)
fn all_done(errs: Vec<String>) -> Result<(), String> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

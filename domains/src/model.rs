//! The qube model: classes, properties, global defaults, labels, and the rules that keep them
//! consistent. Every change is made on a copy and checked as a whole ([`Model::validate`]) before
//! the store writes it, so an invalid state never reaches the disk.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::label::{self, Label};
use crate::name::{NameError, QubeName};

/// Default memory of a new qube in MB, as in Qubes.
pub const DEFAULT_MEMORY: u32 = 400;
/// Default vCPU count of a new qube, as in Qubes.
pub const DEFAULT_VCPUS: u32 = 2;
/// Most features one qube may carry.
pub const MAX_FEATURES: usize = 256;
/// Longest feature value in bytes.
pub const MAX_FEATURE_VALUE: usize = 4096;

/// The class of a qube.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Class {
    AppVM,
    TemplateVM,
    StandaloneVM,
    DispVM,
    /// The admin/GUI domain (`dom0`). Never stored; always present.
    AdminVM,
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Class::AppVM => "AppVM",
            Class::TemplateVM => "TemplateVM",
            Class::StandaloneVM => "StandaloneVM",
            Class::DispVM => "DispVM",
            Class::AdminVM => "AdminVM",
        };
        f.write_str(s)
    }
}

impl FromStr for Class {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        match s.to_ascii_lowercase().as_str() {
            "appvm" => Ok(Class::AppVM),
            "templatevm" | "template" => Ok(Class::TemplateVM),
            "standalonevm" | "standalone" => Ok(Class::StandaloneVM),
            "dispvm" => Ok(Class::DispVM),
            "adminvm" => Err(ModelError::Invalid(
                "there is exactly one AdminVM (dom0); another cannot be created".into(),
            )),
            _ => Err(ModelError::Invalid(format!(
                "unknown class {s:?} (expected appvm, templatevm, standalonevm or dispvm)"
            ))),
        }
    }
}

/// A reference property that can follow a global default, be explicitly empty, or name a qube.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QubeRef {
    Default,
    None,
    Qube(QubeName),
}

/// One qube's stored state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qube {
    /// Stable id; names the qube's volumes on disk, so renaming touches only the record.
    pub qid: u32,
    pub class: Class,
    pub label: String,
    pub template: Option<QubeName>,
    pub netvm: QubeRef,
    pub provides_network: bool,
    pub memory: u32,
    pub vcpus: u32,
    pub autostart: bool,
    pub template_for_dispvms: bool,
    pub default_dispvm: QubeRef,
    pub include_in_backups: bool,
    pub features: BTreeMap<String, String>,
    /// Firewall rules (`corralctl firewall`); `None`: the default list, a single accept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall: Option<Vec<crate::net::Rule>>,
}

/// Global defaults (Qubes' `qubes-prefs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Globals {
    pub default_template: Option<QubeName>,
    pub default_netvm: Option<QubeName>,
    pub default_dispvm: Option<QubeName>,
}

/// The whole model: what the store persists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    pub next_qid: u32,
    pub labels: Vec<Label>,
    pub globals: Globals,
    pub qubes: BTreeMap<QubeName, Qube>,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            next_qid: 1,
            labels: label::builtin_labels(),
            globals: Globals::default(),
            qubes: BTreeMap::new(),
        }
    }
}

/// Why a change to the model was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("no such qube: {0}")]
    NoSuchQube(String),
    #[error("a qube named {0} already exists")]
    Exists(String),
    #[error("no such label: {0} (see `corralctl label list`)")]
    NoSuchLabel(String),
    #[error("{qube}: {prop} {target} is a {actual}, but must be {expected}")]
    WrongClass {
        qube: String,
        prop: &'static str,
        target: String,
        actual: Class,
        expected: &'static str,
    },
    #[error("{qube}: netvm {netvm} does not provide network (set its provides_network to True)")]
    NoNetwork { qube: String, netvm: String },
    #[error("network loop: {0}")]
    NetLoop(String),
    #[error("cannot remove or change {qube}: {}", .users.join(", "))]
    InUse { qube: String, users: Vec<String> },
    #[error("no such property: {0}")]
    NoSuchProperty(String),
    #[error("property {0} is read-only")]
    ReadOnly(String),
    #[error("no such feature: {0}")]
    NoSuchFeature(String),
    #[error("{0}")]
    Invalid(String),
}

/// One row of `prefs`: the key, whether the value is the default, and the value as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefRow {
    pub key: String,
    pub is_default: bool,
    pub value: String,
}

/// Property names `prefs` knows, in display order.
pub const PROPERTIES: &[&str] = &[
    "autostart",
    "default_dispvm",
    "include_in_backups",
    "klass",
    "label",
    "memory",
    "name",
    "netvm",
    "provides_network",
    "qid",
    "template",
    "template_for_dispvms",
    "vcpus",
];

/// Global property names.
pub const GLOBAL_PROPERTIES: &[&str] = &["default_dispvm", "default_netvm", "default_template"];

fn parse_bool(key: &str, v: &str) -> Result<bool, ModelError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(ModelError::Invalid(format!(
            "{key} must be True or False, not {v:?}"
        ))),
    }
}

fn parse_u32(key: &str, v: &str, min: u32, max: u32) -> Result<u32, ModelError> {
    match v.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ModelError::Invalid(format!(
            "{key} must be a whole number from {min} to {max}, not {v:?}"
        ))),
    }
}

fn parse_ref(v: &str) -> Result<QubeRef, ModelError> {
    match v {
        "" | "none" | "None" => Ok(QubeRef::None),
        "default" | "@default" => Ok(QubeRef::Default),
        other => Ok(QubeRef::Qube(QubeName::new(other)?)),
    }
}

fn parse_opt_name(v: &str) -> Result<Option<QubeName>, ModelError> {
    match v {
        "" | "none" | "None" => Ok(None),
        other => Ok(Some(QubeName::new(other)?)),
    }
}

fn show_bool(b: bool) -> String {
    if b { "True" } else { "False" }.to_owned()
}

fn check_feature(key: &str, value: Option<&str>) -> Result<(), ModelError> {
    let key_ok = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !key_ok {
        return Err(ModelError::Invalid(format!(
            "feature name {key:?} must be 1-64 letters, digits, '.', '-' or '_'"
        )));
    }
    if let Some(v) = value
        && (v.len() > MAX_FEATURE_VALUE || v.chars().any(char::is_control))
    {
        return Err(ModelError::Invalid(format!(
            "feature {key}: value must be at most {MAX_FEATURE_VALUE} bytes without control characters"
        )));
    }
    Ok(())
}

impl Model {
    /// The qube named `name`, or a clear error.
    pub fn get(&self, name: &str) -> Result<&Qube, ModelError> {
        self.qubes
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, q)| q)
            .ok_or_else(|| ModelError::NoSuchQube(name.to_owned()))
    }

    fn get_mut(&mut self, name: &str) -> Result<&mut Qube, ModelError> {
        self.qubes
            .iter_mut()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, q)| q)
            .ok_or_else(|| ModelError::NoSuchQube(name.to_owned()))
    }

    /// The label called `name`.
    pub fn label(&self, name: &str) -> Result<&Label, ModelError> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .ok_or_else(|| ModelError::NoSuchLabel(name.to_owned()))
    }

    /// The netvm a qube actually uses, following the global default.
    pub fn effective_netvm(&self, name: &QubeName) -> Option<QubeName> {
        let q = self.qubes.get(name)?;
        match &q.netvm {
            QubeRef::None => None,
            QubeRef::Qube(n) => Some(n.clone()),
            // Templates get no network by default, and a netvm never defaults to itself.
            QubeRef::Default if q.class == Class::TemplateVM => None,
            QubeRef::Default => self.globals.default_netvm.clone().filter(|d| d != name),
        }
    }

    /// The disposable template a qube's `run --dispvm` uses, following the global default.
    pub fn effective_default_dispvm(&self, name: Option<&QubeName>) -> Option<QubeName> {
        let r = name
            .and_then(|n| self.qubes.get(n))
            .map(|q| &q.default_dispvm);
        match r {
            Some(QubeRef::None) => None,
            Some(QubeRef::Qube(n)) => Some(n.clone()),
            Some(QubeRef::Default) | None => self.globals.default_dispvm.clone(),
        }
    }

    /// The qubes that depend on `name` (as template, netvm, default dispvm or global default),
    /// described for an error message.
    pub fn dependents(&self, name: &QubeName) -> Vec<String> {
        let mut out = Vec::new();
        for (n, q) in &self.qubes {
            if q.template.as_ref() == Some(name) {
                out.push(format!("{n} (template)"));
            }
            if q.netvm == QubeRef::Qube(name.clone()) {
                out.push(format!("{n} (netvm)"));
            }
            if q.default_dispvm == QubeRef::Qube(name.clone()) {
                out.push(format!("{n} (default_dispvm)"));
            }
        }
        let g = &self.globals;
        for (key, v) in [
            ("default_template", &g.default_template),
            ("default_netvm", &g.default_netvm),
            ("default_dispvm", &g.default_dispvm),
        ] {
            if v.as_ref() == Some(name) {
                out.push(format!("global {key}"));
            }
        }
        out
    }

    fn check_ref(
        &self,
        qube: &str,
        prop: &'static str,
        target: &QubeName,
        ok: impl Fn(&Qube) -> bool,
        expected: &'static str,
    ) -> Result<(), ModelError> {
        let t = self.qubes.get(target).ok_or_else(|| {
            ModelError::Invalid(format!("{qube}: {prop} {target} does not exist"))
        })?;
        if ok(t) {
            Ok(())
        } else {
            Err(ModelError::WrongClass {
                qube: qube.to_owned(),
                prop,
                target: target.to_string(),
                actual: t.class,
                expected,
            })
        }
    }

    /// Checks every rule over the whole model.
    pub fn validate(&self) -> Result<(), ModelError> {
        let mut indexes = BTreeSet::new();
        for l in &self.labels {
            if !indexes.insert(l.index)
                || self.labels.iter().filter(|m| m.name == l.name).count() > 1
            {
                return Err(ModelError::Invalid(format!("duplicate label {}", l.name)));
            }
        }
        let mut qids = BTreeSet::new();
        for (name, q) in &self.qubes {
            let n = name.as_str();
            if name.is_admin() || q.class == Class::AdminVM {
                return Err(ModelError::Invalid("the admin domain is not stored".into()));
            }
            if !qids.insert(q.qid) || q.qid >= self.next_qid {
                return Err(ModelError::Invalid(format!("{n}: bad qid {}", q.qid)));
            }
            if let Some(rules) = &q.firewall {
                crate::net::rules::check_list(rules)
                    .map_err(|e| ModelError::Invalid(format!("{n}: {e}")))?;
            }
            self.label(&q.label)?;
            match q.class {
                Class::AppVM => {
                    let t = q.template.as_ref().ok_or_else(|| {
                        ModelError::Invalid(format!("{n}: an AppVM needs a template"))
                    })?;
                    self.check_ref(
                        n,
                        "template",
                        t,
                        |t| t.class == Class::TemplateVM,
                        "a TemplateVM",
                    )?;
                }
                Class::DispVM => {
                    let t = q.template.as_ref().ok_or_else(|| {
                        ModelError::Invalid(format!("{n}: a DispVM needs a disposable template"))
                    })?;
                    self.check_ref(
                        n,
                        "template",
                        t,
                        |t| t.template_for_dispvms,
                        "a disposable template (template_for_dispvms=True)",
                    )?;
                }
                Class::TemplateVM | Class::StandaloneVM | Class::AdminVM => {
                    if q.template.is_some() {
                        return Err(ModelError::Invalid(format!(
                            "{n}: a {} has no template",
                            q.class
                        )));
                    }
                }
            }
            if q.template_for_dispvms && !matches!(q.class, Class::AppVM | Class::StandaloneVM) {
                return Err(ModelError::Invalid(format!(
                    "{n}: only an AppVM or StandaloneVM can be a disposable template"
                )));
            }
            if let QubeRef::Qube(t) = &q.netvm {
                if t == name {
                    return Err(ModelError::NetLoop(format!("{n} -> {n}")));
                }
                self.check_ref(n, "netvm", t, |_| true, "")?;
                if !self.qubes[t].provides_network {
                    return Err(ModelError::NoNetwork {
                        qube: n.to_owned(),
                        netvm: t.to_string(),
                    });
                }
            }
            if let QubeRef::Qube(t) = &q.default_dispvm {
                self.check_ref(
                    n,
                    "default_dispvm",
                    t,
                    |t| t.template_for_dispvms,
                    "a disposable template (template_for_dispvms=True)",
                )?;
            }
            if !(32..=1_048_576).contains(&q.memory) || !(1..=256).contains(&q.vcpus) {
                return Err(ModelError::Invalid(format!(
                    "{n}: memory or vcpus out of range"
                )));
            }
            if q.features.len() > MAX_FEATURES {
                return Err(ModelError::Invalid(format!(
                    "{n}: more than {MAX_FEATURES} features"
                )));
            }
            for (k, v) in &q.features {
                check_feature(k, Some(v))?;
            }
        }
        let g = &self.globals;
        if let Some(t) = &g.default_template {
            self.check_ref(
                "global",
                "default_template",
                t,
                |t| t.class == Class::TemplateVM,
                "a TemplateVM",
            )?;
        }
        if let Some(t) = &g.default_netvm {
            self.check_ref(
                "global",
                "default_netvm",
                t,
                |t| t.provides_network,
                "a qube with provides_network=True",
            )?;
        }
        if let Some(t) = &g.default_dispvm {
            self.check_ref(
                "global",
                "default_dispvm",
                t,
                |t| t.template_for_dispvms,
                "a disposable template (template_for_dispvms=True)",
            )?;
        }
        // Network loops, following defaults.
        for name in self.qubes.keys() {
            let mut chain = vec![name.clone()];
            let mut cur = name.clone();
            while let Some(next) = self.effective_netvm(&cur) {
                if chain.contains(&next) {
                    chain.push(next);
                    let text: Vec<&str> = chain.iter().map(QubeName::as_str).collect();
                    return Err(ModelError::NetLoop(text.join(" -> ")));
                }
                chain.push(next.clone());
                cur = next;
            }
        }
        Ok(())
    }

    /// Creates a qube. `template: None` takes the global default_template for classes that
    /// need one.
    pub fn create(
        &mut self,
        name: QubeName,
        class: Class,
        template: Option<QubeName>,
        label: &str,
    ) -> Result<&Qube, ModelError> {
        if self.qubes.contains_key(&name) {
            return Err(ModelError::Exists(name.to_string()));
        }
        let template = match class {
            Class::AppVM => Some(
                template
                    .or_else(|| self.globals.default_template.clone())
                    .ok_or_else(|| {
                        ModelError::Invalid(
                            "no --template given and no global default_template set".into(),
                        )
                    })?,
            ),
            Class::DispVM => Some(
                template
                    .or_else(|| self.globals.default_dispvm.clone())
                    .ok_or_else(|| {
                        ModelError::Invalid(
                            "no --template given and no global default_dispvm set".into(),
                        )
                    })?,
            ),
            Class::TemplateVM | Class::StandaloneVM => {
                if template.is_some() && class == Class::TemplateVM {
                    return Err(ModelError::Invalid("a TemplateVM has no template".into()));
                }
                // A standalone created "from" a template is a copy; the caller copies the
                // volume, the record keeps no link.
                None
            }
            Class::AdminVM => return Err("adminvm".parse::<Class>().unwrap_err()),
        };
        let qid = self.next_qid;
        self.next_qid += 1;
        self.qubes.insert(
            name.clone(),
            Qube {
                qid,
                class,
                label: label.to_owned(),
                template,
                netvm: QubeRef::Default,
                provides_network: false,
                memory: DEFAULT_MEMORY,
                vcpus: DEFAULT_VCPUS,
                autostart: false,
                template_for_dispvms: false,
                default_dispvm: QubeRef::Default,
                include_in_backups: class != Class::DispVM,
                features: BTreeMap::new(),
                firewall: None,
            },
        );
        Ok(&self.qubes[&name])
    }

    /// Copies `src`'s record to `dst` with a fresh qid. Returns (source qid, new qid).
    pub fn clone_qube(&mut self, src: &str, dst: QubeName) -> Result<(u32, u32), ModelError> {
        if self.qubes.contains_key(&dst) {
            return Err(ModelError::Exists(dst.to_string()));
        }
        let mut q = self.get(src)?.clone();
        if q.class == Class::DispVM {
            return Err(ModelError::Invalid("a disposable cannot be cloned".into()));
        }
        let old = q.qid;
        q.qid = self.next_qid;
        self.next_qid += 1;
        let new = q.qid;
        self.qubes.insert(dst, q);
        Ok((old, new))
    }

    /// Renames a qube and every reference to it.
    pub fn rename(&mut self, old: &str, new: QubeName) -> Result<(), ModelError> {
        if self.qubes.contains_key(&new) {
            return Err(ModelError::Exists(new.to_string()));
        }
        let oldname = QubeName::new(old)?;
        let q = self
            .qubes
            .remove(&oldname)
            .ok_or_else(|| ModelError::NoSuchQube(old.to_owned()))?;
        self.qubes.insert(new.clone(), q);
        let fix = |n: &mut QubeName| {
            if *n == oldname {
                *n = new.clone();
            }
        };
        for q in self.qubes.values_mut() {
            if let Some(t) = &mut q.template {
                fix(t);
            }
            if let QubeRef::Qube(t) = &mut q.netvm {
                fix(t);
            }
            if let QubeRef::Qube(t) = &mut q.default_dispvm {
                fix(t);
            }
        }
        let g = &mut self.globals;
        for t in [
            &mut g.default_template,
            &mut g.default_netvm,
            &mut g.default_dispvm,
        ]
        .into_iter()
        .flatten()
        {
            fix(t);
        }
        Ok(())
    }

    /// Removes a qube; refused while others depend on it.
    pub fn remove(&mut self, name: &str) -> Result<Qube, ModelError> {
        let n = QubeName::new(name)?;
        self.get(name)?;
        let users = self.dependents(&n);
        if !users.is_empty() {
            return Err(ModelError::InUse {
                qube: format!("{name}: it is used by"),
                users,
            });
        }
        Ok(self.qubes.remove(&n).expect("checked above"))
    }

    /// All properties of a qube as `prefs` rows.
    pub fn prefs(&self, name: &str) -> Result<Vec<PrefRow>, ModelError> {
        PROPERTIES.iter().map(|k| self.pref(name, k)).collect()
    }

    /// One property of a qube.
    pub fn pref(&self, name: &str, key: &str) -> Result<PrefRow, ModelError> {
        let (qname, q) = self
            .qubes
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .ok_or_else(|| ModelError::NoSuchQube(name.to_owned()))?;
        let row = |is_default: bool, value: String| PrefRow {
            key: key.to_owned(),
            is_default,
            value,
        };
        let opt = |n: Option<QubeName>| n.map(|n| n.to_string()).unwrap_or_default();
        Ok(match key {
            "name" => row(false, name.to_owned()),
            "klass" => row(false, q.class.to_string()),
            "qid" => row(false, q.qid.to_string()),
            "label" => row(false, q.label.clone()),
            "template" => row(false, opt(q.template.clone())),
            "netvm" => row(
                q.netvm == QubeRef::Default,
                opt(self.effective_netvm(qname)),
            ),
            "default_dispvm" => row(
                q.default_dispvm == QubeRef::Default,
                opt(self.effective_default_dispvm(Some(qname))),
            ),
            "provides_network" => row(!q.provides_network, show_bool(q.provides_network)),
            "memory" => row(q.memory == DEFAULT_MEMORY, q.memory.to_string()),
            "vcpus" => row(q.vcpus == DEFAULT_VCPUS, q.vcpus.to_string()),
            "autostart" => row(!q.autostart, show_bool(q.autostart)),
            "template_for_dispvms" => {
                row(!q.template_for_dispvms, show_bool(q.template_for_dispvms))
            }
            "include_in_backups" => row(
                q.include_in_backups == (q.class != Class::DispVM),
                show_bool(q.include_in_backups),
            ),
            other => return Err(ModelError::NoSuchProperty(other.to_owned())),
        })
    }

    /// Sets one property from its text form (`default` resets netvm and default_dispvm).
    pub fn set_pref(&mut self, name: &str, key: &str, value: &str) -> Result<(), ModelError> {
        if !PROPERTIES.contains(&key) {
            return Err(ModelError::NoSuchProperty(key.to_owned()));
        }
        if matches!(key, "name" | "klass" | "qid") {
            return Err(ModelError::ReadOnly(format!(
                "{key}{}",
                if key == "name" {
                    " (use `corralctl rename`)"
                } else {
                    ""
                }
            )));
        }
        if key == "label" {
            self.label(value)?;
        }
        let q = self.get_mut(name)?;
        if value == "default" && !matches!(key, "label" | "template") {
            // qvm-prefs --default: back to the class default.
            match key {
                "netvm" => q.netvm = QubeRef::Default,
                "default_dispvm" => q.default_dispvm = QubeRef::Default,
                "provides_network" => q.provides_network = false,
                "memory" => q.memory = DEFAULT_MEMORY,
                "vcpus" => q.vcpus = DEFAULT_VCPUS,
                "autostart" => q.autostart = false,
                "template_for_dispvms" => q.template_for_dispvms = false,
                "include_in_backups" => q.include_in_backups = q.class != Class::DispVM,
                _ => unreachable!("checked against PROPERTIES"),
            }
            return Ok(());
        }
        match key {
            "label" => q.label = value.to_owned(),
            "template" => {
                if q.template.is_none() {
                    return Err(ModelError::Invalid(format!(
                        "{name}: a {} has no template",
                        q.class
                    )));
                }
                q.template = Some(QubeName::new(value)?);
            }
            "netvm" => q.netvm = parse_ref(value)?,
            "default_dispvm" => q.default_dispvm = parse_ref(value)?,
            "provides_network" => q.provides_network = parse_bool(key, value)?,
            "memory" => q.memory = parse_u32(key, value, 32, 1_048_576)?,
            "vcpus" => q.vcpus = parse_u32(key, value, 1, 256)?,
            "autostart" => q.autostart = parse_bool(key, value)?,
            "template_for_dispvms" => q.template_for_dispvms = parse_bool(key, value)?,
            "include_in_backups" => q.include_in_backups = parse_bool(key, value)?,
            _ => unreachable!("checked against PROPERTIES"),
        }
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) a feature.
    pub fn set_feature(
        &mut self,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), ModelError> {
        check_feature(key, value)?;
        let q = self.get_mut(name)?;
        match value {
            Some(v) => {
                q.features.insert(key.to_owned(), v.to_owned());
            }
            None => {
                q.features
                    .remove(key)
                    .ok_or_else(|| ModelError::NoSuchFeature(key.to_owned()))?;
            }
        }
        Ok(())
    }

    /// The global defaults as `prefs` rows.
    pub fn global_prefs(&self) -> Vec<PrefRow> {
        let g = &self.globals;
        let opt = |n: &Option<QubeName>| n.as_ref().map(|n| n.to_string()).unwrap_or_default();
        vec![
            PrefRow {
                key: "default_dispvm".into(),
                is_default: false,
                value: opt(&g.default_dispvm),
            },
            PrefRow {
                key: "default_netvm".into(),
                is_default: false,
                value: opt(&g.default_netvm),
            },
            PrefRow {
                key: "default_template".into(),
                is_default: false,
                value: opt(&g.default_template),
            },
        ]
    }

    /// Sets one global default (empty or `none` clears it).
    pub fn set_global(&mut self, key: &str, value: &str) -> Result<(), ModelError> {
        let v = parse_opt_name(value)?;
        match key {
            "default_template" => self.globals.default_template = v,
            "default_netvm" => self.globals.default_netvm = v,
            "default_dispvm" => self.globals.default_dispvm = v,
            other => return Err(ModelError::NoSuchProperty(other.to_owned())),
        }
        Ok(())
    }

    /// Adds a custom label with the next free index above 8.
    pub fn add_label(&mut self, name: &str, color: &str) -> Result<&Label, ModelError> {
        label::check_custom(name, color)?;
        if self.labels.iter().any(|l| l.name == name) {
            return Err(ModelError::Exists(format!("label {name}")));
        }
        let index = self
            .labels
            .iter()
            .map(|l| l.index)
            .max()
            .unwrap_or(8)
            .max(8)
            + 1;
        self.labels.push(Label {
            index,
            name: name.to_owned(),
            color: color.to_ascii_lowercase(),
        });
        Ok(self.labels.last().expect("just pushed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> QubeName {
        QubeName::new(s).unwrap()
    }

    fn base() -> Model {
        let mut m = Model::default();
        m.create(n("host"), Class::TemplateVM, None, "black")
            .unwrap();
        m.create(n("work"), Class::AppVM, Some(n("host")), "blue")
            .unwrap();
        m.validate().unwrap();
        m
    }

    #[test]
    fn builtin_labels_match_qubes() {
        let m = Model::default();
        assert_eq!(m.label("blue").unwrap().index, 6);
        assert_eq!(m.label("blue").unwrap().color, "#3465a4");
        assert_eq!(m.label("black").unwrap().index, 8);
        assert_eq!(m.labels.len(), 8);
    }

    #[test]
    fn custom_labels_get_indexes_above_eight() {
        let mut m = Model::default();
        assert_eq!(m.add_label("teal", "#008080").unwrap().index, 9);
        assert_eq!(m.add_label("pink", "#FFC0CB").unwrap().index, 10);
        assert!(m.add_label("teal", "#000000").is_err());
        assert!(m.add_label("Bad", "#000000").is_err());
        assert!(m.add_label("ok", "red").is_err());
        m.validate().unwrap();
    }

    #[test]
    fn unknown_and_wrong_class_templates_are_refused() {
        let mut m = base();
        m.create(n("a"), Class::AppVM, Some(n("nope")), "red")
            .unwrap();
        assert_eq!(
            m.validate().unwrap_err().to_string(),
            "a: template nope does not exist"
        );
        let mut m = base();
        m.create(n("a"), Class::AppVM, Some(n("work")), "red")
            .unwrap();
        let e = m.validate().unwrap_err();
        assert!(
            matches!(
                e,
                ModelError::WrongClass {
                    actual: Class::AppVM,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "a: template work is a AppVM, but must be a TemplateVM"
        );
    }

    #[test]
    fn unknown_label_is_refused() {
        let mut m = base();
        m.create(n("a"), Class::AppVM, Some(n("host")), "mauve")
            .unwrap();
        assert_eq!(
            m.validate().unwrap_err(),
            ModelError::NoSuchLabel("mauve".into())
        );
    }

    #[test]
    fn netvm_must_provide_network_and_loops_are_refused() {
        let mut m = base();
        m.create(n("net"), Class::AppVM, Some(n("host")), "red")
            .unwrap();
        m.set_pref("work", "netvm", "net").unwrap();
        assert!(matches!(m.validate(), Err(ModelError::NoNetwork { .. })));
        m.set_pref("net", "provides_network", "True").unwrap();
        m.validate().unwrap();
        m.set_pref("work", "provides_network", "True").unwrap();
        m.set_pref("net", "netvm", "work").unwrap();
        assert_eq!(
            m.validate().unwrap_err(),
            ModelError::NetLoop("net -> work -> net".into())
        );
        m.set_pref("net", "netvm", "none").unwrap();
        m.validate().unwrap();
        // A loop through the global default.
        m.set_global("default_netvm", "net").unwrap();
        m.set_pref("net", "netvm", "work").unwrap();
        assert!(matches!(m.validate(), Err(ModelError::NetLoop(_))));
    }

    #[test]
    fn dispvm_template_rules() {
        let mut m = base();
        m.create(n("d1"), Class::DispVM, Some(n("work")), "red")
            .unwrap();
        assert!(matches!(m.validate(), Err(ModelError::WrongClass { .. })));
        m.set_pref("work", "template_for_dispvms", "True").unwrap();
        m.validate().unwrap();
        m.set_global("default_dispvm", "host").unwrap();
        assert!(m.validate().is_err());
        m.set_global("default_dispvm", "work").unwrap();
        m.validate().unwrap();
        assert_eq!(m.effective_default_dispvm(None), Some(n("work")));
    }

    #[test]
    fn remove_names_dependents_and_rename_follows_references() {
        let mut m = base();
        m.set_global("default_template", "host").unwrap();
        let e = m.remove("host").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot remove or change host: it is used by: work (template), global default_template"
        );
        m.rename("host", n("deb")).unwrap();
        m.validate().unwrap();
        assert_eq!(m.get("work").unwrap().template, Some(n("deb")));
        assert_eq!(m.globals.default_template, Some(n("deb")));
        m.remove("work").unwrap();
        m.set_global("default_template", "").unwrap();
        m.remove("deb").unwrap();
        assert!(m.qubes.is_empty());
    }

    #[test]
    fn prefs_mark_defaults_and_parse_values() {
        let mut m = base();
        let mem = m.pref("work", "memory").unwrap();
        assert!(mem.is_default);
        assert_eq!(mem.value, "400");
        m.set_pref("work", "memory", "1024").unwrap();
        assert!(!m.pref("work", "memory").unwrap().is_default);
        assert!(m.set_pref("work", "memory", "lots").is_err());
        m.set_pref("work", "memory", "default").unwrap();
        assert!(m.pref("work", "memory").unwrap().is_default);
        assert!(m.set_pref("work", "vcpus", "0").is_err());
        assert_eq!(
            m.set_pref("work", "name", "x").unwrap_err().to_string(),
            "property name (use `corralctl rename`) is read-only"
        );
        assert_eq!(
            m.set_pref("work", "colour", "x").unwrap_err(),
            ModelError::NoSuchProperty("colour".into())
        );
        assert!(m.set_pref("host", "template", "work").is_err());
        assert_eq!(m.prefs("work").unwrap().len(), PROPERTIES.len());
    }

    #[test]
    fn features_are_checked() {
        let mut m = base();
        m.set_feature("work", "gui", Some("1")).unwrap();
        assert_eq!(m.get("work").unwrap().features["gui"], "1");
        assert!(m.set_feature("work", "bad key", Some("1")).is_err());
        assert!(m.set_feature("work", "k", Some("a\nb")).is_err());
        m.set_feature("work", "gui", None).unwrap();
        assert!(m.set_feature("work", "gui", None).is_err());
    }

    #[test]
    fn model_round_trips_through_json() {
        let m = base();
        let text = serde_json::to_string(&m).unwrap();
        let back: Model = serde_json::from_str(&text).unwrap();
        assert_eq!(m, back);
        // A reserved name smuggled into the file is refused on load.
        let bad = text
            .replace("\"work\"", "\"dom0\"")
            .replace("\"host\"", "\"none\"");
        assert!(serde_json::from_str::<Model>(&bad).is_err());
    }
}

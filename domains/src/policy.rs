//! The policy engine: `*.policy` files in the Qubes qrexec syntax (see `docs/policy.md`).
//!
//! ```text
//! # SERVICE        ARG  SOURCE   TARGET   ACTION  [PARAMS]
//! corral.ClipboardPaste *  @anyvm   @anyvm   ask
//! corral.FileCopy  *    work     @dispvm  allow   target=@dispvm:work-dvm
//! !include-dir /etc/corral/policy.d/local
//! ```
//!
//! Files of a directory are read in C-locale (byte) order of their names, only names ending in
//! `.policy`. The first rule that matches a request decides. A policy with any error (a bad
//! line, an unreadable or cyclic include) is *invalid as a whole*: every decision is deny, and
//! the error names the file, the line and what was expected there.
//!
//! The engine knows nothing of the qube store: the caller describes each qube with a
//! [`QubeFacts`] (name, class, tags, the disposable template of a disposable).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The admin domain's name (the GUI domain / dom0). `@anyvm` never matches it.
pub const ADMIN_VM: &str = "dom0";
/// Deepest chain of `!include` / `!include-dir`.
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// Largest policy file read (bytes); a larger one is an error.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most rules in one policy (all files together).
pub const MAX_RULES: usize = 100_000;
/// Longest service name, argument, qube name, tag or parameter value.
const MAX_TOKEN: usize = 255;

/// The qube classes `@type:` accepts.
pub const CLASSES: &[&str] = &["AdminVM", "AppVM", "DispVM", "StandaloneVM", "TemplateVM"];

/// What a rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    Deny,
    Ask,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Ask => "ask",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The service column: a name or `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServiceSpec {
    Any,
    Name(String),
}

/// The argument column: `*` or `+ARG` (`+` alone is the empty argument).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArgSpec {
    Any,
    Exact(String),
}

/// A qube specification in the source or target column (or a `target=` value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QubeSpec {
    /// `@anyvm`: any qube except the admin domain.
    AnyVm,
    /// `@adminvm`: the admin domain.
    AdminVm,
    /// `@default`: the request named no target (target column only).
    Default,
    /// `@dispvm`: a new disposable from the default disposable template (as a target); any
    /// disposable qube (as a source).
    DispVm,
    /// `@dispvm:NAME`: a disposable of the disposable template NAME.
    DispVmOf(String),
    /// `@tag:T`: a qube carrying tag T.
    Tag(String),
    /// `@type:CLASS`: a qube of that class.
    Type(String),
    /// A qube by name.
    Name(String),
}

impl fmt::Display for QubeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QubeSpec::AnyVm => f.write_str("@anyvm"),
            QubeSpec::AdminVm => f.write_str("@adminvm"),
            QubeSpec::Default => f.write_str("@default"),
            QubeSpec::DispVm => f.write_str("@dispvm"),
            QubeSpec::DispVmOf(n) => write!(f, "@dispvm:{n}"),
            QubeSpec::Tag(t) => write!(f, "@tag:{t}"),
            QubeSpec::Type(t) => write!(f, "@type:{t}"),
            QubeSpec::Name(n) => f.write_str(n),
        }
    }
}

/// The optional `key=value` parameters after the action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Params {
    /// `target=`: redirect the call to this qube (allow, ask).
    pub target: Option<QubeSpec>,
    /// `user=`: run the service as this user (allow, ask).
    pub user: Option<String>,
    /// `default_target=`: preselected in the prompt (ask).
    pub default_target: Option<QubeSpec>,
    /// `notify=yes|no`: tell the user about the decision.
    pub notify: Option<bool>,
    /// `autostart=yes|no`: start the target if it is not running (allow, ask).
    pub autostart: Option<bool>,
}

impl Params {
    pub fn is_empty(&self) -> bool {
        *self == Params::default()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yn = |b: bool| if b { "yes" } else { "no" };
        let mut parts = Vec::new();
        if let Some(t) = &self.target {
            parts.push(format!("target={t}"));
        }
        if let Some(u) = &self.user {
            parts.push(format!("user={u}"));
        }
        if let Some(t) = &self.default_target {
            parts.push(format!("default_target={t}"));
        }
        if let Some(n) = self.notify {
            parts.push(format!("notify={}", yn(n)));
        }
        if let Some(a) = self.autostart {
            parts.push(format!("autostart={}", yn(a)));
        }
        f.write_str(&parts.join(" "))
    }
}

/// Where a rule (or an error) is: the file and the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One rule line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub service: ServiceSpec,
    pub argument: ArgSpec,
    pub source: QubeSpec,
    pub target: QubeSpec,
    pub action: Action,
    pub params: Params,
}

impl fmt::Display for Rule {
    /// The rule as a policy line (parsing it gives the same rule back).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.service {
            ServiceSpec::Any => f.write_str("*")?,
            ServiceSpec::Name(n) => f.write_str(n)?,
        }
        match &self.argument {
            ArgSpec::Any => f.write_str(" *")?,
            ArgSpec::Exact(a) => write!(f, " +{a}")?,
        }
        write!(f, " {} {} {}", self.source, self.target, self.action)?;
        if !self.params.is_empty() {
            write!(f, " {}", self.params)?;
        }
        Ok(())
    }
}

/// One parsed line of a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Blank or a comment.
    Empty,
    Rule(Rule),
    /// `!include FILE`
    Include(String),
    /// `!include-dir DIR`
    IncludeDir(String),
}

/// Why a policy is invalid: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub file: PathBuf,
    /// 1-based; `None` when the error is about the file as a whole (unreadable, too large).
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file.display(), l, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for PolicyError {}

/// What the engine knows about a qube, provided by the caller (from the store).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QubeFacts {
    pub name: String,
    /// `AppVM`, `DispVM`, `TemplateVM`, `StandaloneVM` or `AdminVM`.
    pub class: String,
    pub tags: Vec<String>,
    /// For a disposable: the disposable template it was made from.
    pub dispvm_template: Option<String>,
}

impl QubeFacts {
    /// A plain AppVM with no tags.
    pub fn app(name: &str) -> Self {
        QubeFacts {
            name: name.to_string(),
            class: "AppVM".into(),
            ..QubeFacts::default()
        }
    }
    /// The admin domain (the GUI domain).
    pub fn admin() -> Self {
        QubeFacts {
            name: ADMIN_VM.into(),
            class: "AdminVM".into(),
            ..QubeFacts::default()
        }
    }
    pub fn is_admin(&self) -> bool {
        self.class == "AdminVM" || self.name == ADMIN_VM
    }
}

/// The target of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// A named, existing qube.
    Qube(&'a QubeFacts),
    /// The caller named no target (`@default`).
    Default,
    /// A new disposable: of the default template (`None`) or of the named one.
    DispVm(Option<&'a str>),
}

/// One question to the engine.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub service: &'a str,
    /// The argument without its `+` (empty when none).
    pub argument: &'a str,
    pub source: &'a QubeFacts,
    pub target: Target<'a>,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// The rule's line; for an invalid policy, the error's place; `None` when no rule matched.
    pub line: Option<Location>,
    pub params: Params,
    /// Set when the policy is invalid (then `action` is always deny).
    pub error: Option<PolicyError>,
}

impl Decision {
    /// Allow, or ask where the caller treats ask as allow (a shortcut-triggered paste).
    pub fn permits(&self, ask_is_allow: bool) -> bool {
        match self.action {
            Action::Allow => true,
            Action::Ask => ask_is_allow,
            Action::Deny => false,
        }
    }

    /// "file:line" of what decided, or a short reason.
    pub fn origin(&self) -> String {
        match (&self.error, &self.line) {
            (Some(e), _) => format!("invalid policy: {e}"),
            (None, Some(l)) => l.to_string(),
            (None, None) => "no rule matched".into(),
        }
    }
}

/// A loaded policy: rules in order, or the error that makes it deny everything.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<(Rule, Location)>,
    error: Option<PolicyError>,
}

impl Policy {
    /// Reads every `*.policy` file of `dir` in byte order of their names (and their includes).
    /// Never fails: an invalid policy is returned with its error, and denies everything.
    pub fn load_dir(dir: &Path) -> Policy {
        let mut loader = Loader::default();
        match loader.dir(dir, 0) {
            Ok(()) => Policy {
                rules: loader.rules,
                error: None,
            },
            Err(e) => Policy {
                rules: Vec::new(),
                error: Some(e),
            },
        }
    }

    /// Parses one policy text (as if it were the file `origin`); includes are refused.
    pub fn from_text(text: &str, origin: &Path) -> Policy {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let at = Location {
                file: origin.to_path_buf(),
                line: i + 1,
            };
            if rules.len() >= MAX_RULES {
                return Policy::invalid(at, format!("more than {MAX_RULES} rules"));
            }
            match parse_line(raw) {
                Ok(Line::Empty) => {}
                Ok(Line::Rule(r)) => rules.push((r, at)),
                Ok(Line::Include(_) | Line::IncludeDir(_)) => {
                    return Policy::invalid(at, "includes are not allowed here".into());
                }
                Err(message) => return Policy::invalid(at, message),
            }
        }
        Policy { rules, error: None }
    }

    fn invalid(at: Location, message: String) -> Policy {
        Policy {
            rules: Vec::new(),
            error: Some(PolicyError {
                file: at.file,
                line: Some(at.line),
                message,
            }),
        }
    }

    pub fn error(&self) -> Option<&PolicyError> {
        self.error.as_ref()
    }

    pub fn rules(&self) -> impl Iterator<Item = (&Rule, &Location)> {
        self.rules.iter().map(|(r, l)| (r, l))
    }

    /// The first matching rule decides; none matching is deny; an invalid policy denies.
    pub fn evaluate(&self, req: &Request<'_>) -> Decision {
        if let Some(e) = &self.error {
            return Decision {
                action: Action::Deny,
                line: e.line.map(|line| Location {
                    file: e.file.clone(),
                    line,
                }),
                params: Params::default(),
                error: Some(e.clone()),
            };
        }
        for (rule, at) in &self.rules {
            if rule_matches(rule, req) {
                return Decision {
                    action: rule.action,
                    line: Some(at.clone()),
                    params: rule.params.clone(),
                    error: None,
                };
            }
        }
        Decision {
            action: Action::Deny,
            line: None,
            params: Params::default(),
            error: None,
        }
    }
}

/// What `corralctl policy check SERVICE SOURCE TARGET` prints: the decision and what made it.
pub fn explain(policy: &Policy, req: &Request<'_>) -> String {
    let d = policy.evaluate(req);
    let target = match &req.target {
        Target::Qube(q) => q.name.clone(),
        Target::Default => "@default".into(),
        Target::DispVm(None) => "@dispvm".into(),
        Target::DispVm(Some(t)) => format!("@dispvm:{t}"),
    };
    let arg = if req.argument.is_empty() {
        String::new()
    } else {
        format!("+{}", req.argument)
    };
    let head = format!(
        "{}{} {} -> {}: {}",
        req.service, arg, req.source.name, target, d.action
    );
    let params = if d.params.is_empty() {
        String::new()
    } else {
        format!(" {}", d.params)
    };
    match (&d.error, &d.line) {
        (Some(e), _) => format!("{head} (the policy is invalid, so everything is denied: {e})"),
        (None, Some(at)) => {
            let rule = policy
                .rules
                .iter()
                .find(|(_, l)| l == at)
                .map(|(r, _)| r.to_string())
                .unwrap_or_default();
            format!("{head}{params} (by {at}: {rule})")
        }
        (None, None) => format!("{head} (no rule matched: the default is deny)"),
    }
}

/// `corralctl policy check SERVICE[+ARG] SOURCE TARGET` without the store: loads `dir` and
/// explains the decision for qubes known only by name (class AppVM, no tags; `dom0` or
/// `@adminvm` is the admin domain). TARGET may also be `@default`, `@dispvm` or
/// `@dispvm:NAME`. A caller with the store should build [`QubeFacts`] and use [`explain`].
pub fn explain_names(dir: &Path, service: &str, source: &str, target: &str) -> String {
    check_names(dir, service, source, target).1
}

/// Like [`explain_names`], with the decided action too (for exit codes).
pub fn check_names(dir: &Path, service: &str, source: &str, target: &str) -> (Action, String) {
    let facts = |n: &str| {
        if n == ADMIN_VM || n == "@adminvm" {
            QubeFacts::admin()
        } else {
            QubeFacts::app(n)
        }
    };
    let (service, argument) = service.split_once('+').unwrap_or((service, ""));
    let policy = Policy::load_dir(dir);
    let src = facts(source);
    let dst = facts(target);
    let target = match target {
        "@default" => Target::Default,
        "@dispvm" => Target::DispVm(None),
        t => match t.strip_prefix("@dispvm:") {
            Some(tpl) => Target::DispVm(Some(tpl)),
            None => Target::Qube(&dst),
        },
    };
    let request = Request {
        service,
        argument,
        source: &src,
        target,
    };
    (policy.evaluate(&request).action, explain(&policy, &request))
}

fn rule_matches(rule: &Rule, req: &Request<'_>) -> bool {
    let service_ok = match &rule.service {
        ServiceSpec::Any => true,
        ServiceSpec::Name(n) => n == req.service,
    };
    let arg_ok = match &rule.argument {
        ArgSpec::Any => true,
        ArgSpec::Exact(a) => a == req.argument,
    };
    service_ok
        && arg_ok
        && source_matches(&rule.source, req.source)
        && target_matches(&rule.target, &req.target)
}

fn qube_matches(spec: &QubeSpec, q: &QubeFacts) -> bool {
    match spec {
        QubeSpec::AnyVm => !q.is_admin(),
        QubeSpec::AdminVm => q.is_admin(),
        QubeSpec::Default => false,
        QubeSpec::DispVm => q.class == "DispVM",
        QubeSpec::DispVmOf(t) => {
            q.class == "DispVM" && q.dispvm_template.as_deref() == Some(t.as_str())
        }
        QubeSpec::Tag(t) => q.tags.iter().any(|x| x == t),
        QubeSpec::Type(c) => q.class == *c,
        QubeSpec::Name(n) => *n == q.name,
    }
}

fn source_matches(spec: &QubeSpec, q: &QubeFacts) -> bool {
    qube_matches(spec, q)
}

fn target_matches(spec: &QubeSpec, t: &Target<'_>) -> bool {
    match t {
        Target::Qube(q) => qube_matches(spec, q),
        Target::Default => matches!(spec, QubeSpec::Default),
        Target::DispVm(None) => matches!(spec, QubeSpec::DispVm | QubeSpec::AnyVm),
        Target::DispVm(Some(tpl)) => match spec {
            QubeSpec::AnyVm => true,
            QubeSpec::DispVmOf(n) => n == tpl,
            _ => false,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// A qube name as Qubes allows it: a letter, then letters, digits, `_`, `-`, `.`; 1..=31.
pub fn valid_qube_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && s.len() <= 31
        && chars.all(is_name_char)
}

fn valid_service(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_TOKEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn valid_argument(s: &str) -> bool {
    s.len() <= MAX_TOKEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'))
}

fn valid_tag(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TOKEN && s.chars().all(is_name_char)
}

fn parse_qube_spec(tok: &str, column: &str) -> Result<QubeSpec, String> {
    let bad = |what: &str| {
        Err(format!(
            "{column}: {tok:?} is not a qube specification ({what})"
        ))
    };
    if let Some(rest) = tok.strip_prefix('@') {
        if let Some(t) = rest.strip_prefix("tag:") {
            return if valid_tag(t) {
                Ok(QubeSpec::Tag(t.to_string()))
            } else {
                bad("expected @tag:NAME with letters, digits, _ - .")
            };
        }
        if let Some(c) = rest.strip_prefix("type:") {
            return if CLASSES.contains(&c) {
                Ok(QubeSpec::Type(c.to_string()))
            } else {
                bad(&format!("expected @type: one of {}", CLASSES.join(", ")))
            };
        }
        if let Some(n) = rest.strip_prefix("dispvm:") {
            return if valid_qube_name(n) {
                Ok(QubeSpec::DispVmOf(n.to_string()))
            } else {
                bad("expected @dispvm:QUBE with a valid qube name")
            };
        }
        return match rest {
            "anyvm" => Ok(QubeSpec::AnyVm),
            "adminvm" => Ok(QubeSpec::AdminVm),
            "default" => Ok(QubeSpec::Default),
            "dispvm" => Ok(QubeSpec::DispVm),
            _ => bad(
                "expected @anyvm, @adminvm, @default, @dispvm, @dispvm:NAME, @tag:T, @type:CLASS",
            ),
        };
    }
    if valid_qube_name(tok) {
        Ok(QubeSpec::Name(tok.to_string()))
    } else {
        bad("expected a qube name: a letter, then letters, digits, _ - . (at most 31)")
    }
}

fn parse_yes_no(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("{key}={v:?}: expected {key}=yes or {key}=no")),
    }
}

fn parse_params(action: Action, toks: &[&str]) -> Result<Params, String> {
    let mut p = Params::default();
    let mut seen = Vec::new();
    for tok in toks {
        let Some((key, value)) = tok.split_once('=') else {
            return Err(format!(
                "{tok:?}: expected a parameter KEY=VALUE (target=, user=, default_target=, \
                 notify=, autostart=)"
            ));
        };
        if seen.contains(&key) {
            return Err(format!("parameter {key}= given twice"));
        }
        seen.push(key);
        let only = |allowed: &[Action]| {
            if allowed.contains(&action) {
                Ok(())
            } else {
                Err(format!(
                    "parameter {key}= is not allowed with {action} (only with {})",
                    allowed
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(" or ")
                ))
            }
        };
        match key {
            "target" => {
                only(&[Action::Allow, Action::Ask])?;
                let spec = parse_qube_spec(value, "target=")?;
                if matches!(
                    spec,
                    QubeSpec::AnyVm | QubeSpec::Default | QubeSpec::Tag(_) | QubeSpec::Type(_)
                ) {
                    return Err(format!(
                        "target={value}: expected one qube (a name, @adminvm, @dispvm or \
                         @dispvm:NAME)"
                    ));
                }
                p.target = Some(spec);
            }
            "default_target" => {
                only(&[Action::Ask])?;
                let spec = parse_qube_spec(value, "default_target=")?;
                if matches!(
                    spec,
                    QubeSpec::AnyVm | QubeSpec::Default | QubeSpec::Tag(_) | QubeSpec::Type(_)
                ) {
                    return Err(format!(
                        "default_target={value}: expected one qube (a name, @adminvm, @dispvm \
                         or @dispvm:NAME)"
                    ));
                }
                p.default_target = Some(spec);
            }
            "user" => {
                only(&[Action::Allow, Action::Ask])?;
                if value.is_empty()
                    || value.len() > 32
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                {
                    return Err(format!(
                        "user={value:?}: expected a user name (letters, digits, _ - .)"
                    ));
                }
                p.user = Some(value.to_string());
            }
            "notify" => p.notify = Some(parse_yes_no(key, value)?),
            "autostart" => {
                only(&[Action::Allow, Action::Ask])?;
                p.autostart = Some(parse_yes_no(key, value)?);
            }
            _ => {
                return Err(format!(
                    "unknown parameter {key:?}: expected target=, user=, default_target=, \
                     notify= or autostart="
                ));
            }
        }
    }
    Ok(p)
}

/// Parses one line of a policy file. The error says what was expected.
pub fn parse_line(raw: &str) -> Result<Line, String> {
    let line = raw.trim_matches([' ', '\t', '\r']);
    if line.is_empty() || line.starts_with('#') {
        return Ok(Line::Empty);
    }
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err("control characters are not allowed".into());
    }
    let toks: Vec<&str> = line.split([' ', '\t']).filter(|t| !t.is_empty()).collect();
    if let Some(directive) = toks[0].strip_prefix('!') {
        let path = || -> Result<String, String> {
            match &toks[1..] {
                [p] => Ok((*p).to_string()),
                _ => Err(format!("!{directive}: expected exactly one path")),
            }
        };
        return match directive {
            "include" => Ok(Line::Include(path()?)),
            "include-dir" => Ok(Line::IncludeDir(path()?)),
            _ => Err(format!(
                "unknown directive !{directive}: expected !include FILE or !include-dir DIR"
            )),
        };
    }
    if toks.len() < 5 {
        return Err(format!(
            "expected SERVICE ARGUMENT SOURCE TARGET ACTION [PARAMS], found {} field(s)",
            toks.len()
        ));
    }
    let service = match toks[0] {
        "*" => ServiceSpec::Any,
        s if valid_service(s) => ServiceSpec::Name(s.to_string()),
        s => {
            return Err(format!(
                "service {s:?}: expected * or a name of letters, digits, _ - ."
            ));
        }
    };
    let argument = match toks[1] {
        "*" => ArgSpec::Any,
        a => match a.strip_prefix('+') {
            Some(rest) if valid_argument(rest) => ArgSpec::Exact(rest.to_string()),
            _ => {
                return Err(format!(
                    "argument {a:?}: expected * or +ARGUMENT (letters, digits, _ - . +)"
                ));
            }
        },
    };
    let source = parse_qube_spec(toks[2], "source")?;
    if source == QubeSpec::Default {
        return Err("source: @default is only allowed in the target column".into());
    }
    let target = parse_qube_spec(toks[3], "target")?;
    let action = match toks[4] {
        "allow" => Action::Allow,
        "deny" => Action::Deny,
        "ask" => Action::Ask,
        a => return Err(format!("action {a:?}: expected allow, deny or ask")),
    };
    let params = parse_params(action, &toks[5..])?;
    Ok(Line::Rule(Rule {
        service,
        argument,
        source,
        target,
        action,
        params,
    }))
}

#[derive(Default)]
struct Loader {
    rules: Vec<(Rule, Location)>,
    /// Canonical paths of the files and directories being read (cycle detection).
    stack: Vec<PathBuf>,
}

impl Loader {
    fn err(file: &Path, line: Option<usize>, message: String) -> PolicyError {
        PolicyError {
            file: file.to_path_buf(),
            line,
            message,
        }
    }

    fn enter(&mut self, path: &Path, depth: usize) -> Result<(), PolicyError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(Self::err(
                path,
                None,
                format!("includes nested deeper than {MAX_INCLUDE_DEPTH}"),
            ));
        }
        let canon = path
            .canonicalize()
            .map_err(|e| Self::err(path, None, format!("cannot be read: {e}")))?;
        if self.stack.contains(&canon) {
            return Err(Self::err(path, None, "included in a cycle".into()));
        }
        self.stack.push(canon);
        Ok(())
    }

    fn dir(&mut self, dir: &Path, depth: usize) -> Result<(), PolicyError> {
        self.enter(dir, depth)?;
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Self::err(dir, None, format!("cannot list the directory: {e}")))?;
        // Byte order of the names (the C locale).
        let mut files = BTreeMap::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| Self::err(dir, None, format!("cannot list the directory: {e}")))?;
            let name = entry.file_name();
            let bytes = std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()).to_vec();
            if bytes.ends_with(b".policy") && !bytes.starts_with(b".") {
                files.insert(bytes, entry.path());
            }
        }
        for path in files.values() {
            self.file(path, depth + 1)?;
        }
        self.stack.pop();
        Ok(())
    }

    fn file(&mut self, path: &Path, depth: usize) -> Result<(), PolicyError> {
        self.enter(path, depth)?;
        let meta = std::fs::metadata(path)
            .map_err(|e| Self::err(path, None, format!("cannot be read: {e}")))?;
        if !meta.is_file() {
            return Err(Self::err(path, None, "is not a regular file".into()));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(Self::err(
                path,
                None,
                format!("larger than {MAX_FILE_BYTES} bytes"),
            ));
        }
        let bytes = std::fs::read(path)
            .map_err(|e| Self::err(path, None, format!("cannot be read: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Self::err(path, None, "is not valid UTF-8".into()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for (i, raw) in text.lines().enumerate() {
            let lineno = i + 1;
            let line = parse_line(raw).map_err(|message| Self::err(path, Some(lineno), message))?;
            match line {
                Line::Empty => {}
                Line::Rule(rule) => {
                    if self.rules.len() >= MAX_RULES {
                        return Err(Self::err(
                            path,
                            Some(lineno),
                            format!("more than {MAX_RULES} rules"),
                        ));
                    }
                    self.rules.push((
                        rule,
                        Location {
                            file: path.to_path_buf(),
                            line: lineno,
                        },
                    ));
                }
                Line::Include(p) => {
                    let p = base.join(p);
                    self.file(&p, depth + 1)
                        .map_err(|e| included_error(e, path, lineno, &p))?;
                }
                Line::IncludeDir(p) => {
                    let p = base.join(p);
                    self.dir(&p, depth + 1)
                        .map_err(|e| included_error(e, path, lineno, &p))?;
                }
            }
        }
        self.stack.pop();
        Ok(())
    }
}

/// An error in an included file keeps its own place; an include that cannot be followed at all
/// names the `!include` line.
fn included_error(e: PolicyError, from: &Path, lineno: usize, target: &Path) -> PolicyError {
    if e.line.is_none() && e.file == target {
        PolicyError {
            file: from.to_path_buf(),
            line: Some(lineno),
            message: format!("{}: {}", target.display(), e.message),
        }
    } else {
        e
    }
}

//! `corralctl`: the admin CLI of Corral (the `qvm-*` tools of Qubes), and the standalone
//! domain manager (`corralctl daemon`).
//!
//! Exit codes: 0 success; 1 the manager refused or failed (message on stderr); 2 bad usage;
//! 3 no manager to talk to. `run -p` exits with the command's status (128+N for signal N).

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use corral_domains::api::{QubeInfo, Reply, Request};
use corral_domains::manager::{Client, Manager, Paths};
use corral_domains::model::PrefRow;
use corral_domains::sandbox::SandboxBackend;
use serde_json::Value;

/// Administers Corral's qubes (like Qubes' qvm-* tools).
///
/// Talks to the domain manager over its admin socket ($XDG_RUNTIME_DIR/corral/admin.sock, or
/// --socket / CORRAL_ADMIN_SOCKET). Start a standalone manager with `corralctl daemon`.
#[derive(Debug, Parser)]
#[command(name = "corralctl", version)]
struct Args {
    /// The admin socket of the domain manager.
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the domain manager in the foreground (headless use, tests).
    Daemon {
        /// Qube data (default: $CORRAL_DATA_DIR, $XDG_DATA_HOME/corral, or /var/lib/corral as root).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Runtime state and the socket (default: $CORRAL_RUNTIME_DIR, $XDG_RUNTIME_DIR/corral, or /run/corral).
        #[arg(long)]
        runtime_dir: Option<PathBuf>,
    },
    /// Lists qubes (qvm-ls).
    Ls {
        /// Prints JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Creates a qube (qvm-create).
    Create {
        name: String,
        /// appvm, templatevm, standalonevm or dispvm.
        #[arg(long, short = 'C', default_value = "appvm")]
        class: String,
        /// The template (AppVM: a TemplateVM; DispVM: a disposable template; StandaloneVM: the
        /// template whose root it copies). Default: the global default_template.
        #[arg(long, short = 't')]
        template: Option<String>,
        /// One of `corralctl label list`.
        #[arg(long, short = 'l')]
        label: String,
        /// The netvm (default: the global default_netvm).
        #[arg(long)]
        netvm: Option<String>,
    },
    /// Copies a qube, volumes included (qvm-clone).
    Clone { src: String, dst: String },
    /// Renames a halted qube and every reference to it.
    Rename { old: String, new: String },
    /// Removes a halted qube nobody depends on, and its volumes (qvm-remove).
    Remove { name: String },
    /// Shows or sets a qube's properties (qvm-prefs).
    Prefs {
        qube: String,
        key: Option<String>,
        value: Option<String>,
        /// Resets KEY to its default (netvm, default_dispvm).
        #[arg(long, short = 'D')]
        default: bool,
    },
    /// Shows, sets or removes a qube's features (qvm-features).
    Features {
        qube: String,
        key: Option<String>,
        value: Option<String>,
        /// Removes KEY.
        #[arg(long, short = 'D')]
        delete: bool,
    },
    /// Shows or sets the global defaults: default_template, default_netvm, default_dispvm (qubes-prefs).
    GlobalPrefs {
        key: Option<String>,
        value: Option<String>,
    },
    /// Lists or adds labels.
    #[command(subcommand)]
    Label(LabelCmd),
    /// Starts a qube and its netvm chain (qvm-start).
    Start { name: String },
    /// Shuts a qube down; with --wait, waits, killing it after --timeout (qvm-shutdown).
    Shutdown {
        name: String,
        #[arg(long)]
        wait: bool,
        /// Seconds before the remaining processes are killed.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Shut a netvm down even though running qubes use it (they lose their network).
        #[arg(long)]
        force: bool,
    },
    /// Shows or changes a qube's firewall rules (qvm-firewall); rules are enforced in its
    /// netvm and take effect at once on a running qube.
    ///
    /// Rules are evaluated in order, the first match wins, and everything else is dropped.
    /// A qube never given rules has the default list: a single `accept`. Fields:
    /// action=accept|drop, dsthost=IP|CIDR|NAME, proto=tcp|udp|icmp, dstports=N|N-M,
    /// icmptype=N, specialtarget=dns, expire=EPOCH|+SECONDS, comment=TEXT.
    Firewall {
        /// The qube whose rules these are (enforced in its netvm).
        qube: String,
        #[command(subcommand)]
        cmd: Option<FirewallCmd>,
    },
    /// Kills every process of a qube now (qvm-kill).
    Kill { name: String },
    /// Freezes a qube (qvm-pause).
    Pause { name: String },
    /// Thaws a paused qube (qvm-unpause).
    Unpause { name: String },
    /// Runs a command in a qube, starting it if needed (qvm-run).
    ///
    /// `corralctl run work firefox`, `corralctl run -p work 'ls ~'`,
    /// `corralctl run --dispvm -p -- cat /etc/hostname`. One CMD word is run by `sh -c`, like
    /// qvm-run; several are run as an argument vector.
    Run {
        /// Joins the command's stdin, stdout and stderr to corralctl's and exits with its status.
        #[arg(short = 'p', long = "pass-io")]
        pass_io: bool,
        /// As the qube's root, with CAP_NET_ADMIN (and NET_RAW, NET_BIND_SERVICE) over the
        /// qube's own namespaces only; the qube needs the `net-admin` feature (VPN qubes).
        #[arg(long)]
        root: bool,
        /// Runs in a new disposable (from TEMPLATE, or the default_dispvm) destroyed when the
        /// command exits.
        #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "", value_name = "TEMPLATE")]
        dispvm: Option<String>,
        /// QUBE CMD... (without --dispvm), or CMD... (with it).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Lists the applications a qube offers, from its template's menu entries, narrowed by its
    /// `menu-items` feature (qvm-appmenus --get-available). Works for stopped qubes.
    Apps {
        qube: String,
        /// Prints JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Starts one of a qube's applications by id (see `apps`), starting the qube first if
    /// needed; with --dispvm, in a new disposable of the disposable template QUBE.
    ///
    /// `corralctl launch work org.gnome.TextEditor`, `corralctl launch --dispvm default-dvm foot`.
    Launch {
        /// Runs it in a new disposable whose disposable template is QUBE.
        #[arg(long)]
        dispvm: bool,
        qube: String,
        app: String,
    },
    /// Lists templates, or builds one.
    #[command(subcommand)]
    Template(TemplateCmd),
    /// Policy decisions (the *.policy files in Qubes syntax, see docs/policy.md).
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Checks whether NAME is a valid qube name and says why not.
    CheckName { name: String },
}

#[derive(Debug, Subcommand)]
enum PolicyCmd {
    /// Prints the decision for SERVICE from SOURCE to TARGET and the line that made it.
    ///
    /// Exits 0 when the call would be allowed (allow or ask), 1 when it would be denied.
    /// Qubes are known by name here (class AppVM, no tags; `dom0` or `@adminvm` is the admin
    /// domain), so `@tag:` and `@type:` rules do not match them yet.
    Check {
        /// The service, optionally with its argument: `corral.ClipboardPaste`, `qubes.Filecopy+x`.
        service: String,
        source: String,
        /// A qube, `@default`, `@dispvm` or `@dispvm:NAME`.
        target: String,
        /// The policy directory.
        #[arg(long, default_value = "/etc/corral/policy.d")]
        policy_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum FirewallCmd {
    /// Lists the rules as a table, numbered from 0 (the default when no command is given).
    List {
        /// One rule per line in the stored `key=value` form.
        #[arg(long)]
        raw: bool,
    },
    /// Adds a rule: `add action=accept dsthost=192.0.2.0/24 proto=tcp dstports=443`.
    Add {
        /// Insert before rule N instead of at the end (before the final drop).
        #[arg(long, value_name = "N")]
        before: Option<usize>,
        /// The rule, as key=value words (a bare `accept` or `drop` is the action).
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        rule: Vec<String>,
    },
    /// Removes rule N (as `list` numbers it).
    Del { number: usize },
    /// Back to the default list: a single accept.
    Reset,
}

#[derive(Debug, Subcommand)]
enum LabelCmd {
    /// Lists labels with index and colour.
    List,
    /// Adds a custom label (index above 8).
    Add { name: String, color: String },
}

#[derive(Debug, Subcommand)]
enum TemplateCmd {
    /// Lists the TemplateVMs.
    List,
    /// Builds a template with debootstrap (needs network to the mirror; minutes).
    Install {
        /// The distribution; only `debian` is known.
        distribution: String,
        /// The new template's name (default: debian-12 for bookworm, else debian-SUITE).
        #[arg(long)]
        name: Option<String>,
        /// The Debian suite.
        #[arg(long, default_value = "bookworm")]
        suite: String,
        /// The mirror.
        #[arg(long)]
        mirror: Option<String>,
        /// The template's label.
        #[arg(long, default_value = "black")]
        label: String,
    },
}

/// A failure with its exit code.
struct Fail(u8, String);

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail(1, e.to_string())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(Fail(code, msg)) => {
            eprintln!("corralctl: {msg}");
            ExitCode::from(code)
        }
    }
}

fn socket_path(args: &Args) -> PathBuf {
    args.socket
        .clone()
        .or_else(|| {
            std::env::var_os("CORRAL_ADMIN_SOCKET")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| Paths::from_env().socket())
}

fn call(args: &Args, req: Request) -> Result<Value, Fail> {
    let path = socket_path(args);
    let mut c = Client::connect(&path).map_err(|e| {
        Fail(
            3,
            format!(
                "cannot reach the domain manager at {}: {e} (is it running? start one with `corralctl daemon`)",
                path.display()
            ),
        )
    })?;
    reply(c.call(&req, &[])?)
}

fn reply(r: Reply) -> Result<Value, Fail> {
    match r {
        Reply::Ok(v) => Ok(v),
        Reply::Error(e) => Err(Fail(1, e.message)),
        Reply::Progress(p) => Err(Fail(1, format!("unexpected progress reply: {p}"))),
    }
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn print_prefs(v: Value) -> Result<(), Fail> {
    let rows: Vec<PrefRow> = serde_json::from_value(v).map_err(|e| Fail(1, e.to_string()))?;
    if let [one] = rows.as_slice() {
        println!("{}", one.value);
        return Ok(());
    }
    let w = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
    for r in rows {
        println!(
            "{:<w$}  {}  {}",
            r.key,
            if r.is_default { "D" } else { "-" },
            r.value
        );
    }
    Ok(())
}

fn run(args: Args) -> Result<u8, Fail> {
    let none = |v: Value| {
        let _ = v;
        Ok(0)
    };
    match &args.command {
        Command::Daemon {
            data_dir,
            runtime_dir,
        } => daemon(data_dir.clone(), runtime_dir.clone()),
        Command::CheckName { name } => match corral_domains::QubeName::new(name) {
            Ok(name) => {
                println!("{name}: ok");
                Ok(0)
            }
            Err(e) => Err(Fail(1, e.to_string())),
        },
        Command::Ls { json } => {
            let v = call(&args, Request::List)?;
            if *json {
                println!("{v}");
                return Ok(0);
            }
            let qubes: Vec<QubeInfo> =
                serde_json::from_value(v).map_err(|e| Fail(1, e.to_string()))?;
            let mut rows = vec![
                ["NAME", "STATE", "CLASS", "LABEL", "TEMPLATE", "NETVM"]
                    .map(String::from)
                    .to_vec(),
            ];
            for q in qubes {
                rows.push(vec![
                    q.name,
                    q.state,
                    q.class,
                    q.label,
                    q.template.unwrap_or_else(|| "-".into()),
                    q.netvm.unwrap_or_else(|| "-".into()),
                ]);
            }
            print!("{}", table(&rows));
            Ok(0)
        }
        Command::Create {
            name,
            class,
            template,
            label,
            netvm,
        } => none(call(
            &args,
            Request::Create {
                name: name.clone(),
                class: class.clone(),
                template: template.clone(),
                label: label.clone(),
                netvm: netvm.clone(),
            },
        )?),
        Command::Clone { src, dst } => none(call(
            &args,
            Request::Clone {
                src: src.clone(),
                dst: dst.clone(),
            },
        )?),
        Command::Rename { old, new } => none(call(
            &args,
            Request::Rename {
                old: old.clone(),
                new: new.clone(),
            },
        )?),
        Command::Remove { name } => none(call(&args, Request::Remove { name: name.clone() })?),
        Command::Prefs {
            qube,
            key,
            value,
            default,
        } => {
            let value = if *default {
                if key.is_none() || value.is_some() {
                    return Err(Fail(2, "--default takes a KEY and no VALUE".into()));
                }
                Some("default".to_owned())
            } else {
                value.clone()
            };
            let set = value.is_some();
            let v = call(
                &args,
                Request::Prefs {
                    name: qube.clone(),
                    key: key.clone(),
                    value,
                },
            )?;
            if !set {
                print_prefs(v)?;
            }
            Ok(0)
        }
        Command::Features {
            qube,
            key,
            value,
            delete,
        } => {
            let set = value.is_some() || *delete;
            let v = call(
                &args,
                Request::Features {
                    name: qube.clone(),
                    key: key.clone(),
                    value: value.clone(),
                    delete: *delete,
                },
            )?;
            if !set {
                match v {
                    Value::String(s) => println!("{s}"),
                    Value::Object(map) => {
                        let w = map.keys().map(String::len).max().unwrap_or(0);
                        for (k, v) in map {
                            println!("{k:<w$}  {}", v.as_str().unwrap_or_default());
                        }
                    }
                    _ => {}
                }
            }
            Ok(0)
        }
        Command::GlobalPrefs { key, value } => {
            let set = value.is_some();
            let v = call(
                &args,
                Request::Globals {
                    key: key.clone(),
                    value: value.clone(),
                },
            )?;
            if !set {
                print_prefs(v)?;
            }
            Ok(0)
        }
        Command::Apps { qube, json } => {
            let v = call(&args, Request::Apps { name: qube.clone() })?;
            if *json {
                println!("{v}");
                return Ok(0);
            }
            let apps: Vec<corral_domains::apps::AppEntry> =
                serde_json::from_value(v).map_err(|e| Fail(1, e.to_string()))?;
            let mut rows = vec![["ID", "NAME", "COMMAND"].map(String::from).to_vec()];
            for a in apps {
                rows.push(vec![a.id, a.name, a.argv.join(" ")]);
            }
            print!("{}", table(&rows));
            Ok(0)
        }
        Command::Launch { dispvm, qube, app } => {
            let v = call(
                &args,
                Request::Launch {
                    name: qube.clone(),
                    app: app.clone(),
                    dispvm: *dispvm,
                },
            )?;
            if *dispvm && let Some(q) = v.get("qube").and_then(Value::as_str) {
                println!("{q}");
            }
            Ok(0)
        }
        Command::Label(LabelCmd::List) => {
            let v = call(&args, Request::Labels)?;
            let labels: Vec<corral_domains::Label> =
                serde_json::from_value(v).map_err(|e| Fail(1, e.to_string()))?;
            let mut rows = vec![["INDEX", "NAME", "COLOR"].map(String::from).to_vec()];
            for l in labels {
                rows.push(vec![l.index.to_string(), l.name, l.color]);
            }
            print!("{}", table(&rows));
            Ok(0)
        }
        Command::Label(LabelCmd::Add { name, color }) => none(call(
            &args,
            Request::AddLabel {
                name: name.clone(),
                color: color.clone(),
            },
        )?),
        Command::Policy(PolicyCmd::Check {
            service,
            source,
            target,
            policy_dir,
        }) => {
            let (action, explanation) =
                corral_domains::policy::check_names(policy_dir, service, source, target);
            println!("{explanation}");
            Ok(if action == corral_domains::policy::Action::Deny {
                1
            } else {
                0
            })
        }
        Command::Template(TemplateCmd::List) => {
            let v = call(&args, Request::List)?;
            let qubes: Vec<QubeInfo> =
                serde_json::from_value(v).map_err(|e| Fail(1, e.to_string()))?;
            for q in qubes.into_iter().filter(|q| q.class == "TemplateVM") {
                println!("{}", q.name);
            }
            Ok(0)
        }
        Command::Template(TemplateCmd::Install {
            distribution,
            name,
            suite,
            mirror,
            label,
        }) => {
            if distribution != "debian" {
                return Err(Fail(
                    2,
                    format!(
                        "template install: unknown distribution {distribution:?} (known: debian)"
                    ),
                ));
            }
            let name = name.clone().unwrap_or_else(|| {
                if suite == "bookworm" {
                    "debian-12".into()
                } else {
                    format!("debian-{suite}")
                }
            });
            let path = socket_path(&args);
            let mut c = Client::connect(&path).map_err(|e| {
                Fail(
                    3,
                    format!("cannot reach the domain manager at {}: {e}", path.display()),
                )
            })?;
            let tty = io::IsTerminal::is_terminal(&io::stderr());
            let mut show = |p: &str| {
                if tty {
                    eprint!("\r\x1b[K{name}: {p}");
                } else {
                    eprintln!("{name}: {p}");
                }
            };
            let r = c.call_with_progress(
                &Request::TemplateInstall {
                    name: name.clone(),
                    suite: Some(suite.clone()),
                    mirror: mirror.clone(),
                    label: Some(label.clone()),
                },
                &[],
                &mut show,
            )?;
            if tty {
                eprintln!();
            }
            reply(r)?;
            println!("{name}: installed");
            Ok(0)
        }
        Command::Start { name } => none(call(&args, Request::Start { name: name.clone() })?),
        Command::Shutdown {
            name,
            wait,
            timeout,
            force,
        } => none(call(
            &args,
            Request::Shutdown {
                name: name.clone(),
                wait: *wait,
                timeout_s: Some(*timeout),
                force: *force,
            },
        )?),
        Command::Firewall { qube, cmd } => firewall(&args, qube, cmd.as_ref()),
        Command::Kill { name } => none(call(&args, Request::Kill { name: name.clone() })?),
        Command::Pause { name } => none(call(&args, Request::Pause { name: name.clone() })?),
        Command::Unpause { name } => none(call(&args, Request::Unpause { name: name.clone() })?),
        Command::Run {
            pass_io,
            dispvm,
            root,
            args: rest,
        } => {
            if *root && dispvm.is_some() {
                return Err(Fail(2, "run: --root is not for disposables".into()));
            }
            let (name, dispvm, cmd) = match dispvm {
                Some(t) => ((!t.is_empty()).then(|| t.clone()), true, rest.clone()),
                None => {
                    let (q, cmd) = rest.split_first().expect("clap requires one");
                    if cmd.is_empty() {
                        return Err(Fail(
                            2,
                            "run: no command given (corralctl run QUBE CMD...)".into(),
                        ));
                    }
                    (Some(q.clone()), false, cmd.to_vec())
                }
            };
            if cmd.is_empty() {
                return Err(Fail(2, "run: no command given".into()));
            }
            let argv = if cmd.len() == 1 {
                vec!["sh".into(), "-c".into(), cmd[0].clone()]
            } else {
                cmd
            };
            let req = Request::Run {
                name,
                dispvm,
                argv,
                pass_io: *pass_io,
                root: *root,
            };
            let path = socket_path(&args);
            let mut c = Client::connect(&path).map_err(|e| {
                Fail(
                    3,
                    format!("cannot reach the domain manager at {}: {e}", path.display()),
                )
            })?;
            let v = if *pass_io {
                let (i, o, e) = (io::stdin(), io::stdout(), io::stderr());
                let fds = [i.as_fd(), o.as_fd(), e.as_fd()];
                reply(c.call(&req, &fds)?)?
            } else {
                reply(c.call(&req, &[])?)?
            };
            let _ = io::stdout().flush();
            Ok(v.get("exit")
                .and_then(Value::as_u64)
                .map_or(0, |c| c.min(255) as u8))
        }
    }
}

fn daemon(data: Option<PathBuf>, runtime: Option<PathBuf>) -> Result<u8, Fail> {
    let mut paths = Paths::from_env();
    if let Some(d) = data {
        paths.data = d;
    }
    if let Some(r) = runtime {
        paths.runtime = r;
    }
    // Block SIGTERM/SIGINT in every thread; one thread waits for them and stops the qubes.
    // SAFETY: plain libc signal-mask calls on a local, zeroed sigset_t, before any thread exists.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let backend = SandboxBackend::new(&paths.runtime).map_err(|e| Fail(1, e.to_string()))?;
    if !backend.has_cgroups() {
        eprintln!("corralctl daemon: no writable cgroup v2 hierarchy; pause is unavailable");
    }
    let socket = paths.socket();
    let mgr =
        Arc::new(Manager::open(paths, Arc::new(backend)).map_err(|e| Fail(1, e.to_string()))?);
    let listener =
        Manager::bind(&socket).map_err(|e| Fail(1, format!("{}: {e}", socket.display())))?;
    for (q, e) in mgr.autostart() {
        eprintln!("corralctl daemon: autostart of {q} failed: {e}");
    }
    eprintln!("corralctl daemon: listening on {}", socket.display());
    let m2 = Arc::clone(&mgr);
    let sock2 = socket.clone();
    std::thread::spawn(move || {
        let mut sig: i32 = 0;
        // SAFETY: sigwait on the set blocked above, writing into a local.
        unsafe { libc::sigwait(&set, &mut sig) };
        eprintln!("corralctl daemon: signal {sig}, stopping qubes");
        m2.stop_all();
        let _ = std::fs::remove_file(&sock2);
        std::process::exit(0);
    });
    mgr.serve(listener)?;
    Ok(0)
}

/// `corralctl firewall QUBE …`.
fn firewall(args: &Args, qube: &str, cmd: Option<&FirewallCmd>) -> Result<u8, Fail> {
    let name = qube.to_owned();
    match cmd.unwrap_or(&FirewallCmd::List { raw: false }) {
        FirewallCmd::List { raw } => {
            let v = call(args, Request::FirewallList { name })?;
            let texts: Vec<String> =
                serde_json::from_value(v).map_err(|e| Fail(1, e.to_string()))?;
            if *raw {
                for t in texts {
                    println!("{t}");
                }
                return Ok(0);
            }
            print!("{}", firewall_table(&texts)?);
            Ok(0)
        }
        FirewallCmd::Add { before, rule } => {
            call(
                args,
                Request::FirewallAdd {
                    name,
                    rule: join_rule_words(rule),
                    before: *before,
                },
            )?;
            Ok(0)
        }
        FirewallCmd::Del { number } => {
            call(
                args,
                Request::FirewallDel {
                    name,
                    index: *number,
                },
            )?;
            Ok(0)
        }
        FirewallCmd::Reset => {
            call(args, Request::FirewallReset { name })?;
            Ok(0)
        }
    }
}

/// Joins shell words into rule text, quoting a value the shell already unquoted
/// (`comment="two words"` arrives as `comment=two words`).
fn join_rule_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if v.contains(char::is_whitespace) || v.contains('"') || v.is_empty() => {
                format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
            }
            _ => w.clone(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn firewall_table(texts: &[String]) -> Result<String, Fail> {
    use corral_domains::net::rules::{Action, Rule, proto_name};
    let now = corral_domains::net::chain::now();
    let mut rows = vec![
        [
            "NO",
            "ACTION",
            "HOST",
            "PROTOCOL",
            "PORT(S)",
            "SPECIAL TARGET",
            "ICMP TYPE",
            "EXPIRE",
            "COMMENT",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let dash = || "-".to_owned();
    for (i, t) in texts.iter().enumerate() {
        let r: Rule = t
            .parse()
            .map_err(|e| Fail(1, format!("the manager sent a bad rule: {e}")))?;
        rows.push(vec![
            i.to_string(),
            match r.action {
                Action::Accept => "accept",
                Action::Drop => "drop",
            }
            .to_owned(),
            r.dsthost.as_ref().map_or_else(dash, ToString::to_string),
            r.proto.map_or_else(dash, |p| proto_name(p).to_owned()),
            r.dstports.map_or_else(dash, |p| p.to_string()),
            if r.dns { "dns".to_owned() } else { dash() },
            r.icmptype.map_or_else(dash, |t| t.to_string()),
            match r.expire {
                None => dash(),
                Some(e) if e <= now => format!("{e} (expired)"),
                Some(e) => format!("{e} (in {} s)", e - now),
            },
            r.comment.clone().unwrap_or_else(dash),
        ]);
    }
    Ok(table(&rows))
}

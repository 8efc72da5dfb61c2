//! The policy engine: one test per rule of docs/policy.md, the shipped files, and property tests
//! of the parser.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use corral_domains::policy::{
    self, Action, ArgSpec, Line, Policy, QubeFacts, QubeSpec, Request, Rule, ServiceSpec, Target,
};
use proptest::prelude::*;

const PASTE: &str = "corral.ClipboardPaste";

/// A fresh empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "corral-policy-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(t: &str) -> Policy {
    Policy::from_text(t, Path::new("test.policy"))
}

fn ask(p: &Policy, service: &str, arg: &str, src: &QubeFacts, dst: &QubeFacts) -> policy::Decision {
    p.evaluate(&Request {
        service,
        argument: arg,
        source: src,
        target: Target::Qube(dst),
    })
}

fn paste(p: &Policy, src: &str, dst: &str) -> Action {
    let f = |n: &str| {
        if n == "dom0" {
            QubeFacts::admin()
        } else {
            QubeFacts::app(n)
        }
    };
    ask(p, PASTE, "", &f(src), &f(dst)).action
}

#[test]
fn first_match_wins() {
    let p = text(
        "corral.ClipboardPaste * work personal deny\n\
         corral.ClipboardPaste * @anyvm @anyvm allow\n\
         corral.ClipboardPaste * work personal allow\n",
    );
    let d = ask(
        &p,
        PASTE,
        "",
        &QubeFacts::app("work"),
        &QubeFacts::app("personal"),
    );
    assert_eq!(d.action, Action::Deny);
    assert_eq!(d.line.as_ref().unwrap().line, 1);
    assert_eq!(paste(&p, "personal", "work"), Action::Allow);
}

#[test]
fn no_matching_rule_is_deny_without_a_line() {
    let p = text("corral.FileCopy * @anyvm @anyvm allow\n");
    let d = ask(&p, PASTE, "", &QubeFacts::app("a"), &QubeFacts::app("b"));
    assert_eq!(d.action, Action::Deny);
    assert_eq!(d.line, None);
    assert!(d.error.is_none());
    assert_eq!(d.origin(), "no rule matched");
}

#[test]
fn anyvm_never_matches_the_admin_domain_and_adminvm_only_it() {
    let p = text(
        "corral.ClipboardPaste * @anyvm @anyvm allow\n\
         corral.ClipboardPaste * @adminvm @anyvm ask\n",
    );
    assert_eq!(paste(&p, "work", "personal"), Action::Allow);
    assert_eq!(paste(&p, "dom0", "personal"), Action::Ask);
    assert_eq!(paste(&p, "work", "dom0"), Action::Deny);
    let p = text("corral.ClipboardPaste * @anyvm @adminvm allow\n");
    assert_eq!(paste(&p, "work", "dom0"), Action::Allow);
    assert_eq!(paste(&p, "work", "personal"), Action::Deny);
}

#[test]
fn service_and_argument_columns() {
    let p = text(
        "corral.FileCopy +secret.txt @anyvm @anyvm deny\n\
         corral.FileCopy + @anyvm @anyvm ask\n\
         * * @anyvm @anyvm allow\n",
    );
    let (a, b) = (QubeFacts::app("a"), QubeFacts::app("b"));
    assert_eq!(
        ask(&p, "corral.FileCopy", "secret.txt", &a, &b).action,
        Action::Deny
    );
    assert_eq!(ask(&p, "corral.FileCopy", "", &a, &b).action, Action::Ask);
    assert_eq!(
        ask(&p, "corral.FileCopy", "other", &a, &b).action,
        Action::Allow
    );
    assert_eq!(ask(&p, "anything.Else", "x", &a, &b).action, Action::Allow);
}

#[test]
fn tags_and_types() {
    let p = text(
        "corral.ClipboardPaste * @tag:secret @anyvm deny\n\
         corral.ClipboardPaste * @anyvm @type:TemplateVM deny\n\
         corral.ClipboardPaste * @anyvm @anyvm allow\n",
    );
    let mut s = QubeFacts::app("vault");
    s.tags.push("secret".into());
    let plain = QubeFacts::app("work");
    let mut tpl = QubeFacts::app("debian-13");
    tpl.class = "TemplateVM".into();
    assert_eq!(ask(&p, PASTE, "", &s, &plain).action, Action::Deny);
    assert_eq!(ask(&p, PASTE, "", &plain, &tpl).action, Action::Deny);
    assert_eq!(ask(&p, PASTE, "", &plain, &s).action, Action::Allow);
}

#[test]
fn default_and_dispvm_targets() {
    let p = text(
        "corral.OpenInVM * @anyvm @default ask default_target=@dispvm\n\
         corral.OpenInVM * work @dispvm:work-dvm allow\n\
         corral.OpenInVM * @anyvm @dispvm allow target=@dispvm:default-dvm\n",
    );
    let work = QubeFacts::app("work");
    let req = |target| Request {
        service: "corral.OpenInVM",
        argument: "",
        source: &work,
        target,
    };
    let d = p.evaluate(&req(Target::Default));
    assert_eq!(d.action, Action::Ask);
    assert_eq!(d.params.default_target, Some(QubeSpec::DispVm));
    assert_eq!(
        p.evaluate(&req(Target::DispVm(Some("work-dvm")))).action,
        Action::Allow
    );
    let d = p.evaluate(&req(Target::DispVm(None)));
    assert_eq!(d.action, Action::Allow);
    assert_eq!(
        d.params.target,
        Some(QubeSpec::DispVmOf("default-dvm".into()))
    );
    assert_eq!(
        p.evaluate(&req(Target::DispVm(Some("other")))).action,
        Action::Deny
    );
    // A running disposable as a source or target.
    let mut disp = QubeFacts::app("disp1234");
    disp.class = "DispVM".into();
    disp.dispvm_template = Some("work-dvm".into());
    let p = text("corral.X * @dispvm:work-dvm @anyvm allow\n");
    assert_eq!(ask(&p, "corral.X", "", &disp, &work).action, Action::Allow);
    assert_eq!(ask(&p, "corral.X", "", &work, &disp).action, Action::Deny);
}

#[test]
fn parameters_are_checked_against_the_action() {
    let ok = [
        "a * @anyvm @anyvm allow target=work user=root notify=yes autostart=no",
        "a * @anyvm @anyvm ask default_target=work target=@dispvm",
        "a * @anyvm @anyvm deny notify=no",
    ];
    for l in ok {
        assert!(policy::parse_line(l).is_ok(), "{l}");
    }
    let bad = [
        (
            "a * @anyvm @anyvm deny target=work",
            "not allowed with deny",
        ),
        (
            "a * @anyvm @anyvm allow default_target=work",
            "not allowed with allow",
        ),
        (
            "a * @anyvm @anyvm allow notify=maybe",
            "notify=yes or notify=no",
        ),
        ("a * @anyvm @anyvm allow colour=red", "unknown parameter"),
        ("a * @anyvm @anyvm allow notify=yes notify=no", "twice"),
        ("a * @anyvm @anyvm allow target=@anyvm", "one qube"),
        ("a * @anyvm @anyvm allow justaword", "KEY=VALUE"),
    ];
    for (l, want) in bad {
        let e = policy::parse_line(l).unwrap_err();
        assert!(e.contains(want), "{l}: {e}");
    }
}

#[test]
fn malformed_lines_say_what_was_expected() {
    let cases = [
        (
            "a * @anyvm",
            "expected SERVICE ARGUMENT SOURCE TARGET ACTION",
        ),
        ("a * @anyvm @anyvm permit", "expected allow, deny or ask"),
        ("a x @anyvm @anyvm allow", "expected * or +ARGUMENT"),
        (
            "a * @default @anyvm allow",
            "only allowed in the target column",
        ),
        ("a * @nosuch @anyvm allow", "expected @anyvm"),
        ("a * @type:Bogus @anyvm allow", "expected @type: one of"),
        ("a * 9lives @anyvm allow", "expected a qube name"),
        ("a * @tag: @anyvm allow", "expected @tag:NAME"),
        ("a/b * @anyvm @anyvm allow", "service"),
        ("!include", "exactly one path"),
        ("!include-service a b c", "unknown directive"),
    ];
    for (l, want) in cases {
        let e = policy::parse_line(l).unwrap_err();
        assert!(e.contains(want), "{l:?}: {e}");
    }
    assert_eq!(policy::parse_line("   # comment").unwrap(), Line::Empty);
    assert_eq!(policy::parse_line(" \t ").unwrap(), Line::Empty);
}

#[test]
fn an_invalid_file_denies_everything_and_names_file_and_line() {
    let d = TempDir::new();
    d.write(
        "10-good.policy",
        "corral.ClipboardPaste * @anyvm @anyvm allow\n",
    );
    d.write(
        "20-bad.policy",
        "# fine\n\ncorral.ClipboardPaste * @anyvm @anyvm alow\n",
    );
    let p = Policy::load_dir(d.path());
    let e = p.error().expect("invalid");
    assert!(e.file.ends_with("20-bad.policy"));
    assert_eq!(e.line, Some(3));
    assert!(
        e.to_string()
            .contains("20-bad.policy:3: action \"alow\": expected allow, deny or ask"),
        "{e}"
    );
    let decision = ask(&p, PASTE, "", &QubeFacts::app("a"), &QubeFacts::app("b"));
    assert_eq!(decision.action, Action::Deny);
    assert!(
        decision.origin().contains("20-bad.policy:3"),
        "{}",
        decision.origin()
    );
    let explained = policy::explain(
        &p,
        &Request {
            service: PASTE,
            argument: "",
            source: &QubeFacts::app("a"),
            target: Target::Qube(&QubeFacts::app("b")),
        },
    );
    assert!(
        explained.contains("deny") && explained.contains("20-bad.policy:3"),
        "{explained}"
    );
}

#[test]
fn explain_names_is_what_corralctl_policy_check_prints() {
    let d = TempDir::new();
    let file = d.write(
        "10-x.policy",
        "corral.ClipboardPaste * work personal deny notify=yes\n\
         corral.ClipboardPaste * @adminvm @anyvm allow\n\
         corral.OpenInVM +url @anyvm @dispvm:web-dvm allow\n",
    );
    let s = policy::explain_names(d.path(), PASTE, "work", "personal");
    assert_eq!(
        s,
        format!(
            "corral.ClipboardPaste work -> personal: deny notify=yes (by {}:1: corral.ClipboardPaste * work \
             personal deny notify=yes)",
            file.display()
        )
    );
    let s = policy::explain_names(d.path(), PASTE, "dom0", "work");
    assert!(
        s.contains(": allow (by ") && s.contains("10-x.policy:2"),
        "{s}"
    );
    let s = policy::explain_names(d.path(), "corral.OpenInVM+url", "work", "@dispvm:web-dvm");
    assert!(
        s.starts_with("corral.OpenInVM+url work -> @dispvm:web-dvm: allow"),
        "{s}"
    );
    let s = policy::explain_names(d.path(), PASTE, "personal", "work");
    assert!(s.ends_with("(no rule matched: the default is deny)"), "{s}");
}

#[test]
fn files_are_read_in_byte_order_and_only_dot_policy() {
    let d = TempDir::new();
    // Byte order: "B" (0x42) < "a" (0x61) < "b"; a locale-aware sort would put "a" first.
    d.write("b.policy", "corral.ClipboardPaste * @anyvm @anyvm allow\n");
    d.write("a.policy", "corral.ClipboardPaste * @anyvm @anyvm ask\n");
    d.write("B.policy", "corral.ClipboardPaste * @anyvm @anyvm deny\n");
    d.write("0.policy.rpmsave", "garbage that would be an error\n");
    d.write("README", "garbage\n");
    d.write(".hidden.policy", "garbage\n");
    let p = Policy::load_dir(d.path());
    assert!(p.error().is_none(), "{:?}", p.error());
    let d1 = ask(&p, PASTE, "", &QubeFacts::app("a"), &QubeFacts::app("b"));
    assert_eq!(d1.action, Action::Deny);
    assert!(d1.line.unwrap().file.ends_with("B.policy"));
    let files: Vec<_> = p
        .rules()
        .map(|(_, l)| l.file.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(files, ["B.policy", "a.policy", "b.policy"]);
}

#[test]
fn includes_are_followed_in_place() {
    let d = TempDir::new();
    d.write(
        "10-main.policy",
        "!include extra/first.inc\n\
         corral.ClipboardPaste * @anyvm @anyvm deny\n",
    );
    d.write(
        "extra/first.inc",
        "corral.ClipboardPaste * work personal allow\n!include-dir more\n",
    );
    d.write(
        "extra/more/x.policy",
        "corral.ClipboardPaste * personal work ask\n",
    );
    let p = Policy::load_dir(d.path());
    assert!(p.error().is_none(), "{:?}", p.error());
    assert_eq!(paste(&p, "work", "personal"), Action::Allow);
    assert_eq!(paste(&p, "personal", "work"), Action::Ask);
    assert_eq!(paste(&p, "a", "b"), Action::Deny);
    let d1 = ask(
        &p,
        PASTE,
        "",
        &QubeFacts::app("work"),
        &QubeFacts::app("personal"),
    );
    let at = d1.line.unwrap();
    assert!(at.file.ends_with("extra/first.inc") && at.line == 1, "{at}");
}

#[test]
fn include_cycles_missing_files_and_depth_are_errors() {
    let d = TempDir::new();
    d.write("a.policy", "!include b.inc\n");
    d.write("b.inc", "\n!include a.policy\n");
    let e = Policy::load_dir(d.path()).error().cloned().expect("cycle");
    assert!(e.message.contains("cycle"), "{e}");
    assert!(e.file.ends_with("b.inc") && e.line == Some(2), "{e}");

    let d = TempDir::new();
    d.write("a.policy", "# x\n!include nowhere.inc\n");
    let e = Policy::load_dir(d.path())
        .error()
        .cloned()
        .expect("missing");
    assert!(e.file.ends_with("a.policy") && e.line == Some(2), "{e}");
    assert!(e.message.contains("cannot be read"), "{e}");

    let d = TempDir::new();
    d.write("a.policy", "!include 1.inc\n");
    for i in 1..20 {
        d.write(&format!("{i}.inc"), &format!("!include {}.inc\n", i + 1));
    }
    d.write("20.inc", "");
    let e = Policy::load_dir(d.path())
        .error()
        .cloned()
        .expect("too deep");
    assert!(e.message.contains("deeper"), "{e}");
}

#[test]
fn a_missing_policy_directory_denies_everything() {
    let p = Policy::load_dir(Path::new("/nonexistent/corral/policy.d"));
    assert!(p.error().is_some());
    assert_eq!(paste(&p, "a", "b"), Action::Deny);
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn every_shipped_policy_file_parses() {
    let mut n = 0;
    for dir in ["config/policy.d", "config/policy-examples"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let t = std::fs::read_to_string(&path).unwrap();
            let p = Policy::from_text(&t, &path);
            assert!(p.error().is_none(), "{}", p.error().unwrap());
            assert!(p.rules().count() > 0, "{}", path.display());
            n += 1;
        }
    }
    assert!(n >= 2);
    let p = Policy::load_dir(&repo().join("config/policy.d"));
    assert!(p.error().is_none());
}

#[test]
fn the_default_asks_for_any_paste_between_two_qubes() {
    let p = Policy::load_dir(&repo().join("config/policy.d"));
    assert_eq!(paste(&p, "work", "personal"), Action::Ask);
    assert_eq!(paste(&p, "dom0", "personal"), Action::Ask);
    assert_eq!(paste(&p, "work", "dom0"), Action::Ask);
    let d = ask(&p, PASTE, "", &QubeFacts::app("a"), &QubeFacts::app("b"));
    assert!(d.permits(true) && !d.permits(false));
}

#[test]
fn the_seed_001_matrix() {
    let d = TempDir::new();
    std::fs::copy(
        repo().join("config/policy-examples/30-clipboard-seed001.policy"),
        d.path().join("30-clipboard-seed001.policy"),
    )
    .unwrap();
    std::fs::copy(
        repo().join("config/policy.d/50-clipboard.policy"),
        d.path().join("50-clipboard.policy"),
    )
    .unwrap();
    let p = Policy::load_dir(d.path());
    assert!(p.error().is_none());
    let names = ["secure", "personal", "work", "untrusted"];
    // (from, into): the seed's rows are the qubes pasted into.
    let allowed = [
        ("personal", "secure"),
        ("work", "personal"),
        ("personal", "work"),
        ("personal", "untrusted"),
    ];
    for from in names {
        for into in names {
            if from == into {
                continue;
            }
            let want = if allowed.contains(&(from, into)) {
                Action::Allow
            } else {
                Action::Deny
            };
            assert_eq!(paste(&p, from, into), want, "{from} -> {into}");
        }
    }
    // Qubes outside the matrix keep the default.
    assert_eq!(paste(&p, "vault2", "personal"), Action::Ask);
}

// --- property tests -------------------------------------------------------------------------

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_.-]{0,30}"
}

fn qube_spec(target: bool) -> impl Strategy<Value = QubeSpec> {
    let mut v = vec![
        Just(QubeSpec::AnyVm).boxed(),
        Just(QubeSpec::AdminVm).boxed(),
        Just(QubeSpec::DispVm).boxed(),
        name().prop_map(QubeSpec::DispVmOf).boxed(),
        "[a-z0-9_.-]{1,20}".prop_map(QubeSpec::Tag).boxed(),
        proptest::sample::select(policy::CLASSES)
            .prop_map(|c| QubeSpec::Type(c.to_string()))
            .boxed(),
        name()
            .prop_filter("not a keyword-looking name", |n| !n.starts_with('@'))
            .prop_map(QubeSpec::Name)
            .boxed(),
    ];
    if target {
        v.push(Just(QubeSpec::Default).boxed());
    }
    proptest::strategy::Union::new(v)
}

fn single_qube() -> impl Strategy<Value = QubeSpec> {
    prop_oneof![
        Just(QubeSpec::AdminVm),
        Just(QubeSpec::DispVm),
        name().prop_map(QubeSpec::DispVmOf),
        name().prop_map(QubeSpec::Name),
    ]
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop_oneof![
            Just(ServiceSpec::Any),
            "[a-zA-Z0-9_.-]{1,40}".prop_map(ServiceSpec::Name)
        ],
        prop_oneof![
            Just(ArgSpec::Any),
            "[a-zA-Z0-9_.+-]{0,20}".prop_map(ArgSpec::Exact)
        ],
        qube_spec(false),
        qube_spec(true),
        prop_oneof![Just(Action::Allow), Just(Action::Deny), Just(Action::Ask)],
        proptest::option::of(single_qube()),
        proptest::option::of("[a-z_][a-z0-9_-]{0,15}"),
        proptest::option::of(single_qube()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(service, argument, source, target, action, t, u, dt, n, a)| {
                let mut params = policy::Params {
                    notify: n,
                    ..Default::default()
                };
                if action != Action::Deny {
                    params.target = t;
                    params.user = u;
                    params.autostart = a;
                }
                if action == Action::Ask {
                    params.default_target = dt;
                }
                Rule {
                    service,
                    argument,
                    source,
                    target,
                    action,
                    params,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_parser_never_panics(s in "\\PC*") {
        let _ = policy::parse_line(&s);
        let _ = Policy::from_text(&s, Path::new("x.policy"));
    }

    #[test]
    fn the_parser_never_panics_on_policy_like_text(
        toks in proptest::collection::vec(
            prop_oneof![
                Just("*".to_string()), Just("@anyvm".to_string()), Just("@default".to_string()),
                Just("allow".to_string()), Just("ask".to_string()), Just("deny".to_string()),
                Just("target=".to_string()), Just("!include".to_string()),
                "[@+!a-z:=_.-]{0,12}",
            ],
            0..9,
        )
    ) {
        let line = toks.join(" ");
        let _ = policy::parse_line(&line);
    }

    #[test]
    fn generated_rules_round_trip(r in rule(), sep in "[ \t]{1,3}") {
        let printed = r.to_string().replace(' ', &sep);
        let parsed = policy::parse_line(&printed);
        prop_assert_eq!(parsed, Ok(Line::Rule(r)), "{}", printed);
    }

    #[test]
    fn an_error_anywhere_denies_everything(
        good in proptest::collection::vec(rule(), 0..10),
        at in 0usize..10,
    ) {
        let mut lines: Vec<String> = good.iter().map(|r| r.to_string()).collect();
        let at = at.min(lines.len());
        lines.insert(at, "corral.ClipboardPaste * @anyvm @anyvm sometimes".into());
        let p = Policy::from_text(&lines.join("\n"), Path::new("x.policy"));
        let e = p.error().expect("invalid");
        prop_assert_eq!(e.line, Some(at + 1));
        let src = QubeFacts::app("a");
        let dst = QubeFacts::app("b");
        prop_assert_eq!(ask(&p, PASTE, "", &src, &dst).action, Action::Deny);
    }
}

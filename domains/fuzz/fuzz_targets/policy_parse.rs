//! The policy parser on arbitrary bytes: it must never panic, and whatever parses as a rule
//! must print back to a line that parses to the same rule.
#![no_main]

use std::path::Path;

use corral_domains::policy::{self, Line, Policy, QubeFacts, Request, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for raw in text.lines() {
        if let Ok(Line::Rule(rule)) = policy::parse_line(raw) {
            let printed = rule.to_string();
            assert_eq!(
                policy::parse_line(&printed),
                Ok(Line::Rule(rule)),
                "{printed}"
            );
        }
    }
    let p = Policy::from_text(text, Path::new("fuzz.policy"));
    let (a, b) = (QubeFacts::app("work"), QubeFacts::admin());
    for target in [
        Target::Qube(&b),
        Target::Default,
        Target::DispVm(Some("dvm")),
    ] {
        let req = Request {
            service: "corral.ClipboardPaste",
            argument: "",
            source: &a,
            target,
        };
        let d = p.evaluate(&req);
        if p.error().is_some() {
            assert_eq!(d.action, policy::Action::Deny);
        }
        let _ = policy::explain(&p, &req);
    }
});

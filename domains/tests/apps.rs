//! A qube's applications: listed from its template's menu entries (also while it is stopped),
//! narrowed by `menu-items`, launched by id; and a hostile template cannot use its entries to
//! make the manager read the GUI domain's files or hang.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Daemon;

fn template_root(d: &Daemon, qube: &str) -> PathBuf {
    let qid = d.ok(&["prefs", qube, "qid"]);
    d.data().join("volumes").join(qid.trim()).join("root")
}

fn desktop(name: &str, exec: &str) -> String {
    format!("[Desktop Entry]\nType=Application\nName={name}\nExec={exec}\n")
}

/// A template with its own `/usr` (so its menu is its own, not the host's).
fn own_root_template(d: &Daemon, name: &str) -> PathBuf {
    d.ok(&["create", name, "--class", "templatevm", "--label", "gray"]);
    let root = template_root(d, name);
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    root
}

fn ids(d: &Daemon, qube: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["apps", qube, "--json"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_stopped_qube_lists_its_templates_apps_and_menu_items_narrow_them() {
    let d = Daemon::start("apps-list").with_work();
    let root = own_root_template(&d, "deb");
    let apps = root.join("usr/share/applications");
    std::fs::create_dir_all(&apps).unwrap();
    std::fs::write(
        apps.join("org.example.Editor.desktop"),
        desktop("Editor", "editor %F"),
    )
    .unwrap();
    std::fs::write(
        apps.join("term.desktop"),
        desktop("Terminal", "\"my term\" --login"),
    )
    .unwrap();
    std::fs::write(apps.join("notes.txt"), "not an entry").unwrap();
    d.ok(&["create", "mail", "--template", "deb", "--label", "green"]);

    let table = d.ok(&["apps", "mail"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("NAME") && lines[0].contains("COMMAND")
    );
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[1].starts_with("org.example.Editor") && lines[1].ends_with("editor"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("term") && lines[2].contains("my term --login"),
        "{table}"
    );
    let state = d.ok(&["ls", "--json"]);
    assert!(state.contains("\"Halted\""), "mail stays stopped: {state}");

    d.ok(&[
        "features",
        "mail",
        "menu-items",
        "term org.example.Editor gone",
    ]);
    assert_eq!(ids(&d, "mail"), ["term", "org.example.Editor"]);

    let err = d.fails(&["launch", "mail", "gone"], 1);
    assert!(err.contains("mail has no application gone"), "{err}");
    let err = d.fails(&["launch", "mail", "../x"], 1);
    assert!(err.contains("not an application id"), "{err}");
    let err = d.fails(&["apps", "nobody"], 1);
    assert!(err.contains("nobody"), "{err}");
}

#[test]
fn a_host_template_offers_the_hosts_apps_and_launch_starts_the_qube() {
    if !Path::new("/usr/share/applications/foot.desktop").exists() {
        common_skip("foot is not installed (scripts/install-deps.sh installs it)");
        return;
    }
    let d = Daemon::start("apps-host").with_work();
    assert!(ids(&d, "work").contains(&"foot".to_owned()));
    // Launching starts the stopped qube (this daemon has no compositor, so foot itself gives
    // up; compositor/tests/domains.rs shows a launched app's window).
    d.ok(&["launch", "work", "foot"]);
    let ls = d.ok(&["ls", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&ls).unwrap();
    let work = v
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "work")
        .unwrap();
    assert_eq!(work["state"], "Running");
}

fn common_skip(why: &str) {
    assert!(std::env::var_os("CI").is_none(), "CI must not skip: {why}");
    eprintln!("skipped: {why}");
}

#[test]
fn a_hostile_template_cannot_point_the_menu_at_host_files_or_hang_it() {
    let d = Daemon::start("apps-hostile").with_work();
    let root = own_root_template(&d, "evil");
    let apps = root.join("usr/share/applications");
    std::fs::create_dir_all(&apps).unwrap();
    std::fs::write(apps.join("good.desktop"), desktop("Good", "good")).unwrap();
    // An entry that is a link to one of the host's entries: never followed.
    symlink(
        "/usr/share/applications/foot.desktop",
        apps.join("foot.desktop"),
    )
    .unwrap();
    // A FIFO: opening it for reading would block forever without O_NONBLOCK.
    let fifo = apps.join("fifo.desktop");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // Too big, a directory, a name with a space, a title with bidi and escape tricks.
    std::fs::write(
        apps.join("big.desktop"),
        desktop("Big", &format!("big {}", "x".repeat(70 * 1024))),
    )
    .unwrap();
    std::fs::create_dir(apps.join("dir.desktop")).unwrap();
    std::fs::write(apps.join("a b.desktop"), desktop("Space", "x")).unwrap();
    std::fs::write(
        apps.join("trick.desktop"),
        desktop("\u{202e}txt.exe\u{1b}[31m [dom0]", "trick"),
    )
    .unwrap();

    let t0 = Instant::now();
    let got = ids(&d, "evil");
    assert!(t0.elapsed() < Duration::from_secs(5), "the scan hung");
    assert_eq!(got, ["good", "trick"]);
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["apps", "evil", "--json"])).unwrap();
    let trick = &v[1]["name"];
    assert_eq!(
        trick, "txt.exe[31m [dom0]",
        "bidi and escape characters are gone"
    );

    // The whole folder a link to the host's: it resolves inside the template, where nothing
    // is.
    let root2 = own_root_template(&d, "evil2");
    std::fs::create_dir_all(root2.join("usr/share")).unwrap();
    symlink(
        "/usr/share/applications",
        root2.join("usr/share/applications"),
    )
    .unwrap();
    assert!(ids(&d, "evil2").is_empty());
    let root3 = own_root_template(&d, "evil3");
    symlink("/", root3.join("usr/share")).unwrap();
    assert!(ids(&d, "evil3").is_empty());
}

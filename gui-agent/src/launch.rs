//! Starting apps: the qube's `.desktop` entries (reported with `AppList`, started by id) and
//! explicit commands from the admin CLI. Apps get the agent's `WAYLAND_DISPLAY` (and
//! `DISPLAY` when Xwayland runs) and are reaped when they exit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tracing::{info, warn};

use corral_protocol::limits::{MAX_APP_ENTRIES, MAX_APP_ID_BYTES, MAX_APP_NAME_BYTES};
use corral_protocol::{AppEntry, LaunchRequest, SanitizedText};

use crate::state::AgentState;

/// One launchable application from a `.desktop` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopEntry {
    /// The desktop file id: its path below `applications/` with `/` turned into `-`.
    pub id: String,
    pub name: String,
    pub icon: String,
    pub argv: Vec<String>,
}

/// Children started by the agent, reaped as they exit.
#[derive(Debug, Default)]
pub struct Launcher {
    children: Vec<Child>,
    /// Launches that wait for Xwayland, so X11 apps find their DISPLAY.
    waiting_for_xwayland: Vec<Vec<String>>,
}

impl Launcher {
    /// Collects exited children so none stays a zombie.
    pub fn reap(&mut self) {
        self.children.retain_mut(|child| match child.try_wait() {
            Ok(Some(status)) => {
                info!(pid = child.id(), %status, "app exited");
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
    }

    /// The application list for the GUI domain, sanitised and bounded.
    pub fn list_apps(&self) -> Vec<AppEntry> {
        desktop_entries(&application_dirs())
            .into_values()
            .take(MAX_APP_ENTRIES)
            .map(|entry| AppEntry {
                id: SanitizedText::sanitize(&entry.id, MAX_APP_ID_BYTES),
                name: SanitizedText::sanitize(&entry.name, MAX_APP_NAME_BYTES),
                icon: SanitizedText::sanitize(&entry.icon, MAX_APP_NAME_BYTES),
            })
            .collect()
    }
}

/// `$XDG_DATA_HOME/applications` then each `$XDG_DATA_DIRS/applications`, most important first.
pub fn application_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    match std::env::var_os("XDG_DATA_HOME") {
        Some(home) if !home.is_empty() => dirs.push(PathBuf::from(home)),
        _ => {
            if let Some(home) = std::env::var_os("HOME") {
                dirs.push(PathBuf::from(home).join(".local/share"));
            }
        }
    }
    let data_dirs = std::env::var("XDG_DATA_DIRS")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    dirs.extend(
        data_dirs
            .split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from),
    );
    dirs.into_iter().map(|d| d.join("applications")).collect()
}

/// Every visible application entry below `dirs`, by id; an id found in an earlier directory
/// hides the same id in later ones (even if the earlier one is hidden).
pub fn desktop_entries(dirs: &[PathBuf]) -> BTreeMap<String, DesktopEntry> {
    let mut seen = std::collections::BTreeSet::new();
    let mut entries = BTreeMap::new();
    for dir in dirs {
        let mut files = Vec::new();
        collect_desktop_files(dir, dir, &mut files, 0);
        files.sort();
        for (id, path) in files {
            if !seen.insert(id.clone()) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if let Some(entry) = parse_desktop_entry(&id, &text) {
                entries.insert(id, entry);
            }
        }
    }
    entries
}

fn collect_desktop_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>, depth: u32) {
    // Desktop file trees are shallow; the bound keeps symlink loops harmless.
    if depth > 4 {
        return;
    }
    let Ok(read_dir) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in read_dir.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_desktop_files(root, &path, out, depth + 1);
        } else if path.extension().is_some_and(|e| e == "desktop")
            && let Ok(relative) = path.strip_prefix(root)
        {
            let id = relative.to_string_lossy().replace('/', "-");
            out.push((id, path));
        }
    }
}

/// Parses the `[Desktop Entry]` group of a desktop file. Returns `None` for entries that are
/// not shown in menus (not an application, `NoDisplay`, `Hidden`, no `Exec`).
pub fn parse_desktop_entry(id: &str, text: &str) -> Option<DesktopEntry> {
    let mut in_main_group = false;
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            in_main_group = line == "[Desktop Entry]";
            continue;
        }
        if !in_main_group {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            // Localised keys (Name[de]) are skipped: the GUI domain shows the plain name.
            fields
                .entry(key.trim().to_string())
                .or_insert_with(|| value.trim().to_string());
        }
    }
    let is = |key: &str| fields.get(key).is_some_and(|v| v == "true");
    if fields.get("Type").map(String::as_str) != Some("Application")
        || is("NoDisplay")
        || is("Hidden")
    {
        return None;
    }
    let argv = parse_exec(fields.get("Exec")?)?;
    Some(DesktopEntry {
        id: id.to_string(),
        name: fields
            .get("Name")
            .cloned()
            .unwrap_or_else(|| id.to_string()),
        icon: fields.get("Icon").cloned().unwrap_or_default(),
        argv,
    })
}

/// Splits an `Exec` value into arguments (desktop entry spec quoting) and drops field codes
/// (`%f`, `%U`, ...): nothing is passed to a launched app. `%%` is a literal `%`.
pub fn parse_exec(exec: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut has_arg = false;
    let mut chars = exec.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                has_arg = true;
            }
            '\\' if in_quotes => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            c if c.is_whitespace() && !in_quotes => {
                if has_arg {
                    args.push(std::mem::take(&mut current));
                    has_arg = false;
                }
            }
            '%' => {
                // `%%` is a literal percent sign; any other field code expands to nothing.
                if chars.next() == Some('%') {
                    current.push('%');
                    has_arg = true;
                }
            }
            c => {
                current.push(c);
                has_arg = true;
            }
        }
    }
    if in_quotes {
        return None;
    }
    if has_arg {
        args.push(current);
    }
    (!args.is_empty()).then_some(args)
}

impl AgentState {
    /// The environment apps get: the agent's Wayland display, and X11 only via Xwayland.
    /// With the notification service running, also the session bus it serves on.
    fn app_environment(&self) -> Vec<(String, Option<String>)> {
        let mut env = vec![
            ("WAYLAND_DISPLAY".into(), Some(self.socket_name.clone())),
            ("DISPLAY".into(), self.x_display.map(|n| format!(":{n}"))),
            ("XDG_SESSION_TYPE".into(), Some("wayland".into())),
        ];
        if let Some(address) = self.session_bus_address() {
            env.push(("DBUS_SESSION_BUS_ADDRESS".into(), Some(address)));
        }
        env
    }

    /// Starts `argv` as an app of this qube.
    pub fn spawn_app(&mut self, argv: &[String]) {
        if self.xwayland_wanted && self.x_display.is_none() {
            self.launcher.waiting_for_xwayland.push(argv.to_vec());
            return;
        }
        let Some((program, args)) = argv.split_first() else {
            return;
        };
        self.poll_notification_address();
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::null());
        for (key, value) in self.app_environment() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        match command.spawn() {
            Ok(child) => {
                info!(pid = child.id(), %program, "started app");
                self.launcher.children.push(child);
            }
            Err(err) => warn!(%err, %program, "could not start app"),
        }
    }

    /// Starts the launches that waited for Xwayland.
    pub fn xwayland_ready(&mut self) {
        for argv in std::mem::take(&mut self.launcher.waiting_for_xwayland) {
            self.spawn_app(&argv);
        }
    }

    pub fn launch(&mut self, request: LaunchRequest) {
        match request {
            LaunchRequest::App(id) => {
                let entries = desktop_entries(&application_dirs());
                match entries.get(&id) {
                    Some(entry) => {
                        let argv = entry.argv.clone();
                        self.spawn_app(&argv);
                    }
                    None => warn!(%id, "asked to start an unknown application"),
                }
            }
            LaunchRequest::Command(argv) => self.spawn_app(&argv),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_field_codes_are_removed_and_quotes_honoured() {
        assert_eq!(
            parse_exec("foot --title \"My term\" %U"),
            Some(vec!["foot".into(), "--title".into(), "My term".into()])
        );
        assert_eq!(
            parse_exec("sh -c \"echo \\\"hi\\\" 100%%\" %f"),
            Some(vec!["sh".into(), "-c".into(), "echo \"hi\" 100%".into()])
        );
        assert_eq!(parse_exec("%F"), None);
        assert_eq!(parse_exec("\"unterminated"), None);
    }

    #[test]
    fn hidden_and_non_application_entries_are_skipped() {
        let app = "[Desktop Entry]\nType=Application\nName=Term\nName[de]=Terminal\nExec=foot\nIcon=foot\n";
        let entry = parse_desktop_entry("foot.desktop", app).unwrap();
        assert_eq!(entry.name, "Term");
        assert_eq!(entry.argv, vec!["foot".to_string()]);
        assert!(parse_desktop_entry("x", &format!("{app}NoDisplay=true\n")).is_none());
        assert!(parse_desktop_entry("x", &format!("{app}Hidden=true\n")).is_none());
        assert!(parse_desktop_entry("x", "[Desktop Entry]\nType=Link\nExec=x\n").is_none());
        assert!(
            parse_desktop_entry("x", "[Other]\nType=Application\nExec=x\n").is_none(),
            "keys outside [Desktop Entry] do not count"
        );
    }

    #[test]
    fn earlier_directories_win_and_ids_use_dashes() {
        let home = tempfile::tempdir().unwrap();
        let system = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(system.path().join("vendor")).unwrap();
        std::fs::write(
            system.path().join("vendor/edit.desktop"),
            "[Desktop Entry]\nType=Application\nName=Editor\nExec=edit %f\n",
        )
        .unwrap();
        std::fs::write(
            system.path().join("gone.desktop"),
            "[Desktop Entry]\nType=Application\nName=Gone\nExec=gone\n",
        )
        .unwrap();
        std::fs::write(
            home.path().join("gone.desktop"),
            "[Desktop Entry]\nType=Application\nName=Gone\nExec=gone\nHidden=true\n",
        )
        .unwrap();
        let entries = desktop_entries(&[home.path().into(), system.path().into()]);
        assert_eq!(
            entries.keys().collect::<Vec<_>>(),
            vec!["vendor-edit.desktop"]
        );
        assert_eq!(
            entries["vendor-edit.desktop"].argv,
            vec!["edit".to_string()]
        );
    }
}

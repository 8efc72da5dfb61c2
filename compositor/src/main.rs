//! `corral`: the compositor of Corral's trusted GUI domain, and `corral msg`.

use std::process::ExitCode;

use clap::Parser;
use corral::cli::{Cli, Command, MsgArgs, MsgCommand, PointerAction};
use corral::ipc::{self, Request, client};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Msg(args)) => msg(args),
        Some(Command::ValidateConfig { file }) => return validate_config(file.as_deref()),
        Some(Command::PrintDefaultConfig) => {
            print!("{}", corral::config::DEFAULT_CONFIG_TEXT);
            Ok(())
        }
        None if cli.run.protocol_version => {
            println!("{}", corral_protocol::Version::CURRENT);
            Ok(())
        }
        None => corral::run(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `corral validate-config [FILE]`: "ok" (and any warnings), or the located error.
fn validate_config(file: Option<&std::path::Path>) -> ExitCode {
    let source = corral::config::Source::find(file);
    match corral::config::load(&source) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn msg(args: MsgArgs) -> anyhow::Result<()> {
    let socket = args.socket.unwrap_or_else(ipc::default_socket_path);
    let request = match args.request {
        MsgCommand::Windows { json } => {
            let windows = client::windows(&socket)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&windows)?);
            } else {
                print!("{}", client::format_windows(&windows));
            }
            return Ok(());
        }
        MsgCommand::Clipboard { json } => {
            let info: corral::clipboard::ClipboardInfo =
                serde_json::from_value(client::request(&socket, &Request::Clipboard)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("{}", corral::clipboard::describe(&info));
            }
            return Ok(());
        }
        MsgCommand::Outputs => Request::Outputs,
        MsgCommand::Qubes => Request::Qubes,
        MsgCommand::Notifications => Request::Notifications,
        MsgCommand::ReloadConfig => Request::ReloadConfig,
        MsgCommand::Screenshot { file } => Request::Screenshot {
            path: std::path::absolute(&file)?,
        },
        MsgCommand::Focus { id } => Request::Focus { id },
        MsgCommand::Close { id } => Request::Close { id },
        MsgCommand::Workspace { n } => Request::Workspace { n },
        MsgCommand::Lock => Request::Lock,
        MsgCommand::LockState => Request::LockState,
        MsgCommand::AddOutput { size } => Request::AddOutput {
            width: size.0,
            height: size.1,
        },
        MsgCommand::Apps { qube, json } => {
            let value = client::request(&socket, &Request::Apps { qube })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                let qubes: Vec<corral::domains::QubeApps> = serde_json::from_value(value)?;
                for q in qubes {
                    println!("{} ({}, {}, {})", q.name, q.class, q.label, q.state);
                    if let Some(e) = q.error {
                        println!("  (cannot list: {e})");
                    }
                    for app in q.apps {
                        println!("  {:<32} {}", app.id, app.name);
                    }
                }
            }
            return Ok(());
        }
        MsgCommand::Launch { dispvm, qube, app } => Request::Launch { qube, app, dispvm },
        MsgCommand::Launcher { action } => Request::Launcher { action },
        MsgCommand::Key { combo, action } => Request::Key { combo, action },
        MsgCommand::Pointer {
            action,
            x,
            y,
            button,
        } => Request::Pointer {
            x,
            y,
            click: (action == PointerAction::Click).then(|| button.code()),
        },
    };
    let result = client::request(&socket, &request)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

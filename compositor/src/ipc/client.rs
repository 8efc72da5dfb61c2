//! The client side: `corral msg …`, also used by the tests.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::{Reply, Request, WindowInfo};

/// Sends one request and returns the reply's result, or its error as an `Err`.
pub fn request(socket: &Path, request: &Request) -> anyhow::Result<serde_json::Value> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach corral at {} (is it running? the socket can be set with --socket or CORRAL_SOCKET)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .context("reading corral's reply")?;
    let reply: Reply =
        serde_json::from_str(&answer).with_context(|| format!("corral replied {answer:?}"))?;
    if reply.ok {
        Ok(reply.result.unwrap_or(serde_json::Value::Null))
    } else {
        anyhow::bail!(
            "{}",
            reply
                .error
                .unwrap_or_else(|| "corral refused the request".into())
        )
    }
}

/// The windows, decoded.
pub fn windows(socket: &Path) -> anyhow::Result<Vec<WindowInfo>> {
    Ok(serde_json::from_value(request(socket, &Request::Windows)?)?)
}

/// A table for people.
pub fn format_windows(windows: &[WindowInfo]) -> String {
    // Qube names are up to 31 characters: size the columns to what is on screen.
    let qube_width = windows
        .iter()
        .map(|w| w.qube.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let label_width = windows
        .iter()
        .map(|w| w.label.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = String::new();
    for w in windows {
        out.push_str(&format!(
            "{:>4}  {:<8} {:<qube_width$} {:<label_width$} {:>5},{:<5} {:>5}x{:<5} ws{} {}{}{}\n",
            w.id,
            w.kind,
            w.qube,
            w.label,
            w.x,
            w.y,
            w.width,
            w.height,
            w.workspace,
            if w.focused { "* " } else { "  " },
            w.display_title,
            if w.attention {
                "  (wants attention)"
            } else {
                ""
            },
        ));
    }
    if out.is_empty() {
        out.push_str("no windows\n");
    }
    out
}

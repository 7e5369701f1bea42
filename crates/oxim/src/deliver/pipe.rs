//! The pipe transport: run a command with the message on its standard input.
//!
//! The command is split into arguments first and each argument expanded on
//! its own (as Exim does), so message data can never add arguments or reach a
//! shell. A command that exits non-zero defers (temporary, EX_TEMPFAIL) or
//! fails the address.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};

use crate::loaded::Loaded;
use crate::settings::PipeSpec;
use crate::vars::Vars;

/// How a pipe delivery ended.
#[derive(Debug, PartialEq, Eq)]
pub enum PipeResult {
    Ok,
    Defer(String),
    Fail(String),
}

/// Split a command line on white space, honouring double and single quotes.
fn split_command(cmd: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut have = false;
    for c in cmd.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                have = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if have {
                    args.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            (_, c) => {
                cur.push(c);
                have = true;
            }
        }
    }
    if have {
        args.push(cur);
    }
    args
}

/// Deliver one copy of the message to the command.
/// The command runs in `cwd` (the delivery's current directory).
pub fn deliver(
    spec: &PipeSpec,
    m: &Loaded,
    headers: &[u8],
    vars: &Vars,
    cwd: &str,
) -> Result<PipeResult> {
    let raw = spec
        .command
        .as_deref()
        .ok_or_else(|| anyhow!("no command specified"))?;
    let mut argv = Vec::new();
    for a in split_command(raw) {
        argv.push(
            oxim_conf::expand(&a, vars)
                .with_context(|| format!("failed to expand command argument \"{a}\""))?,
        );
    }
    let Some((prog, args)) = argv.split_first() else {
        return Err(anyhow!("empty command"));
    };
    if !prog.starts_with('/') {
        return Ok(PipeResult::Defer(format!(
            "command \"{prog}\" is not an absolute path"
        )));
    }
    // The caller has checked that this process's user is not on
    // never_users (deliver::never_user_refusal).
    let mut child = Command::new(prog)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_clear()
        .env("HOME", vars.get("home").unwrap_or(""))
        .env("LOCAL_PART", vars.get("local_part").unwrap_or(""))
        .env("DOMAIN", vars.get("domain").unwrap_or(""))
        .env("SENDER", super::appendfile::return_path(m, vars))
        .env("MESSAGE_ID", m.env.id.to_string())
        .spawn()
        .with_context(|| format!("failed to execute {prog}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let mut text = Vec::with_capacity(headers.len() + m.body.len() + 64);
        if spec.return_path_add {
            text.extend_from_slice(
                format!(
                    "Return-path: <{}>\n",
                    super::appendfile::return_path(m, vars)
                )
                .as_bytes(),
            );
        }
        if spec.envelope_to_add {
            let to = vars.get("address").unwrap_or("");
            text.extend_from_slice(format!("Envelope-to: {to}\n").as_bytes());
        }
        if spec.delivery_date_add {
            let now = crate::time::LocalTime::now().rfc2822();
            text.extend_from_slice(format!("Delivery-date: {now}\n").as_bytes());
        }
        text.extend_from_slice(headers);
        text.push(b'\n');
        text.extend_from_slice(&m.body);
        // A command that does not read all its input is not an error here.
        let _ = stdin.write_all(&text);
    }
    let limit = if spec.timeout.is_zero() {
        Duration::from_secs(3600)
    } else {
        spec.timeout
    };
    let start = Instant::now();
    loop {
        match child.try_wait()? {
            Some(status) => {
                return Ok(match status.code() {
                    Some(0) => PipeResult::Ok,
                    // EX_TEMPFAIL
                    Some(75) => PipeResult::Defer(format!("Child process of transport returned 75 (could mean temporary error) from command: {prog}")),
                    Some(c) => PipeResult::Fail(format!("Child process of transport returned {c} from command: {prog}")),
                    None => PipeResult::Defer(format!("Child process of transport was killed by a signal: {prog}")),
                });
            }
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(PipeResult::Defer(format!(
                    "transport timed out after {}s: {prog}",
                    limit.as_secs()
                )));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_splitting() {
        assert_eq!(split_command("/bin/cat -n"), vec!["/bin/cat", "-n"]);
        assert_eq!(
            split_command("/x \"a b\" 'c d' e"),
            vec!["/x", "a b", "c d", "e"]
        );
        assert_eq!(split_command("/x ''"), vec!["/x", ""]);
    }
}

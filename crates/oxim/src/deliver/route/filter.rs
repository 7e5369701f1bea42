//! A redirect router's data that is a filter (`# Exim filter`): run it and
//! turn what it did into a routing decision.

use std::os::unix::fs::DirBuilderExt;

use oxim_conf::filter::{FilterType, ParseOptions};

use super::{AddrData, Direct, Routed, Routing};
use crate::ctx::Ctx;
use crate::errno::Errno;
use crate::filter::{Action, Env, LogMode, Verdict};
use crate::settings::{FilterOptions, RouterKind, RouterSpec};
use crate::vars::Vars;

/// None when `text` is not a filter (a plain redirection list); otherwise
/// the router's decision (None inside: the router declines).
#[allow(clippy::too_many_arguments)]
pub(super) fn run_if_filter(
    ctx: &Ctx,
    r: &RouterSpec,
    vars: &Vars,
    rdata: &AddrData,
    text: &str,
    is_data: bool,
    verifying: bool,
    fopts: &FilterOptions,
) -> Option<Option<Routing>> {
    let kind = oxim_conf::filter::filter_type(text);
    if kind == FilterType::Forward {
        return None;
    }
    let what = if is_data { "data" } else { "file" };
    let error = |msg: String| -> Option<Option<Routing>> {
        let mut routing = Routing::from(Routed::Defer {
            router: Some(r.name.clone()),
            message: format!("error in filter {what}: {msg}"),
        });
        routing.errno = Errno::BadRedirect;
        Some(Some(routing))
    };
    if !fopts.allow_filter {
        return error("filtering not enabled".into());
    }
    if kind == FilterType::Sieve {
        if fopts.forbid_sieve_filter {
            return error("Sieve filtering not enabled".into());
        }
        return match sieve(ctx, r, vars, rdata, text, fopts) {
            Ok(routing) => Some(routing),
            Err(e) => error(e),
        };
    }
    if fopts.forbid_exim_filter {
        return error("Exim filtering not enabled".into());
    }
    let RouterKind::Redirect {
        allow_defer,
        allow_fail,
        file_transport,
        pipe_transport,
        ..
    } = &r.kind
    else {
        return None;
    };
    let opts = ParseOptions {
        system: false,
        allow_defer: *allow_defer,
        allow_fail: *allow_fail,
        allow_freeze: fopts.allow_freeze,
    };
    let commands = match oxim_conf::filter::parse(text, opts) {
        Ok(c) => c,
        Err(e) => return error(e),
    };
    let mut fvars = vars.clone();
    for (k, v) in &rdata.vars {
        fvars.set(k, v.clone());
    }
    let state = vars.delivery_state();
    let delivering = state.is_some() && !verifying;
    let sender = vars.get("sender_address").unwrap_or("").to_string();
    let env = Env {
        cfg: &ctx.config,
        headers: vars.headers(),
        vars: fvars,
        testing: false,
        system: false,
        message: delivering,
        first_delivery: state.is_some_and(|s| s.0),
        manually_thawed: state.is_some_and(|s| s.1),
        return_path: sender.clone(),
        sender,
        // The system filter's $n values, passed on as $sn.
        sn: std::array::from_fn(|i| {
            vars.get(&format!("sn{i}"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        }),
        log: if fopts.forbid_logwrite {
            LogMode::Forbidden
        } else if delivering {
            LogMode::Real
        } else {
            LogMode::Skip
        },
        prepend_home: fopts.prepend_home,
        forbid: crate::filter::Forbid {
            lookup: fopts.forbid_lookup,
            readfile: fopts.forbid_readfile,
            readsocket: fopts.forbid_readsocket,
            run: fopts.forbid_run,
            existstest: fopts.forbid_existstest,
            dlfunc: fopts.forbid_dlfunc,
            perl: fopts.forbid_perl,
        },
    };
    // A delivery runs the filter as the router's user (`user`, or the
    // local user check_local_user found), as Exim does: its logfile and
    // the files it reads are that user's.
    let outcome = match rdata.uid.filter(|_| delivering) {
        Some(uid) => {
            let gid = rdata
                .gid
                .unwrap_or_else(|| nix::unistd::Gid::effective().as_raw());
            match crate::privilege::as_user(uid, gid, || crate::filter::run(&commands, env)) {
                Ok(o) => o,
                Err(e) => return error(format!("{e:#}")),
            }
        }
        None => crate::filter::run(&commands, env),
    };
    let defer = |message: String| Routed::Defer {
        router: Some(r.name.clone()),
        message,
    };
    let routing = match outcome.verdict {
        Verdict::Error(e) => return error(e),
        Verdict::Defer(m) => Routing::from(defer(if m.is_empty() {
            "forced defer".into()
        } else {
            m
        })),
        Verdict::Fail(m) => Routing::from(Routed::Fail {
            router: Some(r.name.clone()),
            message: if m.is_empty() {
                "forced rejection".into()
            } else {
                m
            },
        }),
        Verdict::Freeze(m) if !state.is_some_and(|s| s.1) => {
            let mut routing = Routing::from(defer(if m.is_empty() {
                "frozen by filter".into()
            } else {
                m
            }));
            routing.freeze = true;
            routing
        }
        verdict => {
            let significant = verdict == Verdict::Delivered;
            let mut children = Vec::new();
            let mut direct = Vec::new();
            for a in outcome.actions {
                match a {
                    Action::Deliver { address, .. } => children.push(address),
                    Action::Save { path, .. } => {
                        let mut d = direct_item(r, rdata, path, file_transport, false);
                        if fopts.forbid_file {
                            d.forbidden = Some("delivery to file forbidden");
                        }
                        direct.push(d);
                    }
                    Action::Pipe { command, .. } => {
                        let mut d = direct_item(r, rdata, command, pipe_transport, true);
                        if fopts.forbid_pipe {
                            d.forbidden = Some("delivery to pipe forbidden");
                        }
                        direct.push(d);
                    }
                    Action::Reply {
                        vacation,
                        values,
                        expand_file,
                        return_message,
                        ..
                    } => {
                        let name = if vacation { "vacation" } else { "mail" };
                        if fopts.forbid_reply {
                            return error(format!("filtering command \"{name}\" is disabled"));
                        }
                        // Logged as ">" and the recipients (Exim's form).
                        let to = values[0].clone().unwrap_or_default();
                        let mut shown: Vec<String> = oxim_conf::expand::split_addresses(&to)
                            .into_iter()
                            .filter_map(|a| oxim_conf::expand::extract_address(a, false))
                            .filter(|a| !a.is_empty())
                            .collect();
                        let mut log = shown.join(",");
                        if log.len() > 256 {
                            shown.truncate(1);
                            log = format!("{}, ...", shown.join(","));
                        }
                        let target = if log.is_empty() {
                            ">**bad-reply**".to_string()
                        } else {
                            format!(">{log}")
                        };
                        let mut data = rdata.clone();
                        data.reply = Some(Box::new(super::FilterReply {
                            values: *values,
                            expand_file,
                            return_message,
                        }));
                        direct.push(Direct {
                            target,
                            router: r.name.clone(),
                            transport: fopts.reply_transport.clone(),
                            data,
                            forbidden: None,
                        });
                    }
                }
            }
            if children.is_empty() && direct.is_empty() {
                if !significant {
                    return Some(None);
                }
                Routing::from(Routed::Blackhole {
                    router: r.name.clone(),
                    discarded: true,
                })
            } else {
                let mut routing = Routing::from(Routed::Redirected {
                    children,
                    direct,
                    router: r.name.clone(),
                });
                routing.also_next = !significant;
                routing
            }
        }
    };
    Some(Some(routing))
}

/// Run a Sieve script: its redirections are routed, its folders go to
/// the file_transport, a vacation to the reply_transport. Err: the message
/// of a routing error (an option that does not expand).
fn sieve(
    ctx: &Ctx,
    r: &RouterSpec,
    vars: &Vars,
    rdata: &AddrData,
    text: &str,
    fopts: &FilterOptions,
) -> Result<Option<Routing>, String> {
    use crate::filter::sieve::{self, SieveAction, SieveEnv};
    let RouterKind::Redirect { file_transport, .. } = &r.kind else {
        return Ok(None);
    };
    let mut fvars = vars.clone();
    for (k, v) in &rdata.vars {
        fvars.set(k, v.clone());
    }
    let expand = |name: &str, o: &Option<String>| -> Result<Option<String>, String> {
        match o {
            None => Ok(None),
            Some(s) => oxim_conf::expand_with_config(s, &fvars, &ctx.config)
                .map(Some)
                .map_err(|e| format!("failed to expand \"{s}\" ({name}): {e}")),
        }
    };
    let vacation_dir = expand("sieve_vacation_directory", &fopts.sieve_vacation_directory)?;
    let inbox = expand("sieve_inbox", &fopts.sieve_inbox)?.unwrap_or_else(|| "inbox".into());
    let script = oxim_conf::sieve::parse(
        text,
        oxim_conf::sieve::ParseOptions {
            vacation: vacation_dir.is_some(),
        },
    );
    let env = SieveEnv {
        cfg: &ctx.config,
        headers: vars.headers(),
        message_size: vars
            .get("message_size")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        vars: fvars.clone(),
        testing: false,
        inbox,
        useraddress: fopts.sieve_useraddress.clone(),
        subaddress: fopts.sieve_subaddress.clone(),
        vacation_dir,
    };
    let outcome = sieve::run(&script, &env);
    // Vacation's "once" files need their directory (a failure shows when
    // the reply is sent).
    if let Some(dir) = &env.vacation_dir {
        if outcome
            .actions
            .iter()
            .any(|a| matches!(a, SieveAction::Vacation(_)))
        {
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir);
        }
    }
    let mut children = Vec::new();
    let mut direct = Vec::new();
    for a in outcome.actions {
        match a {
            SieveAction::Redirect(address) => children.push(address),
            SieveAction::FileInto(folder) => {
                let mut d = direct_item(r, rdata, folder, file_transport, false);
                // A folder is delivered with the local part of the address
                // whose script named it (Exim's rule for files).
                if let Some(lp) = fvars.get("local_part") {
                    d.data.vars.push(("local_part".into(), lp.to_string()));
                }
                if fopts.forbid_file {
                    d.forbidden = Some("delivery to file forbidden");
                }
                direct.push(d);
            }
            SieveAction::Vacation(v) => {
                let mut values: [Option<String>; 12] = Default::default();
                values[0] = Some(v.to.clone());
                values[3] = Some(v.from);
                values[5] = Some(v.subject);
                values[6] = Some(v.headers);
                values[7] = Some(v.text);
                values[10] = Some(v.oncelog);
                values[11] = Some(format!("{}d", v.days));
                let mut data = rdata.clone();
                data.reply = Some(Box::new(super::FilterReply {
                    values,
                    expand_file: false,
                    return_message: false,
                }));
                direct.push(Direct {
                    target: format!(">{}", v.to),
                    router: r.name.clone(),
                    transport: fopts.reply_transport.clone(),
                    data,
                    forbidden: None,
                });
            }
        }
    }
    Ok(Some(if children.is_empty() && direct.is_empty() {
        Routing::from(Routed::Blackhole {
            router: r.name.clone(),
            discarded: true,
        })
    } else {
        Routing::from(Routed::Redirected {
            children,
            direct,
            router: r.name.clone(),
        })
    }))
}

fn direct_item(
    r: &RouterSpec,
    rdata: &AddrData,
    target: String,
    transport: &Option<String>,
    pipe: bool,
) -> Direct {
    let mut data = rdata.clone();
    let name = if pipe { "address_pipe" } else { "address_file" };
    data.vars.push((name.into(), target.clone()));
    Direct {
        target,
        router: r.name.clone(),
        transport: transport.clone(),
        data,
        forbidden: None,
    }
}

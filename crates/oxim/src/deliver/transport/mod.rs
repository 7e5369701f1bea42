//! Running transports: the local ones (appendfile, pipe, autoreply) per
//! address, the smtp transport per host list; each gives an [`Outcome`]
//! per address.

mod callout;
mod dirs;
mod dkim_sign;
mod remote;

use oxim_log::LogRecord;

use crate::ctx::Ctx;
use crate::errno::Errno;
use crate::loaded::Loaded;
use crate::settings::{TransportKind, TransportSpec};
use crate::vars::Vars;

use super::record::{local_error, Item, Outcome};
use super::route::{Props, RoutedHost};
use super::{appendfile, autoreply, pipe, smtp};
pub use callout::{callout_targets, CalloutTarget};
use remote::run_smtp;

/// One remote transport call: its addresses share a transport, a host
/// list and the routers' properties.
pub type RemoteGroup<'t> = (
    String,
    &'t TransportSpec,
    Vec<RoutedHost>,
    Props,
    Vec<(Item, String)>,
);

pub async fn run_remote_group(
    ctx: &Ctx,
    (tname, t, hosts, props, items): RemoteGroup<'_>,
    m: &Loaded,
    headers: &[u8],
    vars: &Vars,
    pool: Option<smtp::PoolRef<'_>>,
) -> (String, Vec<(Item, String, Outcome)>) {
    let call = Call {
        ctx,
        m,
        headers,
        vars,
        items: &items,
        router_hosts: &hosts,
        return_path: items[0].0.return_path(&m.env.sender),
    };
    let r = run_transport(call, t, &props, pool).await;
    (tname, r)
}

/// One transport call: the message, the addresses it is for, and what the
/// routers decided for them.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub ctx: &'a Ctx,
    pub m: &'a Loaded,
    /// The header section as it goes out.
    pub headers: &'a [u8],
    pub vars: &'a Vars,
    /// The addresses, each with the router that sent it here.
    pub items: &'a [(Item, String)],
    /// The hosts the routers chose (for the smtp transport).
    pub router_hosts: &'a [RoutedHost],
    /// The envelope sender to use (errors_to, else the message's sender).
    pub return_path: &'a str,
}

/// Run transport `t` for one call. `props` holds the routers' header
/// changes.
pub async fn run_transport(
    call: Call<'_>,
    t: &TransportSpec,
    props: &Props,
    pool: Option<smtp::PoolRef<'_>>,
) -> Vec<(Item, String, Outcome)> {
    let Call {
        ctx,
        m,
        headers,
        vars,
        items,
        return_path,
        ..
    } = call;
    let delivered = Outcome::delivered_locally();
    // -N: a local transport does nothing (an smtp transport still finds
    // its host, which the log line names).
    if super::record::bypassed(ctx, m) && !matches!(t.kind, TransportKind::Smtp(_)) {
        return items
            .iter()
            .map(|(item, router)| (item.clone(), router.clone(), delivered.clone()))
            .collect();
    }
    // The routers' and the transport's header changes apply to what it
    // sends: expanded once for an smtp transport's call, per delivery (with
    // the address's variables) for a local one.
    let edit = HeaderEdit {
        ctx,
        m,
        t,
        props,
        base: headers,
    };
    let edited;
    let headers = if edit.needed() && matches!(t.kind, TransportKind::Smtp(_)) {
        edited = edit_headers(ctx, m, t, props, vars);
        &edited[..]
    } else {
        headers
    };
    if matches!(t.kind, TransportKind::Pipe(_)) {
        if let Some(refusal) = never_user_refusal(ctx, t, m) {
            return items
                .iter()
                .map(|(item, router)| (item.clone(), router.clone(), refusal.clone()))
                .collect();
        }
    }
    let mut vars = vars.clone();
    vars.set("return_path", return_path.to_string());
    // The transport's own return_path, expanded with $return_path (and the
    // address's variables when it delivers one address) set.
    let own_return_path;
    let return_path = match &t.return_path {
        None => return_path,
        Some(rp) => {
            let v = match items {
                [(item, _)] => address_vars(item, &vars),
                _ => vars.clone(),
            };
            match oxim_conf::expand_with_config(rp, &v, &ctx.config) {
                Ok(new) => {
                    own_return_path = new;
                    own_return_path.as_str()
                }
                Err(e) if e.is_forced_fail() => return_path,
                Err(e) => {
                    let remote = matches!(t.kind, TransportKind::Smtp(_));
                    let outcome = if remote {
                        let text = format!("Failed to expand return path \"{rp}\": {e}");
                        let id = m.env.id.to_string();
                        ctx.log(&LogRecord::Text {
                            id: Some(&id),
                            text: &text,
                            dest: oxim_log::Dest {
                                main: false,
                                reject: false,
                                panic: true,
                            },
                        });
                        local_deferral(text)
                    } else {
                        Outcome::Deferred {
                            host: None,
                            err: local_error(
                                Errno::ExpandFail,
                                format!(
                                    "Failed to expand return path \"{rp}\" in {} transport: {e}",
                                    t.name
                                ),
                            ),
                        }
                    };
                    return items
                        .iter()
                        .map(|(item, router)| (item.clone(), router.clone(), outcome.clone()))
                        .collect();
                }
            }
        }
    };
    vars.set("return_path", return_path.to_string());
    let vars = &vars;
    match &t.kind {
        TransportKind::Smtp(spec) => {
            let call = Call {
                headers,
                vars,
                return_path,
                ..call
            };
            run_smtp(call, spec, &t.name, pool).await
        }
        TransportKind::Appendfile(spec) => {
            let mut done = appendfile_items(ctx, t, spec, &edit, vars, items);
            // A file a filter or forward file named, written where the
            // transport's own `file` says: the log shows that path.
            if let Some(file) = &spec.file {
                for (item, _, _) in &mut done {
                    let named = item.data.vars.iter().any(|(k, _)| k == "address_file");
                    if !named {
                        continue;
                    }
                    let v = address_vars(item, vars);
                    if let Ok(path) = oxim_conf::expand(file, &v) {
                        item.log_as = Some(match &item.log_as {
                            Some(l) if l.starts_with(&item.address) => {
                                format!("{path}{}", &l[item.address.len()..])
                            }
                            _ => path,
                        });
                    }
                }
            }
            done
        }
        TransportKind::Pipe(spec) => per_address(items, vars, |item, v| {
            let mut v = v.clone();
            let cwd = match dirs::local_dirs(t, item, &mut v) {
                Ok(cwd) => cwd,
                Err(err) => return Outcome::Deferred { host: None, err },
            };
            if let Err(err) = dirs::check_chdir(&cwd) {
                return Outcome::Deferred { host: None, err };
            }
            let headers = edit.for_vars(&v);
            match pipe::deliver(spec, m, &headers, &v, &cwd) {
                Ok(pipe::PipeResult::Ok) => delivered.clone(),
                Ok(pipe::PipeResult::Fail(msg)) => Outcome::Failed {
                    host: None,
                    err: local_error(Errno::None, msg),
                    sequence: None,
                },
                Ok(pipe::PipeResult::Defer(msg)) => local_deferral(msg),
                Err(e) => local_deferral(format!("{e:#}")),
            }
        }),
        TransportKind::Autoreply(spec) => {
            let mut out = Vec::with_capacity(items.len());
            for (item, router) in items {
                let mut v = address_vars(item, vars);
                let dirs =
                    dirs::local_dirs(t, item, &mut v).and_then(|cwd| dirs::check_chdir(&cwd));
                if let Err(err) = dirs {
                    let o = Outcome::Deferred { host: None, err };
                    out.push((item.clone(), router.clone(), o));
                    continue;
                }
                // A filter's mail/vacation brings its own arguments.
                let from_filter = item
                    .data
                    .reply
                    .as_deref()
                    .map(|r| autoreply::filter_spec(spec, r, &v));
                let spec = from_filter.as_ref().unwrap_or(spec);
                // The reply is from the user the transport runs as (Exim
                // makes it in a process of that user: U= on its `<=`).
                let user = match delivery_ids(ctx, t, item, &v) {
                    Ok(Some((uid, gid))) => crate::ctx::Caller::for_ids(uid, gid),
                    Ok(None) => crate::ctx::Caller::current(),
                    Err(e) => {
                        out.push((item.clone(), router.clone(), local_deferral(e)));
                        continue;
                    }
                };
                let headers = edit.for_vars(&v);
                let outcome = match autoreply::deliver(ctx, spec, m, &headers, &v, user).await {
                    Ok(new_id) => {
                        // Delivered before this delivery goes on, as
                        // Exim's autoreply child (-odi) is waited for.
                        if let Some(id) = new_id {
                            if let Err(e) = crate::ctx::deliver_and_wait(ctx, &id) {
                                ctx.log_text(Some(&id), &format!("cannot start delivery: {e:#}"));
                            }
                        }
                        delivered.clone()
                    }
                    Err(e) => local_deferral(format!("{e:#}")),
                };
                out.push((item.clone(), router.clone(), outcome));
            }
            out
        }
    }
}

/// A local transport's `shadow_transport`: each address it delivered is
/// also given to the shadow (when `shadow_condition`, expanded for the
/// address, is true). What the shadow did goes in the address's log line
/// (`ST=`); its failure changes nothing else.
pub async fn run_shadow(
    call: Call<'_>,
    t: &TransportSpec,
    props: &Props,
    results: Vec<(Item, String, Outcome)>,
) -> Vec<(Item, String, Outcome)> {
    let Some(shadow_name) = &t.shadow_transport else {
        return results;
    };
    let ctx = call.ctx;
    let Some(shadow) = ctx.drivers.transport(shadow_name) else {
        let id = call.m.env.id.to_string();
        ctx.log(&LogRecord::Text {
            id: Some(&id),
            text: &format!("shadow transport \"{shadow_name}\" not found "),
            dest: oxim_log::Dest {
                main: true,
                reject: false,
                panic: true,
            },
        });
        return results;
    };
    let mut out = Vec::with_capacity(results.len());
    for (mut item, router, outcome) in results {
        if matches!(outcome, Outcome::Delivered { .. }) {
            let v = address_vars(&item, call.vars);
            let wanted = match &t.shadow_condition {
                None => true,
                Some(c) => oxim_conf::expand(c, &v)
                    .ok()
                    .is_some_and(|x| crate::condition::condition_true(&x).unwrap_or(false)),
            };
            if wanted {
                let one = [(item.clone(), router.clone())];
                let shadow_call = Call {
                    items: &one,
                    ..call
                };
                let done = Box::pin(run_transport(shadow_call, shadow, props, None)).await;
                item.shadow = done.first().map(|(_, _, o)| match o {
                    Outcome::Delivered { .. } => format!("ST={}", shadow.name),
                    Outcome::Deferred { err, .. } | Outcome::Failed { err, .. } => {
                        format!("ST={} ({})", shadow.name, super::record::reason_text(err))
                    }
                });
            }
        }
        out.push((item, router, outcome));
    }
    out
}

/// File and pipe deliveries run as this process's user: never one on
/// `never_users` (default root). A refused delivery is deferred and logged
/// on the main and panic logs, in Exim's words.
pub fn never_user_refusal(ctx: &Ctx, t: &TransportSpec, m: &Loaded) -> Option<Outcome> {
    never_user_refusal_for(ctx, t, m, nix::unistd::Uid::effective().as_raw())
}

/// Refuse a delivery as `uid` when it is on `never_users`.
pub fn never_user_refusal_for(
    ctx: &Ctx,
    t: &TransportSpec,
    m: &Loaded,
    uid: u32,
) -> Option<Outcome> {
    if !ctx.never_users.contains(&uid) {
        return None;
    }
    let text = format!(
        "User {uid} set for {} transport is on the never_users list",
        t.name
    );
    let id = m.env.id.to_string();
    ctx.log(&LogRecord::Text {
        id: Some(&id),
        text: &text,
        dest: oxim_log::Dest {
            main: true,
            reject: false,
            panic: true,
        },
    });
    Some(Outcome::Deferred {
        host: None,
        err: local_error(Errno::UidFail, text),
    })
}

/// The user and group a local delivery runs as: the transport's `user`
/// and `group`, else those its router set (`user`, `group`, or the local
/// user `check_local_user` found). None: no one set them, the delivery
/// runs as this process.
fn delivery_ids(
    ctx: &Ctx,
    t: &TransportSpec,
    item: &Item,
    vars: &Vars,
) -> Result<Option<(u32, u32)>, String> {
    let (mut uid, mut gid) = (item.data.uid, item.data.gid);
    if let Some(u) = &t.user {
        let name = oxim_conf::expand_with_config(u, vars, &ctx.config)
            .map_err(|e| format!("failed to expand user in {} transport: {e}", t.name))?;
        let (u, g, _) = crate::privilege::find_user(&name)
            .map_err(|e| format!("{e:#} in {} transport", t.name))?;
        uid = Some(u);
        if t.group.is_none() {
            gid = g.or(gid);
        }
    }
    if let Some(g) = &t.group {
        let name = oxim_conf::expand_with_config(g, vars, &ctx.config)
            .map_err(|e| format!("failed to expand group in {} transport: {e}", t.name))?;
        gid = Some(
            crate::privilege::find_group(&name)
                .map_err(|e| format!("{e:#} in {} transport", t.name))?,
        );
    }
    Ok(match (uid, gid) {
        (Some(u), Some(g)) => Some((u, g)),
        (Some(u), None) => Some((u, nix::unistd::Gid::effective().as_raw())),
        (None, Some(g)) => Some((nix::unistd::Uid::effective().as_raw(), g)),
        (None, None) => None,
    })
}

/// The appendfile transport, address by address.
fn appendfile_items(
    ctx: &Ctx,
    t: &TransportSpec,
    spec: &crate::settings::AppendSpec,
    edit: &HeaderEdit<'_>,
    vars: &Vars,
    items: &[(Item, String)],
) -> Vec<(Item, String, Outcome)> {
    let delivered = Outcome::delivered_locally();
    per_address(items, vars, |item, v| {
        let mut v = v.clone();
        let cwd = match dirs::local_dirs(t, item, &mut v) {
            Ok(cwd) => cwd,
            Err(err) => return Outcome::Deferred { host: None, err },
        };
        let v = &v;
        // As the transport's user/group, else the router's (or the
        // local user check_local_user found); root only to switch.
        let ids = match delivery_ids(ctx, t, item, v) {
            Ok(ids) => ids,
            Err(e) => return local_deferral(e),
        };
        let uid = ids.map_or(nix::unistd::Uid::effective().as_raw(), |i| i.0);
        if let Some(refusal) = never_user_refusal_for(ctx, t, edit.m, uid) {
            return refusal;
        }
        // The delivery's user must be able to enter its current directory
        // (Exim's delivery process changes to it first).
        let deliver = || match dirs::check_chdir(&cwd) {
            Err(err) => Ok(Some(Outcome::Deferred { host: None, err })),
            Ok(()) => {
                let headers = edit.for_vars(v);
                appendfile::deliver(spec, item.top(), edit.m, &headers, v).map(|()| None)
            }
        };
        let r = match ids {
            Some((uid, gid)) => crate::privilege::as_user(uid, gid, deliver).and_then(|r| r),
            None => deliver(),
        };
        match r {
            Ok(None) => delivered.clone(),
            Ok(Some(o)) => o,
            Err(e) => local_deferral(format!("{e:#}")),
        }
    })
}

/// Run a local transport once per address, with `$local_part`/`$domain`
/// and what its router found (`$local_part_data`, `$home`, ...) set.
pub fn per_address(
    items: &[(Item, String)],
    vars: &Vars,
    mut deliver: impl FnMut(&Item, &Vars) -> Outcome,
) -> Vec<(Item, String, Outcome)> {
    items
        .iter()
        .map(|(item, router)| {
            let v = address_vars(item, vars);
            (item.clone(), router.clone(), deliver(item, &v))
        })
        .collect()
}

/// `vars` with one address's `$local_part`/`$domain` and what its router
/// found (`$local_part_data`, `$home`, ...).
fn address_vars(item: &Item, vars: &Vars) -> Vars {
    let mut v = vars.clone();
    v.set_address(&item.address);
    for (name, value) in &item.data.vars {
        v.set(name, value.clone());
    }
    // A file, pipe or reply carries its parent's local part and domain.
    if item.address.starts_with(['/', '|', '>']) {
        if let Some(parent) = item
            .log_as
            .as_deref()
            .and_then(|l| l.rsplit_once(" (").map(|(_, p)| p.trim_end_matches(')')))
            .or(item.parent.as_deref())
        {
            let (lp, dom) = crate::vars::split_address(parent);
            v.set("local_part", lp);
            v.set("domain", dom);
        }
    }
    v
}

pub fn local_deferral(message: String) -> Outcome {
    Outcome::Deferred {
        host: None,
        err: local_error(Errno::Unknown, message),
    }
}

/// The header section a transport sends: the message's, or (when a router
/// or the transport changes headers) edited with the variables at hand.
pub struct HeaderEdit<'a> {
    pub ctx: &'a Ctx,
    pub m: &'a Loaded,
    pub t: &'a TransportSpec,
    pub props: &'a Props,
    pub base: &'a [u8],
}

impl<'a> HeaderEdit<'a> {
    fn needed(&self) -> bool {
        self.t.headers_add.is_some()
            || self.t.headers_remove.is_some()
            || self.t.headers_rewrite.is_some()
            || !self.props.headers_add.is_empty()
            || !self.props.headers_remove.is_empty()
    }

    /// The headers for one delivery whose variables are `v`.
    pub fn for_vars(&self, v: &Vars) -> std::borrow::Cow<'a, [u8]> {
        if self.needed() {
            std::borrow::Cow::Owned(edit_headers(self.ctx, self.m, self.t, self.props, v))
        } else {
            std::borrow::Cow::Borrowed(self.base)
        }
    }
}

/// Apply the routers' and the transport's `headers_remove` (colon lists of
/// names), then add the routers' `headers_add` lines and the transport's
/// (expanded, newline-separated), in that order.
pub fn edit_headers(
    ctx: &Ctx,
    m: &Loaded,
    t: &TransportSpec,
    props: &Props,
    vars: &Vars,
) -> Vec<u8> {
    let mut remove: Vec<String> = t
        .headers_remove
        .as_deref()
        .and_then(|r| oxim_conf::expand_list_items(r, ':', vars).ok())
        .unwrap_or_default();
    remove.extend(props.headers_remove.iter().cloned());
    let mut out = Vec::new();
    for h in m.headers.iter().filter(|h| h.is_live()) {
        let name = h.name().unwrap_or("");
        if remove.iter().any(|r| header_name_matches(r, name)) {
            continue;
        }
        // headers_rewrite applies to the message's own lines (not to those
        // routers and the transport add); nothing is qualified here.
        if let Some(rules) = &t.headers_rewrite {
            let mut notes = Vec::new();
            let new = crate::rewrite::env(ctx, vars)
                .rewrite_header(rules, &h.text, false, false, &mut notes);
            let id = m.env.id.to_string();
            crate::rewrite::log_notes(ctx, Some(&id), notes);
            if let Some(new) = new {
                out.extend_from_slice(new.as_bytes());
                continue;
            }
        }
        out.extend_from_slice(h.text.as_bytes());
    }
    for line in &props.headers_add {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    if let Some(add) = t
        .headers_add
        .as_deref()
        .and_then(|a| oxim_conf::expand_list_items(a, '\n', vars).ok())
    {
        for item in add {
            for line in item.split('\n').filter(|l| !l.trim().is_empty()) {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
    }
    out
}

/// A `headers_remove` item: a header name, or a prefix ending in `*`
/// (`X-*`); case does not matter.
pub fn header_name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix)),
        None => pattern.eq_ignore_ascii_case(name),
    }
}

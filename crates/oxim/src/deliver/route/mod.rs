//! The router chain: each address is offered to the routers in order until one
//! accepts, redirects, fails or defers it.

mod filter;
mod hosts;
mod outcome;
mod preconditions;
mod redirect;

use std::net::IpAddr;

use crate::condition::{condition_true, ConditionError};
use crate::ctx::Ctx;
use crate::errno::Errno;
use crate::settings::{RouterKind, RouterSpec};
use crate::vars::{split_address, Vars};

use hosts::{dnslookup, manualroute};
pub use hosts::{host_addresses, is_local_named};
pub(crate) use outcome::transport_result;

use outcome::*;
use preconditions::*;
use redirect::*;

/// A host chosen by a router (manualroute, dnslookup).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoutedHost {
    pub name: String,
    /// Known address (IP literal or looked up); None until resolved.
    pub ip: Option<IpAddr>,
    /// The router's `self = send` allows this host although it is us.
    pub allow_local: bool,
    /// The MX preference when the host came from an MX record.
    pub mx: Option<u16>,
    /// A port given with the host (`host::port` in a manualroute list),
    /// instead of the transport's.
    pub port: Option<u16>,
}

impl RoutedHost {
    fn named(name: String, ip: Option<IpAddr>) -> RoutedHost {
        RoutedHost {
            name,
            ip,
            allow_local: false,
            mx: None,
            port: None,
        }
    }
}

/// What a router adds to the addresses it handles, inherited by the
/// addresses a redirection generates from them.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Props {
    /// `errors_to`: where bounces go and the return path of the delivery;
    /// `Some("")` means no bounce at all.
    pub errors_to: Option<String>,
    /// `headers_add` lines, in the order they are added.
    pub headers_add: Vec<String>,
    /// `headers_remove` names.
    pub headers_remove: Vec<String>,
}

impl Props {
    /// The properties of an address routed by a router that set `own`,
    /// when the address already carried `self` (from its parents).
    pub fn with(&self, own: &Props) -> Props {
        let mut p = self.clone();
        if own.errors_to.is_some() {
            p.errors_to = own.errors_to.clone();
        }
        p.headers_add.extend(own.headers_add.iter().cloned());
        p.headers_remove.extend(own.headers_remove.iter().cloned());
        p
    }
}

/// A router's decision plus what comes with it.
#[derive(Debug, Clone)]
pub struct Routing {
    pub routed: Routed,
    /// The accepting router's errors_to and header changes.
    pub props: Props,
    /// `unseen`: a copy of the address goes on to the router at this index.
    pub unseen_next: Option<usize>,
    /// For a deferral: the errno Exim logs (`defer (-32)`), and whether the
    /// message is to be frozen (manualroute's `host_find_failed = freeze`).
    pub errno: Errno,
    pub freeze: bool,
    /// Lines for the main log, written before the outcome's own.
    pub notes: Vec<String>,
    /// Whether `-bt` shows the notes too (Exim logs them while testing).
    pub notes_in_bt: bool,
    /// `self = pass`: go on to the next router; `routed` holds the failure
    /// to report if no router takes the address.
    pub pass: bool,
    /// A filter set up deliveries but nothing significant: the address
    /// also goes on to the next router (as with `unseen`).
    pub also_next: bool,
    /// The hosts a router without a transport chose (a verification's
    /// callout is made to them, and cannot complete).
    pub hosts_without_transport: Vec<RoutedHost>,
}

impl From<Routed> for Routing {
    fn from(routed: Routed) -> Routing {
        Routing {
            routed,
            props: Props::default(),
            unseen_next: None,
            errno: Errno::Unknown,
            freeze: false,
            notes: Vec::new(),
            notes_in_bt: false,
            pass: false,
            also_next: false,
            hosts_without_transport: Vec::new(),
        }
    }
}

/// What the accepting router found out about an address that its
/// transport uses: variables (`$local_part` without its affixes,
/// `$local_part_prefix`, `$local_part_data`, `$home`, `$local_user_uid`,
/// `$address_data`, ...) and the user and group to deliver as (the
/// router's `user`/`group`, else the local user `check_local_user` found).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct AddrData {
    pub vars: Vec<(String, String)>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// A filter's `mail`/`vacation`: what the reply transport sends.
    pub reply: Option<Box<FilterReply>>,
    /// The router's `transport_home_directory` and
    /// `transport_current_directory` (unexpanded), for a local transport.
    pub transport_home: Option<String>,
    pub transport_current: Option<String>,
}

/// The arguments of a filter's `mail` or `vacation` command, expanded (in
/// the order of `oxim_conf::filter::MAIL_ARGS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FilterReply {
    pub values: [Option<String>; 12],
    pub expand_file: bool,
    pub return_message: bool,
}

/// A file or pipe a redirection produced (`/var/mail/mail`, `|cmd`):
/// delivered by the router's file_transport or pipe_transport, not routed.
#[derive(Debug, Clone)]
pub struct Direct {
    /// The path or `|command`.
    pub target: String,
    pub router: String,
    /// None when the router has no transport for it (a deferral).
    pub transport: Option<String>,
    pub data: AddrData,
    /// `forbid_file`/`forbid_pipe` applied to a filter's `save`/`pipe`:
    /// the delivery fails with this message.
    pub forbidden: Option<&'static str>,
}

/// The decision for one address.
#[derive(Debug, Clone)]
pub enum Routed {
    /// Deliver through `transport` (to `hosts` when the router chose them).
    Transport {
        router: String,
        transport: String,
        hosts: Vec<RoutedHost>,
        data: AddrData,
    },
    /// `:blackhole:`: discard, logged as delivered (`discarded` when a
    /// filter did so, by `seen finish` with no delivery set up).
    Blackhole { router: String, discarded: bool },
    /// Replaced by these addresses, to be routed from the first router,
    /// and by files and pipes, delivered directly.
    Redirected {
        children: Vec<String>,
        direct: Vec<Direct>,
        /// The router that redirected (the generated addresses' ancestry
        /// records it, for loop protection).
        router: String,
    },
    /// Permanent failure.
    Fail {
        router: Option<String>,
        message: String,
    },
    /// Temporary failure.
    Defer {
        router: Option<String>,
        message: String,
    },
}

/// Route one address through the whole chain.
pub async fn route(
    ctx: &Ctx,
    address: &str,
    sender: &str,
    base: &Vars,
    verifying: bool,
) -> Routing {
    route_from(ctx, address, sender, base, verifying, 0).await
}

/// Route one address through the chain starting at router index `start`
/// (past 0 for the copy an `unseen` router passes on).
pub async fn route_from(
    ctx: &Ctx,
    address: &str,
    sender: &str,
    base: &Vars,
    verifying: bool,
    start: usize,
) -> Routing {
    route_descendant(ctx, address, sender, base, verifying, start, &[]).await
}

/// [`route_from`] for an address generated from others: `ancestors` are
/// its ancestors' addresses, each with the router that handled it. A
/// router is skipped when it handled an ancestor with the same address
/// (caselessly), or any ancestor at all under `no_repeat_use` (Exim's loop
/// protection).
pub async fn route_descendant(
    ctx: &Ctx,
    address: &str,
    sender: &str,
    base: &Vars,
    verifying: bool,
    start: usize,
    ancestors: &[(String, String)],
) -> Routing {
    let mut off = oxim_conf::Trace::off();
    Box::pin(route_chain(
        ctx,
        address,
        sender,
        base,
        verifying,
        (start, ancestors),
        &mut off,
    ))
    .await
}

/// [`route_from`], telling `trace` (Exim's `-bh` trace of a verification)
/// which routers were tried and which one decided.
pub async fn route_traced(
    ctx: &Ctx,
    address: &str,
    sender: &str,
    base: &Vars,
    verifying: bool,
    start: usize,
    trace: &mut oxim_conf::Trace,
) -> Routing {
    trace.line(|| format!("routing {address}"));
    trace.level += 1;
    let r = Box::pin(route_chain(
        ctx,
        address,
        sender,
        base,
        verifying,
        (start, &[]),
        trace,
    ))
    .await;
    trace.level -= 1;
    match &r.routed {
        Routed::Fail { router: None, .. } | Routed::Defer { router: None, .. } => {
            trace.line(|| "no more routers".into())
        }
        Routed::Fail {
            router: Some(n), ..
        } => {
            // Said at the router's level, as the router itself says it.
            trace.level += 1;
            trace.line(|| format!("{n} router forced address failure"));
            trace.level -= 1;
        }
        Routed::Defer {
            router: Some(n), ..
        } => trace.line(|| format!("{n} router: defer for {address}")),
        Routed::Transport { router, .. } | Routed::Blackhole { router, .. } => {
            trace.line(|| format!("routed by {router} router"))
        }
        Routed::Redirected { .. } => {}
    }
    r
}

async fn route_chain(
    ctx: &Ctx,
    address: &str,
    sender: &str,
    base: &Vars,
    verifying: bool,
    (start, ancestors): (usize, &[(String, String)]),
    trace: &mut oxim_conf::Trace,
) -> Routing {
    let mut vars = base.clone();
    vars.set_address(address);
    let mut passed = None;
    for (index, r) in ctx.drivers.routers.iter().enumerate().skip(start) {
        if let Some((previous, _)) = ancestors.iter().find(|(a, router)| {
            *router == r.name && (!r.repeat_use || a.eq_ignore_ascii_case(address))
        }) {
            trace.line(|| format!("{} router skipped: previously routed {previous}", r.name));
            continue;
        }
        let (mut rvars, mut data) =
            match preconditions(ctx, r, address, sender, &vars, verifying, trace) {
                Ok(Some(found)) => {
                    trace.line(|| format!("calling {} router", r.name));
                    found
                }
                Ok(None) => continue,
                Err(e @ (ConditionError::RequireFiles { .. } | ConditionError::RouterDefer(_))) => {
                    return Routed::Defer {
                        router: Some(r.name.clone()),
                        message: e.to_string(),
                    }
                    .into()
                }
                Err(e) => {
                    return Routed::Defer {
                        router: Some(r.name.clone()),
                        message: format!("failed to expand condition for {} router: {e}", r.name),
                    }
                    .into()
                }
            };
        if let Err(e) = router_ids(ctx, r, &rvars, &mut data) {
            return Routed::Defer {
                router: Some(r.name.clone()),
                message: e,
            }
            .into();
        }
        if let Some(ad) = &r.address_data {
            match oxim_conf::expand_with_config(ad, &rvars, &ctx.config) {
                Ok(v) => {
                    rvars.set("address_data", v.clone());
                    data.vars.push(("address_data".into(), v));
                }
                Err(e) => {
                    return Routed::Defer {
                        router: Some(r.name.clone()),
                        message: format!("failed to expand address_data: {e}"),
                    }
                    .into()
                }
            }
        }
        let outcome: Option<Routing> = match &r.kind {
            RouterKind::Accept => Some(transport_result(ctx, r, Vec::new(), &rvars, data)),
            RouterKind::Redirect { .. } => redirect(ctx, r, &rvars, &data, verifying),
            RouterKind::ManualRoute { .. } => manualroute(ctx, r, &rvars, data).await,
            RouterKind::DnsLookup {
                widen_domains,
                qualify_single,
            } => {
                let found = dnslookup(ctx, r, widen_domains, *qualify_single, &rvars, data).await;
                found.map(|(routing, domain)| match domain {
                    // A widened or qualified domain makes a new address,
                    // routed again from the first router (as in Exim).
                    Some(d) => Routing::from(Routed::Redirected {
                        children: vec![format!("{}@{d}", split_address(address).0)],
                        direct: Vec::new(),
                        router: r.name.clone(),
                    }),
                    None => routing,
                })
            }
        };
        // Verification needs no transport: the address is routed.
        let outcome = outcome.map(|mut routing| {
            if verifying {
                if let Routed::Defer { message, .. } = &routing.routed {
                    if *message == no_transport(r) {
                        routing.routed = Routed::Transport {
                            router: r.name.clone(),
                            transport: String::new(),
                            hosts: std::mem::take(&mut routing.hosts_without_transport),
                            data: AddrData::default(),
                        };
                    }
                }
            }
            routing
        });
        match outcome {
            // `self = pass`: the next router, whatever `more` says.
            Some(routing) if routing.pass => {
                passed = Some(routing.routed);
                continue;
            }
            Some(routing) => {
                let also_next = routing.also_next;
                let mut routing = accepted(r, index, routing, &rvars, verifying);
                if also_next && !verifying {
                    routing.unseen_next = Some(index + 1);
                }
                // errors_to is used only when the address verifies (as in
                // Exim); otherwise bounces go to the sender as usual.
                // Not while verifying, which also stops the check recursing.
                let check_errors_to = routing.props.errors_to.clone().filter(|e| !e.is_empty());
                if let (Some(e), false) = (check_errors_to, verifying) {
                    let e = ctx.qualify_recipient(&e);
                    routing.props.errors_to = Some(e.clone());
                    let check = Box::pin(route(ctx, &e, "", base, true)).await;
                    if matches!(check.routed, Routed::Fail { .. } | Routed::Defer { .. }) {
                        routing.props.errors_to = None;
                    }
                }
                return routing;
            }
            None if r.more => continue,
            None => break,
        }
    }
    // Unrouted; after a `self = pass`, with its reason.
    passed
        .unwrap_or(Routed::Fail {
            router: None,
            message: "Unrouteable address".into(),
        })
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn props_inherit() {
        let parent = Props {
            errors_to: Some("owner@x".into()),
            headers_add: vec!["X-A: 1".into()],
            headers_remove: vec!["Subject".into()],
        };
        let own = Props {
            errors_to: None,
            headers_add: vec!["X-B: 2".into()],
            headers_remove: vec![],
        };
        let p = parent.with(&own);
        assert_eq!(p.errors_to.as_deref(), Some("owner@x"));
        assert_eq!(p.headers_add, vec!["X-A: 1", "X-B: 2"]);
        assert_eq!(p.headers_remove, vec!["Subject"]);
    }
}

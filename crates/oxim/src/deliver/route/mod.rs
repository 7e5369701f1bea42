//! The router chain: each address is offered to the routers in order until one
//! accepts, redirects, fails or defers it.

mod hosts;

use std::net::IpAddr;

use crate::condition::{condition_true, ConditionError};
use crate::ctx::Ctx;
use crate::errno::Errno;
use crate::settings::{RouterKind, RouterSpec};
use crate::vars::{split_address, Vars};

use hosts::{dnslookup, manualroute};
pub use hosts::{host_addresses, is_local_address};

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
    /// `:blackhole:`: discard, logged as delivered.
    Blackhole { router: String },
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

/// Match an (expanded) list option; a forced failure of its expansion
/// means "no match" (the router is skipped), as in Exim.
fn list_match(
    list: &Option<String>,
    vars: &Vars,
    cfg: &oxim_conf::Config,
    f: impl FnOnce(&str) -> Result<bool, ConditionError>,
) -> Result<bool, ConditionError> {
    match list {
        None => Ok(true),
        Some(raw) => match oxim_conf::expand_with_config(raw, vars, cfg) {
            Ok(expanded) => f(&expanded),
            Err(e) if e.is_forced_fail() => Ok(false),
            Err(e) => Err(e.into()),
        },
    }
}

/// Find one of `list`'s affixes on `lp` (caseless). `*` at the outer end
/// of an item matches the longest possible run of characters. Returns the
/// affix, the part matched by the wildcard, and what remains.
fn find_affix(list: &str, lp: &str, prefix: bool) -> Option<(String, String, String)> {
    let lower = lp.to_ascii_lowercase();
    for item in oxim_conf::lists::list_items(list) {
        let it = item.to_ascii_lowercase();
        if prefix {
            if let Some(fixed) = it.strip_prefix('*') {
                if let Some(pos) = lower.rfind(fixed) {
                    let end = pos + fixed.len();
                    return Some((lp[..end].into(), lp[..pos].into(), lp[end..].into()));
                }
            } else if !it.is_empty() && lower.starts_with(&it) {
                return Some((lp[..it.len()].into(), String::new(), lp[it.len()..].into()));
            }
        } else if let Some(fixed) = it.strip_suffix('*') {
            if let Some(pos) = lower.find(fixed) {
                return Some((
                    lp[pos..].into(),
                    lp[pos + fixed.len()..].into(),
                    lp[..pos].into(),
                ));
            }
        } else if !it.is_empty() && lower.ends_with(&it) {
            let cut = lp.len() - it.len();
            return Some((lp[cut..].into(), String::new(), lp[..cut].into()));
        }
    }
    None
}

/// Whether `uid`/`gid` may reach `path`: search permission on each
/// directory on the way, read permission on the file (Exim's "rough"
/// check for `require_files` items after a user).
fn accessible_for(path: &std::path::Path, uid: u32, gid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    if uid == 0 {
        return true;
    }
    let allowed = |m: &std::fs::Metadata, bit: u32| {
        let mode = m.mode();
        if m.uid() == uid {
            mode & (bit << 6) != 0
        } else if m.gid() == gid {
            mode & (bit << 3) != 0
        } else {
            mode & bit != 0
        }
    };
    for dir in path.ancestors().skip(1) {
        if dir.as_os_str().is_empty() {
            continue;
        }
        match std::fs::metadata(dir) {
            Ok(m) if allowed(&m, 0o1) => {}
            _ => return false,
        }
    }
    std::fs::metadata(path).is_ok_and(|m| allowed(&m, 0o4))
}

/// `require_files`: `Ok(false)` when the router is to be skipped.
fn require_files(raw: &str, vars: &Vars, cfg: &oxim_conf::Config) -> Result<bool, ConditionError> {
    let mut check_as: Option<(u32, u32)> = None;
    for item in oxim_conf::lists::list_items(raw) {
        let item = match oxim_conf::expand_with_config(&item, vars, cfg) {
            Ok(v) => v,
            Err(e) if e.is_forced_fail() => continue,
            Err(e) => return Err(e.into()),
        };
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if !item.contains('/') {
            // A user (and group) for the files after it.
            let (user, group) = match item.split_once(',') {
                Some((u, g)) => (u.trim(), Some(g.trim())),
                None => (item, None),
            };
            let Ok((uid, ugid, _)) = crate::privilege::find_user(user) else {
                return Ok(false);
            };
            let gid = match group {
                Some(g) => match crate::privilege::find_group(g) {
                    Ok(g) => g,
                    Err(_) => return Ok(false),
                },
                None => match ugid {
                    Some(g) => g,
                    None => return Ok(false),
                },
            };
            check_as = Some((uid, gid));
            continue;
        }
        let (eacces_absent, rest) = match item.strip_prefix('+') {
            Some(r) => (true, r),
            None => (false, item),
        };
        let (negated, path) = match rest.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, rest),
        };
        let exists = match crate::privilege::with_root(|| std::fs::metadata(path)) {
            Ok(_) => match check_as {
                Some((uid, gid)) => accessible_for(std::path::Path::new(path), uid, gid),
                None => true,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && eacces_absent => false,
            Err(e) => {
                let e = std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(0));
                let text = e.to_string();
                let text = text.split(" (os error").next().unwrap_or(&text);
                return Err(ConditionError::RequireFiles {
                    path: path.to_string(),
                    error: text.to_string(),
                });
            }
        };
        if exists == negated {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Run the generic preconditions of a router, in Exim's order. `Ok(None)`
/// means "skip"; otherwise the variables the router runs with (affixes
/// removed, `check_local_user`'s findings) and what its transport needs.
fn preconditions(
    ctx: &Ctx,
    r: &RouterSpec,
    address: &str,
    sender: &str,
    vars: &Vars,
    verifying: bool,
    trace: &mut oxim_conf::Trace,
) -> Result<Option<(Vars, AddrData)>, ConditionError> {
    let (full_lp, domain) = split_address(address);
    let mut v = vars.clone();
    let mut data = AddrData::default();
    let mut lp = full_lp.to_string();
    let set = |v: &mut Vars, data: &mut AddrData, name: &str, value: String| {
        v.set(name, value.clone());
        data.vars.push((name.to_string(), value));
    };
    if let Some(list) = &r.local_part_prefix {
        match find_affix(list, &lp, true) {
            Some((affix, wild, rest)) => {
                set(&mut v, &mut data, "local_part_prefix", affix);
                set(&mut v, &mut data, "local_part_prefix_v", wild);
                lp = rest;
            }
            None if r.local_part_prefix_optional => {}
            None => return Ok(None),
        }
    }
    if let Some(list) = &r.local_part_suffix {
        match find_affix(list, &lp, false) {
            Some((affix, wild, rest)) => {
                set(&mut v, &mut data, "local_part_suffix", affix);
                set(&mut v, &mut data, "local_part_suffix_v", wild);
                lp = rest;
            }
            None if r.local_part_suffix_optional => {}
            None => return Ok(None),
        }
    }
    if lp != full_lp {
        set(&mut v, &mut data, "local_part", lp.clone());
    }
    if r.verify_only && !verifying {
        return Ok(None);
    }
    if !r.verify && verifying {
        return Ok(None);
    }
    // `no_address_test` routers are passed over by `-bt` (Exim's
    // address_test_mode), not when verifying or delivering.
    if !r.address_test && !verifying && ctx.address_testing() {
        return Ok(None);
    }
    let cfg = &ctx.config;
    if !list_match(&r.domains, &v, cfg, |l| {
        let mut p = oxim_conf::Probe::new(trace, domain);
        p.option = Some("domains");
        Ok(oxim_conf::match_domain_probe(l, domain, cfg, &v, &mut p)?)
    })? {
        return Ok(None);
    }
    if !list_match(&r.local_parts, &v, cfg, |l| {
        let mut p = oxim_conf::Probe::new(trace, &lp);
        p.option = Some("local_parts");
        Ok(oxim_conf::match_local_part_probe(l, &lp, cfg, &v, &mut p)?)
    })? {
        return Ok(None);
    }
    if r.check_local_user {
        let Some(pw) = nix::unistd::User::from_name(&lp).ok().flatten() else {
            return Ok(None);
        };
        set(&mut v, &mut data, "local_part_data", pw.name.clone());
        set(&mut v, &mut data, "home", pw.dir.display().to_string());
        set(
            &mut v,
            &mut data,
            "local_user_uid",
            pw.uid.as_raw().to_string(),
        );
        set(
            &mut v,
            &mut data,
            "local_user_gid",
            pw.gid.as_raw().to_string(),
        );
        data.uid = Some(pw.uid.as_raw());
        data.gid = Some(pw.gid.as_raw());
    }
    if let (Some(dp), true) = (&r.debug_print, ctx.address_testing()) {
        // Exim shows debug_print while testing addresses (-bt, -bv).
        if let Ok(text) = oxim_conf::expand_with_config(dp, &v, cfg) {
            eprintln!("{text}");
        }
    }
    if !list_match(&r.senders, &v, cfg, |l| {
        Ok(oxim_conf::match_address(l, sender, cfg, &v)?)
    })? {
        return Ok(None);
    }
    if let Some(rf) = &r.require_files {
        if !require_files(rf, &v, cfg)? {
            return Ok(None);
        }
    }
    if let Some(cond) = &r.condition {
        match oxim_conf::expand_with_config(cond, &v, cfg) {
            Ok(text) => {
                if !condition_true(&text)? {
                    return Ok(None);
                }
            }
            Err(e) if e.is_forced_fail() => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some((v, data)))
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
    let r = Box::pin(route_chain(
        ctx,
        address,
        sender,
        base,
        verifying,
        (start, ancestors),
        &mut off,
    ))
    .await;
    r
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
        Routed::Transport { router, .. } | Routed::Blackhole { router } => {
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
                Err(e @ ConditionError::RequireFiles { .. }) => {
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
            RouterKind::Accept => Some(transport_result(r, Vec::new(), &rvars, data)),
            RouterKind::Redirect { .. } => redirect(ctx, r, &rvars, &data).map(Routing::from),
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
                            hosts: Vec::new(),
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
                let mut routing = accepted(r, index, routing, &rvars, verifying);
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

/// Attach the router's generic effects (errors_to, headers_add,
/// headers_remove, unseen) to a successful decision.
fn accepted(
    r: &RouterSpec,
    index: usize,
    mut routing: Routing,
    vars: &Vars,
    verifying: bool,
) -> Routing {
    if matches!(routing.routed, Routed::Fail { .. } | Routed::Defer { .. }) {
        return routing;
    }
    let defer = |what: &str, e: String| -> Routing {
        Routed::Defer {
            router: Some(r.name.clone()),
            message: format!("failed to expand {what} in {} router: {e}", r.name),
        }
        .into()
    };
    let mut props = Props::default();
    if let Some(e) = &r.errors_to {
        match oxim_conf::expand(e, vars) {
            Ok(v) => props.errors_to = Some(v.trim().to_string()),
            Err(err) => return defer("errors_to", err.to_string()),
        }
    }
    // Both are lists whose items are expanded one by one; an item that is
    // empty or forced to fail has no effect.
    if let Some(list) = &r.headers_add {
        match oxim_conf::expand_list_items(list, '\n', vars) {
            Ok(items) => props
                .headers_add
                .extend(items.iter().map(|v| v.trim_end_matches('\n').to_string())),
            Err(err) => return defer("headers_add", err.to_string()),
        }
    }
    if let Some(list) = &r.headers_remove {
        match oxim_conf::expand_list_items(list, ':', vars) {
            Ok(items) => props.headers_remove = items,
            Err(err) => return defer("headers_remove", err.to_string()),
        }
    }
    // Exim ignores `unseen` when verifying.
    let mut unseen_next = None;
    if let (Some(u), false) = (&r.unseen, verifying) {
        match oxim_conf::expand(u, vars)
            .map_err(ConditionError::from)
            .and_then(|v| condition_true(&v))
        {
            Ok(true) => unseen_next = Some(index + 1),
            Ok(false) => {}
            Err(err) => return defer("unseen", err.to_string()),
        }
    }
    routing.props = props;
    routing.unseen_next = unseen_next;
    routing
}

/// Apply the router's `self` option. The host list is cut at the first
/// host that is this host (a lower-priority MX is dropped along with all
/// after it); only when that leaves nothing does `self` decide.
fn check_self(
    r: &RouterSpec,
    mut hosts: Vec<RoutedHost>,
    vars: &Vars,
) -> Result<Vec<RoutedHost>, Box<Routing>> {
    let Some(first_local) = hosts
        .iter()
        .position(|h| h.ip.is_some_and(is_local_address))
    else {
        return Ok(hosts);
    };
    if first_local > 0 {
        // Keep only hosts better than ours (for MX: a lower preference).
        let cut = hosts[first_local].mx;
        hosts.truncate(first_local);
        if let Some(pref) = cut {
            hosts.retain(|h| h.mx.is_none_or(|p| p < pref));
        }
        if !hosts.is_empty() {
            return Ok(hosts);
        }
    }
    let message = if hosts[first_local].mx.is_some() {
        "lowest numbered MX record points to local host"
    } else {
        "remote host address is the local host"
    }
    .to_string();
    match r.self_action.as_str() {
        "send" => {
            for h in hosts.iter_mut() {
                h.allow_local = true;
            }
            Ok(hosts)
        }
        "pass" => {
            let mut out = Routing::from(Routed::Fail {
                router: None,
                message,
            });
            out.pass = true;
            Err(Box::new(out))
        }
        "fail" => Err(Box::new(
            Routed::Fail {
                router: Some(r.name.clone()),
                message,
            }
            .into(),
        )),
        action => {
            let mut out = Routing::from(Routed::Defer {
                router: Some(r.name.clone()),
                message: message.clone(),
            });
            if action == "freeze" {
                out.freeze = true;
                out.notes
                    .push(format!("{message}: {}", vars.get("domain").unwrap_or("")));
                out.notes_in_bt = true;
            }
            Err(Box::new(out))
        }
    }
}

/// The router's `user` and `group` (expanded), which override what
/// `check_local_user` found.
fn router_ids(ctx: &Ctx, r: &RouterSpec, vars: &Vars, data: &mut AddrData) -> Result<(), String> {
    if let Some(u) = &r.user {
        let name = oxim_conf::expand_with_config(u, vars, &ctx.config)
            .map_err(|e| format!("failed to expand user in {} router: {e}", r.name))?;
        let (uid, gid, _) = crate::privilege::find_user(name.trim())
            .map_err(|e| format!("{e:#} in {} router", r.name))?;
        data.uid = Some(uid);
        if gid.is_some() {
            data.gid = gid;
        }
    }
    if let Some(g) = &r.group {
        let name = oxim_conf::expand_with_config(g, vars, &ctx.config)
            .map_err(|e| format!("failed to expand group in {} router: {e}", r.name))?;
        let gid = crate::privilege::find_group(name.trim())
            .map_err(|e| format!("{e:#} in {} router", r.name))?;
        data.gid = Some(gid);
    }
    Ok(())
}

pub(crate) fn transport_result(
    r: &RouterSpec,
    hosts: Vec<RoutedHost>,
    vars: &Vars,
    data: AddrData,
) -> Routing {
    let hosts = match check_self(r, hosts, vars) {
        Ok(h) => h,
        Err(routing) => return *routing,
    };
    match &r.transport {
        Some(t) => Routed::Transport {
            router: r.name.clone(),
            transport: t.clone(),
            hosts,
            data,
        },
        None => Routed::Defer {
            router: Some(r.name.clone()),
            message: no_transport(r),
        },
    }
    .into()
}

fn no_transport(r: &RouterSpec) -> String {
    format!("No transport set by {} router", r.name)
}

fn redirect(ctx: &Ctx, r: &RouterSpec, vars: &Vars, rdata: &AddrData) -> Option<Routed> {
    let RouterKind::Redirect {
        data,
        file,
        allow_defer,
        allow_fail,
        file_transport,
        pipe_transport,
        qualify_domain,
        qualify_preserve_domain,
        ..
    } = &r.kind
    else {
        return None;
    };
    // The domain an unqualified generated address gets here (None: the
    // global qualify_recipient, applied later).
    let qualify = if *qualify_preserve_domain {
        vars.get("domain").map(str::to_string)
    } else if let Some(q) = qualify_domain {
        match oxim_conf::expand_with_config(q, vars, &ctx.config) {
            Ok(v) => Some(v),
            Err(e) => {
                return Some(Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("failed to expand \"{q}\": {e}"),
                })
            }
        }
    } else {
        None
    };
    let (allow_defer, allow_fail) = (*allow_defer, *allow_fail);
    let text = if let Some(d) = data {
        match oxim_conf::expand_with_config(d, vars, &ctx.config) {
            Ok(v) => v,
            // A forced failure makes the router decline (Exim's spec,
            // "Redirection data"), the next router is tried.
            Err(e) if e.is_forced_fail() => return None,
            Err(e) => {
                return Some(Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("failed to expand \"{d}\": {e}"),
                })
            }
        }
    } else if let Some(f) = file {
        let path = match oxim_conf::expand_with_config(f, vars, &ctx.config) {
            Ok(v) => v,
            Err(e) if e.is_forced_fail() => return None,
            Err(e) => {
                return Some(Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("failed to expand \"{f}\": {e}"),
                })
            }
        };
        match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                return Some(Routed::Defer {
                    router: Some(r.name.clone()),
                    message: format!("failed to open {path}: {e}"),
                })
            }
        }
    } else {
        return None;
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed == ":blackhole:" {
        return Some(Routed::Blackhole {
            router: r.name.clone(),
        });
    }
    if let Some(rest) = trimmed.strip_prefix(":fail:") {
        if !allow_fail {
            return Some(Routed::Defer {
                router: Some(r.name.clone()),
                message: ":fail: not permitted".into(),
            });
        }
        return Some(Routed::Fail {
            router: Some(r.name.clone()),
            message: rest.trim().to_string(),
        });
    }
    if let Some(rest) = trimmed.strip_prefix(":defer:") {
        if !allow_defer {
            return Some(Routed::Defer {
                router: Some(r.name.clone()),
                message: ":defer: not permitted".into(),
            });
        }
        return Some(Routed::Defer {
            router: Some(r.name.clone()),
            message: rest.trim().to_string(),
        });
    }
    if trimmed == ":unknown:" {
        return None;
    }
    let mut children = Vec::new();
    let mut direct = Vec::new();
    let items = trimmed
        .split([',', '\n'])
        .map(|s| s.trim())
        .filter(|s| !s.is_empty() && !s.starts_with('#'));
    for item in items {
        // A path or a pipe is delivered, not routed (unquoted: `/file`,
        // `|command`; Exim also takes them in double quotes).
        let bare = item.trim_matches('"');
        if bare.starts_with('/') || bare.starts_with('|') {
            let pipe = bare.starts_with('|');
            let mut data = rdata.clone();
            let (name, value) = if pipe {
                ("address_pipe", bare.to_string())
            } else {
                ("address_file", bare.to_string())
            };
            data.vars.push((name.into(), value));
            direct.push(Direct {
                target: bare.to_string(),
                router: r.name.clone(),
                transport: if pipe {
                    pipe_transport.clone()
                } else {
                    file_transport.clone()
                },
                data,
            });
            continue;
        }
        let a = crate::message::extract_addresses(item)
            .into_iter()
            .next()
            .unwrap_or_default();
        if !a.is_empty() {
            match &qualify {
                Some(d) if !a.contains('@') => children.push(format!("{a}@{d}")),
                _ => children.push(a),
            }
        }
    }
    if children.is_empty() && direct.is_empty() {
        return None;
    }
    Some(Routed::Redirected {
        children,
        direct,
        router: r.name.clone(),
    })
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

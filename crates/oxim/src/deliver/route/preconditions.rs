//! A router's preconditions, in Exim's order: domains, local parts with
//! their affixes, senders, `require_files`, `condition`, and the rest.

use super::*;

/// Match an (expanded) list option; a forced failure of its expansion
/// means "no match" (the router is skipped), as in Exim.
pub(super) fn list_match(
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
pub(super) fn find_affix(list: &str, lp: &str, prefix: bool) -> Option<(String, String, String)> {
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
pub(super) fn accessible_for(path: &std::path::Path, uid: u32, gid: u32) -> bool {
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
pub(super) fn require_files(
    raw: &str,
    vars: &Vars,
    cfg: &oxim_conf::Config,
) -> Result<bool, ConditionError> {
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
pub(super) fn preconditions(
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
    // router_home_directory: $home from here on while the router runs
    // (over check_local_user's); for the transport only when neither
    // check_local_user nor transport_home_directory gives one. A forced
    // failure leaves it unset.
    if let Some(raw) = &r.router_home_directory {
        match oxim_conf::expand_with_config(raw, &v, cfg) {
            Ok(home) => {
                v.set("home", home.clone());
                if !r.check_local_user {
                    data.vars.retain(|(k, _)| k != "home");
                    data.vars.push(("home".into(), home));
                }
            }
            Err(e) if e.is_forced_fail() => {}
            Err(e) => {
                return Err(ConditionError::RouterDefer(format!(
                    "failed to expand \"{raw}\" for router_home_directory: {e}"
                )))
            }
        }
    }
    data.transport_home = r.transport_home_directory.clone();
    data.transport_current = r.transport_current_directory.clone();
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

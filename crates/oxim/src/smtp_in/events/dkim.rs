//! DKIM verification of a received message: the signatures checked (keys
//! looked up through the resolver), `acl_smtp_dkim` run for each signer in
//! `dkim_verify_signers`, the per-signature log lines, and what the DATA
//! ACL and the `<=` line see afterwards.

use super::*;
use crate::dkim::{self, verify};
use crate::dns::LookupFailure;

/// What the rest of the reception needs from verification.
#[derive(Default)]
pub(super) struct DkimDone {
    /// Variables for the DATA ACL (`$dkim_verify_status` as the list of
    /// the DKIM ACL runs' results, `$dkim_signers`, `${authresults}`'s part).
    pub vars: Vec<(String, String)>,
    /// `DKIM=` on the `<=` line: the domain of the first passing signature.
    pub overall: Option<String>,
    /// The DKIM ACL refused the message.
    pub refused: Option<acl::AclOutcome>,
}

/// Verify the message's signatures and run the DKIM ACL.
pub(super) async fn verify_message(
    ctx: &Ctx,
    session_vars: &mut Vars,
    trace: &mut AclTrace,
    env: &AclEnv<'_>,
    body: &[u8],
    id: &str,
) -> DkimDone {
    let main = &ctx.config.main;
    let policy = verify::Policy::new(
        main.str("dkim_verify_hashes"),
        main.str("dkim_verify_keytypes"),
        main.str("dkim_verify_min_keysizes"),
    );
    let mut v = verify::prepare(body, &policy);
    for i in 0..v.sigs.len() {
        let Some(name) = v.sigs[i].key_name() else {
            continue;
        };
        let lookup = match ctx.dns.txt_records(&name).await {
            Ok(r) if !r.is_empty() => verify::KeyLookup::Found(r),
            Ok(_) | Err(LookupFailure::NotFound) | Err(LookupFailure::Temporary(_)) => {
                verify::KeyLookup::Unavailable
            }
        };
        verify::finish(&mut v, i, lookup, &policy);
        let r = &v.sigs[i];
        if r.key_import_failed {
            ctx.log_text(
                Some(id),
                &format!(
                    "DKIM: d={} s={} [failed key import]",
                    r.sig.domain.as_deref().unwrap_or(""),
                    r.sig.selector.as_deref().unwrap_or("")
                ),
            );
        }
    }
    let signers = dkim::signers(&v.sigs);
    let mut logged = vec![false; v.sigs.len()];
    let mut results: Vec<String> = Vec::new();
    let mut refused = None;
    let verbose = ctx.selector.has(oxim_log::Selector::DkimVerbose);
    let mut acl_vars = session_vars.clone();
    acl_vars.set("dkim_signers", signers.clone());
    acl_vars.set("dkim_key_length", "0");
    let acl = acl_for(ctx, "acl_smtp_dkim", &acl_vars).filter(|_| !trace.no_smtp_acls);
    let mut acl_ran = false;
    if let Some(acl) = acl {
        let list = match oxim_conf::expand(main.str("dkim_verify_signers"), &acl_vars) {
            Ok(l) => l,
            Err(e) => {
                ctx.log_text(
                    Some(id),
                    &format!("failed to expand dkim_verify_signers: {e}"),
                );
                String::new()
            }
        };
        // An empty list runs no ACL (and the signatures are logged below).
        acl_ran = !list.trim().is_empty();
        let mut seen: Vec<String> = Vec::new();
        'signers: for item in oxim_conf::lists::list_items(&list) {
            let item = item.trim().to_string();
            if item.is_empty() || seen.iter().any(|s| s.eq_ignore_ascii_case(&item)) {
                continue;
            }
            seen.push(item.clone());
            acl_vars.set("dkim_cur_signer", item.clone());
            let by_identity = item.contains('@');
            let matching: Vec<usize> = (0..v.sigs.len())
                .filter(|&i| {
                    let s = &v.sigs[i].sig;
                    let id = if by_identity { &s.identity } else { &s.domain };
                    id.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(&item))
                })
                .collect();
            let runs: Vec<Option<usize>> = if matching.is_empty() {
                vec![None]
            } else {
                matching.into_iter().map(Some).collect()
            };
            for run in runs {
                let r = run.map(|i| &v.sigs[i]);
                for (n, val) in dkim::sig_vars(r) {
                    acl_vars.set(n, val);
                }
                acl_vars.set_dkim_status(r.map(|r| vec![r.status_name()]));
                let before = (
                    acl_vars.get("dkim_verify_status").unwrap_or("").to_string(),
                    acl_vars.get("dkim_verify_reason").unwrap_or("").to_string(),
                );
                let o = acl::eval_traced(ctx, &acl, &mut acl_vars, env, trace).await;
                log_acl_writes(ctx, &o, Some(id));
                let after = (
                    acl_vars.get("dkim_verify_status").unwrap_or("").to_string(),
                    acl_vars.get("dkim_verify_reason").unwrap_or("").to_string(),
                );
                if let Some(i) = run {
                    if after != before {
                        v.sigs[i].policy = Some(after.clone());
                    }
                    if verbose {
                        ctx.log_text(Some(id), &dkim::log_line(&v.sigs[i]));
                    }
                    logged[i] = true;
                }
                results.push(after.0);
                if o.verdict != Verdict::Accept {
                    refused = Some(o);
                    break 'signers;
                }
            }
        }
    }
    // Without a DKIM ACL, the signatures are logged now.
    if verbose && !acl_ran {
        for (i, r) in v.sigs.iter().enumerate() {
            if !logged[i] {
                ctx.log_text(Some(id), &dkim::log_line(r));
            }
        }
    }
    let overall = v
        .sigs
        .iter()
        .enumerate()
        .find(|(i, r)| (logged[*i] || !acl_ran) && r.status_name() == "pass")
        .map(|(_, r)| r)
        .and_then(|r| r.sig.domain.clone());
    let statuses: Vec<String> = v.sigs.iter().map(|r| r.status_name()).collect();
    session_vars.set_dkim_status(Some(statuses));
    let mut vars = vec![
        ("dkim_verify_status".to_string(), results.join(":")),
        ("dkim_signers".to_string(), signers),
        (
            oxim_conf::AUTHRESULTS_DKIM_VAR.to_string(),
            dkim::authres(&v.sigs),
        ),
    ];
    if let Some(k) = acl_vars.get("dkim_key_length") {
        vars.push(("dkim_key_length".to_string(), k.to_string()));
    }
    DkimDone {
        vars,
        overall,
        refused,
    }
}

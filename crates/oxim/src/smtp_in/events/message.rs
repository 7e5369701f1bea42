//! DATA and BDAT: the predata ACL, the body as it arrives, and the end of
//! the message (limits, the DATA ACL, the spool, the `<=` line).

use super::*;
use crate::smtp_in::replay::Claimed;
use oxim_log::SenderHost;

/// DATA: the predata ACL, then the body starts.
pub(super) async fn data(ctx: &Ctx, conn: &IncomingConn, sess: &mut ServerSession, st: &mut State) {
    let peer_ip = conn.peer.map(|p| p.ip());
    let env = AclEnv {
        host_ip: peer_ip,
        host_name: st.host_name.as_deref(),
        sender: st.sender.as_deref(),
        recipient: None,
    };
    let o = check_acl(
        ctx,
        "acl_smtp_predata",
        &mut st.vars,
        None,
        &env,
        &mut st.acl,
    )
    .await;
    sync_client_name(st);
    if let Some(o) = o.filter(|o| o.verdict != Verdict::Accept) {
        replied(
            ctx,
            sess.reject(deny_reply(&o, 554, "Administrative prohibition")),
        );
        return;
    }
    st.start_body();
    st.bdat = false;
    replied(ctx, sess.start_data());
}

/// A piece of the message (DATA or BDAT): kept unless the message is over
/// a size or header limit, which is logged at once.
pub(super) fn data_chunk(
    ctx: &Ctx,
    conn: &IncomingConn,
    st: &mut State,
    chunk: Vec<u8>,
    size_limit: u64,
) {
    if !st.too_big && st.header_excess.is_none() {
        if let Some(excess) = st.header.feed(&chunk) {
            // Exim logs at once and swallows the rest of the message.
            st.header_excess = Some(excess);
            st.body = Vec::new();
            let (limit, line) = match excess {
                HeaderExcess::Section => (st.header_max.0, false),
                HeaderExcess::Line => (st.header_max.1, true),
            };
            ctx.log(&LogRecord::HeaderTooLong {
                host: sender_host(conn, st),
                ident: conn.ident.as_deref(),
                limit,
                line,
            });
        } else if size_limit > 0 && (st.body.len() + chunk.len()) as u64 > size_limit {
            st.too_big = true;
            st.body = Vec::new();
        } else {
            st.body.extend_from_slice(&chunk);
        }
    }
}

/// The end of the message: limits, the DATA ACL, the spool write (the 250
/// only once it is durable), then delivery.
pub(super) async fn data_end(
    ctx: &Arc<Ctx>,
    conn: &IncomingConn,
    sess: &mut ServerSession,
    st: &mut State,
    summary: DataSummary,
) {
    let peer_ip = conn.peer.map(|p| p.ip());
    let mut sender = st.sender.take().unwrap_or_default();
    if conn.peer.is_none() && !super::may_set_sender(ctx, &sender, &st.vars) {
        sender = format!("{}@{}", ctx.caller.login, ctx.qualify_domain);
        st.vars.set("sender_address", sender.clone());
    }
    let recipients = std::mem::take(&mut st.recipients);
    let chunked = std::mem::replace(&mut st.bdat, false);
    let body = std::mem::take(&mut st.body);
    // A transaction with a client token: a copy of one already accepted
    // (a duplicated TFO SYN) gets the first copy's answer and is not
    // received again; the first copy holds the claim until it is on disk.
    let tx_token = st.tx_token.take();
    let claim = match (tx_token.as_deref(), conn.peer) {
        (Some(token), Some(peer)) if !conn.checking => {
            let book = crate::smtp_in::replay::Book::of(ctx.spool.db_dir());
            match book.claim(peer.ip(), token).await {
                Claimed::Fresh(c) => Some(c),
                Claimed::Replay(done) => {
                    ctx.log(&LogRecord::ReplayedTransaction {
                        id: &done.id,
                        host: sender_host(conn, st)
                            .unwrap_or(SenderHost::new(peer.ip(), peer.port())),
                        tfo: oxim_log::Tfo::Server(conn.tfo),
                        token,
                    });
                    replied(ctx, sess.accept_message(&done.id));
                    return;
                }
                Claimed::Busy => {
                    replied(
                        ctx,
                        sess.reject(Reply::new(
                            451,
                            "Temporary local problem - please try later",
                        )),
                    );
                    return;
                }
            }
        }
        _ => None,
    };
    if let Some(excess) = st.header_excess.take() {
        replied(
            ctx,
            sess.reject(Reply::new(
                552,
                match excess {
                    HeaderExcess::Section => "Message header is ridiculously long",
                    HeaderExcess::Line => "A message header line is too long",
                },
            )),
        );
        return;
    }
    if chunked && summary.first_line_crlf == Some(false) {
        // Exim 4.97.1 (SMTP smuggling): a chunked message must have CRLF
        // line ends from its first line on.
        ctx.log(&LogRecord::ChunkingNotCrlf {
            sender: &sender,
            host: sender_host(conn, st),
            ident: conn.ident.as_deref(),
        });
        replied(
            ctx,
            sess.reject(Reply::new(552, "Message header not CRLF terminated")),
        );
        return;
    }
    if st.too_big {
        log_reject(
            ctx,
            conn,
            st,
            Some(&sender),
            RejectWhat::AfterData,
            false,
            Some("message too big"),
        );
        replied(
            ctx,
            sess.reject(Reply::new(552, "Message size exceeds maximum permitted")),
        );
        return;
    }
    // Exim tests its first header line from a remote host against
    // ignore_fromline_hosts (a leading "From " line; traced by -bh).
    if let (Some(ip), Some(first)) = (peer_ip, body.first()) {
        if *first != b'\n' && *first != b'\r' {
            host_option(ctx, st, "ignore_fromline_hosts", ip).await;
        }
    }
    let msg = Message::parse(&body);
    // $max_received_linelength, and the header lines verify =
    // header_syntax reads.
    let longest = body
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).len())
        .max()
        .unwrap_or(0);
    let header_end = body
        .windows(2)
        .position(|w| w == b"\n\n")
        .or_else(|| body.windows(4).position(|w| w == b"\r\n\r\n"))
        .map_or(body.len(), |p| p + 1);
    let raw_headers = String::from_utf8_lossy(&body[..header_end]).replace("\r\n", "\n");
    // With the Received: line this server adds.
    let received_count = 1 + msg
        .headers
        .iter()
        .filter(|h| crate::deliver::is_received(&h.text))
        .count();
    // What the ACLs after the data see of the message.
    let message_vars = |rcpts: &[String]| {
        let count = rcpts.len().to_string();
        let list = rcpts.join(", ");
        let raw_headers = raw_headers.clone();
        move |v: &mut Vars| {
            v.set("max_received_linelength", longest.to_string());
            v.set("recipients_count", count.clone());
            v.set("recipients", list.clone());
            v.set("message_headers_raw", raw_headers.clone());
            v.set("received_count", received_count.to_string());
        }
    };
    let mut recipients = recipients;
    let mut with_message = message_vars(&recipients);
    // The message has its id from here on, whether it is accepted or not
    // (as in Exim, a refusal after DATA is logged with it).
    let id = ctx.ids.next();
    let id_text = id.to_string();
    // DKIM verification and its ACL, before PRDR and the DATA ACL (as
    // Exim). A -bh session (conn.checking) verifies too.
    let dkim_done = {
        let dkim_env = AclEnv {
            host_ip: peer_ip,
            host_name: st.host_name.as_deref(),
            sender: Some(&sender),
            recipient: None,
        };
        if st.acl.message_controls.dkim_disable_verify {
            // `control = dkim_disable_verify`: no verification, no DKIM ACL.
            dkim::DkimDone::default()
        } else {
            dkim::verify_message(ctx, &mut st.vars, &mut st.acl, &dkim_env, &body, &id_text).await
        }
    };
    if let Some(o) = &dkim_done.refused {
        let sender = Some(sender.as_str());
        refuse_id(
            ctx,
            conn,
            st,
            sess,
            o,
            Some(&id_text),
            sender,
            RejectWhat::Other("DKIM"),
            550,
        );
        return;
    }
    let prdr = super::prdr::round(
        ctx,
        sess,
        st,
        peer_ip,
        &sender,
        &with_message,
        &recipients,
        &id_text,
    )
    .await;
    let data_recipients = prdr.as_ref().map(|_| recipients.clone());
    let final_reply = match prdr {
        Some(round) if round.accepted.is_empty() => {
            // No recipient left: nothing is stored.
            replied(ctx, sess.respond(round.final_reply));
            return;
        }
        Some(round) => {
            recipients = round.accepted;
            with_message = message_vars(&recipients);
            Some(round.final_reply)
        }
        None => None,
    };
    let env = AclEnv {
        host_ip: peer_ip,
        host_name: st.host_name.as_deref(),
        sender: Some(&sender),
        recipient: None,
    };
    let with_data = |v: &mut Vars| {
        with_message(v);
        for (n, val) in &dkim_done.vars {
            v.set(n, val.clone());
        }
    };
    let o = check_acl_id(
        ctx,
        "acl_smtp_data",
        &mut st.vars,
        Some(&with_data),
        &env,
        &mut st.acl,
        Some(&id_text),
    )
    .await;
    sync_client_name(st);
    if let Some(o) = o.filter(|o| o.verdict != Verdict::Accept && o.verdict != Verdict::Discard) {
        let what = RejectWhat::AfterData;
        let sender = Some(sender.as_str());
        refuse_id(ctx, conn, st, sess, &o, Some(&id_text), sender, what, 550);
        return;
    }
    // The message-level controls of this message's ACLs (MAIL to DATA).
    let controls = std::mem::take(&mut st.acl.message_controls);
    let fake = controls.fake_reply();
    if recipients.is_empty() {
        // All recipients discarded by ACLs.
        replied(ctx, sess.accept_message("discarded"));
        return;
    }
    let source = Source {
        protocol: ctx
            .inv
            .received_protocol
            .clone()
            .unwrap_or_else(|| protocol(conn, st)),
        ident: conn.ident.clone(),
        peer: conn.peer,
        host_name: st.host_name.clone(),
        helo: st.helo.clone(),
        interface: conn.local,
        tfo: conn.tfo,
        // A local (-bs, -bS) caller who is trusted sets the sender with
        // MAIL: a From: added for the message is that address (with the
        // -F name only), as Exim does for SMTP input.
        sender_set: conn.peer.is_none() && !sender.is_empty() && crate::ctx::caller_is_trusted(ctx),
        reference: None,
        prdr: final_reply.is_some(),
        chunking: chunked,
        pipelining: pipelining_log(sess.pipelining_use()),
        tls: st.tls.clone(),
        submission: std::mem::take(&mut st.submission),
        auth: st.auth.done.clone(),
        auth_pubname: st.auth.pubname.clone(),
        auth_sender: st.auth.mail_sender.take(),
        local_auth_id: None,
        user: None,
        dkim: dkim_done.overall.clone(),
        fake_reject: fake.as_ref().is_some_and(|(code, _)| *code == 550),
        suppress_local_fixups: controls.suppress_local_fixups,
        conn_id: Some(conn.id),
    };
    let mut prepared = receive::prepare(ctx, id, &source, &sender, &recipients, msg);
    prepared.remove_acl_headers(&std::mem::take(&mut st.acl.removed_headers));
    prepared.add_acl_headers(&std::mem::take(&mut st.acl.added_headers));
    if controls.freeze.is_some() {
        prepared.env.frozen = Some(crate::time::LocalTime::now().epoch_secs());
    }
    prepared.env.body_8bitmime = st.body_8bitmime;
    if let Some(all) = data_recipients {
        prepared.log_recipients(all);
    }
    st.helo_counted = false;
    st.rset_counted = false;
    st.acl.senders.clear();
    if conn.checking {
        // -bh: logged as received, but nothing is stored.
        drop(receive::finish(ctx, &source, prepared));
        replied(ctx, answer(sess, final_reply, fake, &id_text));
        sess.note("\n**** SMTP testing: that is not a real message id!\n\n");
        return;
    }
    // The 250 goes out only once the files are on stable storage.
    let res = receive::store(ctx, &source, prepared).await;
    match res {
        Ok(loaded) => {
            if let Some(c) = claim {
                // Durable before the 250, as the message is.
                let id = id_text.clone();
                let done = tokio::task::spawn_blocking(move || c.commit(&id)).await;
                if let Ok(Err(e)) = done {
                    ctx.log_text(
                        Some(&id_text),
                        &format!("could not record its transaction token: {e}"),
                    );
                }
            }
            replied(ctx, answer(sess, final_reply, fake, &id_text));
            st.messages += 1;
            // Held by an ACL: frozen, or left for a queue runner.
            let held = if controls.freeze.is_some() {
                ctx.log_text(Some(&id_text), "frozen by ACL");
                true
            } else if controls.queue {
                ctx.log_queued_by_acl(&id_text);
                true
            } else {
                false
            };
            if held {
                loaded.flush_msglog(&ctx.spool);
            } else if !conn.stdin {
                let queue = ctx
                    .inv
                    .queue_only(ctx.settings.queue_only, ctx.settings.queue_only_override);
                if queue {
                    loaded.flush_msglog(&ctx.spool);
                } else if ctx.delivery_helper.get().is_some() {
                    // Delivered as root can (local deliveries as their
                    // users), by a process the daemon's helper starts.
                    loaded.flush_msglog(&ctx.spool);
                    ctx.helper_request(&id_text);
                } else {
                    let c3 = ctx.clone();
                    let running = crate::deliver::in_flight::InFlight::start();
                    tokio::spawn(async move {
                        let _running = running;
                        if let Err(e) = crate::deliver::deliver_new(&c3, loaded).await {
                            c3.log_text(Some(&id_text), &format!("delivery failed: {e:#}"));
                        }
                    });
                }
            } else {
                loaded.flush_msglog(&ctx.spool);
                // -bs -odi: as Exim, each message is delivered once it is
                // accepted, before the next command is read. Background
                // deliveries start when the session ends; a batch (-bS)
                // is delivered at its end.
                let now = !conn.batch
                    && !ctx
                        .inv
                        .queue_only(ctx.settings.queue_only, ctx.settings.queue_only_override);
                match ctx.inv.delivery {
                    crate::cli::DeliveryMode::Interactive if now => {
                        if let Err(e) = crate::deliver::deliver_id(ctx, &id, false).await {
                            ctx.log_text(Some(&id_text), &format!("delivery failed: {e:#}"));
                        }
                    }
                    _ => st.accepted_ids.push(id_text),
                }
            }
        }
        Err(e) => {
            ctx.log_text(None, &format!("spool write failed: {e:#}"));
            replied(
                ctx,
                sess.reject(Reply::new(
                    451,
                    "Temporary local problem - please try later",
                )),
            );
        }
    }
}

/// The answer to the data of a stored message: PRDR's final reply if
/// there was a PRDR round, else `250 OK id=...`; a positive answer is
/// replaced by the fake refusal an ACL asked for (`control = fakereject`
/// or `fakedefer`), long lines split as Exim splits them.
fn answer(
    sess: &mut ServerSession,
    prdr_final: Option<Reply>,
    fake: Option<(u16, String)>,
    id: &str,
) -> Result<(), oxim_smtp::SessionError> {
    let positive = prdr_final.as_ref().is_none_or(|r| r.is_positive());
    match (fake, prdr_final) {
        (Some((code, text)), _) if positive => sess.respond(Reply::new(
            code,
            crate::acl::control::split_long_lines(&text),
        )),
        (_, Some(reply)) => sess.respond(reply),
        (_, None) => sess.accept_message(id),
    }
}

/// The ` L` item of the `<=` line: present when PIPELINING was advertised.
pub(super) fn pipelining_log(u: oxim_smtp::PipeliningUse) -> Option<oxim_log::PipeliningLog> {
    use oxim_log::EarlyPipe;
    u.advertised.then_some(oxim_log::PipeliningLog {
        used: u.used,
        early: if u.early_used {
            EarlyPipe::Used
        } else if u.early_advertised {
            EarlyPipe::Advertised
        } else {
            EarlyPipe::No
        },
    })
}

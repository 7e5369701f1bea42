//! The variables a message's delivery starts with: its envelope and
//! reception facts from the spool file.

use super::*;

pub(crate) fn message_vars(ctx: &Ctx, m: &Loaded) -> Vars {
    let mut v = ctx.base_vars();
    let id = m.env.id.to_string();
    v.set("message_id", id.clone())
        .set("message_exim_id", id)
        .set("sender_address", m.env.sender.clone())
        .set(
            "received_protocol",
            m.env.protocol.clone().unwrap_or_default(),
        )
        .set(
            "sender_host_address",
            m.env.host_address.clone().unwrap_or_default(),
        )
        .set(
            "sender_host_name",
            m.env.host_name.clone().unwrap_or_default(),
        )
        .set(
            "sender_helo_name",
            m.env.helo_name.clone().unwrap_or_default(),
        )
        .set(
            "message_size",
            (m.body.len() + m.header_bytes().len() + 1).to_string(),
        )
        // SMTP AUTH facts kept in the spool file.
        .set(
            "sender_host_authenticated",
            m.env.host_auth.clone().unwrap_or_default(),
        )
        .set(
            "authenticated_id",
            m.env.auth_id.clone().unwrap_or_default(),
        )
        .set(
            "authenticated_sender",
            m.env.auth_sender.clone().unwrap_or_default(),
        )
        .set("sender_ident", m.env.ident.clone().unwrap_or_default())
        .set_auth_pubname(m.env.host_auth_pubname.clone());
    // The incoming connection's TLS (`-tls_*` in the spool file), also
    // under the legacy names, which mean the incoming side outside the
    // smtp transport.
    let tls = &m.env.tls;
    if let Some(c) = &tls.cipher {
        let bits = c.rsplit(':').next().unwrap_or("").to_string();
        v.set("tls_in_cipher", c.clone())
            .set("tls_cipher", c.clone())
            .set("tls_in_bits", bits.clone())
            .set("tls_bits", bits);
    }
    for (name, value) in [
        ("peerdn", &tls.peerdn),
        ("sni", &tls.sni),
        ("ver", &tls.ver),
    ] {
        if let Some(x) = value {
            v.set(&format!("tls_in_{name}"), x.clone());
            if name != "ver" {
                v.set(&format!("tls_{name}"), x.clone());
            }
        }
    }
    if tls.certificate_verified {
        v.set("tls_in_certificate_verified", "1")
            .set("tls_certificate_verified", "1");
    }
    // Where the message arrived (kept in the spool file as
    // `-interface_address ip.port`).
    if let Some(a) = &m.env.interface_address {
        let port = m.env.interface_port.unwrap_or(0).to_string();
        v.set("interface_address", a.clone())
            .set("received_ip_address", a.clone())
            .set("interface_port", port.clone())
            .set("received_port", port);
    }
    let live: Vec<String> = m
        .headers
        .iter()
        .filter(|h| h.is_live())
        .map(|h| h.text.clone())
        .collect();
    let received = live.iter().filter(|h| is_received(h)).count();
    v.set("received_count", received.to_string());
    v.set(
        "message_headers",
        oxim_conf::message_headers(live.iter().map(String::as_str), false),
    )
    .set(
        "message_headers_raw",
        oxim_conf::message_headers(live.iter().map(String::as_str), true),
    );
    v.set_headers(live);
    v.set_delivery_state(m.env.deliver_firsttime, m.env.manual_thaw);
    v
}

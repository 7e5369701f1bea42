//! Writing the `-H` file.

use super::*;

/// Renders the `-H` file contents for an envelope and its headers.
pub fn format_header(env: &Envelope, headers: &[Header]) -> Vec<u8> {
    let mut s =
        String::with_capacity(512 + headers.iter().map(|h| h.text.len() + 5).sum::<usize>());
    // Writing to a String cannot fail.
    let _ = writeln!(s, "{}-H", env.id);
    let _ = writeln!(s, "{} {} {}", one_line(&env.login), env.uid, env.gid);
    let _ = writeln!(s, "<{}>", one_line(&env.sender));
    let _ = writeln!(s, "{} {}", env.received_time, env.warning_count);
    let _ = writeln!(
        s,
        "-received_time_usec .{:06}",
        env.received_time_usec.min(999_999)
    );
    let opt = |s: &mut String, name: &str, v: &Option<String>| {
        if let Some(v) = v {
            let _ = writeln!(s, "-{name} {}", one_line(v));
        }
    };
    let num = |s: &mut String, name: &str, v: Option<u64>| {
        if let Some(v) = v {
            let _ = writeln!(s, "-{name} {v}");
        }
    };
    let flag = |s: &mut String, name: &str, v: bool| {
        if v {
            let _ = writeln!(s, "-{name}");
        }
    };
    opt(&mut s, "helo_name", &env.helo_name);
    if let Some(a) = &env.host_address {
        let _ = writeln!(
            s,
            "-host_address {}",
            one_line(&join_addr_port(a, env.host_port))
        );
    }
    opt(&mut s, "host_name", &env.host_name);
    opt(&mut s, "host_auth", &env.host_auth);
    opt(&mut s, "host_auth_pubname", &env.host_auth_pubname);
    if let Some(a) = &env.interface_address {
        let _ = writeln!(
            s,
            "-interface_address {}",
            one_line(&join_addr_port(a, env.interface_port))
        );
    }
    opt(&mut s, "active_hostname", &env.active_hostname);
    opt(&mut s, "received_protocol", &env.protocol);
    opt(&mut s, "ident", &env.ident);
    opt(&mut s, "auth_id", &env.auth_id);
    opt(&mut s, "auth_sender", &env.auth_sender);
    for (name, value) in &env.acl_vars {
        // Exim's form: "-aclc <name> <len>" then the value and a newline.
        let (scope, var) = match name.as_bytes().first() {
            Some(b'c' | b'm') => name.split_at(1),
            _ => ("c", name.as_str()),
        };
        // The value is length-counted (it may hold newlines); a NUL, which
        // the reader refuses, becomes `?` (same length).
        let value = value.replace('\0', "?");
        let _ = writeln!(s, "-acl{scope} {} {}", one_line(var), value.len());
        let _ = writeln!(s, "{value}");
    }
    num(&mut s, "body_linecount", env.body_linecount);
    num(
        &mut s,
        "max_received_linelength",
        env.max_received_linelength,
    );
    num(&mut s, "body_zerocount", env.body_zerocount);
    num(&mut s, "frozen", env.frozen);
    flag(&mut s, "local", env.local);
    flag(&mut s, "localerror", env.localerror);
    flag(&mut s, "deliver_firsttime", env.deliver_firsttime);
    flag(&mut s, "manual_thaw", env.manual_thaw);
    flag(&mut s, "N", env.dont_deliver);
    flag(
        &mut s,
        "tls_certificate_verified",
        env.tls.certificate_verified,
    );
    opt(&mut s, "tls_cipher", &env.tls.cipher);
    opt(&mut s, "tls_peerdn", &env.tls.peerdn);
    opt(&mut s, "tls_sni", &env.tls.sni);
    opt(&mut s, "tls_ver", &env.tls.ver);
    if env.tfo.is_tfo() {
        let _ = writeln!(s, "-oxim_tfo {}", env.tfo.name());
    }
    flag(&mut s, "oxim_8bitmime", env.body_8bitmime);
    for (name, value) in &env.extra {
        let name = one_line(name);
        if value.is_empty() {
            let _ = writeln!(s, "-{name}");
        } else {
            let _ = writeln!(s, "-{name} {}", one_line(value));
        }
    }

    // Non-recipients tree: done recipients plus other delivered addresses.
    let mut tree: Vec<Cow<'_, str>> = env
        .recipients
        .iter()
        .filter(|r| r.done)
        .map(|r| one_line(&r.address))
        .chain(env.non_recipients.iter().map(|a| one_line(a)))
        .collect();
    tree.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    tree.dedup();
    if tree.is_empty() {
        s.push_str("XX\n");
    } else {
        write_tree(&mut s, &tree);
    }

    let _ = writeln!(s, "{}", env.recipients.len());
    for r in &env.recipients {
        let address = one_line(&r.address);
        // A plain line that would read back as an extended one (an address
        // ending in "... n,n#n") is written in the extended form instead, so
        // that no address can give itself an errors_to or DSN flags.
        if r.is_plain() && parse_extended_recipient(&address).is_none() {
            let _ = writeln!(s, "{address}");
        } else {
            let orcpt = one_line(r.orcpt.as_deref().unwrap_or(""));
            let errors_to = one_line(r.errors_to.as_deref().unwrap_or(""));
            let _ = writeln!(
                s,
                "{} {} {},{} {} {},{}#3",
                address,
                orcpt,
                orcpt.len(),
                r.dsn_flags,
                errors_to,
                errors_to.len(),
                r.pno
            );
        }
    }
    s.push('\n');
    for h in headers {
        // The type must be one ASCII character other than a digit, and the
        // text must end in a newline, or the file could not be read back.
        let kind = if (h.kind.is_ascii_graphic() && !h.kind.is_ascii_digit()) || h.kind == ' ' {
            h.kind
        } else {
            kind::OTHER
        };
        // A NUL becomes `?`, as Exim does in headers (same length).
        let text = if h.text.contains('\0') {
            Cow::Owned(h.text.replace('\0', "?"))
        } else {
            Cow::Borrowed(h.text.as_str())
        };
        if text.ends_with('\n') {
            let _ = write!(s, "{:03}{kind} {}", text.len(), text);
        } else {
            let _ = writeln!(s, "{:03}{kind} {}", text.len() + 1, text);
        }
    }
    s.into_bytes()
}

/// A value written on one line of the file: line feeds (which no SMTP-given
/// value can contain) are replaced by spaces so that no input can add a line
/// of its own to the file, and NULs (which the reader refuses) by `?`.
pub(super) fn one_line(v: &str) -> Cow<'_, str> {
    if v.contains(['\n', '\0']) {
        Cow::Owned(v.replace('\n', " ").replace('\0', "?"))
    } else {
        Cow::Borrowed(v)
    }
}

/// Writes a balanced binary search tree of sorted, unique `items` in
/// pre-order, each node as `<L><R> <address>` with `Y`/`N` telling whether
/// the left/right subtree exists. Iterative: no recursion on input size.
pub(super) fn write_tree(s: &mut String, items: &[Cow<'_, str>]) {
    let mut stack: Vec<(usize, usize)> = vec![(0, items.len())];
    while let Some((lo, hi)) = stack.pop() {
        if lo >= hi {
            continue;
        }
        let mid = lo + (hi - lo) / 2;
        let left = mid > lo;
        let right = mid + 1 < hi;
        let _ = writeln!(
            s,
            "{}{} {}",
            if left { 'Y' } else { 'N' },
            if right { 'Y' } else { 'N' },
            items[mid]
        );
        // Pre-order: node, left subtree, right subtree.
        stack.push((mid + 1, hi));
        stack.push((lo, mid));
    }
}

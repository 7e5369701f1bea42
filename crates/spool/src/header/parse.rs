//! Reading the `-H` file: total, every malformed input is a
//! [`FormatError`].

use super::*;

/// A cursor over the lines of the file.
pub(super) struct Lines<'a> {
    data: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    pub(super) fn err(&self, kind: FormatErrorKind) -> FormatError {
        FormatError {
            line: self.line,
            kind,
        }
    }

    /// Next line without its newline. A final line without a newline counts
    /// as truncated. Invalid UTF-8 is replaced (U+FFFD) rather than rejected,
    /// so a message with 8-bit junk in an address can still be listed and
    /// handled.
    pub(super) fn next_line(&mut self, what: &'static str) -> Result<Cow<'a, str>, FormatError> {
        self.line += 1;
        let rest = &self.data[self.pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.err(FormatErrorKind::Truncated(what)));
        };
        self.pos += nl + 1;
        Ok(String::from_utf8_lossy(&rest[..nl]))
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Takes exactly `n` bytes (may span lines; counts the newlines seen).
    pub(super) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FormatError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.err(FormatErrorKind::Truncated(what)))?;
        let chunk = &self.data[self.pos..end];
        self.line += chunk.iter().filter(|&&b| b == b'\n').count();
        self.pos = end;
        Ok(chunk)
    }
}

pub(super) fn lossy_owned(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(super) fn parse_num<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Splits `addr.port` (Exim stores the port after the last dot). Only a
/// valid IP address followed by a valid port is split; anything else is
/// kept whole, without a port, so that writing it back is lossless.
pub(super) fn split_addr_port(v: &str) -> (String, Option<u16>) {
    match v.rsplit_once('.') {
        Some((a, p)) if a.parse::<std::net::IpAddr>().is_ok() => match parse_num::<u16>(p) {
            Some(port) => (a.to_string(), Some(port)),
            None => (v.to_string(), None),
        },
        _ => (v.to_string(), None),
    }
}

/// `addr.port` as Exim writes it, or the bare value when there is no port.
pub(super) fn join_addr_port(addr: &str, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{addr}.{p}"),
        None => addr.to_string(),
    }
}

/// Parses an extended recipient line
/// `address orcpt orcpt_len,dsn_flags errors_to errors_len,pno#3`
/// (or the older `address errors_to errors_len,pno#1`), working from the end
/// because addresses may contain spaces. Returns `None` for a plain line.
pub(super) fn parse_extended_recipient(line: &str) -> Option<Recipient> {
    let (body, flags) = line.rsplit_once('#')?;
    let flags: u32 = parse_num(flags)?;
    // Trailing "<errors_to> <len>,<pno>"
    let (rest, nums) = body.rsplit_once(' ')?;
    let (elen, pno) = nums.split_once(',')?;
    let elen: usize = parse_num(elen)?;
    let pno: i32 = if let Some(neg) = pno.strip_prefix('-') {
        -parse_num::<i32>(neg)?
    } else {
        parse_num(pno)?
    };
    // rest = "<address>[ ... ] <errors_to>" where errors_to has length elen
    let split = rest.len().checked_sub(elen)?;
    if !rest.is_char_boundary(split) {
        return None;
    }
    let errors_to = &rest[split..];
    let mut rest = rest[..split].strip_suffix(' ')?;
    let mut r = Recipient::new("");
    r.pno = pno;
    r.errors_to = (!errors_to.is_empty()).then(|| errors_to.to_string());
    if flags & 0x02 != 0 {
        // DSN part: "<address> <orcpt> <orcpt_len>,<dsn_flags>"
        let (head, nums) = rest.rsplit_once(' ')?;
        let (olen, dflags) = nums.split_once(',')?;
        let olen: usize = parse_num(olen)?;
        r.dsn_flags = parse_num(dflags)?;
        let split = head.len().checked_sub(olen)?;
        if !head.is_char_boundary(split) {
            return None;
        }
        let orcpt = &head[split..];
        r.orcpt = (!orcpt.is_empty()).then(|| orcpt.to_string());
        rest = head[..split].strip_suffix(' ')?;
    }
    r.address = rest.to_string();
    Some(r)
}

/// Parses the contents of a `-H` file. Total: never panics.
///
/// The recipients' `done` flags are set from the non-recipients tree; tree
/// entries that are not recipients end up in `Envelope::non_recipients`.
pub fn parse_header(data: &[u8]) -> Result<(Envelope, Vec<Header>), FormatError> {
    use FormatErrorKind as K;
    let mut l = Lines {
        data,
        pos: 0,
        line: 0,
    };

    if let Some(at) = data.iter().position(|&b| b == 0) {
        l.line = data[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(FormatError {
            line: l.line,
            kind: K::Nul,
        });
    }

    let idline = l.next_line("id line")?;
    let id: MessageId = idline
        .strip_suffix("-H")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| l.err(K::BadIdLine))?;

    let owner = l.next_line("login line")?;
    let mut parts = owner.rsplitn(3, ' ');
    let (gid, uid, login) = (parts.next(), parts.next(), parts.next());
    let (Some(gid), Some(uid), Some(login)) = (gid, uid, login) else {
        return Err(l.err(K::BadOwnerLine));
    };
    let (Some(uid), Some(gid)) = (parse_num::<u32>(uid), parse_num::<u32>(gid)) else {
        return Err(l.err(K::BadOwnerLine));
    };

    let sender_line = l.next_line("sender line")?;
    let sender = sender_line
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .map(str::to_string)
        .ok_or_else(|| l.err(K::BadSenderLine))?;

    let tline = l.next_line("time line")?;
    let (t, w) = tline.split_once(' ').ok_or_else(|| l.err(K::BadTimeLine))?;
    let (Some(received_time), Some(warning_count)) = (parse_num(t), parse_num(w)) else {
        return Err(l.err(K::BadTimeLine));
    };

    let mut env = Envelope::new(id, sender);
    env.login = login.to_string();
    env.uid = uid;
    env.gid = gid;
    env.received_time = received_time;
    env.warning_count = warning_count;

    // Flag lines.
    while l.peek() == Some(b'-') {
        let line = l.next_line("flag line")?;
        let body = line.get(1..).unwrap_or("");
        let (name, value) = match body.split_once(' ') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let bad = |l: &Lines<'_>| l.err(K::BadFlagValue(name.to_string()));
        let text = || value.unwrap_or("").to_string();
        let number = |l: &Lines<'_>| value.and_then(parse_num::<u64>).ok_or_else(|| bad(l));
        match name {
            "received_time_usec" => {
                env.received_time_usec = value
                    .and_then(|v| v.strip_prefix('.'))
                    .and_then(parse_num::<u32>)
                    .filter(|&u| u < 1_000_000)
                    .ok_or_else(|| bad(&l))?;
            }
            "helo_name" => env.helo_name = Some(text()),
            "host_address" => {
                let (a, p) = split_addr_port(value.unwrap_or(""));
                env.host_address = Some(a);
                env.host_port = p;
            }
            "interface_address" => {
                let (a, p) = split_addr_port(value.unwrap_or(""));
                env.interface_address = Some(a);
                env.interface_port = p;
            }
            "host_name" => env.host_name = Some(text()),
            "host_auth" => env.host_auth = Some(text()),
            "host_auth_pubname" => env.host_auth_pubname = Some(text()),
            "active_hostname" => env.active_hostname = Some(text()),
            "received_protocol" => env.protocol = Some(text()),
            "ident" => env.ident = Some(text()),
            "auth_id" => env.auth_id = Some(text()),
            "auth_sender" => env.auth_sender = Some(text()),
            "body_linecount" => env.body_linecount = Some(number(&l)?),
            "max_received_linelength" => env.max_received_linelength = Some(number(&l)?),
            "body_zerocount" => env.body_zerocount = Some(number(&l)?),
            "frozen" => env.frozen = Some(number(&l)?),
            "local" => env.local = true,
            "localerror" => env.localerror = true,
            "deliver_firsttime" => env.deliver_firsttime = true,
            "manual_thaw" => env.manual_thaw = true,
            "N" => env.dont_deliver = true,
            "tls_certificate_verified" => env.tls.certificate_verified = true,
            "tls_cipher" => env.tls.cipher = Some(text()),
            "tls_peerdn" => env.tls.peerdn = Some(text()),
            "tls_sni" => env.tls.sni = Some(text()),
            "tls_ver" => env.tls.ver = Some(text()),
            "oxim_tfo" => {
                // `TFO`/`TFO*`: as written by oxim before the outcome was
                // typed (the log suffix).
                env.tfo = match value {
                    Some("TFO") => ServerTfo::Cookie,
                    Some("TFO*") => ServerTfo::CookieWithData,
                    v => v.and_then(ServerTfo::from_name).ok_or_else(|| bad(&l))?,
                }
            }
            "oxim_8bitmime" => env.body_8bitmime = true,
            n if (n.starts_with("aclc") || n.starts_with("aclm")) && n.len() > 4 => {
                // "-aclc <name> <len>" (Exim 4.8x+: name after the space) or
                // our "-aclc<name> <len>"; value follows.
                let var = &n[3..];
                let (var, len) = match value.and_then(|v| v.split_once(' ')) {
                    Some((extra, len)) => (format!("{var}{extra}"), len),
                    None => (var.to_string(), value.unwrap_or("")),
                };
                let len: usize = parse_num(len).ok_or_else(|| l.err(K::BadAclVar))?;
                let v = l.take(len, "ACL variable value")?;
                if l.take(1, "ACL variable terminator")? != b"\n" {
                    return Err(l.err(K::BadAclVar));
                }
                env.acl_vars.push((var, lossy_owned(v)));
            }
            "aclc" | "aclm" => {
                // Exim's form: "-aclc <name> <len>".
                let (var, len) = value
                    .and_then(|v| v.rsplit_once(' '))
                    .ok_or_else(|| l.err(K::BadAclVar))?;
                let len: usize = parse_num(len).ok_or_else(|| l.err(K::BadAclVar))?;
                let var = format!("{}{}", &name[3..], var);
                let v = l.take(len, "ACL variable value")?;
                if l.take(1, "ACL variable terminator")? != b"\n" {
                    return Err(l.err(K::BadAclVar));
                }
                env.acl_vars.push((var, lossy_owned(v)));
            }
            _ => env.extra.push((name.to_string(), text())),
        }
    }

    // Non-recipients tree, pre-order; only the node count matters to read it.
    let mut tree: Vec<String> = Vec::new();
    let first = l.next_line("non-recipients tree")?;
    if first.as_ref() != "XX" {
        let mut pending: usize = 1;
        let mut line = first;
        loop {
            let b = line.as_bytes();
            if b.len() < 3 || b[2] != b' ' {
                return Err(l.err(K::BadTreeLine));
            }
            let flag = |c: u8| match c {
                b'Y' => Ok(1usize),
                b'N' => Ok(0usize),
                _ => Err(l.err(K::BadTreeLine)),
            };
            pending = pending - 1 + flag(b[0])? + flag(b[1])?;
            tree.push(line.get(3..).unwrap_or("").to_string());
            if pending == 0 {
                break;
            }
            line = l.next_line("non-recipients tree node")?;
        }
    }

    let count_line = l.next_line("recipient count")?;
    let count: usize = parse_num(&count_line).ok_or_else(|| l.err(K::BadRecipientCount))?;
    // Each recipient needs at least one byte: bound the allocation by input.
    let mut recipients = Vec::with_capacity(count.min(data.len() - l.pos));
    for _ in 0..count {
        let line = l.next_line("recipient")?;
        let r = parse_extended_recipient(&line).unwrap_or_else(|| Recipient::new(line));
        recipients.push(r);
    }
    if !l.next_line("blank line")?.is_empty() {
        return Err(l.err(K::MissingBlankLine));
    }

    // Headers until EOF.
    let mut headers = Vec::new();
    while l.pos < data.len() {
        let rest = &data[l.pos..];
        let ndigits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(3..=9).contains(&ndigits) || rest.len() < ndigits + 2 || rest[ndigits + 1] != b' ' {
            return Err(l.err(K::BadHeaderPrefix));
        }
        let len: usize = String::from_utf8_lossy(&rest[..ndigits])
            .parse()
            .map_err(|_| l.err(K::BadHeaderPrefix))?;
        let kind = rest[ndigits];
        if !kind.is_ascii_graphic() && kind != b' ' {
            return Err(l.err(K::BadHeaderPrefix));
        }
        l.pos += ndigits + 2;
        let text = l
            .take(len, "header text")
            .map_err(|_| l.err(K::ShortHeader))?;
        if text.last() != Some(&b'\n') {
            return Err(l.err(K::ShortHeader));
        }
        headers.push(Header {
            kind: char::from(kind),
            text: lossy_owned(text),
        });
    }

    let tree_set: std::collections::HashSet<&str> = tree.iter().map(String::as_str).collect();
    for r in &mut recipients {
        r.done = tree_set.contains(r.address.as_str());
    }
    let rcpt_set: std::collections::HashSet<&str> =
        recipients.iter().map(|r| r.address.as_str()).collect();
    env.non_recipients = tree
        .iter()
        .filter(|a| !rcpt_set.contains(a.as_str()))
        .cloned()
        .collect();
    // A set: keep it in the (byte) order the tree is written in.
    env.non_recipients.sort_unstable();
    env.non_recipients.dedup();
    env.recipients = recipients;
    Ok((env, headers))
}

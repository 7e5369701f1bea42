//! `verify = header_syntax`: the address lists of the message's header
//! lines.

use super::*;

/// `verify = header_syntax`: every address in the header lines that hold
/// addresses (From, To, Cc, Bcc, Sender, Reply-To and their Resent-
/// forms) is well formed, and qualified when the message came from
/// another host. A failure sets `$acl_verify_message` as Exim words it.
pub(super) fn header_syntax(vars: &mut Vars, remote: bool) -> bool {
    pub(super) const NAMES: &[&str] = &["sender", "reply-to", "from", "to", "cc", "bcc"];
    for h in &unfolded_headers(vars) {
        let Some((name, value)) = h.split_once(':') else {
            continue;
        };
        let lname = name.trim().to_ascii_lowercase();
        let bare = lname.strip_prefix("resent-").unwrap_or(&lname);
        if !NAMES.contains(&bare) {
            continue;
        }
        for item in split_address_list(value) {
            let failure = match address_in(&item) {
                None => Some("malformed address"),
                Some(a) if a.is_empty() => None,
                Some(a) if remote && !a.contains('@') => Some("unqualified address not permitted"),
                Some(_) => None,
            };
            if let Some(why) = failure {
                vars.set(
                    "acl_verify_message",
                    format!(
                        "{why}: failing address in \"{}:\" header is: {}",
                        name.trim(),
                        item.trim()
                    ),
                );
                return false;
            }
        }
    }
    true
}

/// The message's header lines, unfolded (continuation lines join the
/// header before them).
pub(super) fn unfolded_headers(vars: &Vars) -> Vec<String> {
    let raw = vars.get("message_headers_raw").unwrap_or("");
    let mut headers: Vec<String> = Vec::new();
    for line in raw.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else if !line.is_empty() {
            headers.push(line.to_string());
        }
    }
    headers
}

/// Split a header's address list at the commas outside quotes, angle
/// brackets and comments; a group (`name: a, b;`) gives its members.
pub(super) fn split_address_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quote, mut angle, mut paren) = (false, 0i32, 0i32);
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                continue;
            }
            '"' if paren == 0 => quote = !quote,
            '(' if !quote => paren += 1,
            ')' if !quote && paren > 0 => paren -= 1,
            '<' if !quote && paren == 0 => angle += 1,
            '>' if !quote && paren == 0 && angle > 0 => angle -= 1,
            // A group's name ends with a colon; its list with ';'.
            ':' if !quote && paren == 0 && angle == 0 => {
                cur.clear();
                continue;
            }
            ',' | ';' if !quote && paren == 0 && angle == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// The address in one list item (`Name <a@b>`, `a@b (Name)`), empty for
/// `<>`; None when it is not well formed.
pub(super) fn address_in(item: &str) -> Option<String> {
    // Comments go.
    let mut text = String::new();
    let mut depth = 0;
    let mut quote = false;
    for c in item.chars() {
        match c {
            '"' if depth == 0 => {
                quote = !quote;
                text.push(c);
            }
            '(' if !quote => depth += 1,
            ')' if !quote && depth > 0 => depth -= 1,
            _ if depth == 0 => text.push(c),
            _ => {}
        }
    }
    if quote || depth != 0 {
        return None;
    }
    let text = text.trim();
    let addr = match (text.find('<'), text.rfind('>')) {
        (Some(a), Some(b)) if a < b => text[a + 1..b].trim().to_string(),
        (None, None) => text.to_string(),
        _ => return None,
    };
    // Outside quotes an address has no spaces.
    let mut q = false;
    for c in addr.chars() {
        if c == '"' {
            q = !q;
        } else if c.is_whitespace() && !q {
            return None;
        }
    }
    if addr.starts_with('@') || addr.ends_with('@') {
        return None;
    }
    Some(addr)
}

//! RFC 2822 address extraction for the `address`, `domain`, `local_part`
//! and `addresses` operators: comments dropped, the route-addr in `<...>`
//! taken when present, white space outside quotes removed.

/// Removes comments (nested parentheses, outside quoted strings) and the
/// white space outside quoted strings.
fn strip_comments_and_space(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted || depth > 0 => {
                if depth == 0 {
                    out.push(c);
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    chars.next();
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            c if c.is_whitespace() && !quoted => {}
            c => out.push(c),
        }
    }
    out
}

/// The address in `s` (`Name <addr> (comment)`, `addr (comment)`...), or
/// None if `s` is not a single well-formed address. With `allow_group`, a
/// leading `group-name:` and a trailing `;` are accepted.
pub(super) fn extract_address(s: &str, allow_group: bool) -> Option<String> {
    let mut t = s.trim();
    if allow_group {
        if let Some(colon) = t.find(':') {
            let name = &t[..colon];
            if !name.contains(['<', '@', '"', '>']) && !name.trim().is_empty() {
                t = t[colon + 1..].trim_start();
            }
        }
        t = t.trim_end().trim_end_matches(';').trim_end();
    }
    let route = match (t.find('<'), t.rfind('>')) {
        (Some(a), Some(b)) if a < b => {
            let phrase = strip_comments_and_space(&t[..a]);
            let after = strip_comments_and_space(&t[b + 1..]);
            // The phrase is words (atoms and quoted strings), no address.
            if phrase.contains(['@', '<', '>']) || !after.is_empty() {
                return None;
            }
            &t[a + 1..b]
        }
        (None, None) => t,
        _ => return None,
    };
    let addr = strip_comments_and_space(route);
    if addr.is_empty() || addr.contains(['<', '>', ',']) {
        return None;
    }
    Some(addr)
}

/// Splits a header-style address list at commas outside quotes, comments
/// and angle brackets.
pub(super) fn split_addresses(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut angle) = (0usize, false, false);
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            '<' if !quoted && depth == 0 => angle = true,
            '>' if !quoted && depth == 0 => angle = false,
            ',' if !quoted && depth == 0 && !angle => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_with_comments_and_phrases() {
        let x = |s: &str| extract_address(s, false);
        assert_eq!(
            x("local-part@dom.ain").as_deref(),
            Some("local-part@dom.ain")
        );
        assert_eq!(
            x("Exim Person <local-part.(comment)dot-atom@dom.ain(comment2)> (that's me)")
                .as_deref(),
            Some("local-part.dot-atom@dom.ain")
        );
        assert_eq!(
            x("Exim Person <local-part(foo)@(bar)dom.ain> (that's me)").as_deref(),
            Some("local-part@dom.ain")
        );
        assert_eq!(x("local-part@dom.ain <local-part@dom.ain>"), None);
        assert_eq!(extract_address(" group: p@q", true).as_deref(), Some("p@q"));
        assert_eq!(extract_address(" r@s; ", true).as_deref(), Some("r@s"));
        assert_eq!(extract_address(" nullgroupname:;", true), None);
        assert_eq!(
            split_addresses("A <a@b>, \"x,y\" <c@d>, (q,r) e@f"),
            vec!["A <a@b>", " \"x,y\" <c@d>", " (q,r) e@f"]
        );
    }
}

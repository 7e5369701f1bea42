//! Header variables: `$h_name:`, `$lh_`, `$message_headers`.

use super::*;

/// Longest value a header variable or `$message_headers` yields (Exim's
/// `header_insert_maxlen`).
pub const HEADER_INSERT_MAXLEN: usize = 64 * 1024;

/// Joins header values as Exim does for `$h_*` and `$message_headers`:
/// `raw` keeps each value as it is, otherwise leading and trailing white
/// space are dropped; `list` (for `$lh_`) makes a colon list; the result
/// is cut at [`HEADER_INSERT_MAXLEN`].
pub(super) fn join_headers(values: &[(&str, bool)], raw: bool, list: bool) -> String {
    let mut g = String::new();
    for (i, (v, address)) in values.iter().enumerate() {
        let mut v: &str = v;
        if list {
            v = v.trim_end_matches('\n');
        } else if !raw {
            v = v.trim_start_matches([' ', '\t']).trim_end();
        }
        if i > 0 {
            if list {
                g.push(':');
            } else if !raw {
                g.push_str(if *address { ",\n" } else { "\n" });
            }
        }
        let room = HEADER_INSERT_MAXLEN.saturating_sub(g.len());
        let mut cut = v.len().min(room);
        while !v.is_char_boundary(cut) {
            cut -= 1;
        }
        if list {
            g.push_str(&v[..cut].replace(':', "::"));
        } else {
            g.push_str(&v[..cut]);
        }
        if g.len() >= HEADER_INSERT_MAXLEN {
            break;
        }
    }
    g
}

/// The value of a header variable (`h_name:`, `header_name:`, `rh_`,
/// `bh_`, `lh_` and long forms; the trailing colon is optional) over the
/// header fields `headers` (each the full text with its name and final
/// newline). None if no field has that name or `var` is not a header
/// variable. Several fields of the name are joined with a newline (after a
/// comma for address headers), `lh_` makes a colon list, `rh_` keeps the
/// text raw. RFC 2047 words are not decoded.
pub fn header_variable<'h>(
    headers: impl IntoIterator<Item = &'h str>,
    var: &str,
) -> Option<String> {
    if !is_header_var(var) {
        return None;
    }
    let (kind, rest) = var.split_once('_')?;
    let name = rest.strip_suffix(':').unwrap_or(rest);
    let raw = matches!(kind, "rh" | "rheader" | "lh" | "lheader");
    let list = matches!(kind, "lh" | "lheader");
    let address = ["bcc", "cc", "from", "reply-to", "sender", "to"]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(name));
    let values: Vec<(&str, bool)> = headers
        .into_iter()
        .filter_map(|h| {
            let (n, v) = h.split_once(':')?;
            n.trim_end()
                .eq_ignore_ascii_case(name)
                .then_some((v, address))
        })
        .collect();
    if values.is_empty() {
        return None;
    }
    Some(join_headers(&values, raw, list))
}

/// `$message_headers` (`raw`: `$message_headers_raw`) over the header
/// fields `headers`.
pub fn message_headers<'h>(headers: impl IntoIterator<Item = &'h str>, raw: bool) -> String {
    let values: Vec<(&str, bool)> = headers.into_iter().map(|h| (h, false)).collect();
    join_headers(&values, raw, false)
}

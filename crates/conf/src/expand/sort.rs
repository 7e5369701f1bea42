//! The `listquote` and `sort` items.

use super::*;

/// Exim's list-element appending: separators inside the element are
/// doubled, an empty element is written as a space.
fn append_element(out: &mut String, sep: char, item: &str) {
    if !out.is_empty() {
        out.push(sep);
    }
    if item.is_empty() {
        out.push(' ');
        return;
    }
    for c in item.chars() {
        out.push(c);
        if c == sep {
            out.push(sep);
        }
    }
}

impl Expander<'_> {
    /// `${listquote{sep}{string}}`.
    pub(super) fn listquote(
        &mut self,
        s: &[u8],
        pos: &mut usize,
        skip: bool,
    ) -> Result<Vec<u8>, ExpandError> {
        let a = self.read_subs(s, pos, (2, 2), skip, "listquote")?;
        if skip {
            return Ok(Vec::new());
        }
        if a[1].is_empty() {
            return Ok(b" ".to_vec());
        }
        let sep = a[0].first().copied();
        let mut out = Vec::with_capacity(a[1].len());
        for &c in &a[1] {
            if Some(c) == sep {
                out.push(c);
            }
            out.push(c);
        }
        Ok(out)
    }

    /// `${sort{list}{comparator}{extractor}}`: a stable insertion sort on
    /// the key the extractor gives for each item (`$item`).
    pub(super) fn sort(
        &mut self,
        s: &[u8],
        pos: &mut usize,
        skip: bool,
    ) -> Result<Vec<u8>, ExpandError> {
        let open = |pos: &mut usize, what: &str| -> Result<(), ExpandError> {
            skip_ws(s, pos);
            if s.get(*pos) != Some(&b'{') {
                return Err(syntax(format!("missing '{{' for {what} arg of sort")));
            }
            *pos += 1;
            Ok(())
        };
        open(pos, "list")?;
        let list = self.string(s, pos, true, skip)?;
        open(pos, "comparator")?;
        let cmp = bytes_to_string(self.string(s, pos, true, skip)?);
        open(pos, "extractor")?;
        let body = *pos;
        self.string(s, pos, true, true)?;
        skip_ws(s, pos);
        if s.get(*pos) != Some(&b'}') {
            return Err(syntax("missing } at end of \"sort\""));
        }
        *pos += 1;
        if skip {
            return Ok(Vec::new());
        }
        let cmp = cmp.trim().to_string();
        let numeric = match cmp.as_str() {
            "<" | "<=" | ">" | ">=" => true,
            "lt" | "lti" | "le" | "lei" | "gt" | "gti" | "ge" | "gei" => false,
            c if known::CONDITIONS.contains(&c) => {
                return Err(syntax("comparator not handled for sort"))
            }
            c => return Err(ExpandError::UnknownCondition(c.to_string())),
        };
        let list = bytes_to_string(list);
        let mut iter = crate::lists::ListIter::new(&list);
        let sep = iter.separator();
        let saved = self.item.take();
        let mut sorted: Vec<(String, String)> = Vec::new();
        let result = (|| -> Result<(), ExpandError> {
            for item in iter.by_ref() {
                self.item = Some(item.clone());
                let mut p = body;
                let key = bytes_to_string(self.string(s, &mut p, true, false)?);
                if key.is_empty() {
                    let x = String::from_utf8_lossy(&s[body..*pos - 2]).into_owned();
                    return Err(syntax(format!("field-extract in sort: \"{x}\"")));
                }
                let mut at = sorted.len();
                for (i, (_, k)) in sorted.iter().enumerate() {
                    if sorts_before(&cmp, numeric, &key, k)? {
                        at = i;
                        break;
                    }
                }
                sorted.insert(at, (item, key));
            }
            Ok(())
        })();
        self.item = saved;
        result?;
        let mut out = String::new();
        for (item, _) in &sorted {
            append_element(&mut out, sep, item);
        }
        Ok(out.into_bytes())
    }
}

fn sorts_before(cmp: &str, numeric: bool, a: &str, b: &str) -> Result<bool, ExpandError> {
    if numeric {
        let (x, y) = (exim_integer(a)?, exim_integer(b)?);
        return Ok(match cmp {
            "<" => x < y,
            "<=" => x <= y,
            ">" => x > y,
            _ => x >= y,
        });
    }
    let (x, y) = if cmp.ends_with('i') {
        (a.to_ascii_lowercase(), b.to_ascii_lowercase())
    } else {
        (a.to_string(), b.to_string())
    };
    let ord = x.cmp(&y);
    Ok(match &cmp[..2] {
        "lt" => ord.is_lt(),
        "le" => ord.is_le(),
        "gt" => ord.is_gt(),
        _ => ord.is_ge(),
    })
}

#[cfg(test)]
mod tests {
    use crate::expand::{expand, MapContext};

    fn x(s: &str) -> String {
        expand(s, &MapContext::new()).unwrap()
    }

    #[test]
    fn sort_and_listquote_as_exim() {
        assert_eq!(x("${sort{3:2:1:4}{<}{$item}}"), "1:2:3:4");
        assert_eq!(x("${sort {<, 3,2,1,4}{>}{$item}}"), "4,3,2,1");
        assert_eq!(x("${sort{c:B:a:aa}{lti}{$item}}"), "a:aa:B:c");
        assert_eq!(x("\"${sort{}{<}{$item}}\""), "\"\"");
        assert_eq!(x("${listquote{:}{ab:cd}}"), "ab::cd");
        assert_eq!(x("<${listquote{:}{}}>"), "< >");
    }
}

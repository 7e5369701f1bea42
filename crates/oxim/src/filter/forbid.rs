//! The redirect router's `forbid_filter_*` options: expansion items a
//! user's filter may not use. The filter's strings are checked before they
//! are expanded; a forbidden item is an error in Exim's words.

/// Which expansion items a filter may not use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forbid {
    pub lookup: bool,
    pub readfile: bool,
    pub readsocket: bool,
    pub run: bool,
    /// `exists` and `${stat:`.
    pub existstest: bool,
    pub dlfunc: bool,
    pub perl: bool,
}

fn has_item(s: &str, name: &str) -> bool {
    // `${name` followed by `{`, `:` or white space.
    let pat = format!("${{{name}");
    s.match_indices(&pat).any(|(i, _)| {
        s[i + pat.len()..]
            .chars()
            .next()
            .is_some_and(|c| c == '{' || c == ':' || c.is_whitespace())
    })
}

fn has_exists(s: &str) -> bool {
    s.match_indices("exists").any(|(i, _)| {
        let before_ok = s[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        before_ok && s[i + 6..].trim_start().starts_with('{')
    })
}

impl Forbid {
    /// The error for the first forbidden item in `s`, if any.
    pub fn check(&self, s: &str) -> Option<&'static str> {
        if !s.contains('$') {
            return None;
        }
        let checks: [(bool, bool, &'static str); 8] = [
            (
                self.lookup,
                has_item(s, "lookup"),
                "lookup expansions are not permitted",
            ),
            (
                self.existstest,
                has_exists(s),
                "File existence tests are not permitted",
            ),
            (
                self.existstest,
                has_item(s, "stat"),
                "Use of the stat() expansion is not permitted",
            ),
            (
                self.readfile,
                has_item(s, "readfile"),
                "file insertions are not permitted",
            ),
            (
                self.readsocket,
                has_item(s, "readsocket"),
                "socket insertions are not permitted",
            ),
            (
                self.run,
                has_item(s, "run"),
                "running a command is not permitted",
            ),
            (
                self.dlfunc,
                has_item(s, "dlfunc"),
                "dynamically-loaded functions are not permitted",
            ),
            (
                self.perl,
                has_item(s, "perl"),
                "Perl calls are not permitted",
            ),
        ];
        checks
            .into_iter()
            .find(|(forbidden, present, _)| *forbidden && *present)
            .map(|(_, _, msg)| msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_items_are_found() {
        let all = Forbid {
            lookup: true,
            readfile: true,
            readsocket: true,
            run: true,
            existstest: true,
            dlfunc: true,
            perl: true,
        };
        assert_eq!(
            all.check("${lookup{$local_part}lsearch{/etc/passwd}{$value}fail}"),
            Some("lookup expansions are not permitted")
        );
        assert_eq!(
            all.check("${if exists{/tmp/junk}{abc}{def}}"),
            Some("File existence tests are not permitted")
        );
        assert_eq!(
            all.check("${if eq{${stat:/tmp/junk}}{}{abc}{def}}"),
            Some("Use of the stat() expansion is not permitted")
        );
        assert_eq!(
            all.check("${run{/some/script}}"),
            Some("running a command is not permitted")
        );
        assert_eq!(
            all.check("${readfile{/some/file}}"),
            Some("file insertions are not permitted")
        );
        assert_eq!(all.check("$runner ${rundown} plain"), None);
        assert_eq!(Forbid::default().check("${run{/bin/true}}"), None);
    }
}

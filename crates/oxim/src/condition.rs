//! Evaluating the conditions of routers and ACLs: Exim's truth rule for an
//! option's expanded value, and why a condition could not be decided.

use oxim_conf::{ExpandError, ListError};

/// Why a router precondition or an ACL condition could not be decided
/// (the router defers, the ACL answers `defer`). Keeps the expansion or
/// list error it came from; rendered only where it is logged.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ConditionError {
    /// A string failed to expand.
    #[error(transparent)]
    Expand(#[from] ExpandError),
    /// A list (domains, local parts, hosts, addresses) could not be matched.
    #[error(transparent)]
    List(#[from] ListError),
    /// An ACL condition's value failed to expand.
    #[error("failed to expand ACL string \"{text}\": {source}")]
    AclString {
        /// The value as written.
        text: String,
        source: ExpandError,
    },
    /// A value that is neither true nor false.
    #[error("\"{0}\" is not a valid condition value")]
    NotTruthValue(String),
    /// `delay = ` with something that is not a time.
    #[error("invalid time value \"{0}\" for delay")]
    BadDelay(String),
    /// `verify = ` with a kind oxim does not know.
    #[error("unknown verify type \"{0}\"")]
    UnknownVerify(String),
    /// `acl = ` naming no ACL.
    #[error("ACL \"{0}\" not found")]
    AclNotFound(String),
    /// A router's `require_files` could not tell whether a file exists.
    #[error("require_files: error for {path}: {error}")]
    RequireFiles { path: String, error: String },
    /// A router option whose failure defers the address with this text
    /// (`router_home_directory` that fails to expand).
    #[error("{0}")]
    RouterDefer(String),
    /// `acl = ` calls nested more than 20 deep (an ACL that calls itself).
    #[error("ACL nested too deep: possible loop")]
    AclTooDeep,
    /// An ACL called by `acl = ` deferred: so does its caller, with the
    /// called ACL's log text.
    #[error("{0}")]
    NestedDefer(String),
    /// An ACL condition oxim does not implement.
    #[error("ACL condition \"{0}\" is not supported by oxim")]
    Unsupported(String),
    /// A `control =` value oxim does not take (unknown, not implemented,
    /// or with bad options).
    #[error("{0}")]
    BadControl(String),
    /// A condition that has no meaning where the ACL runs (Exim's text).
    #[error("{0}")]
    Forbidden(String),
    /// A malformed `verify` condition (Exim's text).
    #[error("{0}")]
    BadVerify(String),
}

/// Exim's truth rule for a `condition` option's expanded value: empty,
/// `0`, `no` and `false` are false; digits, `yes` and `true` are true.
pub fn condition_true(v: &str) -> Result<bool, ConditionError> {
    let t = v.trim();
    if t.is_empty() || t == "0" || t.eq_ignore_ascii_case("no") || t.eq_ignore_ascii_case("false") {
        Ok(false)
    } else if t.chars().all(|c| c.is_ascii_digit())
        || t.eq_ignore_ascii_case("yes")
        || t.eq_ignore_ascii_case("true")
    {
        Ok(true)
    } else {
        Err(ConditionError::NotTruthValue(t.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_values() {
        assert_eq!(condition_true("yes"), Ok(true));
        assert_eq!(condition_true(" no "), Ok(false));
        assert_eq!(condition_true(""), Ok(false));
        assert_eq!(condition_true("12"), Ok(true));
        assert!(condition_true("maybe").is_err());
    }
}

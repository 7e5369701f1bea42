//! oxim-conf: Exim's run time configuration language.
//!
//! * [`load`] / [`parse_str`] read a configuration (preprocessor with
//!   macros, `.include`, `.ifdef`; main options; named lists; ACLs;
//!   routers, transports and authenticators; retry and rewrite rules) into a
//!   typed [`Config`]. Errors name the innermost file and line, Exim style.
//! * [`expand`] implements string expansion (`$var`, `${if ...}`,
//!   `${lookup ...}`, operators) against an [`ExpandContext`].
//! * [`lists`] implements Exim list matching for domains, hosts, addresses
//!   and local parts.
//!
//! Parsing does no I/O except through [`FileSource`] (for `.include`), so it
//! can be tested and fuzzed in memory.
//!
//! ```
//! use oxim_conf::{expand, match_domain, parse_str, MapContext, MemFs};
//!
//! let text = "SERVER=\n\
//!             domainlist local_domains = @ : test.ex\n\
//!             primary_hostname = myhost.test.ex\n\
//!             begin routers\n\
//!             r:\n  driver = redirect\n  condition = ${if eq{SERVER}{server}{yes}{no}}\n  data = :blackhole:\n";
//! let defines = [("SERVER".to_string(), "server".to_string())];
//! let cfg = parse_str(text, "/etc/oxim/configure", &defines, &MemFs::new())?;
//! assert_eq!(cfg.main.str("primary_hostname"), "myhost.test.ex");
//! assert_eq!(cfg.main.int("smtp_accept_max"), 20); // table default
//!
//! let ctx = MapContext::new().var("primary_hostname", "myhost.test.ex");
//! let r = &cfg.routers[0];
//! assert_eq!(expand(r.options.str("condition"), &ctx)?, "yes");
//! assert!(match_domain("! +local_domains", "example.org", &cfg, &ctx)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod acl;
pub mod config;
pub mod error;
pub mod expand;
pub mod filter;
pub mod lists;
pub mod lookup;
pub mod options;
pub mod preproc;
pub mod rewrite;
pub mod sieve;
pub mod source;
pub mod tables;
pub mod trace;
pub mod vars;

pub use acl::{Acl, AclCondition, AclStatement, AclVerb};

/// The variable (not reachable as `$name`: it has a dash) holding the
/// `;\n\tdkim=...` part of `${authresults}`, set after DKIM verification.
pub const AUTHRESULTS_DKIM_VAR: &str = "authresults-dkim";
pub use config::{
    parse_route_item, parse_route_list, Config, Driver, ListKind, LoadOptions, NamedLists,
    PrintOutput, RetryKind, RetryParam, RetryRule, RewriteRule, RouteItem,
};
pub use error::ConfigError;
pub use expand::{
    expand, expand_bool, expand_bytes, expand_condition, expand_list_items, expand_with_config,
    header_variable, message_headers, EntryKind, ExpandContext, ExpandError, HostFind, MapContext,
};
pub use lists::{
    host_list_lookups, match_address, match_address_probe, match_domain, match_domain_probe,
    match_host, match_host_probe, match_local_part, match_local_part_probe, match_no_host,
    ListError, ListIter, Probe,
};
pub use options::{Kind, OptionSpec, Options, Value};
pub use source::{FileSource, MemFs, StdFs};
pub use trace::{ListCache, Trace, TraceSink};

/// Loads the configuration file `opts.path` (and its includes) through `fs`.
pub fn load(opts: &LoadOptions, fs: &dyn FileSource) -> Result<Config, ConfigError> {
    let name = opts.path.to_string_lossy().into_owned();
    let text = fs.read_to_string(&opts.path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ConfigError::Missing { path: name.clone() },
        _ => ConfigError::Unreadable {
            path: name.clone(),
            reason: crate::error::io_reason(&e),
        },
    })?;
    config::parse_config(fs, &name, &text, &opts.defines, &opts.builtin)
}

/// As [`load`], but a failure also hands back the main options read before
/// the error (`log_file_path` for the panic log, as Exim has it then).
pub fn load_partial(
    opts: &LoadOptions,
    fs: &dyn FileSource,
) -> Result<Config, (ConfigError, Option<Box<Options>>)> {
    let name = opts.path.to_string_lossy().into_owned();
    let text = fs.read_to_string(&opts.path).map_err(|e| {
        let err = match e.kind() {
            std::io::ErrorKind::NotFound => ConfigError::Missing { path: name.clone() },
            _ => ConfigError::Unreadable {
                path: name.clone(),
                reason: crate::error::io_reason(&e),
            },
        };
        (err, None)
    })?;
    config::parse_config_partial(fs, &name, &text, &opts.defines, &opts.builtin)
        .map_err(|(e, main)| (e, Some(main)))
}

/// Parses configuration text held in memory. `name` is used in error
/// messages and to resolve relative `.include` paths (through `fs`).
pub fn parse_str(
    text: &str,
    name: &str,
    defines: &[(String, String)],
    fs: &dyn FileSource,
) -> Result<Config, ConfigError> {
    config::parse_config(fs, name, text, defines, &[])
}

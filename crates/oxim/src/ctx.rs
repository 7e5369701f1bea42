//! The process-wide context: configuration, names, spool, log, resolver.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use oxim_conf::Config;
use oxim_log::{LogRecord, LogSelector, Logger, LoggerOptions};
use oxim_spool::{IdFormat, IdGenerator, Spool};

use crate::cli::Invocation;
use crate::config_error::ConfigFailure;
use crate::dns::Dns;
use crate::harness::Harness;
use crate::message::HeaderStyle;
use crate::settings::{Drivers, MainSettings};
use crate::vars::Vars;

/// The embedded default configuration (see README: `oxim --demo`).
pub const DEFAULT_CONFIG: &str = include_str!("default.conf");

/// Where the configuration is read from when there is no `-C`.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/oxim/configure";

/// Who ran this process.
#[derive(Debug, Clone)]
pub struct Caller {
    pub login: String,
    pub uid: u32,
    pub gid: u32,
    /// Root, the exim user, or in `trusted_users`/`trusted_groups`: may
    /// set the envelope sender (Exim's trusted caller).
    pub trusted: bool,
    /// Root, the exim user or group, or in `admin_groups` (or trusted):
    /// may list and act on the queue (Exim's admin user).
    pub admin: bool,
}

impl Caller {
    /// The real user of this process (neither trusted nor admin until
    /// [`Caller::classify`] says so).
    pub fn current() -> Caller {
        Caller::for_ids(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    }

    /// The user with these ids (login from the password file, else
    /// `$USER`, else the number).
    pub fn for_ids(uid: u32, gid: u32) -> Caller {
        let (uid, gid) = (
            nix::unistd::Uid::from_raw(uid),
            nix::unistd::Gid::from_raw(gid),
        );
        let login = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| uid.to_string());
        Caller {
            login,
            uid: uid.as_raw(),
            gid: gid.as_raw(),
            trusted: false,
            admin: false,
        }
    }

    /// Exim's rules: root and the exim user are trusted and admin; a
    /// member (real or supplementary group) of the exim group or of
    /// `admin_groups` is admin; `trusted_users` (names or uids) and
    /// `trusted_groups` (by any of the caller's groups) are trusted.
    /// Trusted callers are admin too, as Exim's `-bp` allows them.
    fn classify(&mut self, settings: &MainSettings, exim: Option<(u32, u32)>) -> Result<()> {
        let groups: Vec<u32> = nix::unistd::getgroups()
            .map(|g| g.iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default();
        let in_groups = |list: &str| -> Result<bool> {
            for g in oxim_conf::lists::list_items(list) {
                let g = g.trim();
                if g.is_empty() {
                    continue;
                }
                let gid = crate::privilege::find_group(g)?;
                if gid == self.gid || groups.contains(&gid) {
                    return Ok(true);
                }
            }
            Ok(false)
        };
        let (exim_uid, exim_gid) = match exim {
            Some((u, g)) => (Some(u), Some(g)),
            None => (None, None),
        };
        self.trusted = self.uid == 0
            || Some(self.uid) == exim_uid
            || crate::privilege::uid_list(&settings.trusted_users)
                .map_err(|e| anyhow!("trusted_users: {e}"))?
                .contains(&self.uid)
            || in_groups(&settings.trusted_groups).map_err(|e| anyhow!("trusted_groups: {e}"))?;
        self.admin = self.trusted
            || exim_gid.is_some_and(|g| g == self.gid || groups.contains(&g))
            || in_groups(&settings.admin_groups).map_err(|e| anyhow!("admin_groups: {e}"))?;
        Ok(())
    }
}

/// Everything a command needs, built once.
/// A configuration error Exim reports with `LOG_PANIC_DIE|LOG_CONFIG`
/// (found after the file was read): shown on stderr as Exim shows it,
/// `LOG: PANIC DIE` and `Exim configuration error:` over the text.
#[derive(Debug)]
pub struct ConfigPanic(pub String);

impl std::fmt::Display for ConfigPanic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LOG: PANIC DIE\n  Exim configuration error:\n  {}",
            self.0
        )
    }
}

impl std::error::Error for ConfigPanic {}

pub struct Ctx {
    pub inv: Invocation,
    pub harness: Harness,
    pub config: Config,
    /// The file the configuration came from (`embedded` for the default).
    pub config_path: String,
    pub drivers: Drivers,
    /// The main options on the session and delivery paths, typed.
    pub settings: MainSettings,
    pub dns: Dns,
    pub primary_hostname: String,
    pub qualify_domain: String,
    pub qualify_recipient: String,
    pub version: &'static str,
    pub selector: LogSelector,
    pub logger: Logger,
    pub spool: Spool,
    pub ids: IdGenerator,
    pub caller: Caller,
    /// The `Received:` layout: Exim's current one, or (for the 2019
    /// testsuite only, see [`HeaderStyle::Pre495`]) the older one.
    pub header_style: HeaderStyle,
    /// `never_users` as uids: no file or pipe delivery runs as one of them.
    pub never_users: Vec<u32>,
    /// Started as root for a command that receives or delivers: the exim
    /// user to give root up for (None: not root, or `exim_user` is root).
    pub run_as: Option<crate::privilege::Ids>,
    /// Started as root with `exim_user` resolving to root: root is kept.
    pub keeps_root: bool,
    /// The daemon's delivery helper (see `daemon::start_delivery_helper`):
    /// a process that kept root and starts delivery processes on request.
    pub delivery_helper: std::sync::OnceLock<DeliveryHelper>,
    /// The rules of `begin rewrite`.
    pub rewrite: oxim_conf::rewrite::Rules,
    /// The variables every expansion starts from.
    base: Vars,
    /// Group-commit spool writer, started on first use (the daemon).
    writer: std::sync::OnceLock<Option<oxim_spool::SpoolWriter>>,
    /// The server's TLS certificate, loaded on first use (see `crate::smtp_in::tls`).
    pub tls_server: std::sync::OnceLock<Result<Arc<oxim_tls::ServerTls>, String>>,
}

/// Built-in macros describing what this build has (`_HAVE_*`).
pub fn builtin_macros() -> Vec<(String, String)> {
    let mut v = vec![
        ("_HAVE_IPV6".to_string(), "y".to_string()),
        ("_HAVE_TLS".to_string(), "y".to_string()),
        ("_HAVE_PIPE_CONNECT".to_string(), "y".to_string()),
        ("_HAVE_PRDR".to_string(), "y".to_string()),
    ];
    v.extend(crate::dkim::sign::builtin_macros());
    if oxim_net::tfo_supported() {
        v.push(("_HAVE_TCP_FASTOPEN".into(), "y".into()));
    }
    v
}

fn system_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Where the embedded configuration keeps its files: `$OXIM_HOME` or
/// `./oxim-local`.
pub fn demo_home() -> PathBuf {
    std::env::var_os("OXIM_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::current_dir()
                .unwrap_or_else(|_| PathBuf::from("."))
                .join("oxim-local")
        })
}

/// Load the configuration the invocation names (or the embedded one).
pub fn load_config(inv: &Invocation) -> Result<(Config, String), ConfigFailure> {
    let failure = |(e, main): (oxim_conf::ConfigError, Option<Box<oxim_conf::Options>>)| {
        ConfigFailure::from_load(&e, main.as_deref())
    };
    let mut defines = inv.defines.clone();
    let path = inv.config.clone().or_else(|| {
        let p = PathBuf::from(DEFAULT_CONFIG_PATH);
        p.exists().then_some(p)
    });
    match path {
        Some(path) => {
            let opts = oxim_conf::LoadOptions {
                path: path.clone(),
                defines,
                builtin: builtin_macros(),
            };
            let cfg = oxim_conf::load_partial(&opts, &oxim_conf::StdFs).map_err(failure)?;
            Ok((cfg, path.display().to_string()))
        }
        None => {
            defines.push(("OXIM_HOME".into(), demo_home().display().to_string()));
            let opts = oxim_conf::LoadOptions {
                path: PathBuf::from("embedded"),
                defines,
                builtin: builtin_macros(),
            };
            let fs = oxim_conf::MemFs::new().with("embedded", DEFAULT_CONFIG);
            let cfg = oxim_conf::load_partial(&opts, &fs).map_err(failure)?;
            Ok((cfg, "embedded".into()))
        }
    }
}

/// Exim's `log_selector` names, for telling a name oxim lacks from one
/// nobody has.
const EXIM_LOG_SELECTORS: &str = "\
    8bitmime acl_warn_skipped address_rewrite all all_parents arguments \
    connection_id connection_reject delay_delivery deliver_time delivery_size dkim \
    dkim_verbose dmarc dmarc_verbose dnslist_defer dnssec etrn host_lookup_failed \
    ident_timeout incoming_interface incoming_port lost_incoming_connection \
    millisec msg_id msg_id_created outgoing_interface outgoing_port pid pipelining \
    protocol_detail proxy queue_run queue_time queue_time_exclusive \
    queue_time_overall receive_time received_recipients received_sender \
    rejected_header retry_defer return_path_on_delivery sender_on_delivery \
    sender_verify_fail size_reject skip_delivery smtp_confirmation smtp_connection \
    smtp_incomplete_transaction smtp_mailauth smtp_no_mail smtp_protocol_error \
    smtp_syntax_error spf spf_verbose subject tls_certificate_verified tls_cipher \
    tls_on_connect tls_peerdn tls_resumption tls_sni unknown_in_list";

/// The text for a `log_selector` oxim refuses: Exim's own for a name Exim
/// does not know either, "not supported by oxim" for one of Exim's.
fn selector_error_text(e: &oxim_log::SelectorError) -> String {
    match e {
        oxim_log::SelectorError::Unknown(name)
            if EXIM_LOG_SELECTORS.split_whitespace().any(|n| n == name) =>
        {
            format!("log_selector \"{name}\" is not supported by oxim")
        }
        oxim_log::SelectorError::Unknown(name) => format!("unknown log_selector setting: +{name}"),
        oxim_log::SelectorError::NotImplemented(item) => {
            format!("log_selector \"{item}\" is not supported by oxim")
        }
        other => other.to_string(),
    }
}

impl Ctx {
    /// Build the context; configuration errors come back as text in Exim's form.
    pub fn new(inv: Invocation) -> Result<Arc<Ctx>> {
        let harness = Harness::from_env();
        let (config, config_path) = load_config(&inv)?;
        let settings = MainSettings::from_config(&config);
        let primary_hostname = settings
            .primary_hostname
            .clone()
            .unwrap_or_else(system_hostname);
        let qualify_domain = settings
            .qualify_domain
            .clone()
            .unwrap_or_else(|| primary_hostname.clone());
        let qualify_recipient = settings
            .qualify_recipient
            .clone()
            .unwrap_or_else(|| qualify_domain.clone());
        let selector = LogSelector::parse(&settings.log_selector).map_err(|e| {
            let log_path = settings.log_file_path.clone().or_else(|| {
                (!settings.spool_directory.is_empty())
                    .then(|| format!("{}/log/%slog", settings.spool_directory))
            });
            ConfigFailure::unlocated(&selector_error_text(&e), log_path)
        })?;
        let spool_sync = settings.spool_sync.as_str();
        if !matches!(spool_sync, "journal" | "auto" | "fdatasync" | "syncfs") {
            return Err(anyhow!(
                "error in configuration file: {config_path}: spool_sync must be \"journal\", \"auto\", \"fdatasync\" or \"syncfs\", not \"{spool_sync}\""
            ));
        }
        if let Some(m) = &settings.metrics_listen {
            if m.parse::<std::net::SocketAddr>().is_err() {
                return Err(anyhow!(
                    "error in configuration file: {config_path}: metrics_listen must be an address and port such as 127.0.0.1:9125 or [::1]:9125, not \"{m}\""
                ));
            }
        }
        let spool_dir = settings.spool_directory.clone();
        let spool_dir = spool_dir.as_str();
        if spool_dir.is_empty() {
            return Err(anyhow!("spool_directory is not set"));
        }
        // Commands that only inspect the configuration create nothing.
        let inspect_only = matches!(
            inv.mode,
            crate::cli::Mode::Version
                | crate::cli::Mode::PrintConfig(_)
                | crate::cli::Mode::RetryTest(_)
                | crate::cli::Mode::RewriteTest(_)
                | crate::cli::Mode::Help
                | crate::cli::Mode::RebuildAliases
        );
        // The harness runs Exim's tests, which deliver to files as the
        // tester (root here): never_users is empty there unless set.
        let never_users_text = if harness.active && !settings.never_users_set {
            ""
        } else {
            settings.never_users.as_str()
        };
        let never_users = crate::privilege::uid_list(never_users_text)
            .map_err(|e| anyhow!("error in configuration file: {config_path}: never_users: {e}"))?;
        let log_path = match &settings.log_file_path {
            Some(p) => p.clone(),
            None => format!("{spool_dir}/log/%slog"),
        };
        let logger = Logger::new(
            &log_path,
            LoggerOptions {
                selector,
                timezone: settings.log_timezone,
                write_rejectlog: config.main.bool("write_rejectlog"),
                testing_stderr: matches!(inv.mode, crate::cli::Mode::HostCheck { .. }),
                echo_stderr: inv.verbose,
            },
        )
        .map_err(|e| anyhow!("{e}"))?;
        // Who called: trusted and admin as Exim decides (the exim user's
        // ids when there is one; a missing exim user only matters later,
        // to a process started as root).
        let mut caller = Caller::current();
        let exim = crate::privilege::exim_ids(&settings, &harness)
            .ok()
            .map(|i| (i.uid, i.gid));
        caller
            .classify(&settings, exim)
            .map_err(|e| anyhow!("error in configuration file: {config_path}: {e}"))?;
        let mut run_as = None;
        let mut keeps_root = false;
        if !inspect_only && crate::privilege::is_root() {
            let ids = crate::privilege::exim_ids(&settings, &harness)?;
            if ids.uid == 0 {
                keeps_root = true;
            } else {
                // Created as root, owned by the exim user who will use them.
                let main_log =
                    logger.current_path(oxim_log::LogKind::Main, std::time::SystemTime::now());
                for d in crate::privilege::owned_dirs(&Spool::at(spool_dir), &main_log) {
                    crate::privilege::create_dir_owned(&d, &ids)?;
                }
                run_as = Some(ids);
            }
        }
        // Expansion and filter testing (as the caller) create nothing.
        let testing = matches!(
            inv.mode,
            crate::cli::Mode::ExpandTest | crate::cli::Mode::FilterTest
        );
        let spool = if inspect_only || testing {
            Spool::at(spool_dir)
        } else {
            Spool::open(spool_dir)
                .with_context(|| format!("cannot open spool directory {spool_dir}"))?
        };
        let id_format = harness
            .id_format
            .unwrap_or(match settings.message_id_format.as_deref() {
                Some("long") => IdFormat::Long,
                _ => IdFormat::Classic,
            });
        let header_style = match harness.id_format {
            Some(IdFormat::Classic) => HeaderStyle::Pre495,
            _ => HeaderStyle::Current,
        };
        let timeout = Duration::from_secs(5);
        let dns = Dns::from_system(timeout, false, settings.disable_ipv6);
        if let Some(e) = Drivers::unsupported_authenticator(&config) {
            return Err(anyhow!(e));
        }
        let drivers = Drivers::from_config(&config);
        let rewrite = oxim_conf::rewrite::Rules::global(&config.rewrite);
        let config_panic = drivers.duplicate_public_name();
        let mut ctx = Ctx {
            version: harness.version(),
            inv,
            harness,
            config,
            config_path,
            drivers,
            settings,
            dns,
            primary_hostname,
            qualify_domain,
            qualify_recipient,
            selector,
            logger,
            spool,
            ids: IdGenerator::new(id_format),
            caller,
            header_style,
            never_users,
            run_as,
            keeps_root,
            writer: std::sync::OnceLock::new(),
            delivery_helper: std::sync::OnceLock::new(),
            tls_server: std::sync::OnceLock::new(),
            rewrite,
            base: Vars::new(),
        };
        if let Some(e) = config_panic {
            ctx.log(&LogRecord::Text {
                id: None,
                text: &format!("Exim configuration error:\n  {e}"),
                dest: oxim_log::Dest {
                    main: false,
                    reject: false,
                    panic: true,
                },
            });
            return Err(ConfigPanic(e).into());
        }
        ctx.base = ctx.build_base_vars();
        Ok(Arc::new(ctx))
    }

    /// Give up root for the exim user, for good (see [`Ctx::run_as`]), and
    /// check that the spool and log directories are still writable.
    ///
    /// With `keep_root` (a command that delivers), root stays the saved
    /// user id: it comes back only to switch to the user a local delivery
    /// runs as, or to start a delivery process.
    pub fn drop_privilege(&self, keep_root: bool) -> Result<()> {
        let Some(ids) = &self.run_as else {
            return Ok(());
        };
        if keep_root {
            crate::privilege::drop_keeping_root(ids)?;
        } else {
            crate::privilege::drop_to(ids)?;
        }
        crate::privilege::debug_ids(&self.inv, "giving up root for the exim user");
        crate::privilege::check_writable(self.spool.input_dir(), "spool directory", ids)?;
        let main_log = self
            .logger
            .current_path(oxim_log::LogKind::Main, std::time::SystemTime::now());
        if let Some(dir) = main_log.parent() {
            crate::privilege::check_writable(dir, "log directory", ids)?;
        }
        Ok(())
    }

    /// Variables every expansion sees (built once).
    pub fn base_vars(&self) -> Vars {
        self.base.clone()
    }

    fn build_base_vars(&self) -> Vars {
        let mut v = Vars::new();
        v.set("primary_hostname", self.primary_hostname.clone())
            .set("smtp_active_hostname", self.primary_hostname.clone())
            .set("qualify_domain", self.qualify_domain.clone())
            .set("qualify_recipient", self.qualify_recipient.clone())
            .set("version_number", self.version)
            .set("exim_version", self.version)
            .set("spool_directory", self.spool.root().display().to_string())
            .set("caller_uid", self.caller.uid.to_string())
            .set("caller_gid", self.caller.gid.to_string())
            .set("config_file", self.config_path.clone())
            .set(
                "exim_path",
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
        v
    }

    /// The group-commit writer: concurrent receptions share their fsyncs.
    /// None if its thread could not be started (callers then write directly).
    pub fn writer(&self) -> Option<&oxim_spool::SpoolWriter> {
        self.writer
            .get_or_init(|| {
                let sync = match self.settings.spool_sync.as_str() {
                    "syncfs" => oxim_spool::SyncMode::Syncfs,
                    "fdatasync" => oxim_spool::SyncMode::PerFile,
                    "auto" => oxim_spool::SyncMode::Auto,
                    // The commit log pays off in a process that receives
                    // continuously; one that takes a message or a session
                    // and exits syncs its own files.
                    _ if self.inv.mode == crate::cli::Mode::Daemon => oxim_spool::SyncMode::Journal,
                    _ => oxim_spool::SyncMode::PerFile,
                };
                let options = oxim_spool::WriterOptions {
                    sync,
                    ..oxim_spool::WriterOptions::default()
                };
                oxim_spool::SpoolWriter::new(self.spool.clone(), options).ok()
            })
            .as_ref()
    }

    /// The group-commit writer if it has been started (nothing is started
    /// here).
    pub fn writer_started(&self) -> Option<&oxim_spool::SpoolWriter> {
        self.writer.get()?.as_ref()
    }

    /// Counters of the group-commit writer, if it has been started.
    pub fn writer_stats(&self) -> Option<oxim_spool::WriterStats> {
        self.writer.get()?.as_ref().map(|w| w.stats())
    }

    /// Write a log record; a log that cannot be written is reported on
    /// stderr (as Exim does when it cannot open its log) and otherwise
    /// ignored, so it never takes down a connection.
    pub fn log(&self, rec: &LogRecord<'_>) {
        if let Err(e) = self.logger.write(rec) {
            eprintln!("{}: cannot write log: {e}", self.inv.prog);
        }
    }

    /// `no immediate delivery: queued by ACL` (an ACL's `control =
    /// queue_only`), in the main log under `+delay_delivery`.
    pub fn log_queued_by_acl(&self, id: &str) {
        self.log(&LogRecord::Text {
            id: Some(id),
            text: "no immediate delivery: queued by ACL",
            dest: oxim_log::Dest {
                main: self.selector.has(oxim_log::Selector::DelayDelivery),
                reject: false,
                panic: false,
            },
        });
    }

    /// Free text to the main log.
    pub fn log_text(&self, id: Option<&str>, text: &str) {
        self.log(&LogRecord::Text {
            id,
            text,
            dest: oxim_log::Dest {
                main: true,
                reject: false,
                panic: false,
            },
        });
    }

    /// A per-message record: main log now, and a msglog line kept with
    /// the message (written to `msglog/<id>` only if the message stays on
    /// the queue: a message delivered at once never needs its msglog).
    pub fn log_message(&self, m: &crate::loaded::Loaded, rec: &LogRecord<'_>) {
        self.log(rec);
        if let Some(line) = self.logger.msglog_line(rec, std::time::SystemTime::now()) {
            m.note_msglog(line);
        }
    }

    /// An integer main option that Exim expands (`message_size_limit`,
    /// `recipients_max`, ...): expanded, then read with K/M/G suffixes.
    /// Values that do not expand or parse give `default`.
    pub fn expand_int(&self, name: &str, vars: &Vars, default: u64) -> u64 {
        let main = &self.config.main;
        let raw = match main.get(name) {
            Some(oxim_conf::Value::Int(i)) => return u64::try_from(*i).unwrap_or(default),
            _ => main.str(name),
        };
        let Ok(v) = oxim_conf::expand(raw, vars) else {
            return default;
        };
        crate::settings::parse_size(&v).unwrap_or(default)
    }

    /// Whether this process tests addresses (`-bt`), where Exim shows the
    /// routers' `debug_print` on the standard error.
    pub fn address_testing(&self) -> bool {
        matches!(self.inv.mode, crate::cli::Mode::AddressTest(_))
    }

    /// Qualify a bare local part with `qualify_recipient`.
    pub fn qualify_recipient(&self, addr: &str) -> String {
        if addr.contains('@') || addr.is_empty() {
            addr.to_string()
        } else {
            format!("{addr}@{}", self.qualify_recipient)
        }
    }
}

/// Whether the caller may set the envelope sender (`-f`, MAIL FROM in
/// `-bs`/`-bS`): see [`Caller::classify`].
pub fn caller_is_trusted(ctx: &Ctx) -> bool {
    ctx.caller.trusted
}

/// Whether a local caller may give `sender` as the envelope sender (Exim's
/// `receive_check_set_sender`): a trusted caller may; others only when
/// `untrusted_set_sender` matches the address (qualified).
pub fn may_set_sender(ctx: &Ctx, sender: &str, vars: &Vars) -> bool {
    if caller_is_trusted(ctx) {
        return true;
    }
    let Some(list) = &ctx.settings.untrusted_set_sender else {
        return false;
    };
    let Ok(list) = oxim_conf::expand(list, vars) else {
        return false;
    };
    let sender = if sender.contains('@') {
        sender.to_string()
    } else {
        format!("{sender}@{}", ctx.qualify_domain)
    };
    oxim_conf::match_address(&list, &sender, &ctx.config, vars).unwrap_or(false)
}

/// Whether the command line's `-f` counts: for a trusted caller, for the
/// empty address (any caller may send as `<>`), or when
/// `untrusted_set_sender` allows it (Exim's rule).
pub fn command_line_sender_allowed(ctx: &Ctx) -> bool {
    match &ctx.inv.sender {
        None => false,
        Some(s) => {
            let s = s.trim_start_matches('<').trim_end_matches('>');
            s.is_empty() || may_set_sender(ctx, s, &ctx.base_vars())
        }
    }
}

/// The envelope sender of a command-line message (or of `-bt`): the `-f`
/// address when the caller may set it, else the caller's own.
pub fn envelope_sender(ctx: &Ctx) -> String {
    match &ctx.inv.sender {
        Some(s) if command_line_sender_allowed(ctx) => {
            let s = s.trim_start_matches('<').trim_end_matches('>');
            if s.is_empty() {
                String::new()
            } else {
                ctx.qualify_recipient(s)
            }
        }
        _ => format!("{}@{}", ctx.caller.login, ctx.qualify_domain),
    }
}

/// The pipe to the daemon's delivery helper (shared by reloaded contexts).
pub type DeliveryHelper = Arc<std::sync::Mutex<std::process::ChildStdin>>;

impl Ctx {
    /// Ask the daemon's delivery helper to deliver message `id` (or, with
    /// `Q`, to run the queue) in a process of its own. False when there is
    /// no helper (deliver here) or it is gone (logged).
    pub fn helper_request(&self, what: &str) -> bool {
        use std::io::Write as _;
        let Some(h) = self.delivery_helper.get() else {
            return false;
        };
        let ok = h
            .lock()
            .map(|mut w| writeln!(w, "{what}").and_then(|_| w.flush()).is_ok())
            .unwrap_or(false);
        if !ok {
            self.log_text(
                None,
                &format!("delivery helper gone: {what} delivered by the daemon"),
            );
        }
        ok
    }
}

/// Deliver `id` in a process of its own and wait for it to finish.
pub fn deliver_and_wait(ctx: &Ctx, id: &str) -> Result<()> {
    let mut cmd = delivery_command(ctx, id)?;
    crate::privilege::with_root(|| cmd.status()).context("cannot start delivery process")?;
    Ok(())
}

/// Spawn a detached process that delivers `id` (Exim's background delivery).
pub fn spawn_background_delivery(ctx: &Ctx, id: &str) -> Result<()> {
    let mut cmd = delivery_command(ctx, id)?;
    // A new session: the delivery outlives the submitting command.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    // As root when this process kept it (a delivery runs local
    // transports as their users).
    crate::privilege::with_root(|| cmd.spawn()).context("cannot start delivery process")?;
    Ok(())
}

/// The command that delivers `id` (`-Mc`) with this process's options.
fn delivery_command(ctx: &Ctx, id: &str) -> Result<Command> {
    let exe = std::env::current_exe().context("cannot find own executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg0(ctx.inv.prog.clone());
    if let Some(c) = &ctx.inv.config {
        cmd.arg("-C").arg(c);
    }
    for (k, v) in &ctx.inv.defines {
        cmd.arg(format!("-D{k}={v}"));
    }
    if ctx.inv.queue_smtp {
        cmd.arg("-odqs");
    }
    if ctx.inv.dont_deliver {
        cmd.arg("-N");
    }
    cmd.arg("-Mc").arg(id);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok(cmd)
}

/// The ` X=`/` CV=` facts of a TLS session as the log renders them.
pub fn tls_log(t: &oxim_tls::TlsSession) -> oxim_log::TlsLog<'_> {
    oxim_log::TlsLog {
        cipher: &t.cipher,
        certificate_verified: t.certificate_verified,
        ..oxim_log::TlsLog::default()
    }
}

//! Exim's command line, parsed into a typed [`Invocation`].
//!
//! Exim's flags do not follow getopt conventions (`-bd`, `-oX 1225`, `-DNAME=value`,
//! `-q30m`, `-odi`...), so this is a small hand-written parser. Every flag it
//! accepts is listed in [`HELP`]; anything else is an error naming the flag.

use std::path::PathBuf;
use std::time::Duration;

/// What the invocation asks oxim to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `exim [options] rcpt...`: read a message on stdin and accept it.
    Submit,
    /// `-bd` / `-bdf`: run the SMTP daemon (optionally with queue runs).
    Daemon,
    /// `-bV`: version and build information.
    Version,
    /// `-bP [names]`: print configuration options.
    PrintConfig(Vec<String>),
    /// `-bs`: an SMTP session on stdin/stdout.
    SmtpStdin,
    /// `-bh <ip>` / `-bhc <ip>`: an SMTP session on stdin/stdout as if from
    /// that host, checked against the ACLs with Exim's trace on stderr;
    /// nothing is stored or delivered.
    HostCheck {
        ip: std::net::IpAddr,
        callout: bool,
    },
    /// `-bS`: batched SMTP on stdin.
    BatchSmtp,
    /// `-bt addr...`: address testing.
    AddressTest(Vec<String>),
    /// `-bv addr...`: address verification (addresses from stdin when none).
    VerifyAddresses(Vec<String>),
    /// `-bp`, `-bpa`, `-bpu`: list the queue (`-bpc`: count it).
    ListQueue(oxim_spool::BpMode),
    CountQueue,
    /// `-q[f]` without an interval: one queue run.
    QueueRun,
    /// `-M id...`: deliver the named messages (`-Mc` is the same without forcing).
    DeliverIds(Vec<String>),
    /// `-Mrm id...`: remove messages from the queue.
    RemoveIds(Vec<String>),
    /// `-Mvh`, `-Mvb`, `-Mvl`, `-Mvc`, `-Mf`, `-Mt` on the named messages.
    Spool(SpoolAction, Vec<String>),
    /// `-z text`: write a line to the main log.
    LogWrite(String),
    /// `--help`.
    Help,
    /// `-oxim-delivery-helper`: the daemon's root helper that starts
    /// delivery processes (internal; root only).
    DeliveryHelper,
    /// `--demo`: start on the embedded default configuration.
    Demo,
    /// `-bi` (also `newaliases`): run `bi_command` as the caller, or do
    /// nothing when it is not set.
    RebuildAliases,
    /// `-be` / `-bem file` / `-be -Mset id`: expansion testing
    /// (see `crate::expand_test`); the strings come from the arguments
    /// left in `recipients`, or from stdin.
    ExpandTest,
    /// `-bf file` / `-bF file` (both may be given): filter testing (see
    /// `crate::filter_test`).
    FilterTest,
    /// `-brt <address-or-domain> [<domain>] [<error>]`: which retry rule
    /// applies (see `crate::retry_test`).
    RetryTest(Vec<String>),
    /// `-brw <address>`: how the rewrite rules change an address in each
    /// place it may appear (see `crate::rewrite::test`).
    RewriteTest(Vec<String>),
}

/// `-bf`, `-bF`, `-bfd`, `-bfl`, `-bfp`, `-bfs`: what a filter test runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterTestArgs {
    /// `-bF`: a system filter.
    pub system: Option<PathBuf>,
    /// `-bf`: a user filter (or .forward file).
    pub user: Option<PathBuf>,
    pub domain: Option<String>,
    pub local_part: Option<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
}

/// What a spool-administration `-M` option does (see `crate::spool_admin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolAction {
    /// `-Mvh`: show the `-H` file.
    ShowHeader,
    /// `-Mvb`: show the `-D` file.
    ShowBody,
    /// `-Mvl`: show the message log.
    ShowLog,
    /// `-Mvc`: show the message as a transport would write it.
    ShowCopy,
    /// `-Mf`: freeze.
    Freeze,
    /// `-Mt`: thaw.
    Thaw,
}

/// `-oMa`, `-oMs`, ... : the origin a trusted caller asserts for a local
/// message or an expansion test.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// `-oMa address[.port]`.
    pub host_address: Option<String>,
    /// `-oMaa`: the authenticator name.
    pub authenticated: Option<String>,
    /// `-oMai`: the authenticated id.
    pub authenticated_id: Option<String>,
    /// `-oMas`: the authenticated sender.
    pub authenticated_sender: Option<String>,
    /// `-oMi address[.port]`: the interface.
    pub interface: Option<String>,
    /// `-oMs`: the sending host's name.
    pub host_name: Option<String>,
    /// `-oMt`: the sender ident (`U=` in the log).
    pub ident: Option<String>,
}

impl Origin {
    /// `-oMa`: the sending host's address and port (0 when not given).
    pub fn host_socket(&self) -> Option<std::net::SocketAddr> {
        self.host_address.as_deref().and_then(socket_of)
    }

    /// `-oMi`: the interface address and port.
    pub fn interface_socket(&self) -> Option<std::net::SocketAddr> {
        self.interface.as_deref().and_then(socket_of)
    }
}

/// Split `address.port` (Exim's `-oMa`/`-oMi` form) into its parts.
pub fn address_port(s: &str) -> (String, Option<String>) {
    let parsable = |a: &str| a.parse::<std::net::IpAddr>().is_ok();
    if parsable(s) {
        return (s.to_string(), None);
    }
    if let Some((a, p)) = s.rsplit_once('.') {
        if parsable(a) && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
            return (a.to_string(), Some(p.to_string()));
        }
    }
    (s.to_string(), None)
}

/// `address[.port]` as a socket address, None when it is not one.
fn socket_of(s: &str) -> Option<std::net::SocketAddr> {
    let (a, p) = address_port(s);
    let ip = a.parse().ok()?;
    let port = match p {
        Some(p) => p.parse().ok()?,
        None => 0,
    };
    Some(std::net::SocketAddr::new(ip, port))
}

/// How a newly accepted message gets delivered (`-od*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryMode {
    /// `-odb` (default): a background process delivers after acceptance.
    #[default]
    Background,
    /// `-odi` / `-odf`: deliver before the submitting process exits.
    Interactive,
    /// `-odq`: leave it on the queue.
    Queue,
}

/// `-oe*`: where an error in a non-SMTP message goes (Exim's
/// `error_handling`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorMode {
    /// `-oem`, `-oew` (the default): mailed to the sender; exit 1.
    #[default]
    Mail,
    /// `-oee`: mailed to the sender; exit 0 when that worked.
    MailExitZero,
    /// `-oep`, `-oeq`: written to the standard error stream; exit 1.
    Stderr,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Name the program was called by (`exim` or `oxim`), used in messages.
    pub prog: String,
    pub mode: Mode,
    /// `-C file`.
    pub config: Option<PathBuf>,
    /// `-DNAME=value` in command-line order.
    pub defines: Vec<(String, String)>,
    pub delivery: DeliveryMode,
    /// An `-od*` option was given: it overrides `queue_only` in the
    /// configuration (as in Exim, `-odi` delivers even with `queue_only`).
    pub delivery_given: bool,
    /// `-oX`: override of `daemon_smtp_ports`/`local_interfaces`.
    pub listen_override: Option<String>,
    /// `-oP`: pid file for the daemon.
    pub pid_file: Option<PathBuf>,
    /// `-bdf`: stay in the foreground.
    pub foreground: bool,
    /// `-q<time>` with the daemon.
    pub queue_interval: Option<Duration>,
    /// `-qf`, `-M`: deliver even if retry times have not come.
    pub force: bool,
    /// `-qff`, `-M`: deliver frozen messages too.
    pub thaw_frozen: bool,
    /// `-f addr`.
    pub sender: Option<String>,
    /// `-F name`.
    pub full_name: Option<String>,
    /// `-oMm id`: the message this one refers to (`R=` in the log,
    /// `$message_reference`).
    pub message_reference: Option<String>,
    /// `-t`: take recipients from the headers.
    pub extract_recipients: bool,
    /// False after `-i`/`-oi`: a lone dot does not end the message.
    pub dot_ends_message: bool,
    /// `-oe*`: how an error found while a non-SMTP message is read is
    /// reported.
    pub errors: ErrorMode,
    /// `-N`: do not deliver.
    pub dont_deliver: bool,
    /// `-odqs`: route and deliver locally at once, but leave SMTP
    /// deliveries for the next queue run (Exim's `queue_smtp`).
    pub queue_smtp: bool,
    /// `-qq...`: a two-stage queue run (route everything first, then
    /// deliver, so messages for one host share a connection).
    pub queue_2stage: bool,
    /// `-R string` / `-Rf` / `-Rff`: a queue run limited to messages with
    /// a recipient containing the string (forced).
    pub select_recipient: Option<String>,
    /// `-v`: verbose (for `-bv`, the full routing display).
    pub verbose: bool,
    /// `-tls-on-connect`.
    pub tls_on_connect: bool,
    /// `-oMr`: received protocol override.
    pub received_protocol: Option<String>,
    /// `-d` with its selector.
    pub debug: Option<String>,
    /// `-oMa`, `-oMt`, ...
    pub origin: Origin,
    /// `-bem file`: the message for an expansion test.
    pub expand_message: Option<PathBuf>,
    /// `-Mset id`: the spooled message for an expansion test.
    pub load_message: Option<String>,
    /// Filter testing's files and address.
    pub filter_test: FilterTestArgs,
    pub recipients: Vec<String>,
}

/// Usage text for `--help`.
pub const HELP: &str = "\
Usage: oxim [options] [recipient...]     (also callable as `exim`)

oxim is an Exim-compatible mail transfer agent. Options follow Exim's:

Configuration
  -C <file>          use this configuration file
  -D<NAME>=<value>   define or override a configuration macro
  -bV                print version, features and check the configuration
  -bP [option...]    print configuration options (also: routers, transports,
                     macros, tfo_stats)
Receiving
  <recipient...>     read a message on stdin (ends at EOF or a line with '.')
  -i, -oi            a line with a single dot does not end the message
  -t                 take recipients from To:/Cc:/Bcc:
  -f <address>       envelope sender (trusted callers)
  -F <name>          sender's full name
  -bs                an SMTP session on stdin/stdout
  -bS                batched SMTP on stdin
  -odb|-odi|-odf|-odq  deliver in background / now / now / only queue
  -odqs              deliver locally now, leave SMTP deliveries queued
  -N                 do not deliver
Daemon and queue
  -bd, -bdf          run the SMTP daemon (in the background / foreground)
  -oX <ports>        listen on these ports or <addr>.<port> items
  -oP <file>         write the daemon's pid here
  -q[q][f[f]][<time>]  queue run (repeatedly in the daemon when <time> is given;
                     -qq: two stages, routing everything first)
  -R[f[f]] <string>  forced queue run of messages with a recipient containing <string>
  -M <id>...         deliver these messages now; -Mrm <id>... removes them
  -bp                list the queue
  -Mvh|-Mvb|-Mvl <id>  show a message's header file, data file or log
  -Mvc <id>          show the message as it would be delivered
  -Mf|-Mt <id>...    freeze or thaw messages
  -bt <address>...   test how addresses route
  -brt <address> [<domain>] [<error>]  show the retry rule that applies
  -brw <address>                   show how the rewrite rules change an address
  -bv [address...]   verify addresses as recipients (stdin when none;
                     -v: show the routing as -bt does)
Testing
  -be [string...]    expand the strings (or lines read from stdin)
  -bf <file>         test a user filter (or .forward file) on a message read
                     from stdin; -bF <file>: a system filter (both may be
                     given); -bfd/-bfl/-bfp/-bfs: domain, local part,
                     prefix, suffix of the address
  -bem <file>        the same with a message read from <file> (-t: its
                     recipients from its headers); -Mset <id>: a queued one
  -oMa/-oMaa/-oMai/-oMas/-oMi/-oMs/-oMt <value>
                     origin a trusted caller asserts (-bs, -bh, -be, submission)
Other
  -z <text>          write a line to the main log
  --demo             start on the embedded default configuration (see README)
  --help             this text
";

/// A command-line error, printed as `<prog>: <message>` with exit status 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

/// A value that ends up in a header line or the spool must not hold a line
/// break (21Nails CVE-2020-28015: newline injection into the spool file and
/// the Received: header). Exim refuses such a `-f`; oxim refuses the `-oM*`
/// values too (Exim 4.96 writes an `-oMr` line break into its `-H` file).
fn one_line(what: &str, v: String) -> Result<String, CliError> {
    if v.contains(['\n', '\r']) {
        return Err(CliError(format!(
            "bad {what} \"{v}\": line break not allowed"
        )));
    }
    Ok(v)
}

/// Exim times (`30m`, `1h30m`, `2d`; a bare number is seconds).
fn parse_time(s: &str) -> Option<Duration> {
    oxim_conf::options::parse_time(s).map(Duration::from_secs)
}

/// The options a program name stands for, as Exim reads its own name:
/// `mailq` lists the queue (`-bp`), `runq` runs it (`-q`), `newaliases`
/// is `-bi`, `rsmtp` reads batched SMTP (`-bS`) and `rmail` takes a
/// message whose lone dots do not end it (`-i`). Other names (`exim`,
/// `exim4`, `sendmail`, `oxim`) add nothing.
pub fn options_for_name(prog: &str) -> &'static [&'static str] {
    match prog {
        "mailq" => &["-bp"],
        "runq" => &["-q"],
        "newaliases" => &["-bi"],
        "rsmtp" => &["-bS"],
        "rmail" => &["-i"],
        _ => &[],
    }
}

impl Invocation {
    /// Whether new messages stay on the queue: `-odq`, or the configuration's
    /// `queue_only` unless an `-od*` option said otherwise (which it may
    /// only with `queue_only_override`, Exim's default).
    pub fn queue_only(&self, config_queue_only: bool, overridable: bool) -> bool {
        match self.delivery {
            DeliveryMode::Queue => true,
            _ => config_queue_only && !(self.delivery_given && overridable),
        }
    }

    /// Parse `args` (without argv\[0\]); `prog` is the name used in messages.
    pub fn parse(prog: &str, args: &[String]) -> Result<Self, CliError> {
        let mut inv = Invocation {
            prog: prog.to_string(),
            mode: Mode::Submit,
            config: None,
            defines: Vec::new(),
            delivery: DeliveryMode::default(),
            delivery_given: false,
            listen_override: None,
            pid_file: None,
            foreground: false,
            queue_interval: None,
            force: false,
            thaw_frozen: false,
            sender: None,
            full_name: None,
            message_reference: None,
            extract_recipients: false,
            dot_ends_message: true,
            errors: ErrorMode::default(),
            dont_deliver: false,
            queue_smtp: false,
            queue_2stage: false,
            select_recipient: None,
            verbose: false,
            tls_on_connect: false,
            received_protocol: None,
            debug: None,
            origin: Origin::default(),
            expand_message: None,
            load_message: None,
            filter_test: FilterTestArgs::default(),
            recipients: Vec::new(),
        };
        let mut daemon = false;
        let mut queue_run = false;
        let mut i = 0;
        let value = |i: &mut usize, flag: &str| -> Result<String, CliError> {
            *i += 1;
            args.get(*i)
                .cloned()
                .ok_or_else(|| CliError(format!("string expected after {flag}")))
        };
        while i < args.len() {
            let arg = args[i].as_str();
            if !arg.starts_with('-') || arg == "-" {
                inv.recipients.extend(args[i..].iter().cloned());
                break;
            }
            match arg {
                "--" => {
                    inv.recipients.extend(args[i + 1..].iter().cloned());
                    break;
                }
                "--help" | "-h" => inv.mode = Mode::Help,
                "--demo" => inv.mode = Mode::Demo,
                "-oxim-delivery-helper" => inv.mode = Mode::DeliveryHelper,
                "--version" | "-bV" => inv.mode = Mode::Version,
                "-C" => inv.config = Some(PathBuf::from(value(&mut i, arg)?)),
                "-bd" => daemon = true,
                "-bdf" => {
                    daemon = true;
                    inv.foreground = true;
                }
                "-bs" => inv.mode = Mode::SmtpStdin,
                "-bh" | "-bhc" => {
                    let v = value(&mut i, arg)?;
                    // address[.port], as -oMa takes it.
                    let ip = socket_of(&v).map(|s| s.ip()).ok_or_else(|| {
                        CliError(format!("\"{v}\" is not a valid IP address for {arg}"))
                    })?;
                    inv.mode = Mode::HostCheck {
                        ip,
                        callout: arg == "-bhc",
                    };
                    // A later -oMa replaces this address; an earlier one
                    // is replaced by it.
                    inv.origin.host_address = Some(v.to_string());
                }
                "-bS" => inv.mode = Mode::BatchSmtp,
                "-bi" => inv.mode = Mode::RebuildAliases,
                "-bm" => inv.mode = Mode::Submit,
                "-bp" | "-bpr" => inv.mode = Mode::ListQueue(oxim_spool::BpMode::All),
                "-bpa" | "-bpra" => inv.mode = Mode::ListQueue(oxim_spool::BpMode::WithGenerated),
                "-bpu" | "-bpru" => inv.mode = Mode::ListQueue(oxim_spool::BpMode::Undelivered),
                "-bpc" => inv.mode = Mode::CountQueue,
                "-bP" => {
                    inv.mode = Mode::PrintConfig(Vec::new());
                }
                "-bt" => {
                    inv.mode = Mode::AddressTest(Vec::new());
                }
                "-brt" => {
                    inv.mode = Mode::RetryTest(Vec::new());
                }
                "-brw" => {
                    inv.mode = Mode::RewriteTest(Vec::new());
                }
                "-bv" | "-bvs" => {
                    inv.mode = Mode::VerifyAddresses(Vec::new());
                }
                "-M" | "-Mc" => {
                    inv.force = arg == "-M";
                    inv.thaw_frozen = arg == "-M";
                    inv.mode = Mode::DeliverIds(Vec::new());
                }
                "-Mrm" => {
                    inv.mode = Mode::RemoveIds(Vec::new());
                }
                "-Mvh" | "-Mvb" | "-Mvl" | "-Mvc" | "-Mf" | "-Mt" => {
                    let action = match arg {
                        "-Mvh" => SpoolAction::ShowHeader,
                        "-Mvb" => SpoolAction::ShowBody,
                        "-Mvl" => SpoolAction::ShowLog,
                        "-Mvc" => SpoolAction::ShowCopy,
                        "-Mf" => SpoolAction::Freeze,
                        _ => SpoolAction::Thaw,
                    };
                    inv.mode = Mode::Spool(action, Vec::new());
                }
                "-z" => inv.mode = Mode::LogWrite(value(&mut i, arg)?),
                "-odb" => {
                    inv.delivery = DeliveryMode::Background;
                    inv.delivery_given = true;
                }
                "-odi" | "-odf" => {
                    inv.delivery = DeliveryMode::Interactive;
                    inv.delivery_given = true;
                }
                "-odq" => {
                    inv.delivery = DeliveryMode::Queue;
                    inv.delivery_given = true;
                }
                // Exim's -odqs changes nothing else: the delivery mode
                // stays what it was (local deliveries still happen).
                "-odqs" => inv.queue_smtp = true,
                "-R" | "-Rf" | "-Rff" => {
                    // A selected run always forces its deliveries; -Rf
                    // says so in the log (-qf).
                    queue_run = true;
                    inv.force = arg != "-R";
                    inv.thaw_frozen = arg == "-Rff";
                    inv.select_recipient = Some(value(&mut i, arg)?);
                }
                "-oX" => inv.listen_override = Some(value(&mut i, arg)?),
                "-oP" => inv.pid_file = Some(PathBuf::from(value(&mut i, arg)?)),
                "-oMr" => {
                    inv.received_protocol = Some(one_line("-oMr value", value(&mut i, arg)?)?)
                }
                "-oMa" => {
                    inv.origin.host_address = Some(one_line("-oMa value", value(&mut i, arg)?)?)
                }
                "-oMaa" => {
                    inv.origin.authenticated = Some(one_line("-oMaa value", value(&mut i, arg)?)?)
                }
                "-oMai" => {
                    inv.origin.authenticated_id =
                        Some(one_line("-oMai value", value(&mut i, arg)?)?)
                }
                "-oMas" => {
                    inv.origin.authenticated_sender =
                        Some(one_line("-oMas value", value(&mut i, arg)?)?)
                }
                "-oMi" => inv.origin.interface = Some(one_line("-oMi value", value(&mut i, arg)?)?),
                "-oMs" => inv.origin.host_name = Some(one_line("-oMs value", value(&mut i, arg)?)?),
                "-oMt" => inv.origin.ident = Some(one_line("-oMt value", value(&mut i, arg)?)?),
                "-be" => inv.mode = Mode::ExpandTest,
                "-bem" => {
                    inv.mode = Mode::ExpandTest;
                    inv.expand_message = Some(PathBuf::from(value(&mut i, arg)?));
                }
                "-Mset" => inv.load_message = Some(value(&mut i, arg)?),
                "-bf" => {
                    inv.mode = Mode::FilterTest;
                    inv.filter_test.user = Some(PathBuf::from(value(&mut i, arg)?));
                }
                "-bF" => {
                    inv.mode = Mode::FilterTest;
                    inv.filter_test.system = Some(PathBuf::from(value(&mut i, arg)?));
                }
                "-bfd" => inv.filter_test.domain = Some(value(&mut i, arg)?),
                "-bfl" => inv.filter_test.local_part = Some(value(&mut i, arg)?),
                "-bfp" => inv.filter_test.prefix = Some(value(&mut i, arg)?),
                "-bfs" => inv.filter_test.suffix = Some(value(&mut i, arg)?),
                "-i" | "-oi" | "-oitrue" => inv.dot_ends_message = false,
                "-v" => inv.verbose = true,
                "-oem" | "-oew" | "-em" => inv.errors = ErrorMode::Mail,
                "-oee" | "-ee" => inv.errors = ErrorMode::MailExitZero,
                "-oep" | "-oeq" | "-ep" | "-eq" => inv.errors = ErrorMode::Stderr,
                "-oo" | "-om" => {}
                "-t" => inv.extract_recipients = true,
                // -N implies -v, as in Exim.
                "-N" => {
                    inv.dont_deliver = true;
                    inv.verbose = true;
                }
                "-f" | "-r" => inv.sender = Some(one_line("-f address", value(&mut i, arg)?)?),
                "-F" => inv.full_name = Some(value(&mut i, arg)?),
                "-oMm" => {
                    let v = value(&mut i, arg)?;
                    if v.parse::<oxim_spool::MessageId>().is_err() {
                        return Err(CliError("-oMm must be a valid message ID".into()));
                    }
                    inv.message_reference = Some(v.to_string());
                }
                "-tls-on-connect" => inv.tls_on_connect = true,
                _ => {
                    if let Some(def) = arg.strip_prefix("-D") {
                        let (name, val) = match def.split_once('=') {
                            Some((n, v)) => (n.trim(), v),
                            None => (def.trim(), ""),
                        };
                        if name.is_empty()
                            || !name.starts_with(|c: char| c.is_ascii_uppercase())
                            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        {
                            return Err(CliError(format!("bad -D option: {arg}")));
                        }
                        inv.defines.push((name.to_string(), val.to_string()));
                    } else if let Some(rest) = arg.strip_prefix("-d") {
                        inv.debug = Some(rest.to_string());
                    } else if let Some(rest) = arg.strip_prefix("-f") {
                        inv.sender = Some(one_line("-f address", rest.to_string())?);
                    } else if let Some(rest) = arg.strip_prefix("-q") {
                        queue_run = true;
                        let mut rest = rest;
                        if let Some(r) = rest.strip_prefix('q') {
                            inv.queue_2stage = true;
                            rest = r;
                        }
                        if let Some(r) = rest.strip_prefix('f') {
                            inv.force = true;
                            rest = r;
                            if let Some(r) = rest.strip_prefix('f') {
                                inv.thaw_frozen = true;
                                rest = r;
                            }
                        }
                        if !rest.is_empty() {
                            inv.queue_interval = Some(
                                parse_time(rest)
                                    .ok_or_else(|| CliError(format!("bad time value in {arg}")))?,
                            );
                        }
                    } else if let Some(rest) = arg.strip_prefix("-oX") {
                        inv.listen_override = Some(rest.to_string());
                    } else {
                        return Err(CliError(format!(
                            "unknown or unsupported option {arg} (see --help)"
                        )));
                    }
                }
            }
            i += 1;
        }
        // As in Exim, these are flags like any other: the options after
        // them are options too, and the arguments left are theirs.
        match &mut inv.mode {
            Mode::AddressTest(v)
            | Mode::VerifyAddresses(v)
            | Mode::PrintConfig(v)
            | Mode::RetryTest(v)
            | Mode::RewriteTest(v)
            | Mode::DeliverIds(v)
            | Mode::RemoveIds(v)
            | Mode::Spool(_, v) => *v = std::mem::take(&mut inv.recipients),
            _ => {}
        }
        if inv.load_message.is_some() && inv.mode != Mode::ExpandTest {
            return Err(CliError("-Mset is only used with -be".into()));
        }
        // -bh and -oMa both set the sending host: the last one given wins.
        if let Mode::HostCheck { ip, .. } = &mut inv.mode {
            if let Some(a) = &inv.origin.host_address {
                *ip = inv.origin.host_socket().map(|s| s.ip()).ok_or_else(|| {
                    CliError(format!("\"{a}\" is not a valid IP address for -oMa"))
                })?;
            }
        }
        for (flag, value) in [
            ("-oMa", &inv.origin.host_address),
            ("-oMi", &inv.origin.interface),
        ] {
            if let Some(v) = value {
                if inv.mode != Mode::ExpandTest && socket_of(v).is_none() {
                    return Err(CliError(format!("bad {flag} address \"{v}\"")));
                }
            }
        }
        if daemon {
            inv.mode = Mode::Daemon;
        } else if queue_run && inv.mode == Mode::Submit && inv.recipients.is_empty() {
            inv.mode = Mode::QueueRun;
        }
        Ok(inv)
    }
}

#[cfg(test)]
mod tests;

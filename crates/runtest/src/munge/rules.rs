//! The patterns of Exim's runtest munging, compiled once.

use std::sync::LazyLock;

use regex::Regex;

pub(super) struct Patterns {
    pub(super) short_id: Regex,
    pub(super) long_id: Regex,
    pub(super) listening_paren: Regex,
    pub(super) rfc822_date: Regex,
    pub(super) log_stamp: Regex,
    pub(super) duration_int: Regex,
    pub(super) duration_frac: Regex,
    pub(super) tls_version: Regex,
    pub(super) cipher_openssl: Regex,
    pub(super) cipher_tls13: Regex,
    pub(super) cipher_tls13_bare: Regex,
    pub(super) cipher_gnutls: Regex,
    pub(super) pid_head: Regex,
    pub(super) pid_old: Regex,
    pub(super) op_timed_out: Regex,
    pub(super) errno_paren: Regex,
    pub(super) errno_eq: Regex,
    pub(super) size_first: Regex,
    pub(super) bdat_chunk: Regex,
    pub(super) dkim_mail_times: Regex,
    pub(super) received_tls_with: Regex,
    pub(super) received_tls: Regex,
    pub(super) dkim_log_tx: Regex,
    pub(super) dkim_log_t: Regex,
    pub(super) size_esmtp: Regex,
    pub(super) stdout_port: Regex,
    pub(super) log_listen_port: Regex,
    pub(super) defer_errno: Regex,
    pub(super) stderr_noise: Regex,
    pub(super) test_net_v4: Regex,
    pub(super) gethostbyname: Regex,
    pub(super) separator_date: Regex,
    pub(super) dump_times: Regex,
    pub(super) dump_port: Regex,
    pub(super) exinext_port: Regex,
    pub(super) dump_errno_22: Regex,
    pub(super) lock_name: Regex,
    pub(super) port_colon: Regex,
    pub(super) port_eq: Regex,
    pub(super) port_request: Regex,
    pub(super) port_skip: Regex,
    pub(super) ip_port: Regex,
    pub(super) bracket_port: Regex,
    pub(super) log_delivery: Regex,
    pub(super) port_lt: Regex,
    pub(super) plp_port: Regex,
    pub(super) incoming_port: Regex,
    pub(super) host_address: Regex,
    /// Further rules of runtest, applied in order after the dates.
    pub(super) misc: Vec<(Regex, &'static str, bool)>,
    /// runtest's sizes, counts, maildir names, fd numbers... (after the
    /// addresses and errno values).
    pub(super) late: Vec<(Regex, &'static str, bool)>,
    /// runtest's rules for stdout only.
    pub(super) stdout_only: Vec<(Regex, &'static str, bool)>,
    /// runtest's rules for stderr only.
    pub(super) stderr_only: Vec<(Regex, &'static str, bool)>,
}

fn re(s: &str) -> Regex {
    Regex::new(s).expect("static munging regex")
}

pub(super) static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| Patterns {
    // exim_dumpdb's retry times: "25-Aug-2000 12:11:37  25-Aug-2000 12:11:37  26-Aug-2000 12:11:37 *"
    dump_times: re(
        r"^(\d\d-\w\w\w-\d{4}\s\d\d:\d\d:\d\d)\s+(\d\d-\w\w\w-\d{4}\s\d\d:\d\d:\d\d)\s+(\d\d-\w\w\w-\d{4}\s\d\d:\d\d:\d\d)(\s+\*)?\s*$",
    ),
    // The port of a retry key (`T:host[:ip]:port`, maybe `:msgid` after it).
    dump_port: re(r"(T:\S*?:)(\d+)([ :])"),
    exinext_port: re(r"(Transport: (?:[a-z0-9.]+|\[[^\]]+\]) (?:[0-9.]+|\[[^\]]+\]):)(\d+)( )"),
    dump_errno_22: re(r"(T:\S+) -22 \S+ "),
    // runtest's "Port numbers".
    port_colon: re(r"^(Port: )(\d+)"),
    port_eq: re(r"(\(port=)(\d+)"),
    port_request: re(r"^(Connection request from \S+ port )(\d+)$"),
    port_skip: re(
        r"listening for SMTP on|Connecting to|[=*-]>|==|\*\*|Connection refused|in response to|T(?:ransport)?:",
    ),
    ip_port: re(
        r"(?i)(\[(?:\d{1,3}(?:\.\d{1,3}){3}|(?:[[:xdigit:]]{1,4}:){0,7}[[:xdigit:]]{1,4}(?:::(?:[[:xdigit:]]{1,4}:){0,5}[[:xdigit:]]{1,4})?)\]:)(\d+)",
    ),
    // Log files: `[addr]:port` (group 1: what precedes the port).
    bracket_port: re(r"( I=\[[^\]]+\]:|\]:)(\d+)"),
    log_delivery: re(r"(?:=>|->|==) "),
    port_lt: re(r"(port <)1224\b"),
    plp_port: re(r"(plp )1225\b"),
    incoming_port: re(r"(I=\[[^\]]*\]:)(\d+)"),
    // -Mvh: the port of the sending host (after the numbering above).
    host_address: re(r"^(--?host_address) (.*[:.])\d+$"),
    // Lock file names (host name, time and pid in them vary).
    lock_name: re(r"\.lock(?:\.[-\w]+)+(?:\.[\da-f]+){2}"),
    // (pattern, replacement, every match or the first only)
    misc: vec![
        // Early rules of runtest (before the dates).
        (
            re(r"prvs=([^/]+)/[\da-f]{10}@"),
            "prvs=$1/xxxxxxxxxx@",
            true,
        ),
        (
            re(r"prvs=[\da-f]{10}=([^@]+)@"),
            "prvs=xxxxxxxxxx=$1@",
            true,
        ),
        (
            re(r"is not a base (?:36|62) number"),
            "is not a base 36/62 number",
            false,
        ),
        (
            re(r"forced fail after \d seconds"),
            "forced fail after d seconds",
            false,
        ),
        (
            re(r"Failed to open \S+(?: \([^)]+\))? file"),
            "Failed to open hintsdb file",
            false,
        ),
        (
            re(r"myhost\.test\.ex-\d+-testing"),
            "myhost.test.ex-dddddddd-testing",
            false,
        ),
        (
            re(r"the\.local\.host\.name-\d+-testing"),
            "the.local.host.name-dddddddd-testing",
            false,
        ),
        (
            re(r"^writing data block fd=\d+"),
            "writing data block fd=dddd",
            false,
        ),
        (
            re(r"(running as transport filter:) fd_write=\d+ fd_read=\d+"),
            "$1 fd_write=dddd fd_read=dddd",
            false,
        ),
        // -Mvh: arrival time; -H: the length fields of header lines.
        (re(r"^\d{9,10}\s0$"), "ddddddddd 0", false),
        (re(r"^\d\d\d([PFS*])"), "ddd$1", false),
        // MIME boundaries of DSN messages.
        (
            re(r"\d{8,10}-eximdsn-\d+"),
            "NNNNNNNNNN-eximdsn-MMMMMMMMMM",
            false,
        ),
        // Debug log line dates, retry times, -bV build date, eximstats.
        (
            re(r#"^Logwrite\s"\d{4}-\d\d-\d\d\s\d\d:\d\d:\d\d"#),
            r#"Logwrite "1999-03-02 09:44:33"#,
            false,
        ),
        (re(r"time to retry = \S+"), "time to retry = tttt", false),
        (
            re(r"retry record exists: age=\S+"),
            "retry record exists: age=ttt",
            false,
        ),
        (
            re(r"failing_interval=\S+ message_age=\S+"),
            "failing_interval=ttt message_age=ttt",
            false,
        ),
        (
            re(r"\d\d-[A-Z][a-z]{2}-\d{4}\s\d\d:\d\d:\d\d"),
            "07-Mar-2000 12:21:52",
            true,
        ),
        (
            re(
                r"Exim\sstatistics\sfrom\s\d{4}-\d\d-\d\d\s\d\d:\d\d:\d\d\sto\s\d{4}-\d\d-\d\d\s\d\d:\d\d:\d\d",
            ),
            "Exim statistics from <time> to <time>",
            false,
        ),
        (
            re(r"(could not connect to .*: Connection) reset by peer$"),
            "$1 refused",
            false,
        ),
    ],
    late: vec![
        (re(r"old size = \d+\b"), "old size = sssss", false),
        (re(r"message size = \d+\b"), "message size = sss", false),
        (re(r"this message = \d+\b"), "this message = sss", false),
        (re(r"Size of headers = \d+"), "Size of headers = sss", false),
        (re(r"sum=[1-9]\d*"), "sum=dddd", false),
        (re(r"(sum=dddd |sum=0 )count=\d+\b"), "${1}count=dd", false),
        (re(r",S is \d+\b"), ",S is ddddd", false),
        (re(r"\+0100,\d+;"), "+0100,ddd;", false),
        (re(r"\(\d+ bytes written\)"), "(ddd bytes written)", false),
        (re(r"added '\d+ 1'"), "added 'ddd 1'", false),
        (re(r"Received\s+\d+"), "Received               nnn", false),
        (re(r"Delivered\s+\d+"), "Delivered              nnn", false),
        (
            re(r"space=\d+ inodes=[+-]?\d+"),
            "space=xxxxx inodes=xxxxx",
            false,
        ),
        (
            re(r"^\d+( (?:\(tainted\) )?bytes read from )"),
            "ssss$1",
            false,
        ),
        (
            re(r"(timestamp=|\(timestamp_only\): )\d+"),
            "${1}ddddddd",
            true,
        ),
        (
            re(r"writing to(?: file)? tmp/\d+\.[^.]+\.(\S+)"),
            "writing to tmp/MAILDIR.$1",
            false,
        ),
        (
            re(r"renamed tmp/\d+\.[^.]+\.(\S+) as new/\d+\.[^.]+\.(\S+)"),
            "renamed tmp/MAILDIR.$1 as new/MAILDIR.$1",
            false,
        ),
        (re(r"\b\d+\.M\d+P\d+\b"), "dddddddddd.HddddddPddddd", false),
        (
            re(r"(?i)SRS0=....=.[^=]?=([^=]+)=([^@]+)@([^ ]+)"),
            "SRS0=ZZZZ=YY=$1=$2@$3",
            true,
        ),
        (re(r"max fd = \d+"), "max fd = dddd", false),
        (
            re(r"status=[0-9a-f]+ (?:RDONLY|WRONLY|RDWR)"),
            "STATUS",
            true,
        ),
        (re(r":S\d+\b"), ":Ssss", false),
        (
            re(r"set_process_info:\s+\d+"),
            "set_process_info: pppp",
            false,
        ),
        (
            re(r"process \d+ (running as|writing to) transport filter"),
            "process pppp $1 transport filter",
            false,
        ),
        (
            re(r"reading pipe for subprocess \d+"),
            "reading pipe for subprocess pppp",
            false,
        ),
    ],
    stdout_only: vec![
        (
            re(r"(?i)^\s*\d+[mhd]\s+\d+(\s+(?:[[:alnum:]-]{23}|[[:alnum:]-]{16}) <)"),
            "TTT   sss$1",
            false,
        ),
        (
            re(r"^-received_time_usec \.\d{6}$"),
            "-received_time_usec .uuuuuu",
            false,
        ),
        (
            re(r"^-received_time_complete \d+\.\d{6}$"),
            "-received_time_complete tttt.uuuuuu",
            false,
        ),
    ],
    stderr_only: vec![
        (re(r"\ssize=\d+\b"), " size=sss", false),
        (
            re(r"(Connection request from 127\.0\.0\.1 port) \d{1,5}"),
            "$1 sssss",
            false,
        ),
    ],
    short_id: re(r"\d[0-9A-Za-z]{5}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}"),
    long_id: re(r"\d[0-9A-Za-z]{5}-[0-9A-Za-z]{11}-[0-9A-Za-z]{4}"),
    listening_paren: re(r"(listening for SMTPS? on port \d+) \([^)]*\)"),
    rfc822_date: re(
        r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s\d{1,2}\s(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s\d{4}\s\d\d:\d\d:\d\d\s[-+]\d{4}",
    ),
    log_stamp: re(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3})?(?: [-+]\d{4})? "),
    // runtest: `((D|[RQD]T)=)\d+s` then `((D|[RQD]T)=)\d\.\d{3}s`.
    duration_int: re(r"((?:D|[RQD]T)=)\d+s"),
    duration_frac: re(r"((?:D|[RQD]T)=)\d\.\d{3}s"),
    tls_version: re(r"\bTLS1\.\d:"),
    cipher_openssl: re(
        r"\b(?:EC)?DHE[-_](RSA|ECDSA)[-_]AES[-_]?(?:128|256)[-_](?:GCM[-_])?SHA\d+:\d+",
    ),
    cipher_tls13: re(r"\bTLS_AES_256_GCM_SHA384:\d+"),
    // OpenSSL's bare name (e.g. the test server's "SSL connection using").
    cipher_tls13_bare: re(r"\bTLS_AES(?:_256)?_GCM_SHA384(:?)"),
    cipher_gnutls: re(r"\b(?:EC)?DHE_(RSA|ECDSA)_AES_(?:128|256)_(?:GCM|CBC)_SHA\d+:\d+"),
    pid_head: re(r"(pid=|pid |PID: |Process |child | Ci=)(\d+)"),
    pid_old: re(r"(pid=|PID: )\d+"),
    op_timed_out: re(r"Operation timed out"),
    errno_paren: re(r"\(\d+\): Connection (timed out|refused)"),
    errno_eq: re(r"\berrno=\d+"),
    size_first: re(r"([ ,])S=\d+"),
    // CHUNKING: the sizes depend on host names in the headers.
    received_tls_with: re(r"^(\s+by \S+ with .+ ) \(TLS1(?:\.[0-3])?\) tls TLS_.*?([^_]+)_WITH.+$"),
    received_tls: re(r"^(\s+by \S+ with .+ ) \(TLS1(?:\.[0-3])?\) tls TLS_.+$"),
    dkim_mail_times: re(r"^(\s+)t=([0-9]*); (?:x=([0-9]*); )?b=[A-Za-z0-9+/]+$"),
    dkim_log_tx: re(r"(DKIM: d=.*) t=([0-9]*) x=([0-9]*) \["),
    dkim_log_t: re(r"(DKIM: d=.* )t=[0-9]* \["),
    bdat_chunk: re(r#"(=>.* K (?:DKIM=\S+ )?C="250- )\d+ (byte chunk, total )\d+"#),
    size_esmtp: re(r"\sSIZE=\d+\b"),
    stdout_port: re(
        r"(Listening on port |Connecting to (?:127\.0\.0\.1|ip4\.ip4\.ip4\.ip4|ip6:ip6:ip6:ip6:ip6:ip6:ip6:ip6|::1) port )(\d+)",
    ),
    log_listen_port: re(r"(listening for [^\n]*?port )(\d+)"),
    // Only positive errno values (runtest: `R=\w+ T=\w+ defer \([1-9]\d*\): `);
    // Exim's own negative codes are kept.
    defer_errno: re(r"(R=\w+ T=\w+ defer \()[1-9]\d*(\): )"),
    stderr_noise: re(r"^sudo: tc: command not found"),
    // runtest's "test network" rule: 224.x.y.z (and its rbl / in-addr /
    // test.again.dns forms) back to V4NET.
    test_net_v4: re(
        r"(^|[^0-9A-Za-z]|_)224(\.\d+\.\d+\.\d+\b|_|\.rbl|\.in-addr|\.test\.again\.dns)",
    ),
    gethostbyname: re(r"\b(?:gethostbyname2?|getipnodebyname)(?:\(af=inet\))?"),
    // Date/time in message separators ("From x Mon Dec 07 18:26:12 2026");
    // the separator may also be U+2591 in UTF-8 (bytes seen as Latin-1).
    separator_date: re(
        r"(?:[A-Z][a-z]{2}(\s|\x{E2}\x{96}\x{91})){2}\d\d(\s|\x{E2}\x{96}\x{91})\d\d:\d\d:\d\d(\s|\x{E2}\x{96}\x{91})\d\d\d\d",
    ),
});

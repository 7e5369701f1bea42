//! The section parser: main options, ACLs, drivers, named lists.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Main,
    Acl,
    Authenticators,
    Routers,
    Transports,
    Retry,
    Rewrite,
    LocalScan,
}

/// Exim appends an `s` when the name does not end in one, then compares
/// case-insensitively with the plural section names.
pub(super) fn section_from_name(s: &str) -> Option<Section> {
    let mut n = s.to_ascii_lowercase();
    if !n.ends_with('s') {
        n.push('s');
    }
    Some(match n.as_str() {
        "acls" => Section::Acl,
        "authenticators" => Section::Authenticators,
        "routers" => Section::Routers,
        "transports" => Section::Transports,
        "retrys" => Section::Retry,
        "rewrites" => Section::Rewrite,
        "local_scans" => Section::LocalScan,
        _ => return None,
    })
}

pub(super) struct DriverClass {
    class: &'static str,
    generic: &'static [OptionSpec],
    drivers: &'static [(&'static str, &'static [OptionSpec])],
}

pub(super) const ROUTERS: DriverClass = DriverClass {
    class: "router",
    generic: tables::ROUTER_GENERIC,
    drivers: tables::ROUTER_DRIVERS,
};
pub(super) const TRANSPORTS: DriverClass = DriverClass {
    class: "transport",
    generic: tables::TRANSPORT_GENERIC,
    drivers: tables::TRANSPORT_DRIVERS,
};
pub(super) const AUTHS: DriverClass = DriverClass {
    class: "authenticator",
    generic: tables::AUTH_GENERIC,
    drivers: tables::AUTH_DRIVERS,
};

pub(super) struct Parser<'p, 'a> {
    pp: &'p mut Preprocessor<'a>,
    cfg: Config,
    acl_current: Option<(String, AclBuilder)>,
}

pub(super) fn located(line: &LogicalLine, msg: impl Into<String>) -> ConfigError {
    ConfigError::at(&line.file, line.line, msg)
}

/// Reads a leading name (`[A-Za-z][A-Za-z0-9_]*`), returns it and the rest
/// after white space.
pub(super) fn read_name(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return ("", s);
    }
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

/// Parses a configuration from its text. `name` is used in error messages
/// and as the base for relative `.include` paths.
pub fn parse_config(
    fs: &dyn FileSource,
    name: &str,
    text: &str,
    defines: &[(String, String)],
    builtin: &[(String, String)],
) -> Result<Config, ConfigError> {
    parse_config_partial(fs, name, text, defines, builtin).map_err(|(e, _)| e)
}

/// As [`parse_config`], but a failure also hands back the main options
/// read before the error (Exim applies options as it reads them, so its
/// panic log for a configuration error is the one `log_file_path` named
/// above the offending line).
pub fn parse_config_partial(
    fs: &dyn FileSource,
    name: &str,
    text: &str,
    defines: &[(String, String)],
    builtin: &[(String, String)],
) -> Result<Config, (ConfigError, Box<Options>)> {
    let mut pp = Preprocessor::new(fs, name, text, defines, builtin);
    let mut p = Parser {
        pp: &mut pp,
        cfg: Config {
            config_file: name.to_string(),
            ..Config::default()
        },
        acl_current: None,
    };
    if let Err(e) = p.run() {
        return Err((e, Box::new(p.cfg.main)));
    }
    let mut cfg = p.cfg;
    cfg.macros = pp
        .macros
        .iter()
        .filter(|m| !m.builtin)
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect();
    Ok(cfg)
}

impl Parser<'_, '_> {
    pub(super) fn run(&mut self) -> Result<(), ConfigError> {
        let mut section = Section::Main;
        let mut seen: Vec<Section> = Vec::new();
        let mut drivers: Vec<Driver> = Vec::new();
        let mut driver_line: Option<LogicalLine> = None;
        while let Some(line) = self.pp.next_line()? {
            if let Some(rest) = strip_prefix_ci(&line.text, "begin ") {
                let name = rest.trim();
                let Some(next) = section_from_name(name) else {
                    return Err(located(
                        &line,
                        format!("\"{name}\" is not a known configuration section name"),
                    ));
                };
                self.finish_section(section, &mut drivers, driver_line.take())?;
                if seen.contains(&next) {
                    return Err(located(
                        &line,
                        format!("\"{name}\" section is repeated in the configuration file"),
                    ));
                }
                seen.push(next);
                section = next;
                continue;
            }
            match section {
                Section::Main => self.main_line(&line)?,
                Section::Acl => self.acl_line(&line)?,
                Section::Routers => {
                    self.driver_line(&ROUTERS, &line, &mut drivers, &mut driver_line)?
                }
                Section::Transports => {
                    self.driver_line(&TRANSPORTS, &line, &mut drivers, &mut driver_line)?
                }
                Section::Authenticators => {
                    self.driver_line(&AUTHS, &line, &mut drivers, &mut driver_line)?
                }
                Section::Retry => {
                    let rule = parse_retry_line(&line.text).map_err(|m| located(&line, m))?;
                    self.cfg.retry.push(rule);
                }
                Section::Rewrite => {
                    let rule = parse_rewrite_line(&line.text).map_err(|m| located(&line, m))?;
                    self.cfg.rewrite.push(rule);
                }
                Section::LocalScan => {}
            }
        }
        self.finish_section(section, &mut drivers, driver_line.take())
    }

    pub(super) fn finish_section(
        &mut self,
        section: Section,
        drivers: &mut Vec<Driver>,
        last_header: Option<LogicalLine>,
    ) -> Result<(), ConfigError> {
        let class = match section {
            Section::Acl => {
                if let Some((name, b)) = self.acl_current.take() {
                    self.cfg.acls.push(Acl {
                        name,
                        statements: b.statements,
                    });
                }
                return Ok(());
            }
            Section::Routers => ROUTERS.class,
            Section::Transports => TRANSPORTS.class,
            Section::Authenticators => AUTHS.class,
            _ => return Ok(()),
        };
        if let (Some(d), Some(h)) = (drivers.last(), last_header.as_ref()) {
            if d.driver.is_empty() {
                return Err(located(
                    h,
                    format!("no driver defined for {class} \"{}\"", d.name),
                ));
            }
        }
        let list = std::mem::take(drivers);
        match section {
            Section::Routers => self.cfg.routers = list,
            Section::Transports => self.cfg.transports = list,
            Section::Authenticators => self.cfg.authenticators = list,
            _ => {}
        }
        Ok(())
    }

    pub(super) fn main_line(&mut self, line: &LogicalLine) -> Result<(), ConfigError> {
        // Main options start with a lower-case letter; an upper-case start
        // can only be a macro definition (which the preprocessor consumed).
        if line.text.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Err(located(line, "malformed macro definition"));
        }
        let (word, rest) = read_name(&line.text);
        let keyword = word.strip_suffix("_cache").unwrap_or(word);
        if let Some(kind) = ListKind::from_keyword(keyword) {
            let (name, rest) = read_name(rest);
            if name.is_empty() {
                return Err(located(line, format!("{} name missing", kind.keyword())));
            }
            let Some(value) = rest.strip_prefix('=') else {
                return Err(located(line, format!("missing '=' after \"{name}\"")));
            };
            if self.cfg.named_lists.get(kind, name).is_some() {
                return Err(located(
                    line,
                    format!(
                        "duplicate name \"{name}\" for a named {}",
                        kind.description()
                    ),
                ));
            }
            let value =
                options::read_string(value.trim_start(), name).map_err(|m| located(line, m))?;
            self.cfg.named_lists.insert(kind, name, &value);
            return Ok(());
        }
        match self.cfg.main.apply_line(&line.text) {
            Ok(Some(opt))
                if tables::unsupported("main", &opt) && !self.cfg.main.is_default(&opt) =>
            {
                Err(located(
                    line,
                    format!("main option \"{opt}\" is not supported by oxim"),
                ))
            }
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                let (_, name, _) =
                    options::split_option_line(&line.text).map_err(|m| located(line, m))?;
                Err(located(line, format!("main option \"{name}\" unknown")))
            }
            Err(m) => Err(located(line, m)),
        }
    }

    pub(super) fn acl_line(&mut self, line: &LogicalLine) -> Result<(), ConfigError> {
        let (word, rest) = read_name(&line.text);
        if !word.is_empty() && rest.starts_with(':') {
            if !rest[1..].trim().is_empty() {
                return Err(located(
                    line,
                    format!("error in ACL: extra characters follow ACL name \"{word}\""),
                ));
            }
            if let Some((name, b)) = self.acl_current.take() {
                self.cfg.acls.push(Acl {
                    name,
                    statements: b.statements,
                });
            }
            if self.cfg.acl(word).is_some() {
                return Err(located(
                    line,
                    format!("there are two ACLs called \"{word}\""),
                ));
            }
            self.acl_current = Some((word.to_string(), AclBuilder::default()));
            return Ok(());
        }
        let Some((_, b)) = self.acl_current.as_mut() else {
            return Err(located(line, "ACL name missing"));
        };
        b.line_at(&line.text, Some((line.file.clone(), line.line)))
            .map_err(|m| located(line, format!("error in ACL: {m}")))
    }

    pub(super) fn driver_line(
        &mut self,
        class: &DriverClass,
        line: &LogicalLine,
        drivers: &mut Vec<Driver>,
        header: &mut Option<LogicalLine>,
    ) -> Result<(), ConfigError> {
        let (name, rest) = read_name(&line.text);
        if let Some(after) = rest.strip_prefix(':').filter(|_| !name.is_empty()) {
            if let (Some(d), Some(h)) = (drivers.last(), header.as_ref()) {
                if d.driver.is_empty() {
                    return Err(located(
                        h,
                        format!("no driver defined for {} \"{}\"", class.class, d.name),
                    ));
                }
            }
            if drivers.iter().any(|d| d.name == name) {
                return Err(located(
                    line,
                    format!("there are two {}s called \"{name}\"", class.class),
                ));
            }
            let after = after.trim_start();
            if !after.is_empty() {
                let comment = if after.starts_with('#') {
                    " (# is comment only at line start)"
                } else {
                    ""
                };
                return Err(located(
                    line,
                    format!("extra characters follow driver name {name}{comment}"),
                ));
            }
            drivers.push(Driver {
                name: name.to_string(),
                driver: String::new(),
                options: Options::new(&[class.generic]),
                file: line.file.to_string(),
                line: line.line,
            });
            *header = Some(line.clone());
            return Ok(());
        }
        let Some(d) = drivers.last_mut() else {
            return Err(located(line, format!("{} name missing", class.class)));
        };
        let had_driver = !d.driver.is_empty();
        match d.options.apply_line(&line.text) {
            Ok(Some(opt))
                if (tables::unsupported(class.class, &opt)
                    || tables::unsupported(&d.driver, &opt))
                    && !d.options.is_default(&opt) =>
            {
                let what = if d.driver.is_empty() {
                    class.class.to_string()
                } else {
                    format!("{} {}", d.driver, class.class)
                };
                Err(located(
                    line,
                    format!("option \"{opt}\" of the {what} is not supported by oxim"),
                ))
            }
            Ok(Some(opt)) => {
                if opt == "headers_rewrite" {
                    crate::rewrite::Rules::transport(d.options.str("headers_rewrite"))
                        .map_err(|e| located(line, e))?;
                }
                if opt == "verify" {
                    let v = d.options.bool("verify");
                    d.options
                        .set_value("verify_sender", options::Value::Bool(v));
                    d.options
                        .set_value("verify_recipient", options::Value::Bool(v));
                }
                if opt == "driver" && !had_driver {
                    let dname = d.options.str("driver").to_string();
                    let Some((_, table)) = class.drivers.iter().find(|(n, _)| *n == dname) else {
                        return Err(located(
                            line,
                            format!(
                                "{} {}: cannot find {} driver \"{dname}\"",
                                class.class, d.name, class.class
                            ),
                        ));
                    };
                    d.driver = dname;
                    d.options.extend(table);
                }
                Ok(())
            }
            Ok(None) => {
                let (_, oname, _) =
                    options::split_option_line(&line.text).map_err(|m| located(line, m))?;
                if had_driver {
                    Err(located(line, format!("option \"{oname}\" unknown")))
                } else {
                    Err(located(
                        line,
                        format!(
                            "option \"{oname}\" unknown (\"driver\" must be specified before any private options)"
                        ),
                    ))
                }
            }
            Err(m) => Err(located(line, m)),
        }
    }
}

pub(super) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

pub(super) fn is_graph(c: char) -> bool {
    !c.is_whitespace() && !c.is_control()
}

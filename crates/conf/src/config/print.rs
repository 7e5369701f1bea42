//! `-bP`: printing options, drivers, macros and named lists the way
//! Exim's `readconf_print` does.

use super::*;

impl Config {
    /// Answers one `-bP` query the way Exim's `readconf_print` does.
    ///
    /// `kind` is `None` for `-bP name` (a main option, `all`,
    /// `config_file`, `routers`, `transports`, `authenticators`, `macros`,
    /// `router_list`, `transport_list`, `authenticator_list`, `macro_list`
    /// or `+listname`), or `Some("router" | "transport" | "authenticator" |
    /// "macro")` for `-bP router NAME` style queries. `no_labels` is `-n`.
    /// `environment` and `local_scan` are left to the caller.
    pub fn print_item(&self, name: &str, kind: Option<&str>, no_labels: bool) -> PrintOutput {
        let mut out = PrintOutput {
            lines: Vec::new(),
            ok: true,
        };
        let (kind, name, names_only) = match kind {
            Some(k) => (k, Some(name), false),
            None => {
                if let Some(list) = name.strip_prefix('+') {
                    let mut found = false;
                    for kind in [
                        ListKind::Address,
                        ListKind::Domain,
                        ListKind::Host,
                        ListKind::LocalPart,
                    ] {
                        if let Some(text) = self.named_lists.get(kind, list) {
                            found = true;
                            out.lines.push(if no_labels {
                                text.to_string()
                            } else {
                                format!("{} {list} = {text}", kind.keyword())
                            });
                        }
                    }
                    if !found {
                        out.lines.push(format!(
                            "no address, domain, host, or local part list called \"{list}\" exists"
                        ));
                        out.ok = false;
                    }
                    return out;
                }
                match name {
                    "configure_file" | "config_file" => {
                        out.lines.push(self.config_file.clone());
                        return out;
                    }
                    "all" => {
                        out.lines = self
                            .main
                            .render_all()
                            .into_iter()
                            .map(|l| if no_labels { strip_label(&l) } else { l })
                            .collect();
                        return out;
                    }
                    "routers" => ("router", None, false),
                    "transports" => ("transport", None, false),
                    "authenticators" => ("authenticator", None, false),
                    "macros" => ("macro", None, false),
                    "router_list" => ("router", None, true),
                    "transport_list" => ("transport", None, true),
                    "authenticator_list" => ("authenticator", None, true),
                    "macro_list" => ("macro", None, true),
                    _ => {
                        let r = if no_labels {
                            self.main.render_value(name)
                        } else {
                            self.main.render(name)
                        };
                        match r {
                            Some(l) => out.lines.push(l),
                            None => {
                                out.lines.push(format!("{name} is not a known option"));
                                out.ok = false;
                            }
                        }
                        return out;
                    }
                }
            }
        };
        if kind == "macro" {
            for (n, v) in &self.macros {
                if name.is_some_and(|want| want != n) {
                    continue;
                }
                out.lines.push(if names_only {
                    n.clone()
                } else if no_labels {
                    v.clone()
                } else {
                    format!("{n}={v}")
                });
                if name.is_some() {
                    return out;
                }
            }
            if let Some(n) = name {
                out.lines.push(format!("macro {n} not found"));
                out.ok = false;
            }
            return out;
        }
        let drivers = match kind {
            "router" => &self.routers,
            "transport" => &self.transports,
            "authenticator" => &self.authenticators,
            other => {
                out.lines.push(format!("{other} is not a known option"));
                out.ok = false;
                return out;
            }
        };
        if names_only {
            out.lines = drivers.iter().map(|d| d.name.clone()).collect();
            return out;
        }
        for d in drivers {
            match name {
                None => {
                    out.lines.push(String::new());
                    out.lines.push(format!("{} {kind}:", d.name));
                }
                Some(n) if n != d.name => continue,
                Some(_) => {}
            }
            out.lines
                .extend(d.options.render_all().into_iter().map(|l| {
                    if no_labels {
                        strip_label(&l)
                    } else {
                        l
                    }
                }));
            if name.is_some() {
                return out;
            }
        }
        if let Some(n) = name {
            out.lines.push(format!("{kind} {n} not found"));
            out.ok = false;
        }
        out
    }
}

/// Result of [`Config::print_item`]: the lines to print and whether the
/// query succeeded (Exim exits non-zero otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintOutput {
    /// Output lines, without newlines.
    pub lines: Vec<String>,
    /// False for unknown names.
    pub ok: bool,
}

pub(super) fn strip_label(line: &str) -> String {
    match line.split_once(" = ") {
        Some((_, v)) => v.to_string(),
        None => match line.strip_suffix(" =") {
            Some(_) => String::new(),
            None => line.to_string(),
        },
    }
}

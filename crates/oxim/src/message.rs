//! The message being received: header lines and body, plus the header fix-ups
//! Exim applies on reception (`Received:`, `Message-Id:`, `From:`, `Date:`).
//!
//! Lines are stored with LF endings, as in Exim's spool; the SMTP transport
//! turns them back into CRLF.

/// One header field, possibly folded over several lines; `text` ends in `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    pub text: String,
}

impl HeaderField {
    pub fn new(text: impl Into<String>) -> Self {
        let mut text = text.into();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        HeaderField { text }
    }

    /// The field name as written (before the colon).
    pub fn name(&self) -> &str {
        self.text
            .split_once(':')
            .map(|(n, _)| n.trim_end())
            .unwrap_or("")
    }

    /// Case-insensitive name test.
    pub fn is(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name)
    }

    /// The value after the colon, unfolded and trimmed.
    pub fn value(&self) -> String {
        let v = self.text.split_once(':').map(|(_, v)| v).unwrap_or("");
        let mut out = String::with_capacity(v.len());
        for (i, line) in v.split('\n').enumerate() {
            if i > 0 && !line.is_empty() {
                out.push(' ');
            }
            out.push_str(line.trim());
        }
        out.trim().to_string()
    }
}

/// A parsed message: headers then body (LF line ends).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<HeaderField>,
    pub body: Vec<u8>,
}

fn is_header_start(line: &[u8]) -> bool {
    // field-name = 1*ftext (printable ASCII except ':' and space), then ':'
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = &line[..colon];
    // Exim tolerates white space between the name and the colon.
    let trimmed_len = name
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |p| p + 1);
    trimmed_len > 0
        && name[..trimmed_len]
            .iter()
            .all(|&b| (33..=126).contains(&b) && b != b':')
}

impl Message {
    /// Split raw message text (LF or CRLF line ends) into headers and body.
    ///
    /// The header section ends at the first empty line, or at the first line
    /// that is neither a header nor a continuation; in the second case that line
    /// starts the body (as Exim does). A missing final newline is supplied.
    pub fn parse(raw: &[u8]) -> Message {
        let mut headers: Vec<HeaderField> = Vec::new();
        let mut pos = 0;
        let mut body_start = raw.len();
        while pos < raw.len() {
            let end = raw[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(raw.len(), |p| pos + p + 1);
            let mut line = &raw[pos..end];
            if line.ends_with(b"\n") {
                line = &line[..line.len() - 1];
            }
            if line.ends_with(b"\r") {
                line = &line[..line.len() - 1];
            }
            if line.is_empty() {
                body_start = end;
                break;
            }
            let cont = line[0] == b' ' || line[0] == b'\t';
            if cont && !headers.is_empty() {
                if let Some(last) = headers.last_mut() {
                    last.text.push_str(&String::from_utf8_lossy(line));
                    last.text.push('\n');
                }
            } else if is_header_start(line) {
                headers.push(HeaderField::new(String::from_utf8_lossy(line)));
            } else {
                body_start = pos;
                break;
            }
            pos = end;
        }
        let mut body = Vec::with_capacity(raw.len().saturating_sub(body_start) + 1);
        // Normalise CRLF to LF in the body.
        let rest = &raw[body_start.min(raw.len())..];
        let mut i = 0;
        while i < rest.len() {
            if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                i += 1;
                continue;
            }
            body.push(rest[i]);
            i += 1;
        }
        if !body.is_empty() && !body.ends_with(b"\n") {
            body.push(b'\n');
        }
        Message { headers, body }
    }

    /// First header with this name.
    pub fn header(&self, name: &str) -> Option<&HeaderField> {
        self.headers.iter().find(|h| h.is(name))
    }

    /// Size as Exim counts it for `S=`: header lines plus the blank line plus body.
    pub fn size(&self) -> usize {
        self.headers.iter().map(|h| h.text.len()).sum::<usize>() + 1 + self.body.len()
    }

    /// Number of body lines (for `-body_linecount`).
    pub fn body_lines(&self) -> usize {
        self.body.iter().filter(|&&b| b == b'\n').count()
    }

    /// The value of Message-ID without the angle brackets, for `id=` in logs.
    pub fn message_id(&self) -> Option<String> {
        let v = self.header("message-id")?.value();
        let v = v.trim();
        let v = v.strip_prefix('<').unwrap_or(v);
        let v = v.strip_suffix('>').unwrap_or(v);
        if v.is_empty() {
            None
        } else {
            Some(v.to_string())
        }
    }

    /// Addresses from To:, Cc: and Bcc: (for `-t`), and removes Bcc:.
    pub fn take_recipients_from_headers(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for h in &self.headers {
            if h.is("to") || h.is("cc") || h.is("bcc") {
                out.extend(extract_addresses(&h.value()));
            }
        }
        self.headers.retain(|h| !h.is("bcc"));
        out
    }
}

/// Pull the addresses out of an address-list header value (`A <a@b>, c@d`).
pub fn extract_addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth_quote = false;
    let mut current = String::new();
    for c in value.chars() {
        match c {
            '"' => {
                depth_quote = !depth_quote;
                current.push(c);
            }
            ',' if !depth_quote => {
                if let Some(a) = one_address(&current) {
                    out.push(a);
                }
                current.clear();
            }
            _ => current.push(c),
        }
    }
    if let Some(a) = one_address(&current) {
        out.push(a);
    }
    out
}

fn one_address(item: &str) -> Option<String> {
    let item = item.trim();
    if item.is_empty() {
        return None;
    }
    if let (Some(l), Some(r)) = (item.rfind('<'), item.rfind('>')) {
        if l < r {
            let a = item[l + 1..r].trim();
            return (!a.is_empty()).then(|| a.to_string());
        }
    }
    // Strip a trailing (comment).
    let a = match item.find('(') {
        Some(p) => item[..p].trim(),
        None => item,
    };
    (!a.is_empty()).then(|| a.to_string())
}

/// Which generation of Exim's header layout to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderStyle {
    /// Exim up to 4.96: `for x; date` on one line.
    Classic,
    /// Exim 4.97+: the date on its own folded line.
    Modern,
}

/// What the default `Received:` header says about the message's origin.
pub struct ReceivedInfo<'a> {
    /// `from` text for a remote host (`localhost ([127.0.0.1] helo=x)`), or None.
    pub rcvhost: Option<String>,
    /// Local submitter's login (for `from CALLER`), used when no rcvhost.
    pub ident: Option<&'a str>,
    pub helo: Option<&'a str>,
    pub primary_hostname: &'a str,
    pub protocol: &'a str,
    pub version: &'a str,
    /// `Exim` or `oxim`.
    pub product: &'a str,
    pub sender: &'a str,
    pub id: &'a str,
    /// Set when the message has exactly one recipient.
    pub received_for: Option<&'a str>,
    pub date: &'a str,
    pub style: HeaderStyle,
    /// TLS of the incoming connection: version and standard cipher name
    /// (`TLS1.3`, `TLS_AES_256_GCM_SHA384`).
    pub tls: Option<(&'a str, &'a str)>,
}

/// Render Exim's default `Received:` header.
pub fn default_received(r: &ReceivedInfo<'_>) -> HeaderField {
    let mut s = String::from("Received: ");
    if let Some(h) = &r.rcvhost {
        s.push_str("from ");
        s.push_str(h);
        s.push_str("\n\t");
    } else {
        if let Some(u) = r.ident {
            s.push_str("from ");
            s.push_str(u);
            s.push(' ');
        }
        if let Some(h) = r.helo {
            s.push_str("(helo=");
            s.push_str(h);
            s.push_str(")\n\t");
        }
    }
    s.push_str("by ");
    s.push_str(r.primary_hostname);
    s.push_str(" with ");
    s.push_str(r.protocol);
    // Exim's default text: " ($tls_in_ver)" and " tls $tls_in_cipher_std"
    // after "with $received_protocol " (hence the two spaces).
    if let Some((ver, cipher)) = r.tls {
        s.push_str("  (");
        s.push_str(ver);
        s.push_str(") tls ");
        s.push_str(cipher);
        s.push_str("\n\t");
    } else {
        s.push(' ');
    }
    s.push('(');
    s.push_str(r.product);
    s.push(' ');
    s.push_str(r.version);
    s.push_str(")\n\t");
    if !r.sender.is_empty() {
        s.push_str("(envelope-from <");
        s.push_str(r.sender);
        s.push_str(">)\n\t");
    }
    s.push_str("id ");
    s.push_str(r.id);
    if let Some(f) = r.received_for {
        s.push_str("\n\tfor ");
        s.push_str(f);
    }
    match r.style {
        HeaderStyle::Classic => s.push_str("; "),
        HeaderStyle::Modern => s.push_str(";\n\t"),
    }
    s.push_str(r.date);
    HeaderField::new(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_headers_means_all_body() {
        let m = Message::parse(b"Test message");
        assert!(m.headers.is_empty());
        assert_eq!(m.body, b"Test message\n");
    }

    #[test]
    fn headers_and_body() {
        let m = Message::parse(b"Subject: hi\r\nX-A: 1\r\n  more\r\n\r\nbody\r\n");
        assert_eq!(m.headers.len(), 2);
        assert_eq!(m.headers[1].text, "X-A: 1\n  more\n");
        assert_eq!(m.headers[1].value(), "1 more");
        assert_eq!(m.body, b"body\n");
        assert_eq!(
            m.size(),
            "Subject: hi\n".len() + "X-A: 1\n  more\n".len() + 1 + 5
        );
    }

    #[test]
    fn header_without_trailing_newline() {
        let m = Message::parse(b"Subject: Test message");
        assert_eq!(m.headers.len(), 1);
        assert_eq!(m.headers[0].text, "Subject: Test message\n");
        assert!(m.body.is_empty());
    }

    #[test]
    fn non_header_line_starts_body() {
        let m = Message::parse(b"Subject: x\nnot a header\nmore\n");
        assert_eq!(m.headers.len(), 1);
        assert_eq!(m.body, b"not a header\nmore\n");
    }

    #[test]
    fn message_id_and_kinds() {
        let m = Message::parse(b"Message-ID: <abc@x>\nfrom: a\n\n");
        assert_eq!(m.message_id().as_deref(), Some("abc@x"));
        assert!(m.headers[0].is("message-id"));
        assert!(m.headers[1].is("FROM"));
    }

    #[test]
    fn recipients_from_headers() {
        let mut m =
            Message::parse(b"To: A <a@x>, \"b, c\" <b@y>\nBcc: z@q (hidden)\nSubject: s\n\nbody\n");
        assert_eq!(m.take_recipients_from_headers(), vec!["a@x", "b@y", "z@q"]);
        assert!(m.header("bcc").is_none());
    }

    #[test]
    fn received_header_layouts() {
        let mut r = ReceivedInfo {
            rcvhost: None,
            ident: Some("CALLER"),
            helo: None,
            primary_hostname: "myhost.test.ex",
            protocol: "local",
            version: "x.yz",
            product: "Exim",
            sender: "CALLER@test.ex",
            id: "10HmaX-0005vi-00",
            received_for: Some("abc@x.y.z"),
            date: "Tue, 2 Mar 1999 09:44:33 +0000",
            style: HeaderStyle::Classic,
            tls: None,
        };
        assert_eq!(
            default_received(&r).text,
            "Received: from CALLER by myhost.test.ex with local (Exim x.yz)\n\
             \t(envelope-from <CALLER@test.ex>)\n\
             \tid 10HmaX-0005vi-00\n\
             \tfor abc@x.y.z; Tue, 2 Mar 1999 09:44:33 +0000\n"
        );
        r.style = HeaderStyle::Modern;
        assert!(default_received(&r)
            .text
            .ends_with("\tfor abc@x.y.z;\n\tTue, 2 Mar 1999 09:44:33 +0000\n"));
        r.protocol = "esmtps";
        r.tls = Some(("TLS1.3", "TLS_AES_256_GCM_SHA384"));
        assert!(default_received(&r).text.starts_with(
            "Received: from CALLER by myhost.test.ex with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384\n\
             \t(Exim x.yz)\n\t(envelope-from"
        ));
    }
}

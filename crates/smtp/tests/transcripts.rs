//! Transcript tables: client input -> exact server output, with Exim's texts.

mod common;

use common::{exim_extensions, transcript};
use oxim_smtp::ServerConfig;

#[test]
fn exim_0579_quoted_local_part() {
    let (out, d) = transcript(
        ServerConfig::default(),
        exim_extensions(),
        &[
            "EHLO test\r\n",
            "MAIL FROM:<>\r\n",
            "RCPT TO:<\"name with spaces\"@test.ex>\r\n",
            "DATA\r\n",
            "Subject: test\r\n\r\nbody\r\n.\r\n",
            "QUIT\r\n",
        ],
    );
    assert_eq!(
        out,
        "250-myhost.test.ex Hello test [127.0.0.1]\r\n\
         250-SIZE 52428800\r\n\
         250-8BITMIME\r\n\
         250-PIPELINING\r\n\
         250 HELP\r\n\
         250 OK\r\n\
         250 Accepted\r\n\
         354 Enter message, ending with \".\" on a line by itself\r\n\
         250 OK id=10HmaX-000000005vi-0000\r\n\
         221 myhost.test.ex closing connection\r\n"
    );
    assert_eq!(d.seen.body, b"Subject: test\n\nbody\n");
    assert!(d.s.is_closed());
}

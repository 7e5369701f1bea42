//! # oxim-smtp
//!
//! Sans-I/O SMTP protocol code for oxim: bytes in, events and bytes out. No
//! sockets, no clocks, no files, so everything here is testable with tables,
//! property tests and fuzzers.
//!
//! * Server side: [`ServerSession`] parses commands, enforces sequencing and
//!   synchronisation with Exim's reply texts, decodes DATA/BDAT bodies, and
//!   hands policy decisions to the caller as [`Event`]s. [`ehlo_reply`]
//!   builds Exim's EHLO reply.
//! * Client side: [`ReplyParser`] (incremental, multi-line),
//!   [`EhloCapabilities`], command formatting in [`client`], and
//!   [`DotStuffer`] for DATA bodies.
//! * Shared: [`Reply`], RFC 5321 path parsing in [`address`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod client;
pub mod data;
pub mod error;
pub mod reply;
pub mod sasl;
pub mod server;

pub use address::{parse_path_arg, Path};
pub use client::valid_tx_token;
pub use client::{
    Awaiting, BodyType, ClientConfig, ClientEvent, ClientSession, EhloCapabilities, Envelope,
    RcptVerdict, Step, TransactionResult, Verdict, SYN_DATA_MAX, TX_TOKEN_KEYWORD,
};
pub use data::{DataDecoder, DataSummary, DotStuffer, LineEnding, LineRules};
pub use error::{AddressError, ReplyError, SessionError};
pub use reply::{EnhancedCode, Reply, ReplyLimits, ReplyParser};
pub use server::{
    ehlo_reply, hello_text, help_reply, ErrorKind, Event, Extensions, MailFrom, PipeliningUse,
    ProtocolError, RcptTo, ServerConfig, ServerSession, SessionState,
};

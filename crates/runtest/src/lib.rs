//! `oxim-runtest`: runs Exim-format test scripts against oxim, each test in
//! its own network/mount/UTS/PID namespaces, and compares normalised output
//! with Exim's expected files.
//!
//! The pieces are usable on their own: [`script`] parses scripts, [`subst`]
//! substitutes harness tokens, [`munge`] normalises output, [`compare`]
//! diffs it against expected files, [`client`]/[`server`] are the scripted
//! SMTP peers, [`dns`] builds the test DNS data, [`sandbox`] and [`exec`]
//! run a test.

#![forbid(unsafe_code)]

pub mod client;
pub mod clienttls;
pub mod compare;
pub mod custom;
pub mod dns;
pub mod dnsserver;
pub mod exec;
pub mod fakens;
pub mod latin1;
pub mod munge;
pub mod reason;
pub mod runner;
pub mod sandbox;
pub mod script;
pub mod server;
pub mod servertls;
pub mod subst;
pub mod tcshim;
#[cfg(test)]
mod testconn;
pub mod tree;
pub mod users;

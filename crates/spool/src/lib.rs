//! oxim-spool (placeholder until the crate lands).

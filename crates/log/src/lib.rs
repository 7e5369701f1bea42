//! oxim-log (placeholder until the crate lands).

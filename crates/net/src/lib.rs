//! oxim-net (placeholder until the crate lands).

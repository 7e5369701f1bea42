//! oxim-smtp (placeholder until the crate lands).

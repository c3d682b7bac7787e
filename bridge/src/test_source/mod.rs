//! The built-in test source.

pub mod clock_code;

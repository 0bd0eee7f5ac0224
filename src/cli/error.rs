//! The CLI's single error type: a message for the user and the exit code
//! (DESIGN §7: 1 = a check failed, 2 = bad input or usage).

use std::fmt;

/// Exit code of a failed check (mismatch, regression).
pub const EXIT_CHECK: u8 = 1;
/// Exit code of bad input or usage.
pub const EXIT_INPUT: u8 = 2;

/// What went wrong, said for the user (printed as `error: <message>`), and
/// the process exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    /// Bad input: a missing or malformed file, a bad argument value, a
    /// program that does not fit the hardware or faults on it (exit 2).
    pub fn input(message: impl fmt::Display) -> CliError {
        CliError { message: message.to_string(), code: EXIT_INPUT }
    }

    /// A check that failed (exit 1).
    #[allow(dead_code)]
    pub fn check(message: impl fmt::Display) -> CliError {
        CliError { message: message.to_string(), code: EXIT_CHECK }
    }
}

pub type Result<T> = std::result::Result<T, CliError>;

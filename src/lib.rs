//! systole: an accelerator co-design framework. This facade re-exports the
//! workspace's crates for programs that embed systole; the `systole` binary
//! is the command-line front end.

pub use compiler;
pub use driver;
pub use isa;
pub use sim;

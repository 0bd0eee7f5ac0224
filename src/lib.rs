//! systole: an accelerator co-design framework. This library re-exports
//! the workspace's crates for programs that embed systole, and holds the
//! run flow ([`flow`]: the layer check, the report, the sweep engine, the
//! choice of backend) that the `systole` binary, its command-line front
//! end, calls.

pub mod flow;

pub use compiler;
pub use driver;
pub use isa;
pub use rtl;
pub use sim;

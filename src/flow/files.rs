//! Reading input files: regular files only, bounded by their kind's
//! maximum, with errors that name the file. The command line and the
//! Python package read models, configurations, programs and arrays through
//! it, so both refuse the same files with the same messages.

use super::{FlowError, Result};
use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

/// What an input file is, for its error messages and its size limit: no
/// input is read past what its kind may hold, so a huge or endless file
/// (`/dev/zero`) is an error, not a machine out of memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A hardware configuration or an energy table (TOML): at most 1 MiB.
    Toml,
    /// Assembly text (`.s`): at most 256 MiB.
    Assembly,
    /// A text model (`.stm`): at most 1 GiB.
    TextModel,
    /// An ONNX model: at most 2 GiB (protobuf's own limit).
    Onnx,
    /// A program (`.sbin`): at most 8 GiB (code and data fit in the 4 GiB
    /// of device memory, the graph holds the weights once more).
    Program,
    /// A NumPy array (`.npy`): at most 4 GiB and a header; its data must be
    /// exactly what the header declares (`compiler::npy`).
    Npy,
    /// A JSON file (a baseline, a report to plot): at most 256 MiB.
    Json,
}

impl InputKind {
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Toml => "TOML file",
            InputKind::Assembly => "assembly file",
            InputKind::TextModel => "text model",
            InputKind::Onnx => "ONNX model",
            InputKind::Program => "program",
            InputKind::Npy => ".npy file",
            InputKind::Json => "JSON file",
        }
    }

    /// The largest file of this kind, in bytes.
    pub fn max_bytes(self) -> u64 {
        const MIB: u64 = 1 << 20;
        match self {
            InputKind::Toml => MIB,
            InputKind::Assembly => 256 * MIB,
            InputKind::TextModel => 1024 * MIB,
            InputKind::Onnx => 2048 * MIB,
            InputKind::Program => 8192 * MIB,
            InputKind::Npy => 4096 * MIB + MIB,
            InputKind::Json => 256 * MIB,
        }
    }
}

/// What a file that is not a regular file is, for the error.
fn file_type_name(t: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads a whole input file of a kind. Only regular files are read: a FIFO
/// is opened without blocking (one with no writer would wait forever) and
/// refused like a device, and a file larger than its kind's maximum is
/// refused before anything is read.
pub fn read_input(path: &Path, kind: InputKind) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let cannot = |e: io::Error| FlowError::input(format!("cannot read {}: {}", path.display(), io_message(&e)));
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(FlowError::input(format!(
            "{}: {}, not a regular file (a {} is read from a regular file)",
            path.display(),
            file_type_name(meta.file_type()),
            kind.name()
        )));
    }
    let max = kind.max_bytes();
    let too_big = |size: u64| {
        FlowError::input(format!(
            "{}: {size} bytes is more than a {} may hold ({} MiB)",
            path.display(),
            kind.name(),
            max >> 20
        ))
    };
    if meta.len() > max {
        return Err(too_big(meta.len()));
    }
    // The file may grow while it is read: never read past the maximum.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Reads a whole UTF-8 text input file of a kind (see [`read_input`]).
pub fn read_input_text(path: &Path, kind: InputKind) -> Result<String> {
    let bytes = read_input(path, kind)?;
    String::from_utf8(bytes).map_err(|e| {
        FlowError::input(format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

pub fn io_message(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

//! Reading input files (regular files only, bounded by their kind's
//! maximum) with errors that name the file, and writing output
//! files atomically: each output is written to a temporary file in its
//! destination directory and renamed into place only once every output of
//! the command has been written, so a failed command leaves no output file
//! created or half-written.

use super::error::{CliError, Result};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

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
}

impl InputKind {
    fn name(self) -> &'static str {
        match self {
            InputKind::Toml => "TOML file",
            InputKind::Assembly => "assembly file",
            InputKind::TextModel => "text model",
            InputKind::Onnx => "ONNX model",
            InputKind::Program => "program",
            InputKind::Npy => ".npy file",
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
    let cannot = |e: io::Error| CliError::input(format!("cannot read {}: {}", path.display(), io_message(&e)));
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(CliError::input(format!(
            "{}: {}, not a regular file (a {} is read from a regular file)",
            path.display(),
            file_type_name(meta.file_type()),
            kind.name()
        )));
    }
    let max = kind.max_bytes();
    let too_big = |size: u64| {
        CliError::input(format!(
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
        CliError::input(format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

fn io_message(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// The directory a file would be created in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Checks that `path` can be an output file: its directory exists and it is
/// not itself a directory. Called before any work, so that a typo in an
/// output path fails at once rather than after a long run.
pub fn check_destination(path: &Path, what: &str) -> Result<()> {
    if path.file_name().is_none() {
        return Err(CliError::input(format!("{what} {}: not a file name", path.display())));
    }
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(CliError::input(format!("{what} {}: directory {} does not exist", path.display(), dir.display())));
    }
    if path.is_dir() {
        return Err(CliError::input(format!("{what} {}: is a directory", path.display())));
    }
    Ok(())
}

/// A temporary file in the destination directory, removed on drop unless
/// it was renamed into place.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

static TEMP_COUNTER: AtomicU32 = AtomicU32::new(0);

fn create_temp(dest: &Path) -> Result<(TempFile, File)> {
    let dir = parent_dir(dest);
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut last_err = None;
    for _ in 0..16 {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((TempFile { path, keep: false }, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => {
                return Err(CliError::input(format!("cannot write {}: {}", dest.display(), io_message(&e))));
            }
        }
    }
    let e = last_err.map_or_else(|| "no free temporary name".to_string(), |e| e.to_string());
    Err(CliError::input(format!("cannot write {}: {e}", dest.display())))
}

/// The output files of one command, committed all together.
#[derive(Default)]
pub struct Outputs {
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Outputs {
    pub fn new() -> Outputs {
        Outputs::default()
    }

    /// Adds a file to write.
    pub fn add(&mut self, path: &Path, bytes: Vec<u8>) {
        self.files.push((path.to_path_buf(), bytes));
    }

    /// Writes every file to a temporary file next to its destination, then
    /// renames them all into place. If any write fails, the temporary files
    /// are removed and no destination is touched.
    pub fn commit(self) -> Result<()> {
        let mut staged = Vec::with_capacity(self.files.len());
        for (dest, bytes) in &self.files {
            let (temp, mut file) = create_temp(dest)?;
            file.write_all(bytes)
                .and_then(|()| file.sync_all())
                .map_err(|e| CliError::input(format!("cannot write {}: {}", dest.display(), io_message(&e))))?;
            staged.push((temp, dest));
        }
        for (mut temp, dest) in staged {
            fs::rename(&temp.path, dest)
                .map_err(|e| CliError::input(format!("cannot write {}: {}", dest.display(), io_message(&e))))?;
            temp.keep = true;
        }
        Ok(())
    }
}

/// Checks a command's output paths up front: each one's directory exists,
/// and no file is named twice.
pub fn check_destinations<'a>(paths: impl IntoIterator<Item = (&'a Path, &'a str)>) -> Result<()> {
    let mut seen = HashSet::new();
    for (path, what) in paths {
        check_destination(path, what)?;
        if !seen.insert(path.to_path_buf()) {
            return Err(CliError::input(format!("{} is named as an output twice", path.display())));
        }
    }
    Ok(())
}

/// Writes one file atomically.
pub fn write_atomic(path: &Path, bytes: Vec<u8>) -> Result<()> {
    let mut out = Outputs::new();
    out.add(path, bytes);
    out.commit()
}

/// Writes text to stdout; a closed pipe (`| head`) is not an error.
pub fn print_stdout(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(CliError::input(format!("cannot write to standard output: {e}")))
        }
        _ => Ok(()),
    }
}

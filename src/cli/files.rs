//! Reading input files with errors that name the file, and writing output
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

/// Reads a whole file.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| CliError::input(format!("cannot read {}: {}", path.display(), io_message(&e))))
}

/// Reads a whole UTF-8 text file.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = read_bytes(path)?;
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

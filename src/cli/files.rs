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
use systole::flow::files::io_message;
pub use systole::flow::files::InputKind;

/// Reads a whole input file of a kind (`systole::flow::files::read_input`).
pub fn read_input(path: &Path, kind: InputKind) -> Result<Vec<u8>> {
    Ok(systole::flow::files::read_input(path, kind)?)
}

/// Reads a whole UTF-8 text input file of a kind (`systole::flow::files::read_input_text`).
pub fn read_input_text(path: &Path, kind: InputKind) -> Result<String> {
    Ok(systole::flow::files::read_input_text(path, kind)?)
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

/// Suffixes of the temporary files and staging directories of a commit.
/// They exist only while their directory is locked, so one found by the
/// holder of the lock was left by a killed run and is removed.
const TEMP_SUFFIX: &str = ".systole-tmp";
const STAGING_SUFFIX: &str = ".systole-staging";

fn write_error(dest: &Path, e: &io::Error) -> CliError {
    CliError::input(format!("cannot write {}: {}", dest.display(), io_message(e)))
}

/// An absolute form of `path` to compare paths by: its directory resolved
/// when it exists, `.` components dropped otherwise.
fn absolute(path: &Path) -> PathBuf {
    if let Ok(p) = fs::canonicalize(path) {
        return p;
    }
    if let (Some(name), Ok(dir)) = (path.file_name(), fs::canonicalize(parent_dir(path))) {
        return dir.join(name);
    }
    let joined = std::env::current_dir().unwrap_or_default().join(path);
    joined.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect()
}

/// An exclusive lock on a directory (flock on the directory itself, so no
/// lock file is ever left behind); released on drop.
struct DirLock {
    _held: File,
}

impl DirLock {
    fn acquire(dir: &Path) -> Result<DirLock> {
        use std::os::fd::AsRawFd;
        let f = File::open(dir).map_err(|e| write_error(dir, &e))?;
        // SAFETY: flock on a file descriptor this function owns.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            let e = io::Error::last_os_error();
            return Err(CliError::input(format!("cannot lock {}: {}", dir.display(), io_message(&e))));
        }
        Ok(DirLock { _held: f })
    }
}

/// Removes what killed runs left in `dir` (see `TEMP_SUFFIX`); `dir` is locked.
fn remove_stale(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') {
            continue;
        }
        if name.ends_with(TEMP_SUFFIX) {
            let _ = fs::remove_file(e.path());
        } else if name.ends_with(STAGING_SUFFIX) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// `.NAME<suffix>` next to `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent_dir(path).join(format!(".{name}{suffix}"))
}

/// Writes `bytes` to a new file at `path` and syncs it.
fn write_new(path: &Path, bytes: &[u8], dest: &Path) -> Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| write_error(dest, &e))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| write_error(dest, &e))
}

/// Recreates the tree `from` at `to` with hard links (copies where a link
/// is refused), leaving out the relative paths in `skip`.
fn link_tree(from: &Path, to: &Path, rel: &Path, skip: &[PathBuf]) -> io::Result<()> {
    for e in fs::read_dir(from)? {
        let e = e?;
        let rel = rel.join(e.file_name());
        if skip.contains(&rel) {
            continue;
        }
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let t = e.file_type()?;
        if t.is_dir() {
            fs::create_dir(&dst)?;
            link_tree(&src, &dst, &rel, skip)?;
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if fs::hard_link(&src, &dst).is_err() {
            fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// Swaps two directories in one step (Linux `renameat2(RENAME_EXCHANGE)`),
/// so that no reader ever finds neither, or a mix.
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: two valid NUL-terminated paths; the call only reads them.
    let r = unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The output files of one command, committed all together: a run either
/// leaves the previous outputs untouched or replaces them all.
///
/// With an output directory ([`Outputs::in_dir`], `run --out DIR`), the
/// files under it are written into a staging directory next to it, which
/// also holds hard links to everything else already in DIR, and the two
/// directories are then swapped in one `rename`: a reader sees the old
/// DIR or the new one, never a mix, and a run killed at any point leaves
/// the old DIR whole. Other files are each written to a temporary file
/// and renamed into place, after DIR's swap. The directories written into
/// are locked for the commit (flock, in path order), so commits into one
/// place from concurrent runs happen one after the other, and what a
/// killed run left there (`.NAME.systole-tmp`, `.NAME.systole-staging`) is
/// removed by the next commit.
#[derive(Default)]
pub struct Outputs {
    files: Vec<(PathBuf, Vec<u8>)>,
    dir: Option<PathBuf>,
}

impl Outputs {
    pub fn new() -> Outputs {
        Outputs::default()
    }

    /// Outputs whose files under `dir` (created if missing) are replaced together.
    pub fn in_dir(dir: &Path) -> Outputs {
        Outputs { files: Vec::new(), dir: Some(dir.to_path_buf()) }
    }

    /// Adds a file to write.
    pub fn add(&mut self, path: &Path, bytes: Vec<u8>) {
        self.files.push((path.to_path_buf(), bytes));
    }

    /// Writes every file, then puts them all in place (see the type's docs).
    /// On an error nothing is in place and nothing is left behind.
    pub fn commit(self) -> Result<()> {
        let dir = self.dir.as_deref().map(absolute);
        if let Some(d) = &dir {
            let here = std::env::current_dir().ok().and_then(|c| fs::canonicalize(c).ok());
            if here.is_some_and(|h| h.starts_with(d)) {
                return Err(CliError::input(format!(
                    "--out {}: is (or contains) the current directory; give a directory of its own",
                    d.display()
                )));
            }
            let parent = parent_dir(d);
            fs::create_dir_all(parent).map_err(|e| write_error(d, &e))?;
        }
        // Each file under the output directory, by its path relative to it.
        let mut in_dir = Vec::new();
        let mut elsewhere = Vec::new();
        for (dest, bytes) in &self.files {
            match dir.as_deref().and_then(|d| absolute(dest).strip_prefix(d).ok().map(Path::to_path_buf)) {
                Some(rel) => in_dir.push((dest.as_path(), rel, bytes)),
                None => elsewhere.push((dest.as_path(), bytes)),
            }
        }
        let mut lock_dirs: Vec<PathBuf> = elsewhere
            .iter()
            .map(|(d, _)| absolute(parent_dir(d)))
            .chain(dir.as_deref().map(|d| parent_dir(d).to_path_buf()))
            .collect();
        lock_dirs.sort();
        lock_dirs.dedup();
        let _locks = lock_dirs.iter().map(|d| DirLock::acquire(d)).collect::<Result<Vec<_>>>()?;
        lock_dirs.iter().for_each(|d| remove_stale(d));

        let mut temps = Vec::new();
        let result = (|| -> Result<()> {
            let staging = match &dir {
                Some(d) => {
                    let staging = sibling(d, STAGING_SUFFIX);
                    temps.push(staging.clone());
                    fs::create_dir(&staging).map_err(|e| write_error(d, &e))?;
                    if d.is_dir() {
                        let skip: Vec<PathBuf> = in_dir.iter().map(|(_, rel, _)| rel.clone()).collect();
                        link_tree(d, &staging, Path::new(""), &skip).map_err(|e| write_error(d, &e))?;
                    }
                    for (dest, rel, bytes) in &in_dir {
                        let path = staging.join(rel);
                        fs::create_dir_all(parent_dir(&path)).map_err(|e| write_error(dest, &e))?;
                        write_new(&path, bytes, dest)?;
                    }
                    File::open(&staging).and_then(|f| f.sync_all()).map_err(|e| write_error(d, &e))?;
                    Some((d, staging))
                }
                None => None,
            };
            let mut staged = Vec::new();
            for (dest, bytes) in &elsewhere {
                let temp = sibling(dest, TEMP_SUFFIX);
                temps.push(temp.clone());
                write_new(&temp, bytes, dest)?;
                staged.push((temp, *dest));
            }
            if let Some((d, staging)) = staging {
                if d.exists() {
                    exchange(&staging, d).map_err(|e| write_error(d, &e))?;
                } else {
                    fs::rename(&staging, d).map_err(|e| write_error(d, &e))?;
                }
            }
            for (temp, dest) in staged {
                fs::rename(&temp, dest).map_err(|e| write_error(dest, &e))?;
            }
            Ok(())
        })();
        // The staging directory now holds the old outputs (or, on an error,
        // the unfinished new ones); temporary files exist only after an error.
        for t in temps {
            if t.is_dir() {
                let _ = fs::remove_dir_all(&t);
            } else {
                let _ = fs::remove_file(&t);
            }
        }
        result
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

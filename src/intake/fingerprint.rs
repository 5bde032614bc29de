//! A job folder's fingerprint: SHA-256 over its files' relative paths, sizes and contents,
//! independent of where the folder is and of file times, so a job copied twice is recognised.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::claim::CLAIM_FILE;
use super::error::IntakeError;
use super::names::is_junk_name;
use super::readiness::is_ready_marker;

/// SHA-256 (hex) over the folder's files: sorted relative paths, each with its size and
/// content hash; `READY`, junk and `.vaced-claim` files excluded, so two copies of the same
/// job folder get the same fingerprint wherever they are.
pub fn fingerprint(dir: &Path) -> Result<String, IntakeError> {
    let mut files = Vec::new();
    collect(dir, &[], &mut files)?;
    // Byte order of the relative paths, the same on every machine.
    files.sort();
    let mut total = Sha256::new();
    for relative in &files {
        let path = dir.join(std::ffi::OsStr::from_bytes(relative));
        let metadata = std::fs::symlink_metadata(&path)
            .map_err(|e| IntakeError::io(&path, "read the file to fingerprint it", e))?;
        let content_hash = if metadata.file_type().is_symlink() {
            // The link's target text, not what it points at (which may be outside).
            let target = std::fs::read_link(&path)
                .map_err(|e| IntakeError::io(&path, "read the link to fingerprint it", e))?;
            hex(&Sha256::digest(target.as_os_str().as_bytes()))
        } else {
            hash_file(&path)?
        };
        total.update(relative);
        total.update(format!("\0{}\0{content_hash}\n", metadata.len()).as_bytes());
    }
    Ok(hex(&total.finalize()))
}

/// Appends the relative paths (bytes, `/`-separated) of the files below `dir/prefix`.
fn collect(root: &Path, prefix: &[u8], files: &mut Vec<Vec<u8>>) -> Result<(), IntakeError> {
    let dir = root.join(std::ffi::OsStr::from_bytes(prefix));
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| IntakeError::io(&dir, "list the folder to fingerprint it", e))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| IntakeError::io(&dir, "list the folder to fingerprint it", e))?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        let top = prefix.is_empty();
        if is_junk_name(&text) || (top && (is_ready_marker(&text) || text == CLAIM_FILE)) {
            continue;
        }
        let mut relative = prefix.to_vec();
        if !top {
            relative.push(b'/');
        }
        relative.extend_from_slice(name.as_bytes());
        let is_dir = entry
            .file_type()
            .map_err(|e| IntakeError::io(entry.path(), "look at the file to fingerprint it", e))?
            .is_dir();
        if is_dir {
            collect(root, &relative, files)?;
        } else {
            files.push(relative);
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> Result<String, IntakeError> {
    let read_error = |e| IntakeError::io(path, "read the file to fingerprint it", e);
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(read_error)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! File names with a meaning of their own: names copy tools use while a file is still being
//! written (a folder holding one is never ready), and desktop junk that is ignored everywhere.

/// Suffixes of files that copy tools and browsers rename away once the copy is complete.
const TEMPORARY_SUFFIXES: [&str; 3] = [".part", ".tmp", ".crdownload"];
/// Prefixes of files that exist only while a copy or an editor is busy: Office owner files,
/// LibreOffice locks, rsync's delayed-update folder.
const TEMPORARY_PREFIXES: [&str; 3] = ["~$", ".~lock.", ".~tmp~"];
/// Length of the random part of rsync's in-place temporary names (`.name.XXXXXX`).
const RSYNC_RANDOM_LEN: usize = 6;

/// True for names that mean "still being written": `*.part`, `*.tmp`, `*.crdownload`,
/// `~$*`, `.~lock.*`, and rsync's temporaries (`.name.XXXXXX`, `.~tmp~`); suffixes ignore case.
pub fn is_temporary_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    TEMPORARY_SUFFIXES.iter().any(|s| lower.ends_with(s))
        || TEMPORARY_PREFIXES.iter().any(|p| name.starts_with(p))
        || is_rsync_temporary(name)
}

/// True for desktop junk (`.DS_Store`, `Thumbs.db`, macOS `._*` AppleDouble companions):
/// ignored everywhere, never blocking. AppleDouble files stay on NFS/SMB shares for good, so
/// treating them as "still copying" would hold their folder back forever.
pub fn is_junk_name(name: &str) -> bool {
    name == ".DS_Store" || name.eq_ignore_ascii_case("Thumbs.db") || name.starts_with("._")
}

/// rsync writes `file` as `.file.XXXXXX` (six random letters or digits) and renames it at
/// the end; without this, a slow rsync would look like a finished folder plus a hidden file.
fn is_rsync_temporary(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some((stem, random)) = rest.rsplit_once('.') else {
        return false;
    };
    !stem.is_empty()
        && random.len() == RSYNC_RANDOM_LEN
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
        // Hidden files of the job itself rarely look like this; a mixed-case tail makes it
        // likelier rsync's (it draws from upper, lower case and digits).
        && random.bytes().any(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names() {
        let table = [
            ("source.mp4.part", true),
            ("SOURCE.MP4.PART", true),
            ("frames.tmp", true),
            ("clip.mp4.crdownload", true),
            ("._source.mp4", false),
            ("~$notes.docx", true),
            (".~lock.notes.odt#", true),
            (".source.mp4.Xa9bQ2", true),
            (".~tmp~", true),
            ("source.mp4", false),
            ("job.json", false),
            ("partial.mp4", false),
            ("tmp", false),
            ("READY", false),
            (".gitkeep", false),
            (".hidden.config", false),
            ("a.part.mp4", false),
        ];
        for (name, expected) in table {
            assert_eq!(is_temporary_name(name), expected, "{name}");
        }
    }

    #[test]
    fn junk_names() {
        let table = [
            (".DS_Store", true),
            ("Thumbs.db", true),
            ("thumbs.db", true),
            ("job.json", false),
            ("DS_Store", false),
            ("Thumbs.db.part", false),
            ("._source.mp4", true),
        ];
        for (name, expected) in table {
            assert_eq!(is_junk_name(name), expected, "{name}");
        }
    }
}

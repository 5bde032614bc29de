//! The FFmpeg boundary: one-time initialisation, the library version, and opening files
//! with errors that say what is wrong with the file rather than what FFmpeg returned.
//!
//! Everything that touches FFmpeg goes through `init` first so that log silencing and
//! registration happen exactly once per process.

use std::io::Read;
use std::path::Path;
use std::sync::Once;

use ffmpeg_next as ffmpeg;

use super::error::Error;

static INIT: Once = Once::new();

/// Initialises FFmpeg once per process and silences its own log output: every failure
/// reaches the user as a `media::Error` naming the file, and a daemon's log should not
/// carry FFmpeg's unattributed lines (e.g. "moov atom not found").
pub(crate) fn init() {
    INIT.call_once(|| {
        // With FFmpeg ≥ 4 this only registers capture devices and cannot fail; an error
        // here would resurface, with the file's path, at the first open.
        let _ = ffmpeg::init();
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Quiet);
    });
}

/// The version of the FFmpeg codec library linked in, e.g. `"libavcodec 59.37.100"`.
pub fn ffmpeg_version() -> String {
    let v = ffmpeg::codec::version();
    format!("libavcodec {}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
}

/// The URL FFmpeg should open for `path`.
///
/// The `file:` prefix stops FFmpeg from reading a name like `http:clip.mp4` as a protocol;
/// FFmpeg also only takes UTF-8 (and would panic inside `ffmpeg-next` otherwise).
pub(crate) fn file_url(path: &Path) -> Result<String, Error> {
    match path.to_str() {
        Some(s) if !s.contains('\0') => Ok(format!("file:{s}")),
        _ => Err(Error::PathEncoding {
            path: path.to_path_buf(),
        }),
    }
}

/// Opens `path` for demuxing, turning FFmpeg's failures into errors about the file.
pub(crate) fn open_input(path: &Path) -> Result<ffmpeg::format::context::Input, Error> {
    init();
    let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound {
            path: path.to_path_buf(),
        },
        _ => Error::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    if meta.is_dir() {
        return Err(Error::NotVideo {
            path: path.to_path_buf(),
            reason: "it is a folder".into(),
        });
    }
    if meta.len() == 0 {
        return Err(Error::NotVideo {
            path: path.to_path_buf(),
            reason: "the file is empty".into(),
        });
    }
    let url = file_url(path)?;
    ffmpeg::format::input(&url).map_err(|err| {
        if looks_like_mp4(path) {
            // An ISO-BMFF file that FFmpeg cannot open almost always lacks its `moov`
            // atom: the writer was killed before finishing, or a copy stopped early.
            Error::MissingIndex {
                path: path.to_path_buf(),
            }
        } else {
            Error::NotVideo {
                path: path.to_path_buf(),
                reason: format!("FFmpeg: {err}"),
            }
        }
    })
}

/// Whether the file starts like an MP4/MOV (an `ftyp`, `mdat` or `wide` box first).
fn looks_like_mp4(path: &Path) -> bool {
    let mut head = [0u8; 8];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head));
    read.is_ok() && matches!(&head[4..8], b"ftyp" | b"mdat" | b"wide")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_libavcodec_with_three_numbers() {
        let version = ffmpeg_version();
        let numbers = version.strip_prefix("libavcodec ").unwrap();
        let parts: Vec<u32> = numbers.split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(parts.len(), 3);
        assert!(parts[0] >= 58, "{version}");
    }

    #[test]
    fn urls_are_prefixed_so_colons_are_not_protocols() {
        assert_eq!(
            file_url(Path::new("http:clip.mp4")).unwrap(),
            "file:http:clip.mp4"
        );
    }
}

//! Which kind of file system an inbox is on. On network and FUSE file systems the kernel's
//! change events (inotify) only see writes made by this machine, so such inboxes are polled.

use std::path::Path;

/// `statfs` magic numbers (`f_type`, see statfs(2)).
const NFS_MAGIC: u32 = 0x6969;
const CIFS_MAGIC: u32 = 0xFF53_4D42;
const SMB2_MAGIC: u32 = 0xFE53_4D42;
const SMB_MAGIC: u32 = 0x517B;
const FUSE_MAGIC: u32 = 0x6573_5546;
/// Disk and memory file systems whose changes all pass through this kernel: ext2/3/4, XFS,
/// Btrfs, tmpfs, overlayfs, ZFS, F2FS, bcachefs, ramfs, FAT, exFAT, NTFS (ntfs3), HFS+.
const LOCAL_MAGICS: [u32; 14] = [
    0xEF53,
    0x5846_5342,
    0x9123_683E,
    0x0102_1994,
    0x794C_7630,
    0x2FC1_2FC1,
    0xF2F5_2010,
    0xCA45_1A4E,
    0x8584_58F6,
    0x4D44,
    0x2011_BAB0,
    0x5346_544E,
    0x7366_746E,
    0x482B,
];

/// The kind of file system a path is on, from `statfs`'s `f_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// A disk or memory file system of this machine (ext4, XFS, Btrfs, tmpfs, overlay, …).
    Local,
    /// NFS.
    Nfs,
    /// SMB/CIFS (Windows shares, Samba).
    Smb,
    /// A FUSE file system (sshfs, rclone, many cloud mounts).
    Fuse,
    /// Anything else, with its raw `f_type`.
    Other(i64),
}

impl FsKind {
    /// The kind of file system `path` is on.
    pub fn detect(path: &Path) -> std::io::Result<FsKind> {
        detect_raw(path).map(Self::from_magic)
    }

    /// Whether inotify sees every change: false for network and FUSE file systems, whose
    /// other clients' writes produce no event here, and for unknown kinds, to be safe.
    pub fn events_are_reliable(self) -> bool {
        matches!(self, FsKind::Local)
    }

    fn from_magic(raw: i64) -> FsKind {
        // Magic numbers are 32-bit; some targets widen f_type with a sign.
        let magic = raw as u32;
        match magic {
            NFS_MAGIC => FsKind::Nfs,
            CIFS_MAGIC | SMB2_MAGIC | SMB_MAGIC => FsKind::Smb,
            FUSE_MAGIC => FsKind::Fuse,
            m if LOCAL_MAGICS.contains(&m) => FsKind::Local,
            _ => FsKind::Other(raw),
        }
    }
}

impl std::fmt::Display for FsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsKind::Local => f.write_str("a local file system"),
            FsKind::Nfs => f.write_str("NFS"),
            FsKind::Smb => f.write_str("SMB/CIFS"),
            FsKind::Fuse => f.write_str("FUSE"),
            FsKind::Other(raw) => write!(f, "a file system of type {raw:#x}"),
        }
    }
}

#[cfg(target_os = "linux")]
fn detect_raw(path: &Path) -> std::io::Result<i64> {
    use std::os::unix::ffi::OsStrExt;

    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut buf = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `c_path` is a valid NUL-terminated string and `buf` is large enough for the
    // struct statfs(2) fills; it is only read after success.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), buf.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statfs succeeded, so it initialised the struct.
    let stat = unsafe { buf.assume_init() };
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
    Ok(stat.f_type as i64)
}

/// Elsewhere `f_type` means something else; an unknown kind is polled, which is always safe.
#[cfg(not(target_os = "linux"))]
fn detect_raw(path: &Path) -> std::io::Result<i64> {
    std::fs::metadata(path).map(|_| 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_map_to_kinds() {
        assert_eq!(FsKind::from_magic(0x6969), FsKind::Nfs);
        assert_eq!(FsKind::from_magic(0xFF53_4D42), FsKind::Smb);
        assert_eq!(FsKind::from_magic(0xFE53_4D42), FsKind::Smb);
        // The same magic as a sign-extended 32-bit value.
        assert_eq!(
            FsKind::from_magic(0xFF53_4D42_u32 as i32 as i64),
            FsKind::Smb
        );
        assert_eq!(FsKind::from_magic(0x517B), FsKind::Smb);
        assert_eq!(FsKind::from_magic(0x6573_5546), FsKind::Fuse);
        assert_eq!(FsKind::from_magic(0xEF53), FsKind::Local);
        assert_eq!(FsKind::from_magic(0x0102_1994), FsKind::Local);
        assert_eq!(FsKind::from_magic(0x794C_7630), FsKind::Local);
        assert_eq!(FsKind::from_magic(0x0102_1997), FsKind::Other(0x0102_1997));
    }

    #[test]
    fn only_local_file_systems_have_reliable_events() {
        assert!(FsKind::Local.events_are_reliable());
        for kind in [
            FsKind::Nfs,
            FsKind::Smb,
            FsKind::Fuse,
            FsKind::Other(0x0102_1997),
        ] {
            assert!(!kind.events_are_reliable(), "{kind}");
        }
    }

    #[test]
    fn a_missing_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(FsKind::detect(&dir.path().join("missing")).is_err());
    }
}

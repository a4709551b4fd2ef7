//! Which filesystem a folder is on: inotify never sees writes made by other machines on a
//! network mount, so such workspaces are polled.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `statfs` magic numbers of network and FUSE filesystems (from linux/magic.h).
const NETWORK_MAGICS: &[i64] = &[
    0x6969,      // NFS
    0x517B,      // SMB
    0xFF53_4D42, // CIFS
    0xFE53_4D42, // SMB2
    0x6573_5546, // FUSE (sshfs, rclone, ...)
    0x0102_1997, // 9P
    0x00C3_6400, // Ceph
    0x5346_414F, // AFS
    0x0BD0_0BD0, // Lustre
    0x4750_4653, // GPFS
];

/// True when `dir` is on a network or FUSE filesystem. Unknown (statfs failed): false.
pub fn is_network_fs(dir: &Path) -> bool {
    fs_magic(dir).is_some_and(|magic| NETWORK_MAGICS.contains(&magic))
}

/// True when `dir` is on tmpfs (memory only: no writeback). Unknown: false.
pub fn is_tmpfs(dir: &Path) -> bool {
    fs_magic(dir) == Some(libc::TMPFS_MAGIC)
}

/// The `statfs` magic number of the filesystem `dir` is on; `None` when statfs failed.
fn fs_magic(dir: &Path) -> Option<i64> {
    let c_path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stat a properly sized out-buffer.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    (rc == 0).then_some(stat.f_type as i64)
}

//! A payload's capture files (its stdout and stderr in the job directory):
//! created private to the worker's user, never through a symbolic link,
//! only ever regular files, and read back, for the upload and the stderr
//! excerpt, as the very file that was checked. A payload runs as the
//! worker's user and could otherwise replace its capture file with a link
//! to a file it should not publish, or with a FIFO that hangs the worker.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{FcntlArg, OFlag, fcntl};

/// Creates (or truncates) a capture file, mode 0600.
pub fn create(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        // No link is followed; a FIFO put in its place does not block the
        // open (it is refused below).
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    regular(&file, path)?;
    fcntl(&file, FcntlArg::F_SETFL(OFlag::empty())).map_err(io::Error::from)?;
    Ok(file)
}

/// Opens a capture file for reading after its payload ended: `None` when
/// it is absent; an error when it is a link or not a regular file.
pub fn open(path: &Path) -> io::Result<Option<File>> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is a symbolic link", path.display()),
            ));
        }
        Err(e) => return Err(e),
    };
    regular(&file, path)?;
    Ok(Some(file))
}

/// A path naming exactly this open file, whatever becomes of its name
/// (`/proc/self/fd/<n>`), for readers that open by path. Valid while `file`
/// stays open.
pub fn path_of(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

fn regular(file: &File, path: &Path) -> io::Result<()> {
    if file.metadata()?.file_type().is_file() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a regular file", path.display()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn capture_files_are_private_regular_and_never_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("run.stdout");
        let mut file = create(&out).expect("create");
        file.write_all(b"hello").expect("write");
        let mode = std::fs::metadata(&out).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // Read back through the open file's own path, even once renamed.
        let read = open(&out).expect("open").expect("present");
        std::fs::rename(&out, dir.path().join("moved")).expect("rename");
        let mut text = String::new();
        File::open(path_of(&read))
            .expect("reopen")
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "hello");
        assert!(open(&out).expect("absent is fine").is_none());

        let secret = dir.path().join("secret");
        std::fs::write(&secret, "do not publish").expect("write");
        let link = dir.path().join("link.stderr");
        std::os::unix::fs::symlink(&secret, &link).expect("symlink");
        assert!(create(&link).is_err(), "a link is not written through");
        assert_eq!(
            std::fs::read_to_string(&secret).ok().as_deref(),
            Some("do not publish")
        );
        assert!(open(&link).is_err(), "a link is not read through");

        let fifo = dir.path().join("fifo.stdout");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        assert!(
            create(&fifo).is_err(),
            "a FIFO is refused, without blocking"
        );
        assert!(open(&fifo).is_err(), "a FIFO is not read");
    }
}

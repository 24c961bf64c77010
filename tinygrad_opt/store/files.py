"""Writing results safely: atomic replacement, no symlink followed, one run per folder.

- `atomic_write` writes a new file under a temporary name in the same folder (created
  with O_EXCL, so it is never an existing file or a link planted there), flushes it to
  disk, and renames it over the target. `rename` replaces a link at the target instead
  of writing through it. An interruption, a full disk or a crash leaves the previous file
  or the new one, never half of one; the temporary file is removed on any error.
- `remove_temporaries` clears what a `kill -9` in the middle of a write left behind.
- `OutputLock` holds an OS lock (`flock`) on `FOLDER/.lock` for as long as a run writes
  into FOLDER; the OS releases it when the process ends, however it ends.
"""
import errno
import fcntl
import os
import tempfile

TEMP_PREFIX = ".tinygrad_opt-tmp-"   # what remove_temporaries may delete
_UMASK = os.umask(0o022)   # read it (umask can only be read by setting it), then
os.umask(_UMASK)           # restore it: new files get the usual 0o666 & ~umask


def atomic_write(path, write, mode="wb"):
    """Write `path` atomically: `write(f)` fills a temporary file, which then replaces it.
    An OSError names `path`, the file the user knows, not the temporary one."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)    # mode 0o600
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and e.filename == tmp:
            raise OSError(e.errno, e.strerror, path) from None
        raise


def atomic_write_text(path, text):
    atomic_write(path, lambda f: f.write(text), mode="w")


def remove_temporaries(folder):
    """Delete the temporary files an interrupted write left in `folder` (call it only
    while holding the folder's `OutputLock`: no other writer can be using them)."""
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if name.startswith(TEMP_PREFIX) and os.path.isfile(path) and not os.path.islink(path):
            os.unlink(path)


def check_writable(folder):
    """Raise OSError unless a file can be created in `folder` (probed with a fresh
    temporary file: nothing existing is opened, no link is followed)."""
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
    os.close(fd)
    os.unlink(tmp)


class FolderBusy(RuntimeError):
    """Another process is writing into the same output folder."""


class OutputLock:
    """`with OutputLock(folder):` claims the folder for this process or raises FolderBusy."""

    def __init__(self, folder):
        self.path = os.path.join(folder, ".lock")
        self.fd = None

    def __enter__(self):
        # O_NOFOLLOW: a link planted as .lock is refused, not followed.
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(self.fd)
            self.fd = None
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FolderBusy(f"{os.path.dirname(self.path)}: another run is writing "
                                 f"into this folder (it holds {self.path}); wait for it "
                                 f"or choose another --out") from None
            raise
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

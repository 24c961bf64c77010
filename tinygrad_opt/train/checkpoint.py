"""Checkpoints: one pickle of plain dicts and numpy arrays, written atomically."""
import os
import pickle
import tempfile


def save_checkpoint(path, payload):
    """Write `payload` to `path` through a temporary file and a rename, so that an
    interruption leaves either the old checkpoint or the new one, never half of one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path):
    with open(path, "rb") as f:
        return pickle.load(f)

# Copyright 2026 seg_perception developers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Outputs that appear under their final name only when complete: the one atomic writer.

Everything the tools write (bags of every format, report files, frame images, indexes) is
written under a hidden sibling ``.NAME.partial-PID``, synced, and renamed onto ``NAME`` only
after it closed cleanly; any failure (a full disk, an exception, Ctrl-C) removes the sibling.
So a reader, a script or a re-run never finds a truncated, empty or unindexed output under the
final name. A process killed with -9 can only leave the hidden sibling, which nothing takes for
a result (delete it at will). The sibling lives in the same folder because a rename is atomic
only within one filesystem.
"""

from contextlib import contextmanager
import errno
import os
from pathlib import Path
import shutil
from typing import IO, Iterator, Optional, Union

PARTIAL_MARK = '.partial-'

PathLike = Union[str, 'os.PathLike[str]']


def partial_path(final: PathLike) -> Path:
    """Return the hidden sibling a process writes ``final`` under before publishing it."""
    final = Path(final)
    return final.with_name(f'.{final.name}{PARTIAL_MARK}{os.getpid()}')


def is_partial(name: str) -> bool:
    """Return True for the name of an unpublished output (a run that failed or was killed)."""
    return name.startswith('.') and PARTIAL_MARK in name


def named(error: OSError, final: PathLike) -> OSError:
    """
    Return the OSError naming the final output instead of no file or the hidden sibling.

    ``write()`` on a full disk raises ENOSPC with no file name; the user needs the output's.
    """
    if error.filename is not None and not is_partial(os.path.basename(str(error.filename))):
        return error
    return OSError(error.errno, error.strerror or str(error), str(final))


def _fsync_path(path: Path) -> None:
    """Flush a file, or every file and folder of a tree, to the disk."""
    if path.is_dir():
        for folder, _, files in os.walk(path):
            for name in files:
                _fsync_path(Path(folder) / name)
            _fsync_dir(Path(folder))
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_dir(path: Path) -> None:
    """Persist the entries of a folder (a rename is durable only after this)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    except OSError:
        return  # a filesystem that cannot open folders cannot sync them either
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(descriptor)


class AtomicOutput:
    """
    One output (file or folder) written under :attr:`temp` and renamed into place when complete.

    Write to ``temp`` (a file, or a folder holding the output being built), then call
    :meth:`publish` (optionally naming the path inside the folder that becomes the output), or
    :meth:`discard` to remove everything. Without ``overwrite`` an existing final name is never
    replaced. ``sync`` flushes the data to the disk before the rename (a power cut cannot
    publish an empty file then); per-frame images skip it for speed.
    """

    def __init__(self, final: PathLike, overwrite: bool = False, sync: bool = True) -> None:
        self.final = Path(final)
        self.temp = partial_path(self.final)
        self.overwrite = overwrite
        self.sync = sync
        self.published = False
        self.discard()  # a sibling of an earlier process with this pid, long dead

    def publish(self, source: Optional[PathLike] = None, data_synced: bool = False) -> None:
        """
        Move ``source`` (default :attr:`temp`) onto the final name; raise a named OSError.

        ``data_synced`` says the caller already synced the data (only the folder is left).
        """
        source = self.temp if source is None else Path(source)
        try:
            if self.sync and not data_synced:
                _fsync_path(source)
            if not self.overwrite and os.path.lexists(self.final):
                raise FileExistsError(errno.EEXIST, 'exists already, not overwritten',
                                      str(self.final))
            os.replace(source, self.final)
            if self.sync:
                _fsync_dir(self.final.parent)
        except OSError as error:
            self.discard()
            raise named(error, self.final) from None
        self.published = True
        self.discard()  # what is left of a staging folder

    def discard(self) -> None:
        """Remove the unpublished output (idempotent; never touches the final name)."""
        try:
            if self.temp.is_dir() and not self.temp.is_symlink():
                shutil.rmtree(self.temp, ignore_errors=True)
            elif os.path.lexists(self.temp):
                self.temp.unlink()
        except OSError:
            pass


@contextmanager
def atomic_file(final: PathLike, mode: str = 'w', overwrite: bool = True,
                sync: bool = True) -> Iterator[IO]:
    """
    Open a stream whose file appears as ``final`` only if the ``with`` block ends cleanly.

    Text modes write UTF-8. An OSError (a full disk) names ``final`` and leaves nothing behind.
    """
    output = AtomicOutput(final, overwrite=overwrite, sync=sync)
    encoding = None if 'b' in mode else 'utf-8'
    try:
        with open(output.temp, mode, encoding=encoding) as stream:
            yield stream
            stream.flush()
            if sync:
                os.fsync(stream.fileno())
        output.publish(data_synced=True)
    except OSError as error:
        output.discard()
        raise named(error, final) from None
    except BaseException:
        output.discard()
        raise


def write_bytes(final: PathLike, data: bytes, overwrite: bool = True,
                sync: bool = True) -> None:
    """Write ``final`` atomically (see :func:`atomic_file`)."""
    with atomic_file(final, 'wb', overwrite=overwrite, sync=sync) as stream:
        stream.write(data)


def write_text(final: PathLike, text: str, overwrite: bool = True, sync: bool = True) -> None:
    """Write ``final`` atomically as UTF-8 text (see :func:`atomic_file`)."""
    with atomic_file(final, 'w', overwrite=overwrite, sync=sync) as stream:
        stream.write(text)

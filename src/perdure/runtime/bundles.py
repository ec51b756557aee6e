"""Code bundles: a function's folder packed into one archive, the same bytes for the same code.

A bundle is a zip whose members are sorted, dated 1980-01-01 and stored with only their
executable bit, so that packing the same files twice, on any machine, gives the same bytes and
so the same content key; a zip uploaded through the API (``CreateFunction``'s ``ZipFile``) is
repacked the same way. Unpacking checks every member before writing any: no absolute path, no
``..``, no link, no more than ``MAX_UNPACKED_BYTES`` in all (Lambda's limits are 50 MB zipped
for a direct upload and 250 MB unzipped; the same figures apply here).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from perdure.errors import InvalidParameterError

MAX_BUNDLE_BYTES = 50 * 1024 * 1024
MAX_UNPACKED_BYTES = 250 * 1024 * 1024
# Left out when a folder is packed: version control, virtual environments, caches and Perdure's
# own data folder. A Node function's node_modules is not among them: it travels, as in a Lambda zip.
EXCLUDED_NAMES = frozenset({".git", ".hg", ".svn", ".perdure", "__pycache__", ".mypy_cache", ".pytest_cache", ".venv"})
# Left out of a Python function's bundle besides: npm's packages, which no Python handler imports
# and which can be thousands of files (a Node function beside it in the folder has its own bundle).
NOT_PYTHON_CODE = frozenset({"node_modules"})
_EPOCH = (1980, 1, 1, 0, 0, 0)


class BundleError(InvalidParameterError):
    """A folder or archive that cannot become a bundle; the message says what to change."""


@dataclass(frozen=True)
class Bundle:
    """A packed bundle: its bytes and their SHA-256, the key it is stored and cached under."""

    data: bytes
    key: str

    @classmethod
    def of(cls, data: bytes) -> Bundle:
        return cls(data, hashlib.sha256(data).hexdigest())


def pack_folder(
    folder: Path, max_bytes: int = MAX_BUNDLE_BYTES, leave_out: Collection[Path] = (), leave_out_names: Collection[str] = ()
) -> Bundle:
    """Packs ``folder`` into a bundle, leaving out ``EXCLUDED_NAMES``, virtual environments and ``leave_out``.

    ``leave_out`` names files and folders (absolute paths) that are not code: the server's own
    database and data, when they sit beside the handler. ``leave_out_names`` names more files
    and folders to leave out wherever they are (``NOT_PYTHON_CODE`` for a Python function).
    """
    if not folder.is_dir():
        raise BundleError(f"The code folder {folder} does not exist: point CodeUri (or the handler's file) at it.")
    folder = folder.resolve()
    skipped = frozenset(path.resolve() for path in leave_out)
    files = sorted(_files(folder, skipped, frozenset(leave_out_names)), key=lambda path: path.relative_to(folder).as_posix())
    total = sum(path.stat().st_size for path in files)
    if total > MAX_UNPACKED_BYTES:
        raise BundleError(_too_large(folder, files, total, MAX_UNPACKED_BYTES, "unpacked"))
    members = ((path.relative_to(folder).as_posix(), path.read_bytes(), _executable(path.stat().st_mode)) for path in files)
    bundle = _zip(members)
    if len(bundle.data) > max_bytes:
        raise BundleError(_too_large(folder, files, len(bundle.data), max_bytes, "packed"))
    return bundle


def repack_zip(data: bytes, max_bytes: int = MAX_BUNDLE_BYTES) -> Bundle:
    """Checks an uploaded zip as ``unpack`` would and repacks it as ``pack_folder`` packs a folder."""
    if len(data) > max_bytes:
        raise BundleError(
            f"The zip holds {len(data):,} bytes, over the limit of {max_bytes:,}: leave out what the function does not import."
        )
    with _opened(data) as archive:
        infos = _checked_members(archive)
        members = [(info.filename, archive.read(info), _executable(info.external_attr >> 16)) for info in infos]
    return _zip(iter(members))


def member_names(bundle: Bundle) -> list[str]:
    """The paths of the files in a bundle."""
    with _opened(bundle.data) as archive:
        return [info.filename for info in archive.infolist() if not info.is_dir()]


def unpack(bundle: Bundle, cache: Path) -> Path:
    """The folder holding the bundle's files: ``cache/KEY``, unpacked there first if it is not yet.

    Unpacked into a temporary folder and renamed into place, so a process that finds the folder
    finds it whole, and processes unpacking at once all end with one copy. Its files and folders
    are for their owner only, as everything in the server's data folder is.
    """
    target = cache / bundle.key
    if target.is_dir():
        return target
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{bundle.key[:12]}-", dir=cache))
    try:
        with _opened(bundle.data) as archive:
            for info in _checked_members(archive):
                path = staging.joinpath(*PurePosixPath(info.filename).parts)
                for folder in reversed(path.relative_to(staging).parents[:-1]):
                    (staging / folder).mkdir(mode=0o700, exist_ok=True)
                path.write_bytes(archive.read(info))
                # The cache is in the server's data folder, which is its owner's alone.
                path.chmod(0o700 if _executable(info.external_attr >> 16) else 0o600)
        try:
            staging.rename(target)
        except OSError:
            # Another process put its copy in place first: the same bytes, so it is kept.
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _files(folder: Path, skipped: frozenset[Path], names: frozenset[str]) -> Iterator[Path]:
    with os.scandir(folder) as scan:
        entries = list(scan)
    for entry in entries:
        path = Path(entry.path)
        if entry.name in EXCLUDED_NAMES or entry.name in names or entry.name.endswith(".pyc") or path in skipped:
            continue
        if entry.name == ".bin" and path.parent.name == "node_modules":
            # npm's links to packages' commands: a handler imports packages, it runs none of these.
            continue
        if entry.is_symlink():
            raise BundleError(f"{path} is a symbolic link: a bundle holds files only. Copy what it points at, or remove it.")
        if entry.is_dir():
            if (path / "pyvenv.cfg").exists():  # a virtual environment, whatever its name
                continue
            yield from _files(path, skipped, names)
        elif entry.is_file():
            yield path


def _zip(members: Iterator[tuple[str, bytes, bool]]) -> Bundle:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data, executable in sorted(members, key=lambda member: member[0]):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            archive.writestr(info, data)
    return Bundle.of(buffer.getvalue())


def _opened(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise BundleError(f"The code is not a readable zip archive ({error}): upload a .zip of the function's folder.") from None


def _checked_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's files, once every member is known to be safe to write below a folder."""
    files: list[zipfile.ZipInfo] = []
    total = 0
    for info in archive.infolist():
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
            raise BundleError(
                f"The zip's member {info.filename!r} points outside its folder: "
                "zip the folder's contents with paths relative to it."
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise BundleError(f"The zip's member {info.filename!r} is a symbolic link: a bundle holds files only.")
        if info.is_dir():
            continue
        total += info.file_size
        if total > MAX_UNPACKED_BYTES:
            raise BundleError(
                f"The zip unpacks to more than {MAX_UNPACKED_BYTES:,} bytes: leave out what the function does not import."
            )
        files.append(info)
    return files


def _executable(mode: int) -> bool:
    return bool(mode & stat.S_IXUSR)


def _too_large(folder: Path, files: list[Path], size: int, limit: int, how: str) -> str:
    largest = sorted(files, key=lambda path: path.stat().st_size, reverse=True)[:3]
    named = ", ".join(f"{path.relative_to(folder)} ({path.stat().st_size:,} bytes)" for path in largest)
    return (
        f"The code in {folder} is {size:,} bytes {how}, over the limit of {limit:,}. The largest files: {named}. "
        "Move what the function does not import out of its folder (or point CodeUri at a smaller folder)."
    )

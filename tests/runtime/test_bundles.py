"""Code bundles: packed the same for the same code, unpacked only when every member is safe."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from perdure.runtime.bundles import NOT_PYTHON_CODE, Bundle, BundleError, pack_folder, repack_zip, unpack


def app(folder: Path) -> Path:
    (folder / "pkg").mkdir(parents=True)
    (folder / "handler.py").write_text("def handler(event, context):\n    return event\n")
    (folder / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (folder / "run.sh").write_text("#!/bin/sh\n")
    (folder / "run.sh").chmod(0o755)
    return folder


def names(bundle: Bundle) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(bundle.data)).namelist()


def test_the_same_files_pack_to_the_same_bytes_whatever_their_times(tmp_path: Path) -> None:
    first = pack_folder(app(tmp_path / "a"))
    second_folder = app(tmp_path / "b")
    os.utime(second_folder / "handler.py", (0, 0))
    assert pack_folder(second_folder) == first
    (second_folder / "handler.py").write_text("def handler(event, context):\n    return 2\n")
    assert pack_folder(second_folder).key != first.key


def test_version_control_caches_virtualenvs_and_data_stay_out_node_modules_travel(tmp_path: Path) -> None:
    folder = app(tmp_path / "app")
    for name in (".git/config", "__pycache__/handler.cpython-311.pyc", ".venv/lib/x.py", ".perdure/perdure.db", "env/lib/y.py", "node_modules/sdk/index.js"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x")
    (folder / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    assert names(pack_folder(folder)) == ["handler.py", "node_modules/sdk/index.js", "pkg/__init__.py", "run.sh"]


def test_a_folder_over_the_cap_is_refused_naming_its_largest_files(tmp_path: Path) -> None:
    folder = app(tmp_path / "app")
    (folder / "model.bin").write_bytes(os.urandom(200_000))
    with pytest.raises(BundleError) as refused:
        pack_folder(folder, max_bytes=100_000)
    assert "model.bin (200,000 bytes)" in refused.value.message
    assert "over the limit of 100,000" in refused.value.message


def test_a_link_in_the_folder_is_refused(tmp_path: Path) -> None:
    folder = app(tmp_path / "app")
    (folder / "secrets").symlink_to("/etc")
    with pytest.raises(BundleError, match="symbolic link"):
        pack_folder(folder)


def test_unpacking_gives_the_files_with_their_executable_bit_once_per_key(tmp_path: Path) -> None:
    bundle = pack_folder(app(tmp_path / "app"))
    unpacked = unpack(bundle, tmp_path / "cache")
    assert unpacked == tmp_path / "cache" / bundle.key
    assert (unpacked / "pkg" / "__init__.py").read_text() == "VALUE = 1\n"
    assert os.access(unpacked / "run.sh", os.X_OK) and not os.access(unpacked / "handler.py", os.X_OK)
    (unpacked / "marker").write_text("kept")
    assert unpack(bundle, tmp_path / "cache") == unpacked and (unpacked / "marker").exists()
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == [bundle.key]


def zip_of(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_an_uploaded_zip_repacks_to_the_bundle_of_the_same_folder(tmp_path: Path) -> None:
    folder = app(tmp_path / "app")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in ("run.sh", "pkg/", "pkg/__init__.py", "handler.py"):
            archive.write(folder / name, name)
    assert repack_zip(buffer.getvalue()) == pack_folder(folder)


@pytest.mark.parametrize("name", ["../escape.py", "/etc/cron.d/job", "pkg/../../escape.py", "C:/windows.py", "..\\escape.py"])
def test_a_zip_with_a_member_outside_its_folder_is_refused_before_anything_is_written(tmp_path: Path, name: str) -> None:
    data = zip_of(("handler.py", b"ok"), (name, b"bad"))
    with pytest.raises(BundleError, match="points outside its folder"):
        repack_zip(data)
    with pytest.raises(BundleError, match="points outside its folder"):
        unpack(Bundle.of(data), tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []
    assert not (tmp_path / "escape.py").exists()


def test_a_zip_with_a_link_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("passwd")
        info.external_attr = (0o120777) << 16
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(BundleError, match="symbolic link"):
        repack_zip(buffer.getvalue())


def test_what_is_not_a_zip_or_is_too_large_gets_a_clear_error() -> None:
    with pytest.raises(BundleError, match="not a readable zip archive"):
        repack_zip(b"def handler(): pass")
    with pytest.raises(BundleError, match="over the limit of 10"):
        repack_zip(zip_of(("handler.py", b"x" * 100)), max_bytes=10)


def test_what_the_server_keeps_beside_the_code_is_left_out(tmp_path: Path) -> None:
    folder = app(tmp_path / "app")
    for name in ("perdure.db", "perdure.db-wal", "blobs/ab/cd"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("data")
    bundle = pack_folder(folder, leave_out=[folder / "perdure.db", folder / "perdure.db-wal", folder / "blobs"])
    assert names(bundle) == ["handler.py", "pkg/__init__.py", "run.sh"]


def test_npm_command_links_stay_out_and_a_python_functions_bundle_leaves_node_modules_out(tmp_path: Path) -> None:
    folder = app(tmp_path / "app")
    (folder / "node_modules" / "sdk").mkdir(parents=True)
    (folder / "node_modules" / "sdk" / "index.js").write_text("module.exports = {};\n")
    (folder / "node_modules" / ".bin").mkdir()
    (folder / "node_modules" / ".bin" / "sdk").symlink_to("../sdk/index.js")

    assert "node_modules/sdk/index.js" in names(pack_folder(folder))
    assert not any(name.startswith("node_modules/.bin") for name in names(pack_folder(folder)))
    assert not any(name.startswith("node_modules") for name in names(pack_folder(folder, leave_out_names=NOT_PYTHON_CODE)))

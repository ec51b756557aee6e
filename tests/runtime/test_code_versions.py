"""Publishing served functions as versions: functions sharing a code folder share its bundle, packed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from perdure.runtime import code_versions
from perdure.runtime.bundles import Bundle, pack_folder
from perdure.runtime.code_versions import CodeVersions
from perdure.runtime.registry import FunctionSpec, Registry
from perdure.service.executions import DurableService


def test_functions_sharing_a_folder_publish_one_bundle_packed_once(
    service: DurableService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    (shared / "lib").mkdir(parents=True)
    (shared / "lib" / "data.json").write_text("{}\n")
    (shared / "steps.py").write_text("def one(event, context):\n    return 1\n\ndef two(event, context):\n    return 2\n")
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "other.py").write_text("def handler(event, context):\n    return 3\n")
    packed: list[Path] = []

    def counting_pack(folder: Path, **kwargs: object) -> Bundle:
        packed.append(folder)
        return pack_folder(folder, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(code_versions, "pack_folder", counting_pack)
    registry = Registry(
        [
            FunctionSpec("one", shared / "steps.py", "one", code_dir=shared),
            FunctionSpec("two", shared / "steps.py", "two", code_dir=shared),
            FunctionSpec("three", alone / "other.py", "handler"),
        ]
    )

    published = registry.published(CodeVersions(service, tmp_path / "cache"))

    assert sorted(packed) == sorted([shared.resolve(), alone.resolve()])
    keys = {name: service.get_version(name, "1").code_key for name in ("one", "two", "three")}  # type: ignore[union-attr]
    assert keys["one"] == keys["two"] != keys["three"]
    assert {spec.name: spec.version for spec in published} == {"one": 1, "two": 1, "three": 1}

"""A template's Node.js functions: their runtime, handler files, and esbuild builds."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from perdure.errors import InvalidParameterError
from perdure.runtime.template import load_template


def write(tmp_path: Path, properties: str, metadata: str = "") -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / "template.yaml"
    text = f"""\
        Resources:
          Orders:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src
              DurableConfig: {{ExecutionTimeout: 600}}
{textwrap.indent(textwrap.dedent(properties), " " * 14)}
{textwrap.indent(textwrap.dedent(metadata), " " * 12)}
        """
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("runtime", ["nodejs22.x", "nodejs24.x"])
@pytest.mark.parametrize("file", ["app.js", "app.mjs", "app.cjs", "lib/app.mjs"])
def test_a_node_function_finds_its_module_as_lambda_does(tmp_path: Path, runtime: str, file: str) -> None:
    handler = file.rpartition(".")[0] + ".handler"
    path = write(tmp_path, f"Runtime: {runtime}\nHandler: {handler}")
    (tmp_path / "src" / file).parent.mkdir(exist_ok=True)
    (tmp_path / "src" / file).write_text("export const handler = async () => ({});\n")

    (spec,) = load_template(path).functions

    assert spec.runtime == runtime
    assert spec.file == tmp_path / "src" / file
    assert spec.attribute == "handler"
    assert spec.code_folder == tmp_path / "src"


def test_a_node_module_is_looked_for_as_js_before_mjs(tmp_path: Path) -> None:
    path = write(tmp_path, "Runtime: nodejs22.x\nHandler: app.handler")
    (tmp_path / "src" / "app.js").write_text("")
    (tmp_path / "src" / "app.mjs").write_text("")

    assert load_template(path).functions[0].file.name == "app.js"


def test_a_missing_node_module_names_the_files_tried(tmp_path: Path) -> None:
    path = write(tmp_path, "Runtime: nodejs22.x\nHandler: app.handler")

    with pytest.raises(InvalidParameterError) as error:
        load_template(path)

    assert f"{path}: Resource Orders: Handler 'app.handler' needs one of the files" in error.value.message
    assert "app.js" in error.value.message and "app.mjs" in error.value.message and "app.cjs" in error.value.message


def test_a_build_method_other_than_esbuild_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "Runtime: nodejs22.x\nHandler: app.handler", "Metadata: {BuildMethod: makefile}")

    with pytest.raises(InvalidParameterError, match="Metadata.BuildMethod is 'makefile'; Perdure builds Node functions with esbuild only"):
        load_template(path)


def test_unknown_esbuild_settings_and_missing_entry_points_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path, "Runtime: nodejs22.x\nHandler: app.handler", "Metadata: {BuildMethod: esbuild, BuildProperties: {Minfy: true}}"
    )
    with pytest.raises(InvalidParameterError, match="BuildProperties.Minfy is not an esbuild setting Perdure knows"):
        load_template(path)

    path = write(
        tmp_path, "Runtime: nodejs22.x\nHandler: app.handler", "Metadata: {BuildMethod: esbuild, BuildProperties: {EntryPoints: [app.ts]}}"
    )
    with pytest.raises(InvalidParameterError, match=r"EntryPoints names app.ts, but .*app.ts does not exist"):
        load_template(path)


def test_other_runtimes_are_still_skipped_with_a_reason(tmp_path: Path) -> None:
    path = write(tmp_path, "Runtime: nodejs18.x\nHandler: app.handler")

    loaded = load_template(path)

    assert loaded.functions == []
    assert "its Runtime is nodejs18.x; Perdure runs Python handlers and Node.js ones (nodejs22.x, nodejs24.x)" in loaded.skipped[0]


def test_esbuild_builds_typescript_into_the_sam_build_folder_with_the_settings_given(tmp_path: Path) -> None:
    metadata = """\
        Metadata:
          BuildMethod: esbuild
          BuildProperties: {EntryPoints: [app.ts], Format: esm, Minify: true, External: [left-pad], Target: es2022}
        """
    path = write(tmp_path, "Runtime: nodejs22.x\nHandler: app.handler", metadata)
    (tmp_path / "src" / "app.ts").write_text(
        'import pad from "left-pad";\nexport const handler = async (event: {n: number}): Promise<string> => pad(String(event.n), 3);\n'
    )

    (spec,) = load_template(path).functions

    built = tmp_path / ".aws-sam" / "build" / "Orders"
    assert (spec.file, spec.code_folder) == (built / "app.js", built)
    code = spec.file.read_text()
    assert 'from"left-pad"' in code.replace(" ", "")  # left external, and minified
    assert "Promise<string>" not in code
    # An ES module bundle in a .js file: Node reads it as one under this package.json.
    assert (built / "package.json").read_text().strip() == '{"type": "module"}'


def test_a_typescript_error_fails_the_build_naming_the_function(tmp_path: Path) -> None:
    path = write(tmp_path, "Runtime: nodejs22.x\nHandler: app.handler", "Metadata: {BuildMethod: esbuild, BuildProperties: {EntryPoints: [app.ts]}}")
    (tmp_path / "src" / "app.ts").write_text("export const handler = async ( => 1;\n")

    with pytest.raises(InvalidParameterError, match=r"Resource Orders: esbuild could not build app.ts"):
        load_template(path)

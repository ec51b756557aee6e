"""A template's FunctionUrlConfig: read into the function's spec and kept with its versions; a bad
one is refused when the template is loaded, naming the template file, the function and the setting."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perdure.errors import InvalidParameterError
from perdure.protocol.function_urls import AuthType, FunctionUrl, InvokeMode
from perdure.protocol.versions import FunctionConfig
from perdure.runtime.template import load_template


def template(tmp_path: Path, url_config: str, globals_section: str = "") -> Path:
    (tmp_path / "handler.py").write_text("def process_order(event, context):\n    return event\n")
    path = tmp_path / "template.yaml"
    resources = f"""\
        Resources:
          Orders:
            Type: AWS::Serverless::Function
            Properties:
              Handler: handler.process_order
              DurableConfig: {{ExecutionTimeout: 3600}}
              {url_config}
        """
    path.write_text(globals_section + "\n" + textwrap.dedent(resources))
    return path


def test_function_url_config_is_read_into_the_spec(tmp_path: Path) -> None:
    (spec,) = load_template(template(tmp_path, "FunctionUrlConfig: {AuthType: AWS_IAM, InvokeMode: BUFFERED}")).functions
    assert spec.function_url == FunctionUrl(AuthType.AWS_IAM, InvokeMode.BUFFERED)
    (plain,) = load_template(template(tmp_path, "Timeout: 30")).functions
    assert plain.function_url is None


def test_globals_give_every_function_a_url(tmp_path: Path) -> None:
    path = template(tmp_path, "", "Globals:\n  Function:\n    FunctionUrlConfig:\n      AuthType: NONE")
    (spec,) = load_template(path).functions
    assert spec.function_url == FunctionUrl(AuthType.NONE)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("FunctionUrlConfig: {AuthType: PUBLIC}", "FunctionUrlConfig.AuthType must be NONE or AWS_IAM, not 'PUBLIC'."),
        ("FunctionUrlConfig: {AuthType: NONE, InvokeMode: EAGER}", "FunctionUrlConfig.InvokeMode must be BUFFERED, not 'EAGER'"),
        ("FunctionUrlConfig: {AuthType: NONE, InvokeMode: RESPONSE_STREAM}", "InvokeMode RESPONSE_STREAM is not supported"),
        ("FunctionUrlConfig: {InvokeMode: BUFFERED}", "FunctionUrlConfig.AuthType is missing. Write AuthType: NONE"),
        ("FunctionUrlConfig: {}", "FunctionUrlConfig.AuthType is missing."),
        ("FunctionUrlConfig: {AuthType: [NONE]}", "FunctionUrlConfig.AuthType must be NONE or AWS_IAM, not ['NONE']."),
        ("FunctionUrlConfig: {AuthType: NONE, Cors: {AllowOrigins: ['*']}}", "FunctionUrlConfig.Cors is not supported"),
        ("FunctionUrlConfig: {AuthType: NONE, Auth: x}", "FunctionUrlConfig has an unknown setting 'Auth'"),
        ("FunctionUrlConfig: NONE", "FunctionUrlConfig must be a mapping of settings, not 'NONE'."),
        ("FunctionUrlConfig: {AuthType: !GetAtt X.Y}", "FunctionUrlConfig.AuthType uses !GetAtt, which has no value outside"),
    ],
    ids=["auth", "mode", "streaming", "no-auth", "empty", "auth-list", "cors", "unknown", "not-mapping", "intrinsic"],
)
def test_a_bad_function_url_config_names_the_template_and_function(tmp_path: Path, config: str, message: str) -> None:
    path = template(tmp_path, config)
    with pytest.raises(InvalidParameterError) as caught:
        load_template(path)
    assert caught.value.message.startswith(f"{path}: Resource Orders: ")
    assert message in caught.value.message


def test_perdure_serve_refuses_a_bad_function_url_config_before_serving(tmp_path: Path) -> None:
    path = template(tmp_path, "FunctionUrlConfig: {AuthType: PUBLIC}")
    done = subprocess.run(
        [sys.executable, "-m", "perdure", "serve", "--template", str(path), "--dev", "--db", f"sqlite:///{tmp_path}/p.db"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"Error: {path}: Resource Orders: FunctionUrlConfig.AuthType must be NONE or AWS_IAM" in done.stderr
    assert not (tmp_path / "p.db").exists()


def test_a_version_keeps_its_url_and_a_version_without_one_keeps_its_digest() -> None:
    with_url = FunctionConfig(handler="app.py:handler", function_url=FunctionUrl(AuthType.NONE))
    assert FunctionConfig.from_json(with_url.to_json()) == with_url
    without = FunctionConfig(handler="app.py:handler")
    # What versions stored before function URLs hold: the same text, so the same digest.
    assert without.to_json() == (
        '{"execution_timeout_seconds":null,"handler":"app.py:handler","memory_mb":null,'
        '"retention_days":null,"runtime":null,"timeout_seconds":900}'
    )
    assert with_url.digest("k") != without.digest("k")

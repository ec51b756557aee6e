# Sourced by the scripts: creates .venv with Perdure and its test tools on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
    "$PYTHON" -m venv "$ROOT/.venv"
fi
if ! "$ROOT/.venv/bin/python" -c "import perdure, pytest" 2>/dev/null \
        || [ "$ROOT/pyproject.toml" -nt "$ROOT/.venv/.installed" ]; then
    "$ROOT/.venv/bin/python" -m pip install --quiet --upgrade pip
    "$ROOT/.venv/bin/python" -m pip install --quiet -e "$ROOT[test]"
    touch "$ROOT/.venv/.installed"
fi
export PATH="$ROOT/.venv/bin:$PATH"

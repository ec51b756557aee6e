"""Runs the ``perdure`` command: ``python -m perdure``."""

from perdure.cli import main

# Worker processes are spawned, and spawning re-imports the main module: only run when executed.
if __name__ == "__main__":
    main()

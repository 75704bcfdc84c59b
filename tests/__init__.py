"""The tests mirror the code: tests/<layer>/<folder>/; end-to-end tests in tests/e2e/."""

from pathlib import Path

# The checkout: fixtures are read from beside the integration they belong to.
REPO_ROOT = Path(__file__).resolve().parent.parent

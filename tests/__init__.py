"""The kiosk's tests."""

import pytest

# The shared builders and harnesses assert too: pytest explains their failures as it
# explains a test's own.
pytest.register_assert_rewrite("tests.factories", "tests.support")

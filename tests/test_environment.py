"""The one test that always collects: it says why nothing else ran when this Python lacks the test setup."""

import os

import pytest
from environment import PACK_ENV_FLAG, what_is_missing


def test_this_python_can_run_the_tests():
    reason = what_is_missing()
    if reason and os.environ.get(PACK_ENV_FLAG) == "1":
        pytest.fail(f"`python multiid.py test` set up an incomplete environment: {reason}")
    if reason:
        pytest.skip(reason)

"""`bazel test` entry point: runs the test file(s) given as arguments under pytest.

Every py_test in BUILD uses this as `main` (tests are pytest modules, which do
nothing when executed directly).
"""

import sys

import pytest

if __name__ == '__main__':
  sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', *sys.argv[1:]]))

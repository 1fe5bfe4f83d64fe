#!/usr/bin/env bash
# Prints the path of a working Python 3.10 interpreter, or exits 1.
# Order: $PYTHON310, python3.10 on PATH (a pyenv shim counts only if it runs),
# then pyenv's newest installed 3.10.x.
works() { [ -n "$1" ] && "$1" -c 'import sys, venv; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; }
if works "${PYTHON310:-}"; then echo "$PYTHON310"; exit 0; fi
if p=$(command -v python3.10 2>/dev/null) && works "$p"; then echo "$p"; exit 0; fi
if command -v pyenv >/dev/null 2>&1; then
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10\.[0-9]+$' | sort -t. -k3 -n -r); do
    p="$(pyenv prefix "$v" 2>/dev/null)/bin/python3.10"
    if works "$p"; then echo "$p"; exit 0; fi
  done
fi
for p in "$HOME"/.pyenv/versions/3.10.*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10; do
  if works "$p"; then echo "$p"; exit 0; fi
done
exit 1

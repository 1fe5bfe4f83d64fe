"""A zygote for tests that start `python -m MODULE ARGS` processes (the KFP
harness's tasks, `ssd run` processes that a test kills or runs side by side):
imports their third-party libraries once, then forks one child per command.

Why: every task of a compiled pipeline is a fresh `python -m
tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor ...` process,
and importing that module (TFX, TensorFlow, Beam, TFMA) costs ~7 CPU-s before
the task does anything: ~110 CPU-s of the ~16 tasks of one harness run. A
forked child starts with those libraries imported and nothing else of the
caller: this process runs in an empty directory under an empty HOME, with
sys.path[0] that directory, and imports only the modules it is given
(third-party libraries, never the project's). The child then does what
`python -m` does: chdir to the task's empty directory, HOME and environment
from the request, sys.path[0] the working directory, the module run as
`__main__` with the command's arguments, stdout and stderr to the task's log,
atexit handlers at the end, and the exit status of SystemExit or 1 on an
uncaught exception.

Run as `python kfp_zygote.py MODULE...` (the modules to import). Protocol, one
JSON object per line: requests on stdin `{"id", "argv", "cwd", "env", "log"}`
and optionally `"err"` (argv = [python, "-m", module, args...]; stdout goes
to `log`, stderr to `err` or else `log` too); answers on stdout: `{"id",
"pid"}` once the child is forked (so a test can signal it), `{"id", "code"}`
when it has exited (the status as subprocess reports it: -9 for SIGKILL).
EOF on stdin: the zygote waits for its children and exits.

tests/zygote.py is the client.
"""

import json
import os
import select
import sys


def _child(request) -> None:
  """Runs in the forked child; never returns."""
  code = 1
  try:
    os.chdir(request['cwd'])
    os.environ.clear()
    os.environ.update(request['env'])
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    log = os.open(request['log'], flags, 0o644)
    err = os.open(request['err'], flags, 0o644) if request.get('err') else log
    os.dup2(log, 1)
    os.dup2(err, 2)
    for fd in {log, err}:
      os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    argv = request['argv']
    assert argv[1] == '-m', argv
    import atexit  # pylint: disable=g-import-not-at-top
    import runpy  # pylint: disable=g-import-not-at-top
    import traceback  # pylint: disable=g-import-not-at-top
    sys.path[0] = os.getcwd()
    sys.argv = [argv[2]] + list(argv[3:])   # run_module puts the module's file first
    try:
      runpy.run_module(argv[2], run_name='__main__', alter_sys=True)
      code = 0
    except SystemExit as e:
      if e.code is None or isinstance(e.code, int):
        code = e.code or 0
      else:
        print(e.code, file=sys.stderr)
        code = 1
    except BaseException:  # pylint: disable=broad-except
      traceback.print_exc()
      code = 1
    atexit._run_exitfuncs()  # pylint: disable=protected-access  (as the interpreter at exit)
  finally:
    try:
      sys.stdout.flush()
      sys.stderr.flush()
    finally:
      os._exit(code)  # pylint: disable=protected-access


def main(modules) -> None:
  # As `python -m` in this (empty) working directory: nothing of the checkout.
  sys.path[0] = os.getcwd()
  for module in modules:
    __import__(module)
  sys.stdout.flush()
  sys.stderr.flush()
  children = {}
  pending = b''
  reading = True
  while reading or children:
    ready, _, _ = select.select([0] if reading else [], [], [], 0.05)
    if ready:
      chunk = os.read(0, 1 << 16)
      reading = bool(chunk)
      pending += chunk
      while b'\n' in pending:
        line, pending = pending.split(b'\n', 1)
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
          _child(request)
        children[pid] = request['id']
        os.write(1, (json.dumps({'id': request['id'], 'pid': pid}) + '\n').encode('utf-8'))
    while children:
      pid, status = os.waitpid(-1, os.WNOHANG)
      if pid == 0:
        break
      answer = {'id': children.pop(pid), 'code': os.waitstatus_to_exitcode(status)}
      os.write(1, (json.dumps(answer) + '\n').encode('utf-8'))


if __name__ == '__main__':
  main(sys.argv[1:])

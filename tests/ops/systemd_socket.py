#!/usr/bin/env python3
"""Socket activation as systemd does it (sd_listen_fds(3)): a listening socket on descriptor 3,
LISTEN_PID naming the process, LISTEN_FDS=1. The example is asked to listen on that socket's
address; it can only answer if it took descriptor 3 instead of binding (a second bind of a
listening port fails), and the socket's backlog alone would connect but never answer.

Usage: systemd_socket.py PROGRAM [ARGS...]  (the listen address is appended)."""

import signal
import socket
import subprocess
import sys
import urllib.request

ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(64)
addr = "127.0.0.1:%d" % ls.getsockname()[1]
fd = ls.fileno()

# The shell moves the socket to descriptor 3 (subprocess would close a descriptor 3 made in
# preexec_fn), then becomes the program, so that LISTEN_PID ($$) is the program's pid.
move = "" if fd == 3 else f"exec 3<&{fd} {fd}<&-; "
script = move + 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"'
cmd = ["sh", "-c", script, "sh", *sys.argv[1:], addr]
proc = subprocess.Popen(cmd, pass_fds=[fd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
ls.close()
try:
    with urllib.request.urlopen(f"http://{addr}/", timeout=20) as r:
        assert r.status == 200, r.status
        body = r.read()
    print(f"-- ok: socket activation: {addr} answered {r.status} ({len(body)} bytes) on the passed socket")
finally:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
if proc.returncode != 0:
    sys.exit(f"the example exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}")

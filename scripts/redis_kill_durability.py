#!/usr/bin/env python3
"""Does a SIGKILLed redis-server lose acknowledged writes? `python3 scripts/redis_kill_durability.py always|everysec`:
pipelined INCRs for 2.5 s, kill -9, restart from the AOF, compare the last acknowledged value with what survived."""
import socket, subprocess, time, os, sys, signal, threading
mode = sys.argv[1]
d = f"/tmp/redis-kill-durability-{mode}"; os.makedirs(d, exist_ok=True)
for f in os.listdir(d):
    p=os.path.join(d,f)
    if os.path.isdir(p):
        import shutil; shutil.rmtree(p)
    else: os.remove(p)
port = 16379
args = ["redis-server","--port",str(port),"--bind","127.0.0.1","--dir",d,"--save",""]
args += ["--appendonly","yes","--appendfsync",mode]
def start():
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    for _ in range(100):
        try:
            s = socket.create_connection(("127.0.0.1",port)); return p, s
        except OSError: time.sleep(0.05)
p, s = start()
acked = 0
stop = time.time() + 2.5
buf=b""
f = s.makefile("rb")
def sender():
    try:
        while True:
            s.sendall(b"*2\r\n$4\r\nINCR\r\n$1\r\nc\r\n"*64)
    except OSError: pass
t = threading.Thread(target=sender, daemon=True); t.start()
killed=False
try:
    while True:
        line = f.readline()
        if not line: break
        if line.startswith(b":"): acked = int(line[1:])
        if not killed and time.time() > stop:
            os.kill(p.pid, signal.SIGKILL); killed=True
except OSError: pass
p.wait()
p, s = start()
# wait for loading
time.sleep(0.5)
s.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\nc\r\n"); r = s.makefile("rb"); r.readline(); v = r.readline().strip()
print(mode, "acked", acked, "after restart", v.decode() if v else None, "lost", acked - int(v or 0))
os.kill(p.pid, signal.SIGKILL)

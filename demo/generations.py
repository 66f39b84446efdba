#!/usr/bin/env python3
# demo/generations.py - four generations of plain os.fork(), run under rf-run by
# sh/demo (step 4): each remote generation forks the next, and every pid is real
# on the first host, under its parent's.  Lines come over a pipe the first
# generation made before any fork, so all of them meet at home.
import os, socket, sys, time

GENS = 4
r, w = os.pipe()
top = os.getpid()

def generation(n):
    os.write(w, b"gen %d: pid %d, parent %d, on %s\n" %
             (n, os.getpid(), os.getppid(), socket.gethostname().encode()))
    if n + 1 < GENS:
        kid = os.fork()
        if kid == 0:
            generation(n + 1)
        _, st = os.waitpid(kid, 0)
        code = os.waitstatus_to_exitcode(st)
        os.write(w, b"gen %d: my child %d ended with %d\n" % (n, kid, code))
        os._exit(n)
    time.sleep(0.5)        # the last one lingers, so the chain can be seen
    os._exit(n)

print("gen 0: pid %d on %s" % (top, socket.gethostname()), flush=True)
first = os.fork()
if first == 0:
    os.close(r)
    generation(1)
os.close(w)
seen, out = 0, os.fdopen(r)
for line in out:
    print(line, end="", flush=True)
    if line.startswith("gen %d:" % (GENS - 1)) and not seen:
        seen = 1
        # on this host: each remote generation is a real process (its rf-stub),
        # the child of the one before
        pid, chain = first, []
        while pid:
            with open("/proc/%d/comm" % pid) as f:
                comm = f.read().strip()
            with open("/proc/%d/stat" % pid) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            chain.append("%d (%s, parent %d)" % (pid, comm, ppid))
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = f.read().split()
            pid = int(kids[0]) if kids else 0
        print("on %s meanwhile: %s" % (socket.gethostname(), " -> ".join(chain)), flush=True)
_, st = os.waitpid(first, 0)
print("gen 0: my child %d ended with %d" % (first, os.waitstatus_to_exitcode(st)))
sys.exit(0 if seen else 1)

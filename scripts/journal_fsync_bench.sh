#!/bin/sh
# Append cost of the Redis journal's persistence settings: XADD of a token-sized event to one
# of 1000 streams, 50 clients, each waiting for its reply (-P 1) or pipelining 16 (-P 16, like
# the runtime's group-commit writer). Fresh server per run, files on the root disk (not tmpfs).
set -e
port=${PORT:-17379}
for mode in always everysec; do
  for pipe in 1 16; do
    rm -rf "${DIR:-/tmp/jbench}/$mode"; mkdir -p "${DIR:-/tmp/jbench}/$mode"
    redis-server --port $port --bind 127.0.0.1 --save '' --appendonly yes --appendfsync $mode --dir ${DIR:-/tmp/jbench}/$mode --daemonize no >/dev/null &
    pid=$!
    until redis-cli -p $port ping >/dev/null 2>&1; do sleep 0.05; done
    echo "== appendfsync $mode, -P $pipe (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    redis-benchmark -p $port -n ${N:-40000} -c 50 -P $pipe -r 1000 --csv XADD ev:__rand_int__ '*' k token d '{"step":"s1","text":" word42"}' 2>/dev/null | tail -1
    kill $pid; wait $pid 2>/dev/null || true
  done
done

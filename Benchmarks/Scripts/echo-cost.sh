#!/usr/bin/env bash
# The load: ECHO_CLIENT (default: the shared peers' echo-client, ../shared/peers/build.sh), 64 conns x 64 B for SECS (5) s.
# echo-cost.sh NAME PORT CMD... : starts the server, runs echo-client 5 s, prints msgs/s and server CPU us/msg, ctx switches/msg
name=$1; port=$2; shift 2
"$@" >/dev/null 2>&1 & pid=$!
for i in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
read -r u0 s0 < <(awk '{print $14, $15}' /proc/$pid/stat)
c0=$(awk '/ctxt_switches/{s+=$2} END{print s}' /proc/$pid/task/*/status)
out=$(${ECHO_CLIENT:-/tmp/spindle-peers/echo-client} --port $port --conns 64 --size 64 --seconds ${SECS:-5})
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$pid/stat)
c1=$(awk '/ctxt_switches/{s+=$2} END{print s}' /proc/$pid/task/*/status)
kill $pid; wait $pid 2>/dev/null
msgs=$(echo "$out" | sed -n 's/.* msgs=\([0-9]*\).*/\1/p'); rate=$(echo "$out" | sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p')
tck=$(getconf CLK_TCK)
python3 -c "m=$msgs; print(f'$name rate={$rate:.0f} user_us/msg={($u1-$u0)/$tck*1e6/m:.2f} sys_us/msg={($s1-$s0)/$tck*1e6/m:.2f} cs/msg={($c1-$c0)/m:.3f}')"

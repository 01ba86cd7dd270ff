#!/usr/bin/env bash
# Needs the uprobe: perf probe -x /opt/swift/usr/lib/swift/linux/libswift_Concurrency.so -a 'swsw=swift_task_switch a=%di:x64 b=%si:x64 c=%dx:x64 d=%cx:x64'
# task-switches.sh BINARY PORT [args]: counts swift_task_switch calls per echoed message and names their resume functions.
bin=$1; port=$2; shift 2
$bin --host 127.0.0.1 --port $port "$@" > /dev/null 2>&1 & SP=$!; sleep 0.5
base=$(grep "r-xp.*$(basename $bin)" /proc/$SP/maps | head -1 | cut -d- -f1)
perf record -e probe_libswift_Concurrency:swsw -p $SP -o /tmp/perf.sw.data -- sleep 2 > /dev/null 2>&1 & PS=$!
out=$(${ECHO_CLIENT:-/tmp/spindle-peers/echo-client} --port $port --conns 64 --size 64 --seconds 2); wait $PS; kill $SP
msgs=$(echo "$out" | sed -n 's/.* msgs=\([0-9]*\).*/\1/p')
perf script -i /tmp/perf.sw.data 2>/dev/null | awk '{print $(NF-3), $NF}' | sed 's/a=//; s/d=//' | sort | uniq -c | sort -rn | head -8 > /tmp/sw.txt
nm $bin | sort > /tmp/syms.txt
python3 - $base $msgs <<'PY'
import bisect,sys,subprocess
base=int(sys.argv[1],16); msgs=int(sys.argv[2])
syms=[]
for l in open('/tmp/syms.txt'):
    p=l.split()
    if len(p)==3:
        try: syms.append((int(p[0],16),p[2]))
        except: pass
syms.sort(); addrs=[s[0] for s in syms]
def name(x):
    off=x-base
    if off<0 or off>0x10000000: return hex(x)
    i=bisect.bisect_right(addrs,off)-1
    return subprocess.run(['swift','demangle','--simplified',syms[i][1]],capture_output=True,text=True).stdout.strip()[:200]
total=0
for l in open('/tmp/sw.txt'):
    c,a,d=l.split(); c=int(c); total+=c
    print(f"{c/msgs:.2f}/msg  a={name(int(a,16))}\n           d={name(int(d,16))}")
print(f"msgs={msgs}")
PY

#!/bin/sh
# DAG middle: reads the parent's out.dat (linked in by the launcher) and
# writes its share of the sum to part-<task>.dat.
k=$1; n=$2
test -e out.dat || { echo "out.dat was not linked in" >&2; exit 2; }
awk -v k="$k" -v n="$n" 'NR % n == k { s += $1 } END { print s }' out.dat > "part-$COPAL_TASK_ID.dat"
echo "part $k of $n: $(cat part-$COPAL_TASK_ID.dat)"

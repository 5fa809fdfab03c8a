#!/bin/sh
# DAG leaf: adds the parts of all its parents.
total=0
for f in part-*.dat; do total=$((total + $(cat "$f"))); done
echo "sum of 1..1000 from $(ls part-*.dat | wc -l) parts: $total"
test "$total" -eq 500500

#!/bin/sh
# DAG root: writes the data its children read (out.dat).
seq 1 1000 > out.dat
echo "produced $(wc -l < out.dat) numbers in $(pwd)"

#!/bin/sh
# Runs longer than its timeout_seconds allows.
echo "starting a long computation"
sleep 60

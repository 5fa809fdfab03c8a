#!/bin/sh
# Postprocess and error handler of the "flaky" app: on an error
# (COPAL_ERROR=1) exit 0 to ask for a retry.
if [ -n "$COPAL_ERROR" ]; then echo "handler: retrying after the error"; exit 0; fi
echo "postprocess: ok"

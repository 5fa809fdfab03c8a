#!/bin/sh
# Fails on its first attempt; the app's error handler asks for a retry.
echo "attempt $COPAL_ATTEMPT"
if [ "$COPAL_ATTEMPT" = 1 ]; then echo "simulated crash" >&2; exit 3; fi
echo "second try worked"

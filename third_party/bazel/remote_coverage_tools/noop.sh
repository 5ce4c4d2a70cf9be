#!/bin/sh
# No-op stand-in for Bazel coverage tools (offline build).
exit 0

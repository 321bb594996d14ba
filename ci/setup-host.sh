#!/usr/bin/env bash
# Installs what the native part of the test suite needs. Idempotent.
set -euo pipefail
if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi

#!/bin/sh
# Writes small generated seed inputs to corpus/<target>/ (nothing is committed).
set -eu
cd "$(dirname "$0")/../../.."
cargo test -p kexec-core --test formats_fuzz_seeds -- --ignored write_fuzz_seeds
cargo test -p kexec-core --test plan_fuzz_seeds -- --ignored write_plan_fuzz_seeds

#!/bin/sh
# Writes the seed inputs to corpus/<target>/ (or $KEXEC_RS_FUZZ_CORPUS/<target>/;
# nothing is committed): synthetic containers, the committed fixtures, and —
# unless --no-kernels — the first bytes of the downloaded Debian kernels.
set -eu
cd "$(dirname "$0")/../../.."
cargo test -p kexec-core --test formats_fuzz_seeds -- --ignored --exact write_fuzz_seeds
cargo test -p kexec-core --test plan_fuzz_seeds -- --ignored write_plan_fuzz_seeds
cargo test -p kexec-core --test vmcore_props -- --ignored write_vmcore_fuzz_seeds
if [ "${1:-}" != "--no-kernels" ]; then
    cargo test -p kexec-core --test formats_fuzz_seeds -- --ignored write_kernel_fuzz_seeds
fi

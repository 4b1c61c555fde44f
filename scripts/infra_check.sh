#!/usr/bin/env bash
# Offline checks of infra/: terraform fmt, init (from the AWS provider's filesystem mirror,
# no network) + validate of the module and both examples, `terraform test` (mocked AWS
# provider, plan only) of each, the examples being the same root module, and checkov with
# zero failed checks. A step whose tool is missing is skipped with a message, never silently.
# Prints "terraform test: N passed, N failed" so CI can count the Terraform tests.
#
# Environment: TF_PLUGIN_DIR (default: the first registry.terraform.io mirror found under
# /opt, /usr/share, /usr/local/share or ~/.terraform.d), CHECKOV (default: checkov on PATH,
# else .venv-infra/bin/checkov as installed by .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

MODULE=infra/modules/agent-runtime
EXAMPLES=(infra/examples/staging infra/examples/prod)
failed=0
# A CLI config that does not exist makes terraform warn on every command; use none instead.
if [ ! -f "${TF_CLI_CONFIG_FILE:-$HOME/.terraformrc}" ]; then
    export TF_CLI_CONFIG_FILE=/dev/null
fi
export TF_IN_AUTOMATION=1
export CHECKPOINT_DISABLE=1

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; failed=1; }

# --- the examples are one root module --------------------------------------------------------
step "examples: staging and prod differ only in terraform.tfvars"
for f in main.tf variables.tf outputs.tf versions.tf tests/plan.tftest.hcl; do
    cmp -s "infra/examples/staging/$f" "infra/examples/prod/$f" || fail "infra/examples/{staging,prod}/$f differ"
done
[ "$failed" = 0 ] && echo "ok"

# --- terraform -------------------------------------------------------------------------------
find_mirror() {
    if [ -n "${TF_PLUGIN_DIR:-}" ]; then
        echo "$TF_PLUGIN_DIR"
        return
    fi
    local root found
    for root in /opt /usr/share /usr/local/share "$HOME/.terraform.d"; do
        [ -d "$root" ] || continue
        found=$(find "$root" -maxdepth 3 -type d -name registry.terraform.io 2>/dev/null | head -n 1)
        if [ -n "$found" ]; then
            dirname "$found"
            return
        fi
    done
}

tests_passed=0
tests_failed=0
if ! command -v terraform >/dev/null 2>&1; then
    step "terraform: SKIPPED (terraform is not installed; install Terraform >= 1.11 to run fmt, validate and test)"
else
    mirror=$(find_mirror)
    step "terraform fmt -check -recursive infra ($(terraform version | head -n 1))"
    terraform fmt -check -recursive infra || fail "terraform fmt: run \`terraform fmt -recursive infra\`"

    if [ -z "$mirror" ] || [ ! -d "$mirror/registry.terraform.io/hashicorp/aws" ]; then
        step "terraform init/validate/test: SKIPPED (no filesystem mirror of the AWS provider found; set TF_PLUGIN_DIR to a directory containing registry.terraform.io/hashicorp/aws)"
    else
        for dir in "$MODULE" "${EXAMPLES[@]}"; do
            step "terraform init + validate: $dir (providers from $mirror)"
            if ! terraform -chdir="$dir" init -backend=false -input=false -no-color -plugin-dir="$mirror" >/tmp/dropzero-tf-init.log 2>&1; then
                cat /tmp/dropzero-tf-init.log >&2
                fail "terraform init $dir"
                continue
            fi
            terraform -chdir="$dir" validate -no-color || { fail "terraform validate $dir"; continue; }

            step "terraform test: $dir"
            out=$(terraform -chdir="$dir" test -no-color 2>&1) || fail "terraform test $dir"
            echo "$out" | grep -E '^\s*(run "|tests/)|Error|passed|failed' || true
            # The summary line: "Success! 12 passed, 0 failed." / "Failure! 3 passed, 1 failed, 2 skipped."
            summary=$(echo "$out" | grep -Eo '[0-9]+ passed, [0-9]+ failed' | tail -n 1 || true)
            if [ -z "$summary" ]; then
                echo "$out" >&2
                fail "terraform test $dir printed no summary"
                continue
            fi
            p=${summary%% passed*}
            f=${summary#*passed, }
            f=${f%% failed*}
            tests_passed=$((tests_passed + p))
            tests_failed=$((tests_failed + f))
        done
        echo
        echo "terraform test: $tests_passed passed, $tests_failed failed"
        [ "$tests_failed" = 0 ] || fail "terraform test: $tests_failed failed"
    fi
fi

# --- checkov ---------------------------------------------------------------------------------
checkov_bin="${CHECKOV:-}"
if [ -z "$checkov_bin" ]; then
    if command -v checkov >/dev/null 2>&1; then
        checkov_bin=checkov
    elif [ -x .venv-infra/bin/checkov ]; then
        checkov_bin=.venv-infra/bin/checkov
    fi
fi
if [ -z "$checkov_bin" ]; then
    step "checkov: SKIPPED (checkov is not installed; \`python3 -m venv .venv-infra && .venv-infra/bin/pip install -r tests/python/requirements-infra.txt\`)"
else
    step "checkov -d infra ($("$checkov_bin" --version 2>/dev/null))"
    # --skip-download: no calls to Prisma Cloud; every skip is inline with its reason.
    if out=$("$checkov_bin" -d infra --compact --quiet --skip-download --output cli 2>&1); then
        :
    else
        fail "checkov reported failed checks"
    fi
    echo "$out" | grep -Ev '^\s*$' || true
    echo "$out" | grep -Eq 'Failed checks: [1-9]' && fail "checkov: failed checks above"
fi

echo
if [ "$failed" = 0 ]; then
    echo "infra checks: ok"
else
    echo "infra checks: FAILED" >&2
    exit 1
fi

#!/usr/bin/env bash
# Security scan of the Pulumi program, offline: export a Terraform plan JSON from the mock build,
# run checkov on it from its own virtualenv, and fail on any failed check not in exceptions.yaml
# (or if checkov saw no resources). Run from the repository root: infra_pulumi/scan/run_scan.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
OUT=infra_pulumi/scan/out
CHECKOV_VENV=.venv-checkov
CHECKOV_VERSION=3.3.30
mkdir -p "$OUT"

# checkov's pins clash with pulumi's: it gets its own virtualenv.
if [[ ! -x "$CHECKOV_VENV/bin/checkov" ]]; then
  echo "creating $CHECKOV_VENV with checkov==$CHECKOV_VERSION"
  python3.11 -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/pip" install --quiet "checkov==$CHECKOV_VERSION"
fi

stacks=("${@:-prod dev prod+register}")
read -r -a stacks <<< "${stacks[*]}"
status=0
for stack in "${stacks[@]}"; do
  plan="$OUT/plan-$stack.json"
  report="$OUT/checkov-$stack.json"
  .venv/bin/python -m infra_pulumi.scan.export_plan --stack "$stack" --out "$plan"
  # --soft-fail: checkov's exit code is not the verdict; evaluate.py applies the exceptions.
  "$CHECKOV_VENV/bin/checkov" --quiet --compact --skip-download --soft-fail \
    --framework terraform_plan --file "$plan" \
    --external-checks-dir infra_pulumi/scan/checks \
    --output json > "$report"
  .venv/bin/python -m infra_pulumi.scan.evaluate --report "$report" --plan "$plan" \
    --exceptions infra_pulumi/scan/exceptions.yaml --stack "$stack" || status=1
done
exit "$status"

#!/usr/bin/env bash
# Deploys streammatch to ECS Fargate: every step, in order. Each step creates what is missing
# and reuses what exists, so running this again changes nothing unless an input changed (a new
# commit, a new FILTER); then it registers a new revision and replaces the task.
#
# MODE=task (default) ends with run-task.sh: one task, started once, as the blog does.
# MODE=service ends with create-service.sh instead: an ECS service that keeps one task running
# and rolls it stop-before-start (see that script for why).
#
#   SECRETS_FILE=twitter.env scripts/deploy.sh
#   MODE=service SECRETS_FILE=twitter.env scripts/deploy.sh
#   SOURCE=x SECRETS_FILE=x.env scripts/deploy.sh             # X_BEARER_TOKEN=... in x.env
#   SOURCE=mastodon MASTODON_URL=https://mastodon.social SECRETS_FILE=mastodon.env scripts/deploy.sh
#   DRY_RUN=1 scripts/deploy.sh           # print the AWS calls only
#   IMAGE=URI scripts/deploy.sh           # deploy a given image, no build
#
# lib.sh lists every setting.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	lib_init
	check_source_settings
	local start=$SECONDS name last=run-task
	[[ $MODE == service ]] && last=create-service
	local steps=(create-secrets create-table create-roles create-log-group build-push create-cluster register-taskdef "$last")
	# The steps run as their own processes with the account id already known, so each one can
	# also be run alone and none repeats sts get-caller-identity.
	export AWS_ACCOUNT_ID AWS_REGION MODE SOURCE X_STREAM_URL MASTODON_URL
	for name in "${steps[@]}"; do
		if [[ $name == register-taskdef ]]; then
			# register-taskdef prints the revision ARN on stdout for callers; here the log says it.
			bash "$SCRIPTS_DIR/$name.sh" >/dev/null || die "step $name failed (fix it and run scripts/deploy.sh again: finished steps are reused)"
		else
			bash "$SCRIPTS_DIR/$name.sh" || die "step $name failed (fix it and run scripts/deploy.sh again: finished steps are reused)"
		fi
	done
	log "deployed SOURCE=$SOURCE ($MODE mode) in $((SECONDS - start))s; scripts/status.sh shows the task, scripts/logs.sh its logs, scripts/rotate-secret.sh rotates the credentials, scripts/teardown.sh removes it all"
}

main "$@"

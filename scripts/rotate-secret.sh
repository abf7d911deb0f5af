#!/usr/bin/env bash
# Rotate and roll: write new credentials, replace the running task so that it reads them, and
# print the fingerprints the status page will show once the new task runs.
#
#   SECRETS_FILE=new-twitter.env scripts/rotate-secret.sh
#   SOURCE=x SECRETS_FILE=new-x.env scripts/rotate-secret.sh
#
# 1. Write: the values in SECRETS_FILE (dotenv, all the keys of SOURCE) become the secret's new
#    version (Secrets Manager put-secret-value: AWSCURRENT moves to it, AWSPREVIOUS to the old
#    one) or the parameters' new versions (SSM put-parameter --overwrite), through
#    create-secrets.sh with UPDATE_SECRETS=1: from a mode-600 file via file://, never argv.
# 2. Roll: ECS resolves secrets only when a task starts, so a running task keeps the old
#    values until it is replaced. With an ECS service (MODE=service) this makes a new
#    deployment (update-service --force-new-deployment, through create-service.sh), which stops
#    the old task before starting the new one (maximumPercent 100): the two never hold the
#    stream at once. With a one-off task (MODE=task) it stops the task, waits, and runs a new
#    one (run-task.sh with FORCE_NEW_TASK=1). With nothing running it only writes.
# 3. Fingerprints: for each secret of the task definition, the fp3 fingerprint of its new
#    value with its valueFrom as the source, the way the page computes it. A `streammatch`
#    binary on PATH computes them (the value goes to it on stdin); without one the script
#    prints the command that does, to run from a checkout.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# stored_secret_exists stops the script unless the secret store already holds this app's
# credentials: rotation replaces values, it does not create them (deploy.sh does).
stored_secret_exists() {
	if [[ $SECRET_STORE == secretsmanager ]]; then
		secret_arn && return 0
		is_dry_run && return 0
		die "secret $SECRET_NAME does not exist (or is scheduled for deletion): deploy first (scripts/deploy.sh)"
	fi
	local key
	for key in "${SECRET_KEYS[@]}"; do
		if ! aws_get ssm describe-parameters --parameter-filters "Key=Name,Option=Equals,Values=$SSM_PREFIX/$key" \
			--query 'length(Parameters)' --output text || [[ $AWS_OUT != 1 ]]; then
			is_dry_run && return 0
			die "parameter $SSM_PREFIX/$key does not exist: deploy first (SECRET_STORE=ssm SOURCE=$SOURCE scripts/deploy.sh)"
		fi
	done
}

# print_fingerprints prints, for each secret of the task definition $1, the fingerprint its
# new value will show on the status page, or the command that computes it.
print_fingerprints() {
	local taskdef=$1 name ref fp
	if ! aws_get ecs describe-task-definition --task-definition "$taskdef" \
		--query 'taskDefinition.containerDefinitions[0].secrets[].[name, valueFrom]' --output text; then
		log "no task definition $taskdef: no fingerprints to print"
		return 0
	fi
	local refs=$AWS_OUT bin
	bin=$(command -v streammatch || true)
	if [[ -n $bin ]]; then
		log "fingerprints to expect on the status page after the roll (computed by $bin):"
	else
		log "fingerprints to expect after the roll: no streammatch binary on PATH; from a checkout, run each command with a file holding only that key's new value:"
	fi
	while read -r name ref; do
		[[ -n $name ]] || continue
		if [[ -n $bin ]]; then
			# The value reaches the binary on stdin, from printf (a builtin): never argv.
			fp=$(value_of "$name" | "$bin" fingerprint -source "$ref" "$name") ||
				die "streammatch fingerprint failed for $name"
			printf 'fingerprint %s %s %s\n' "$name" "$fp" "$ref"
		else
			printf 'fingerprint %s: go run . fingerprint -source %s %s < FILE\n' "$name" "$ref" "$name"
		fi
	done <<<"$refs"
}

main() {
	lib_init
	step "rotate-secret: new values of the $SECRET_LABEL (SOURCE=$SOURCE) from SECRETS_FILE into $SECRET_STORE, then replace the running task"
	[[ -n ${SECRETS_FILE:-} ]] ||
		die "SECRETS_FILE is not set: write the new values of ${SECRET_KEYS[*]} as KEY=value lines to a mode-600 file and set SECRETS_FILE to it"
	read_secrets_file "$SECRETS_FILE"
	check_secret_values "$SECRETS_FILE"
	stored_secret_exists

	# What runs now decides how to roll; it is read before anything changes.
	local roll=none taskdef=$APP_NAME
	if service_get; then
		roll=service
		taskdef=$SERVICE_TASKDEF
	elif aws_get ecs list-tasks --cluster "$CLUSTER" --family "$APP_NAME" --desired-status RUNNING \
		--query 'taskArns[0]' --output text && [[ -n $AWS_OUT ]]; then
		roll=task
	fi
	if is_dry_run && [[ $roll == none ]]; then
		roll=$MODE
	fi

	export AWS_ACCOUNT_ID AWS_REGION SOURCE X_STREAM_URL MASTODON_URL
	UPDATE_SECRETS=1 bash "$SCRIPTS_DIR/create-secrets.sh" || die "writing the new values failed; nothing was rolled"
	case $roll in
	service)
		log "rolling service $SERVICE: a new deployment stops the old task, then starts one that reads the new values"
		FORCE_NEW_DEPLOYMENT=1 bash "$SCRIPTS_DIR/create-service.sh" ||
			die "the new values are stored, but the roll failed: fix it and run FORCE_NEW_DEPLOYMENT=1 scripts/create-service.sh"
		aws_get ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" \
			--query 'services[0].taskDefinition' --output text && taskdef=${AWS_OUT:-$taskdef}
		;;
	task)
		log "rolling the one-off task: stop it, then run a new one that reads the new values"
		FORCE_NEW_TASK=1 bash "$SCRIPTS_DIR/run-task.sh" ||
			die "the new values are stored, but the roll failed: fix it and run FORCE_NEW_TASK=1 scripts/run-task.sh"
		;;
	none)
		log "no service and no running task of $APP_NAME: the new values are stored; the next deploy starts a task with them"
		;;
	esac
	print_fingerprints "$taskdef"
}

main "$@"

#!/usr/bin/env bash
# Step 1: store the source's credentials.
#
# SECRET_STORE=secretsmanager (default): one secret $APP_NAME/$SOURCE whose value is a JSON
# object with the source's keys (SECRET_KEYS in lib.sh): CONSUMERKEY, CONSUMERSECRETKEY,
# ACCESSTOKEN, ACCESSTOKENSECRET for twitter; X_BEARER_TOKEN for x; MASTODON_ACCESS_TOKEN for
# mastodon. The task definition picks each key with valueFrom ARN:KEY::. SECRET_STORE=ssm: one
# SecureString parameter /$APP_NAME/$SOURCE/KEY per key. Each source has its own secret, so
# deploying or tearing down one source never touches another's.
#
# Values come from SECRETS_FILE (dotenv: KEY=value lines) or, on a terminal, a prompt that does
# not echo. They reach the AWS CLI only as file:// paths to a mode-600 file that is deleted when
# the script ends, never as arguments (argv is readable by every user through ps and /proc).
#
# An existing secret is reused as it is; UPDATE_SECRETS=1 writes new values. To rotate, use
# scripts/rotate-secret.sh, which writes them this way and then replaces the running task.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

prompt_secrets() {
	local key value
	for key in "${SECRET_KEYS[@]}"; do
		IFS= read -r -s -p "$key: " value </dev/tty
		printf '\n' >/dev/tty
		set_value "$key" "$value"
	done
}

# load_secrets reads the source's values, or says how to provide them.
load_secrets() {
	if [[ -n ${SECRETS_FILE:-} ]]; then
		read_secrets_file "$SECRETS_FILE"
	elif is_dry_run; then
		local key
		for key in "${SECRET_KEYS[@]}"; do set_value "$key" dry-run; done
		return
	elif [[ -t 0 ]] && { : </dev/tty; } 2>/dev/null; then
		log "no SECRETS_FILE: enter the $SECRET_LABEL (input is not shown)"
		prompt_secrets
	else
		die "no SECRETS_FILE and no terminal to prompt on: write the keys of SOURCE=$SOURCE (${SECRET_KEYS[*]}) as KEY=value lines to a mode-600 file and set SECRETS_FILE to it"
	fi
	check_secret_values "${SECRETS_FILE:-the prompt}"
}

# write_json_payload writes the values as one JSON object to the private file
# $WORKDIR/secret.json (mode 600: lib_init set umask 077; removed when the script exits).
write_json_payload() {
	local file=$WORKDIR/secret.json key sep=""
	{
		printf '{'
		for key in "${SECRET_KEYS[@]}"; do
			printf '%s"%s":"%s"' "$sep" "$key" "$(json_escape "$(value_of "$key")")"
			sep=","
		done
		printf '}'
	} >"$file"
}

store_in_secrets_manager() {
	local kms=()
	[[ -n ${KMS_KEY_ARN:-} ]] && kms=(--kms-key-id "$KMS_KEY_ARN")

	if secret_arn; then
		if [[ ${UPDATE_SECRETS:-0} != 1 ]]; then
			log "secret $SECRET_NAME exists, reusing it ($SECRET_ARN); UPDATE_SECRETS=1 writes new values"
			return
		fi
		load_secrets
		write_json_payload
		aws_do secretsmanager put-secret-value --secret-id "$SECRET_ARN" \
			--secret-string "file://$WORKDIR/secret.json" --query VersionId --output text
		log "secret $SECRET_NAME: new version $AWS_OUT; running tasks keep the old values until replaced (scripts/rotate-secret.sh rotates and replaces them)"
		return
	fi
	if [[ -n $SECRET_ARN ]] && ! is_dry_run; then
		# Teardown schedules the secret for deletion; a name in that state cannot be created
		# again, so bring it back and store the values from this run in it.
		aws_do secretsmanager restore-secret --secret-id "$SECRET_ARN"
		log "secret $SECRET_NAME was scheduled for deletion: restored"
		load_secrets
		write_json_payload
		aws_do secretsmanager put-secret-value --secret-id "$SECRET_ARN" \
			--secret-string "file://$WORKDIR/secret.json" --query VersionId --output text
		return
	fi
	load_secrets
	write_json_payload
	aws_do secretsmanager create-secret --name "$SECRET_NAME" \
		--description "$SECRET_LABEL for $APP_NAME (SOURCE=$SOURCE; keys: ${SECRET_KEYS[*]})" \
		${kms[@]+"${kms[@]}"} --secret-string "file://$WORKDIR/secret.json" --query ARN --output text
	did "created secret $SECRET_NAME ${AWS_OUT:+($AWS_OUT)}"
}

# ssm_parameter_exists reports whether the parameter $1 exists, without reading its value.
ssm_parameter_exists() {
	aws_get ssm describe-parameters --parameter-filters "Key=Name,Option=Equals,Values=$1" \
		--query 'length(Parameters)' --output text && [[ $AWS_OUT == 1 ]]
}

store_in_ssm() {
	local key name file overwrite=() kms=() loaded=0
	[[ -n ${KMS_KEY_ARN:-} ]] && kms=(--key-id "$KMS_KEY_ARN")
	[[ ${UPDATE_SECRETS:-0} == 1 ]] && overwrite=(--overwrite)
	for key in "${SECRET_KEYS[@]}"; do
		name=$SSM_PREFIX/$key
		if ssm_parameter_exists "$name" && [[ ${UPDATE_SECRETS:-0} != 1 ]]; then
			log "parameter $name exists, reusing it; UPDATE_SECRETS=1 writes a new value"
			continue
		fi
		if ((loaded == 0)); then
			load_secrets
			loaded=1
		fi
		file=$WORKDIR/$key
		value_of "$key" >"$file"
		aws_do ssm put-parameter --name "$name" --type SecureString ${kms[@]+"${kms[@]}"} ${overwrite[@]+"${overwrite[@]}"} \
			--description "$key ($SECRET_LABEL) for $APP_NAME" --value "file://$file" --query Version --output text
		did "stored parameter $name ${AWS_OUT:+(version $AWS_OUT)}"
		rm -f "$file"
	done
}

main() {
	lib_init
	step "create-secrets: store the $SECRET_LABEL (SOURCE=$SOURCE) in $SECRET_STORE"
	case $SECRET_STORE in
	secretsmanager) store_in_secrets_manager ;;
	ssm) store_in_ssm ;;
	esac
}

main "$@"

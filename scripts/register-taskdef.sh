#!/usr/bin/env bash
# Step 7: render the task definition of SOURCE with this deployment's values and register it,
# after a preflight that catches, before ECS does, the mistakes that would stop the task at
# start-up.
#
# The template is taskdef.json for SOURCE=twitter and deploy/taskdef.SOURCE.json for x and
# mastodon (TASKDEF_FILE in lib.sh says why one file per source); each carries its source's
# secrets and settings (X_STREAM_URL, MASTODON_URL) and writes its placeholders as ${NAME}.
# With SECRET_STORE=ssm each "${SECRET_ARN}:KEY::" reference becomes the ARN of the parameter
# /$APP_NAME/$SOURCE/KEY.
# ${SECRET_SOURCES} is filled last, from the secrets as rendered: a JSON object of each
# secret's name and valueFrom, which the service shows as each secret's source (references,
# not values; secrets.Lint checks that it matches the secrets exactly).
#
# The rendered JSON's SHA-256 is stored as a tag on the revision. When the latest revision
# carries the same hash it is reused, so a second deploy with the same inputs registers nothing.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# render writes the task definition for this deployment to $1.
render() {
	local out=$1 json name value key image
	json=$(<"$REPO_ROOT/$TASKDEF_FILE")
	image=$(image_uri)
	if [[ $SECRET_STORE == ssm ]]; then
		for key in "${SECRET_KEYS[@]}"; do
			json=${json//"\${SECRET_ARN}:$key::"/"$SSM_ARN_PREFIX/$key"}
		done
	elif ! secret_arn && ! is_dry_run; then
		die "secret $SECRET_NAME does not exist: run scripts/create-secrets.sh first"
	fi
	local -a names=(APP_NAME AWS_REGION AWS_ACCOUNT_ID TABLE_NAME FILTER SOURCE LOG_GROUP
		CPU_ARCHITECTURE EXECUTION_ROLE_ARN TASK_ROLE_ARN SECRET_ARN IMAGE X_STREAM_URL MASTODON_URL)
	for name in "${names[@]}"; do
		case $name in
		IMAGE) value=$image ;;
		SECRET_ARN) value=${SECRET_ARN:-} ;;
		*) value=${!name} ;;
		esac
		json=${json//"\${$name}"/"$(json_escape "$value")"}
	done
	local sources
	sources=$(secret_sources "$json")
	json=${json//"\${SECRET_SOURCES}"/"$(json_escape "$sources")"}
	if [[ $json =~ \$\{[A-Za-z_]+\} ]]; then
		die "$TASKDEF_FILE has a placeholder this script does not fill: ${BASH_REMATCH[0]}"
	fi
	printf '%s\n' "$json" >"$out"
}

# secret_sources prints the SECRET_SOURCES value for the task definition JSON $1: compact
# JSON, {"NAME":"valueFrom",...}, in the order of its secrets, as secrets.SecretSources renders
# it. The strings are copied as they stand in the document, already JSON-escaped. It reads
# the layout every task definition template keeps (each secret's "name" and then "valueFrom"
# on one line) and stops the script if any valueFrom is not written that way, rather than
# leave one out.
secret_sources() {
	local json=$1 entry out="" sep="" n=0 all
	local re='^"name": *"([^"]*)", *"valueFrom": *"([^"]*)"$'
	while IFS= read -r entry; do
		[[ $entry =~ $re ]] || continue
		out+="$sep\"${BASH_REMATCH[1]}\":\"${BASH_REMATCH[2]}\""
		sep=,
		n=$((n + 1))
	done < <(grep -o '"name": *"[^"]*", *"valueFrom": *"[^"]*"' <<<"$json" || true)
	all=$(grep -c '"valueFrom"' <<<"$json" || true)
	((n == all)) ||
		die "$TASKDEF_FILE: $all valueFrom entries but $n written as { \"name\": ..., \"valueFrom\": ... } on one line; keep that layout so that SECRET_SOURCES names every secret"
	printf '{%s}' "$out"
}

# allowed reports whether the execution role may perform $1 on resource $2. It asks IAM's
# policy simulator, which also weighs managed policies, boundaries and denies. Where the
# simulator is unavailable (no iam:SimulatePrincipalPolicy, or an emulator) it falls back to the
# role's inline policies: an Allow statement naming the action (or "*") and a resource pattern
# that matches. That fallback is enough for the policies create-roles.sh writes.
SIMULATOR=unknown ALLOW_ACTION="" ALLOW_PATTERNS=""
allowed() {
	local action=$1 resource=$2
	if [[ $SIMULATOR != unavailable ]]; then
		# One attempt: a simulator that answers 500 or AccessDenied will not do better on a
		# retry, and the CLI's retries would cost seconds per check.
		if AWS_MAX_ATTEMPTS=1 aws_probe iam simulate-principal-policy --policy-source-arn "$EXECUTION_ROLE_ARN" \
			--action-names "$action" --resource-arns "$resource" \
			--query 'EvaluationResults[0].EvalDecision' --output text; then
			SIMULATOR=available
			[[ $AWS_OUT == allowed ]]
			return
		fi
		SIMULATOR=unavailable
		log "preflight: the IAM policy simulator is unavailable here; checking the role's inline policies"
	fi
	# The patterns for one action are read once (list-role-policies, get-role-policy) and
	# reused for the next resource.
	if [[ $ALLOW_ACTION != "$action" ]]; then
		local policies policy
		ALLOW_ACTION=$action ALLOW_PATTERNS=""
		aws_get iam list-role-policies --role-name "$EXECUTION_ROLE" --query PolicyNames --output text || return 1
		policies=$AWS_OUT
		for policy in $policies; do
			aws_get iam get-role-policy --role-name "$EXECUTION_ROLE" --policy-name "$policy" \
				--query "PolicyDocument.Statement[?Effect=='Allow' && (contains(to_array(Action), '$action') || contains(to_array(Action), '*'))].Resource" \
				--output text || continue
			ALLOW_PATTERNS+=" $AWS_OUT"
		done
	fi
	# read -a, not an unquoted loop: a "*" resource must stay a pattern, not expand to files.
	local pattern patterns
	read -r -a patterns <<<"$ALLOW_PATTERNS"
	for pattern in ${patterns[@]+"${patterns[@]}"}; do
		# IAM's * and ? wildcards mean what they mean in a shell pattern.
		# shellcheck disable=SC2053 # the right side is a pattern on purpose
		[[ $resource == $pattern ]] && return 0
	done
	return 1
}

# preflight checks every valueFrom of the rendered task definition, the roles and the log
# group, and lists each problem with its fix.
preflight() {
	local file=$1 problems=() value_from ref arn key parts ssm_arns=()
	if is_dry_run; then
		log "preflight: skipped under DRY_RUN (it only reads)"
		return
	fi
	aws_get iam get-role --role-name "$EXECUTION_ROLE" --query Role.Arn --output text ||
		problems+=("execution role $EXECUTION_ROLE does not exist. Fix: scripts/create-roles.sh")
	aws_get iam get-role --role-name "$TASK_ROLE" --query Role.Arn --output text ||
		problems+=("task role $TASK_ROLE does not exist. Fix: scripts/create-roles.sh")
	if ! aws_get logs describe-log-groups --log-group-name-prefix "$LOG_GROUP" \
		--query "logGroups[?logGroupName=='$LOG_GROUP'].logGroupName" --output text || [[ -z $AWS_OUT ]]; then
		problems+=("log group $LOG_GROUP does not exist; the awslogs driver would stop the task. Fix: scripts/create-log-group.sh")
	fi

	while read -r value_from; do
		ref=${value_from%\"}
		ref=${ref##*\"}
		case $ref in
		arn:*:secretsmanager:*)
			# arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX[:KEY:STAGE:ID]:
			# the secret is the first seven fields, the JSON key the eighth.
			IFS=: read -r -a parts <<<"$ref"
			arn=$(IFS=:; printf '%s' "${parts[*]:0:7}")
			key=${parts[7]:-}
			check_secret "$arn" "$key" "$ref"
			;;
		arn:*:ssm:*)
			ssm_arns+=("$ref")
			;;
		*)
			problems+=("valueFrom $ref is not a full Secrets Manager or SSM ARN. Fix: use the ARN, so the execution role's policy can name it")
			;;
		esac
	done < <(grep -o '"valueFrom": *"[^"]*"' "$file")
	SECRET_JSON=""
	((${#ssm_arns[@]} == 0)) || check_parameters "${ssm_arns[@]}"

	if [[ -n ${KMS_KEY_ARN:-} ]] && ! allowed kms:Decrypt "$KMS_KEY_ARN"; then
		problems+=("execution role $EXECUTION_ROLE may not kms:Decrypt with $KMS_KEY_ARN. Fix: KMS_KEY_ARN=$KMS_KEY_ARN scripts/create-roles.sh")
	fi

	if ((${#problems[@]})); then
		local p
		log "preflight found ${#problems[@]} problem(s); the task would not start:"
		for p in "${problems[@]}"; do
			printf '  - %s\n' "$p" >&2
		done
		exit 1
	fi
	log "preflight: secrets exist, the execution role may read them, roles and log group exist"
}

# check_secret appends to problems when the secret is missing, lacks the JSON key, or the
# execution role may not read it. All the source's references name one secret, so each
# secret is checked once and its value fetched once: into a variable, only to look for the
# keys, never printed, and cleared when the preflight ends.
CHECKED_SECRETS="" SECRET_JSON_ARN="" SECRET_JSON=""
check_secret() {
	local arn=$1 key=$2 ref=$3
	if ! contains_word "$arn" "$CHECKED_SECRETS"; then
		CHECKED_SECRETS+=" $arn"
		if ! aws_get secretsmanager describe-secret --secret-id "$arn" --query DeletedDate --output text; then
			problems+=("secret $arn (in $ref) does not exist. Fix: scripts/create-secrets.sh")
			return
		fi
		if [[ -n $AWS_OUT ]]; then
			problems+=("secret $arn is scheduled for deletion. Fix: scripts/create-secrets.sh restores it")
			return
		fi
		allowed secretsmanager:GetSecretValue "$arn" ||
			problems+=("execution role $EXECUTION_ROLE may not secretsmanager:GetSecretValue on $arn. Fix: scripts/create-roles.sh")
	fi
	[[ -n $key ]] || return 0
	if [[ $SECRET_JSON_ARN != "$arn" ]]; then
		SECRET_JSON_ARN=$arn SECRET_JSON=""
		if aws_get secretsmanager get-secret-value --secret-id "$arn" --query SecretString --output text; then
			SECRET_JSON=$AWS_OUT
		fi
		AWS_OUT=""
	fi
	if [[ ! $SECRET_JSON =~ \"$key\"[[:space:]]*: ]]; then
		problems+=("secret $arn has no JSON key $key; ECS would stop the task with ResourceInitializationError. Fix: UPDATE_SECRETS=1 scripts/create-secrets.sh with all the keys of SOURCE=$SOURCE (${SECRET_KEYS[*]})")
	fi
}

# check_parameters appends to problems for each SSM parameter ARN that does not exist or that
# the execution role may not read. One describe-parameters call covers them all.
check_parameters() {
	local arn filter="" sep="" existing
	for arn in "$@"; do
		filter+="$sep/${arn#*:parameter/}"
		sep=","
	done
	aws_get ssm describe-parameters --parameter-filters "Key=Name,Option=Equals,Values=$filter" \
		--query 'Parameters[].Name' --output text || true
	existing=$AWS_OUT
	for arn in "$@"; do
		if ! contains_word "/${arn#*:parameter/}" "$existing"; then
			problems+=("SSM parameter /${arn#*:parameter/} does not exist. Fix: SECRET_STORE=ssm SOURCE=$SOURCE scripts/create-secrets.sh")
		elif ! allowed ssm:GetParameters "$arn"; then
			problems+=("execution role $EXECUTION_ROLE may not ssm:GetParameters on $arn. Fix: SECRET_STORE=ssm scripts/create-roles.sh")
		fi
	done
}

main() {
	lib_init
	check_source_settings
	step "register-taskdef: render $TASKDEF_FILE (SOURCE=$SOURCE) and register family $APP_NAME"
	local file=$WORKDIR/taskdef.json hash
	render "$file"
	preflight "$file"
	hash=$(sha256 "$file")

	if aws_get ecs describe-task-definition --task-definition "$APP_NAME" --include TAGS \
		--query "[taskDefinition.taskDefinitionArn, tags[?key=='$TASKDEF_HASH_TAG'].value | [0]]" --output text; then
		local arn current
		read -r arn current <<<"$AWS_OUT"
		if [[ $current == "$hash" ]]; then
			log "task definition unchanged, reusing $arn"
			printf '%s\n' "$arn"
			return
		fi
	fi
	aws_do ecs register-task-definition --cli-input-json "file://$file" \
		--tags "key=$TASKDEF_HASH_TAG,value=$hash" --query taskDefinition.taskDefinitionArn --output text
	did "registered ${AWS_OUT:-$APP_NAME}"
	printf '%s\n' "${AWS_OUT:-$APP_NAME}"
}

main "$@"

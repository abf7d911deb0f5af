#!/usr/bin/env bash
# Step 3: the two IAM roles, split by who uses them.
#
# The execution role is used by ECS itself, before the container starts: to pull the image
# from ECR, to create the log stream, and to read the secret whose values it injects as
# environment variables. It may read exactly this app's secret of SOURCE
# (secretsmanager:GetSecretValue on the secret's full ARN, or ssm:GetParameters on the
# source's parameter ARNs: execution-ssm.json for twitter, execution-ssm-SOURCE.json for the
# others, each naming its keys), and kms:Decrypt
# only on KMS_KEY_ARN when the secret uses a customer-managed key (the default aws/ keys need no
# grant). The blog granted kms:Decrypt on the secret ARNs, which names no key and so allows
# nothing useful.
#
# The task role is what the application's AWS SDK uses at run time: dynamodb:BatchWriteItem and
# dynamodb:PutItem on exactly this table (inline policy dynamodb-write), and nothing that returns
# a secret value, so code running in the container cannot read the credentials back through the
# API. With SECRET_STORE=secretsmanager it may also describe the one secret (inline policy
# secrets-describe: secretsmanager:DescribeSecret and ListSecretVersionIds on the secret's ARN,
# metadata only), so that the service can tell when the secret was rotated after the task
# started. SSM gets no such grant: ssm:DescribeParameters cannot be limited to a parameter
# (its Resource must be "*"), so it would show the task every parameter name in the region.
#
# Both trust ecs-tasks.amazonaws.com only for this account (aws:SourceAccount), which stops
# another account's tasks from using the roles (the confused-deputy problem).
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The documents are the templates in scripts/policies/: trust-ecs-tasks.json for both roles;
# execution-pull-logs.json, then execution-secretsmanager.json or execution-ssm.json, then
# execution-kms.json when KMS_KEY_ARN is set, merged into the execution role's one inline
# policy; task-dynamodb.json and, for Secrets Manager, task-secrets-describe.json for the task
# role, as two inline policies. `go run ./local` renders the same files
# (through scripts.Policy in scripts/policies.go), so what the least-privilege tests prove
# holds for both.
POLICIES_DIR=$SCRIPTS_DIR/policies

# render_policy renders the template scripts/policies/$1.json to the file $2, with the
# NAME=VALUE arguments that follow as its placeholders' values.
render_policy() {
	local name=$1 out=$2
	shift 2
	render_template "$POLICIES_DIR/$name.json" "$out" "$@"
}

# merge_policies writes to $1 one policy document with the statements of the rendered
# documents $2..., in order. Every template keeps its "Statement": [ ... ] list last (the Go
# tests check that layout), so a document's statements are the text between that opening
# bracket and the document's last closing bracket; no JSON tool is needed.
merge_policies() {
	local out=$1 file json body statements="" sep=""
	shift
	for file in "$@"; do
		json=$(<"$file")
		[[ $json == *'"Statement": ['* ]] || die "$file: no \"Statement\": [ list to merge"
		body=${json#*'"Statement": ['}
		body=${body%]*}
		# Drop the whitespace before the closing bracket, so the comma follows the statement.
		body=${body%"${body##*[![:space:]]}"}
		statements+=$sep$body
		sep=,
	done
	printf '{\n  "Version": "2012-10-17",\n  "Statement": [%s\n  ]\n}\n' "$statements" >"$out"
}

write_trust_policy() {
	render_policy trust-ecs-tasks "$1" ACCOUNT_ID="$AWS_ACCOUNT_ID"
}

# image_repository_arn is the ECR repository the task pulls from: the one named in IMAGE when
# that is an ECR image, else this app's repository.
image_repository_arn() {
	local image
	image=$(image_uri)
	if [[ $image =~ ^([0-9]{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/([^:@]+) ]]; then
		printf 'arn:%s:ecr:%s:%s:repository/%s\n' "$PARTITION" "${BASH_REMATCH[2]}" \
			"${BASH_REMATCH[1]}" "${BASH_REMATCH[4]}"
	else
		printf '%s\n' "$REPOSITORY_ARN"
	fi
}

# write_execution_policy writes the execution role's one inline policy: pull and logs, then
# reading the secret store chosen by SECRET_STORE on exact ARNs only, then kms:Decrypt on
# KMS_KEY_ARN when one is set.
write_execution_policy() {
	local repository dir=$WORKDIR/execution-parts
	repository=$(image_repository_arn)
	mkdir -p "$dir"
	local parts=("$dir/1-pull-logs.json" "$dir/2-secrets.json")
	render_policy execution-pull-logs "${parts[0]}" REPOSITORY_ARN="$repository" LOG_GROUP_ARN="$LOG_GROUP_ARN"
	if [[ $SECRET_STORE == ssm ]]; then
		render_policy "$EXECUTION_SSM_POLICY" "${parts[1]}" PARAMETER_ARN_PREFIX="$SSM_ARN_PREFIX"
	else
		if ! secret_arn && ! is_dry_run; then
			die "secret $SECRET_NAME does not exist: run scripts/create-secrets.sh first"
		fi
		render_policy execution-secretsmanager "${parts[1]}" SECRET_ARN="$SECRET_ARN"
	fi
	if [[ -n ${KMS_KEY_ARN:-} ]]; then
		parts+=("$dir/3-kms.json")
		render_policy execution-kms "${parts[2]}" KMS_KEY_ARN="$KMS_KEY_ARN"
	fi
	merge_policies "$1" "${parts[@]}"
}

write_task_policy() {
	render_policy task-dynamodb "$1" TABLE_ARN="$TABLE_ARN"
}

# TASK_DESCRIBE_POLICY is the task role's second inline policy: the drift check's metadata
# reads on the Secrets Manager secret.
readonly TASK_DESCRIBE_POLICY=secrets-describe

# set_task_describe_policy puts the drift permission on the task role with
# SECRET_STORE=secretsmanager, and removes it otherwise (a deployment that moved to SSM keeps
# no grant on the secret it no longer uses).
set_task_describe_policy() {
	local file=$WORKDIR/task-describe-policy.json
	if [[ $SECRET_STORE == secretsmanager ]]; then
		# write_execution_policy has found SECRET_ARN already.
		render_policy task-secrets-describe "$file" SECRET_ARN="$SECRET_ARN"
		aws_do iam put-role-policy --role-name "$TASK_ROLE" --policy-name "$TASK_DESCRIBE_POLICY" \
			--policy-document "file://$file"
		log "role $TASK_ROLE: inline policy $TASK_DESCRIBE_POLICY set (DescribeSecret and ListSecretVersionIds on $SECRET_ARN: metadata, never the value)"
		return
	fi
	if aws_get iam get-role-policy --role-name "$TASK_ROLE" --policy-name "$TASK_DESCRIBE_POLICY" \
		--query PolicyName --output text; then
		aws_do iam delete-role-policy --role-name "$TASK_ROLE" --policy-name "$TASK_DESCRIBE_POLICY"
		did "role $TASK_ROLE: removed inline policy $TASK_DESCRIBE_POLICY (SECRET_STORE=ssm has no drift permission)"
	fi
}

# ensure_role creates the role when it is absent and otherwise brings its trust policy up to
# date; then it sets the one inline policy. Both calls replace what is there, so running them
# again with the same documents changes nothing.
ensure_role() {
	local role=$1 policy_name=$2 policy_file=$3 trust=$WORKDIR/trust.json
	write_trust_policy "$trust"
	if aws_get iam get-role --role-name "$role" --query Role.Arn --output text; then
		log "role $role exists, reusing it"
		aws_do iam update-assume-role-policy --role-name "$role" --policy-document "file://$trust"
	else
		aws_do iam create-role --role-name "$role" --assume-role-policy-document "file://$trust" \
			--description "$APP_NAME ($policy_name)" --query Role.Arn --output text
		did "created role $role"
	fi
	aws_do iam put-role-policy --role-name "$role" --policy-name "$policy_name" \
		--policy-document "file://$policy_file"
	log "role $role: inline policy $policy_name set"
}

main() {
	lib_init
	step "create-roles: execution role $EXECUTION_ROLE (ECS agent) and task role $TASK_ROLE (the app)"
	write_execution_policy "$WORKDIR/execution-policy.json"
	write_task_policy "$WORKDIR/task-policy.json"
	ensure_role "$EXECUTION_ROLE" pull-logs-secrets "$WORKDIR/execution-policy.json"
	ensure_role "$TASK_ROLE" dynamodb-write "$WORKDIR/task-policy.json"
	set_task_describe_policy
}

main "$@"

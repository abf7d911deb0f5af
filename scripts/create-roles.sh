#!/usr/bin/env bash
# Step 3: the two IAM roles, split by who uses them.
#
# The execution role is used by ECS itself, before the container starts: to pull the image
# from ECR, to create the log stream, and to read the secret whose values it injects as
# environment variables. It may read exactly this app's secret (secretsmanager:GetSecretValue
# on the secret's full ARN, or ssm:GetParameters on the four parameter ARNs), and kms:Decrypt
# only on KMS_KEY_ARN when the secret uses a customer-managed key (the default aws/ keys need no
# grant). The blog granted kms:Decrypt on the secret ARNs, which names no key and so allows
# nothing useful.
#
# The task role is what the application's AWS SDK uses at run time: dynamodb:BatchWriteItem and
# dynamodb:PutItem on exactly this table, and nothing on secrets, so code running in the
# container cannot read the credentials back through the API.
#
# Both trust ecs-tasks.amazonaws.com only for this account (aws:SourceAccount), which stops
# another account's tasks from using the roles (the confused-deputy problem).
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

write_trust_policy() {
	cat >"$1" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": { "Service": "ecs-tasks.amazonaws.com" },
      "Action": "sts:AssumeRole",
      "Condition": { "StringEquals": { "aws:SourceAccount": "$AWS_ACCOUNT_ID" } }
    }
  ]
}
JSON
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

# secret_statement prints the policy statement that lets the execution role read the secret
# store chosen by SECRET_STORE, on exact ARNs only.
secret_statement() {
	if [[ $SECRET_STORE == ssm ]]; then
		local key sep="" resources=""
		for key in "${SECRET_KEYS[@]}"; do
			resources+="$sep\"$SSM_ARN_PREFIX/$key\""
			sep=", "
		done
		printf '{ "Sid": "ReadTwitterParameters", "Effect": "Allow", "Action": "ssm:GetParameters", "Resource": [%s] }' "$resources"
		return
	fi
	if ! secret_arn && ! is_dry_run; then
		die "secret $SECRET_NAME does not exist: run scripts/create-secrets.sh first"
	fi
	printf '{ "Sid": "ReadTwitterSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "%s" }' "$SECRET_ARN"
}

write_execution_policy() {
	# Command substitutions inside the here-document would swallow a failure, so every value is
	# computed first, where set -e sees it.
	local kms="" secret repository
	secret=$(secret_statement)
	repository=$(image_repository_arn)
	if [[ -n ${KMS_KEY_ARN:-} ]]; then
		kms=",
    { \"Sid\": \"DecryptWithCustomerKey\", \"Effect\": \"Allow\", \"Action\": \"kms:Decrypt\", \"Resource\": \"$KMS_KEY_ARN\" }"
	fi
	cat >"$1" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    { "Sid": "EcrAuth", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*" },
    {
      "Sid": "PullImage",
      "Effect": "Allow",
      "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
      "Resource": "$repository"
    },
    {
      "Sid": "WriteLogs",
      "Effect": "Allow",
      "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
      "Resource": ["$LOG_GROUP_ARN", "$LOG_GROUP_ARN:*"]
    },
    $secret$kms
  ]
}
JSON
}

write_task_policy() {
	cat >"$1" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "WriteMatches",
      "Effect": "Allow",
      "Action": ["dynamodb:BatchWriteItem", "dynamodb:PutItem"],
      "Resource": "$TABLE_ARN"
    }
  ]
}
JSON
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
}

main "$@"

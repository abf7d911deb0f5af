# shellcheck shell=bash disable=SC2034 # the settings here are used by the scripts that source this file
# Shared settings and helpers for every script in scripts/. Each script sources this file and
# calls lib_init before its first AWS call.
#
# Settings (environment, with defaults):
#   AWS_REGION          region (else AWS_DEFAULT_REGION, else `aws configure get region`)
#   APP_NAME            streammatch: names the task definition family, the cluster, the ECS
#                       service (MODE=service), the ECR repository, the log group
#                       /ecs/$APP_NAME, both roles and the secret
#   TABLE_NAME          twitterStream, the DynamoDB table (the blog's name)
#   SOURCE              twitter (default), x or mastodon: the stream the task reads. It picks
#                       the secret's keys (SECRET_KEYS below), the secret's name, the task
#                       definition template and the SSM policy template (see source_files)
#   SECRET_STORE        secretsmanager (one JSON secret $APP_NAME/$SOURCE) or ssm (one
#                       SecureString parameter /$APP_NAME/$SOURCE/KEY per key); with
#                       secretsmanager the task role may also describe the secret (the rotation
#                       drift check)
#   SECRETS_FILE        dotenv file with the source's keys (else a no-echo prompt on a TTY);
#                       rotate-secret.sh requires it and writes its values as the new ones
#   KMS_KEY_ARN         customer-managed key for the secret; adds kms:Decrypt on that key only
#   FILTER              the task's FILTER (track phrases)
#   X_STREAM_URL        SOURCE=x: the API base URL in the task definition (https://api.x.com)
#   MASTODON_URL        SOURCE=mastodon, required: the instance, e.g. https://mastodon.social
#                       (a plain setting in the task definition's environment, not a secret)
#   IMAGE               deploy this image URI; skips build and push
#   REGISTRY            push to this registry host instead of the account's ECR
#   CONTAINER_CLI       docker (default) or podman
#   CPU_ARCHITECTURE    X86_64 (default) or ARM64: the task's runtimePlatform and build platform
#   MODE                task (default: deploy.sh ends with run-task.sh, one task started once)
#                       or service (deploy.sh ends with create-service.sh: an ECS service of one
#                       task, replaced when it stops, rolled with stop-before-start)
#   SUBNETS, SECURITY_GROUP   network for run-task and create-service (default: the default VPC)
#   ALLOW_CIDR          open port 8080 of the created security group to this CIDR (e.g. your /32)
#   FORCE_NEW_TASK=1    run-task.sh replaces a task that already runs the current revision
#   FORCE_NEW_DEPLOYMENT=1  create-service.sh starts a new deployment of an up-to-date service
#   DEPLOY_TIMEOUT      seconds create-service.sh waits for a deployment to finish (900)
#   DRY_RUN=1           print the AWS calls instead of making them
#   AWS_ENDPOINT_URL    passed to every call as --endpoint-url (older CLIs ignore the variable)

# Names every script agrees on. The secret keys of each SOURCE are also the container's
# variable names (config.go's sourceSecretNames); SECRET_KEYS is the chosen source's list.
readonly TWITTER_SECRET_KEYS=(CONSUMERKEY CONSUMERSECRETKEY ACCESSTOKEN ACCESSTOKENSECRET)
readonly X_SECRET_KEYS=(X_BEARER_TOKEN)
readonly MASTODON_SECRET_KEYS=(MASTODON_ACCESS_TOKEN)
# The tag on each registered task definition revision that holds the SHA-256 of the rendered
# JSON: a second deploy with the same inputs finds it and reuses the revision instead of
# registering an identical one.
readonly TASKDEF_HASH_TAG=streammatch:taskdef-sha256
# The error texts that mean "no such resource" across the services used here. Any other error
# (expired credentials, access denied) stops the script instead of being taken for "absent".
readonly NOT_FOUND_RE='NotFound|NoSuch|does not exist|ResourceNotFoundException|ParameterNotFound|Unable to describe task definition|cannot be found|not found'

SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$SCRIPTS_DIR")

APP_NAME=${APP_NAME:-streammatch}
TABLE_NAME=${TABLE_NAME:-twitterStream}
SECRET_STORE=${SECRET_STORE:-secretsmanager}
MODE=${MODE:-task}
FILTER=${FILTER:-Cloud Computing}
SOURCE=${SOURCE:-twitter}
CONTAINER_CLI=${CONTAINER_CLI:-docker}
CPU_ARCHITECTURE=${CPU_ARCHITECTURE:-X86_64}
LOG_RETENTION_DAYS=${LOG_RETENTION_DAYS:-30}
DRY_RUN=${DRY_RUN:-0}

X_STREAM_URL=${X_STREAM_URL:-https://api.x.com}
MASTODON_URL=${MASTODON_URL:-}

# What varies with SOURCE. The secret and the parameters are named after the source, so that
# one source's teardown never touches another's secret. The task definition is one template
# per source: taskdef.json (twitter, the blog's, unchanged) and deploy/taskdef.SOURCE.json,
# each a whole RegisterTaskDefinition input that differs from taskdef.json only in its
# secrets and its source's settings (secrets/taskdef_lint_test.go holds them to that). A
# template per source costs two small files; selecting a secrets block inside one file would
# need JSON editing in bash here and again in Go for the local run. The SSM policy lists each
# parameter's exact ARN, so it is one template per source too.
case $SOURCE in
twitter)
	SECRET_KEYS=("${TWITTER_SECRET_KEYS[@]}") SECRET_LABEL="Twitter API credentials"
	TASKDEF_FILE=taskdef.json EXECUTION_SSM_POLICY=execution-ssm
	;;
x)
	SECRET_KEYS=("${X_SECRET_KEYS[@]}") SECRET_LABEL="X API app-only bearer token"
	TASKDEF_FILE=deploy/taskdef.x.json EXECUTION_SSM_POLICY=execution-ssm-x
	;;
mastodon)
	SECRET_KEYS=("${MASTODON_SECRET_KEYS[@]}") SECRET_LABEL="Mastodon access token"
	TASKDEF_FILE=deploy/taskdef.mastodon.json EXECUTION_SSM_POLICY=execution-ssm-mastodon
	;;
*) SECRET_KEYS=() SECRET_LABEL="" TASKDEF_FILE="" EXECUTION_SSM_POLICY="" ;; # lib_init stops the script
esac

SECRET_NAME=$APP_NAME/$SOURCE
SSM_PREFIX=/$APP_NAME/$SOURCE
CLUSTER=$APP_NAME
SERVICE=$APP_NAME
REPOSITORY=$APP_NAME
LOG_GROUP=/ecs/$APP_NAME
EXECUTION_ROLE=$APP_NAME-execution-role
TASK_ROLE=$APP_NAME-task-role
SECURITY_GROUP_NAME=$APP_NAME-task

# Output of the last aws_get/aws_do call. A global rather than stdout, so that the helpers run
# in the script's own shell and a die inside them ends the script rather than a subshell.
AWS_OUT=""

log() { printf '[%s] %s\n' "${SCRIPT_NAME:-scripts}" "$*" >&2; }
step() { printf '\n==> %s\n' "$*" >&2; }
die() {
	printf '[%s] ERROR: %s\n' "${SCRIPT_NAME:-scripts}" "$*" >&2
	exit 1
}
is_dry_run() { [[ $DRY_RUN == 1 ]]; }
# did reports a change; under DRY_RUN it says the change was not made.
did() {
	if is_dry_run; then
		log "(dry run, not done) $*"
	else
		log "$*"
	fi
}

# lib_init checks the settings, resolves region, account and partition, and derives every ARN
# the scripts use. Under DRY_RUN it makes no AWS call: the account is AWS_ACCOUNT_ID or the
# placeholder ACCOUNT_ID.
lib_init() {
	SCRIPT_NAME=$(basename "$0" .sh)
	command -v aws >/dev/null || die "the AWS CLI is not installed (https://aws.amazon.com/cli/)"
	[[ $APP_NAME =~ ^[a-z][a-z0-9-]{0,30}$ ]] ||
		die "APP_NAME=$APP_NAME: use 1-31 lowercase letters, digits and hyphens, starting with a letter (it names ECR, IAM and ECS resources)"
	[[ $SECRET_STORE == secretsmanager || $SECRET_STORE == ssm ]] ||
		die "SECRET_STORE=$SECRET_STORE: want secretsmanager or ssm"
	[[ $MODE == task || $MODE == service ]] || die "MODE=$MODE: want task or service"
	[[ $CPU_ARCHITECTURE == X86_64 || $CPU_ARCHITECTURE == ARM64 ]] ||
		die "CPU_ARCHITECTURE=$CPU_ARCHITECTURE: want X86_64 or ARM64"
	[[ $DRY_RUN == 0 || $DRY_RUN == 1 ]] || die "DRY_RUN=$DRY_RUN: want 0 or 1"
	[[ -n $TASKDEF_FILE ]] || die "SOURCE=$SOURCE: want twitter, x or mastodon"

	AWS_REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region 2>/dev/null || true)}}
	[[ -n $AWS_REGION ]] || die "no region: set AWS_REGION (e.g. us-west-2) or run 'aws configure'"
	export AWS_REGION AWS_DEFAULT_REGION=$AWS_REGION
	# CLI v2 pages long output through less; scripts must never wait on a pager.
	export AWS_PAGER=""

	AWS_ARGS=(--region "$AWS_REGION")
	if [[ -n ${AWS_ENDPOINT_URL:-} ]]; then
		AWS_ARGS+=(--endpoint-url "$AWS_ENDPOINT_URL")
	fi

	# Temporary files (secret payloads, rendered JSON, captured errors) live in a private
	# directory that is removed however the script ends.
	umask 077
	WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/$APP_NAME-deploy.XXXXXX")
	trap 'rm -rf "$WORKDIR"' EXIT

	case $AWS_REGION in
	cn-*) PARTITION=aws-cn DNS_SUFFIX=amazonaws.com.cn ;;
	us-gov-*) PARTITION=aws-us-gov DNS_SUFFIX=amazonaws.com ;;
	*) PARTITION=aws DNS_SUFFIX=amazonaws.com ;;
	esac

	if [[ -z ${AWS_ACCOUNT_ID:-} ]]; then
		if is_dry_run; then
			print_call sts get-caller-identity --query Account --output text
			AWS_ACCOUNT_ID=ACCOUNT_ID
		else
			aws_get sts get-caller-identity --query Account --output text ||
				die "cannot read the account id: check your AWS credentials ('aws sts get-caller-identity')"
			AWS_ACCOUNT_ID=$AWS_OUT
		fi
	fi
	export AWS_ACCOUNT_ID

	ECR_REGISTRY=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_REGION.$DNS_SUFFIX
	EXECUTION_ROLE_ARN=arn:$PARTITION:iam::$AWS_ACCOUNT_ID:role/$EXECUTION_ROLE
	TASK_ROLE_ARN=arn:$PARTITION:iam::$AWS_ACCOUNT_ID:role/$TASK_ROLE
	TABLE_ARN=arn:$PARTITION:dynamodb:$AWS_REGION:$AWS_ACCOUNT_ID:table/$TABLE_NAME
	LOG_GROUP_ARN=arn:$PARTITION:logs:$AWS_REGION:$AWS_ACCOUNT_ID:log-group:$LOG_GROUP
	REPOSITORY_ARN=arn:$PARTITION:ecr:$AWS_REGION:$AWS_ACCOUNT_ID:repository/$REPOSITORY
	SSM_ARN_PREFIX=arn:$PARTITION:ssm:$AWS_REGION:$AWS_ACCOUNT_ID:parameter$SSM_PREFIX

	local where="region $AWS_REGION, account $AWS_ACCOUNT_ID"
	[[ -n ${AWS_ENDPOINT_URL:-} ]] && where+=", endpoint $AWS_ENDPOINT_URL"
	is_dry_run && where+=", DRY RUN: AWS calls are printed, not made"
	log "$where"
}

# check_source_settings stops the script when a setting the source's task definition needs
# is missing or malformed: MASTODON_URL for mastodon, X_STREAM_URL for x. The service would
# refuse them at start (config.go); here they stop the deploy before anything is created. The
# message does not quote the value, which could carry user info.
check_source_settings() {
	local base_url='^https?://[^/?#@[:space:]]+/?$'
	case $SOURCE in
	x)
		[[ $X_STREAM_URL =~ $base_url ]] ||
			die "X_STREAM_URL is not a base URL: want scheme and host only (no path, query or user info), e.g. https://api.x.com"
		;;
	mastodon)
		[[ -n $MASTODON_URL ]] ||
			die "SOURCE=mastodon needs MASTODON_URL, the instance's base URL, e.g. MASTODON_URL=https://mastodon.social"
		[[ $MASTODON_URL =~ $base_url ]] ||
			die "MASTODON_URL is not a base URL: want scheme and host only (no path, query or user info), e.g. https://mastodon.social"
		;;
	esac
}

# print_call shows an AWS CLI call the way a user could paste it (without the region and
# endpoint flags, which lib_init printed once).
print_call() {
	print_command aws "$@"
}

# print_command shows any command, prefixed with + (or [dry-run] +), each word quoted only
# when a shell would need it.
print_command() {
	local line="+" word
	is_dry_run && line="[dry-run] +"
	for word in "$@"; do
		if [[ $word =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
			line+=" $word"
		else
			line+=" '${word//\'/\'\\\'\'}'"
		fi
	done
	printf '%s\n' "$line" >&2
}

# aws_get makes a read-only call and leaves its output in AWS_OUT ("None" counts as empty). It
# returns 1 when the resource does not exist and stops the script on any other error. Under
# DRY_RUN it prints the call and returns 1, as if nothing existed yet.
aws_get() {
	AWS_OUT=""
	if is_dry_run; then
		print_call "$@"
		return 1
	fi
	if aws "${AWS_ARGS[@]}" "$@" >"$WORKDIR/out" 2>"$WORKDIR/err"; then
		AWS_OUT=$(<"$WORKDIR/out")
		[[ $AWS_OUT == None ]] && AWS_OUT=""
		return 0
	fi
	if grep -Eq "$NOT_FOUND_RE" "$WORKDIR/err"; then
		return 1
	fi
	cat "$WORKDIR/err" >&2
	die "aws $1 $2 failed"
}

# aws_probe makes a read-only call whose failure is an answer, not an error (an API the
# caller may lack permission for, or that an emulator lacks). It prints nothing, leaves the
# output in AWS_OUT and returns the CLI's status; under DRY_RUN it returns 1.
aws_probe() {
	AWS_OUT=""
	is_dry_run && return 1
	aws "${AWS_ARGS[@]}" "$@" >"$WORKDIR/out" 2>"$WORKDIR/err" || return
	AWS_OUT=$(<"$WORKDIR/out")
	[[ $AWS_OUT == None ]] && AWS_OUT=""
	return 0
}

# aws_try prints and makes a call that may fail; it returns the CLI's status and leaves the
# output in AWS_OUT and the error text in $WORKDIR/err for the caller to judge.
aws_try() {
	AWS_OUT=""
	print_call "$@"
	if is_dry_run; then
		: >"$WORKDIR/err"
		return 0
	fi
	local rc=0
	aws "${AWS_ARGS[@]}" "$@" >"$WORKDIR/out" 2>"$WORKDIR/err" || rc=$?
	AWS_OUT=$(<"$WORKDIR/out")
	[[ $AWS_OUT == None ]] && AWS_OUT=""
	return "$rc"
}

# aws_do prints and makes a call that changes something, and stops the script if it fails.
aws_do() {
	if ! aws_try "$@"; then
		cat "$WORKDIR/err" >&2
		die "aws $1 $2 failed"
	fi
}

# contains_word reports whether the whitespace-separated list $2 contains the word $1.
contains_word() {
	local word
	for word in $2; do
		[[ $word == "$1" ]] && return 0
	done
	return 1
}

# json_escape prints $1 as the inside of a JSON string. Values reach JSON files only through
# this and printf (a builtin), never through a command line.
json_escape() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\t'/\\t}
	s=${s//$'\n'/\\n}
	s=${s//$'\r'/\\r}
	printf '%s' "$s"
}

# render_template writes the JSON template $1 to $2 with each ${NAME} replaced by the value of
# a NAME=VALUE argument, escaped for a JSON string. A placeholder left without a value, or
# given an empty one, stops the script with its name: the same rule as scripts.Policy in Go.
render_template() {
	local template=$1 out=$2 json pair name value
	shift 2
	[[ -r $template ]] || die "template $template is missing"
	json=$(<"$template")
	for pair in "$@"; do
		name=${pair%%=*} value=${pair#*=}
		[[ -n $value ]] || die "$template: placeholder \${$name} has an empty value"
		json=${json//"\${$name}"/"$(json_escape "$value")"}
	done
	if [[ $json =~ \$\{[A-Za-z_][A-Za-z0-9_]*\} ]]; then
		die "$template: no value for placeholder ${BASH_REMATCH[0]}"
	fi
	printf '%s\n' "$json" >"$out"
}

# sha256 prints the SHA-256 of a file, with the tool each platform has.
sha256() {
	if command -v sha256sum >/dev/null; then
		sha256sum "$1" | cut -d' ' -f1
	else
		shasum -a 256 "$1" | cut -d' ' -f1
	fi
}

# image_tag is the git commit the image is built from, with -dirty when tracked files have
# uncommitted changes (such an image is rebuilt and pushed on every deploy). IMAGE_TAG wins.
image_tag() {
	if [[ -n ${IMAGE_TAG:-} ]]; then
		printf '%s\n' "$IMAGE_TAG"
		return
	fi
	local commit
	commit=$(git -C "$REPO_ROOT" rev-parse --short=12 HEAD 2>/dev/null) ||
		die "cannot read the git commit of $REPO_ROOT for the image tag: set IMAGE_TAG"
	if ! git -C "$REPO_ROOT" diff --quiet HEAD -- 2>/dev/null; then
		commit+=-dirty
	fi
	printf '%s\n' "$commit"
}

# image_uri is the image the task runs: IMAGE when given, else REGISTRY (or the account's ECR)
# plus the repository and the git tag.
image_uri() {
	if [[ -n ${IMAGE:-} ]]; then
		printf '%s\n' "$IMAGE"
		return
	fi
	printf '%s/%s:%s\n' "${REGISTRY:-$ECR_REGISTRY}" "$REPOSITORY" "$(image_tag)"
}

# secret_arn leaves the full ARN of the Secrets Manager secret (with its random suffix) in
# SECRET_ARN and returns 1 when the secret does not exist or is scheduled for deletion.
secret_arn() {
	SECRET_ARN=""
	if ! aws_get secretsmanager describe-secret --secret-id "$SECRET_NAME" \
		--query '[ARN, DeletedDate]' --output text; then
		is_dry_run && SECRET_ARN=arn:$PARTITION:secretsmanager:$AWS_REGION:$AWS_ACCOUNT_ID:secret:$SECRET_NAME-XXXXXX
		return 1
	fi
	local arn deleted
	read -r arn deleted <<<"$AWS_OUT"
	SECRET_ARN=$arn
	[[ -z $deleted || $deleted == None ]]
}

# default_vpc leaves the id of the region's default VPC in VPC_ID.
default_vpc() {
	[[ -n ${VPC_ID:-} ]] && return 0
	if ! aws_get ec2 describe-vpcs --filters Name=isDefault,Values=true \
		--query 'Vpcs[0].VpcId' --output text || [[ -z $AWS_OUT ]]; then
		is_dry_run && VPC_ID=vpc-DEFAULT && return 0
		return 1
	fi
	VPC_ID=$AWS_OUT
}

# The values of SECRETS_FILE live in SECRET_VALUE_<KEY> shell variables (not an associative
# array, which macOS's bash 3.2 lacks); set_value and value_of hide that. They reach a command
# only through printf (a builtin) into a pipe or a mode-600 file, never through argv.
set_value() { printf -v "SECRET_VALUE_$1" '%s' "$2"; }
value_of() {
	local name=SECRET_VALUE_$1
	printf '%s' "${!name:-}"
}

# read_secrets_file sets the values from a dotenv file: KEY=value, optional `export `,
# optional matching quotes, # comments. Other keys are ignored; values are never printed.
read_secrets_file() {
	local file=$1 line key value n=0
	[[ -r $file ]] || die "SECRETS_FILE=$file is not a readable file"
	while IFS= read -r line || [[ -n $line ]]; do
		n=$((n + 1))
		line=${line%$'\r'}
		[[ $line =~ ^[[:space:]]*(#|$) ]] && continue
		line=${line#export }
		[[ $line == *=* ]] || die "$file line $n: want KEY=value"
		key=${line%%=*}
		key=${key//[[:space:]]/}
		value=${line#*=}
		if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then
			value=${BASH_REMATCH[1]}
		fi
		if contains_word "$key" "${SECRET_KEYS[*]}"; then set_value "$key" "$value"; fi
	done <"$file"
}

# check_secret_values stops the script when a key is missing or empty, or holds a control
# character; $1 says where the values came from.
check_secret_values() {
	local key missing=""
	for key in "${SECRET_KEYS[@]}"; do
		[[ -n $(value_of "$key") ]] || missing+=" $key"
		[[ $(value_of "$key") != *[[:cntrl:]]* ]] || die "$key contains a control character"
	done
	[[ -z $missing ]] || die "missing or empty in $1:$missing"
}

# service_get reports whether the ECS service $SERVICE exists and is ACTIVE (a deleted one
# stays visible as INACTIVE for a while, and one being deleted is DRAINING). It leaves the
# service's task definition ARN and desired count in SERVICE_TASKDEF and SERVICE_DESIRED.
service_get() {
	SERVICE_TASKDEF="" SERVICE_DESIRED=""
	aws_get ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" \
		--query "services[?status=='ACTIVE'] | [0].[taskDefinition, desiredCount]" --output text || return 1
	[[ -n $AWS_OUT ]] || return 1
	read -r SERVICE_TASKDEF SERVICE_DESIRED <<<"$AWS_OUT"
}

# network sets SUBNET_LIST and SG_ID, the awsvpc network of the task (run-task.sh) or the
# service (create-service.sh): SUBNETS (comma-separated) and SECURITY_GROUP, or else the default
# VPC's default subnets and a security group $SECURITY_GROUP_NAME made here (egress only;
# ALLOW_CIDR opens port 8080 to that range).
network() {
	if [[ -n ${SUBNETS:-} ]]; then
		SUBNET_LIST=$SUBNETS
	else
		default_vpc || die "no default VPC in $AWS_REGION: set SUBNETS=subnet-a,subnet-b and SECURITY_GROUP=sg-..."
		if aws_get ec2 describe-subnets --filters "Name=vpc-id,Values=$VPC_ID" Name=default-for-az,Values=true \
			--query 'Subnets[].SubnetId' --output text && [[ -n $AWS_OUT ]]; then
			SUBNET_LIST=$(tr -s '[:space:]' ',' <<<"$AWS_OUT")
			SUBNET_LIST=${SUBNET_LIST%,}
		elif is_dry_run; then
			SUBNET_LIST=subnet-DEFAULT
		else
			die "the default VPC $VPC_ID has no default subnets: set SUBNETS"
		fi
	fi
	if [[ -n ${SECURITY_GROUP:-} ]]; then
		SG_ID=$SECURITY_GROUP
		return
	fi
	default_vpc || die "no default VPC in $AWS_REGION: set SECURITY_GROUP"
	if aws_get ec2 describe-security-groups \
		--filters "Name=vpc-id,Values=$VPC_ID" "Name=group-name,Values=$SECURITY_GROUP_NAME" \
		--query 'SecurityGroups[0].GroupId' --output text && [[ -n $AWS_OUT ]]; then
		SG_ID=$AWS_OUT
		log "security group $SECURITY_GROUP_NAME exists, reusing it ($SG_ID)"
	else
		aws_do ec2 create-security-group --group-name "$SECURITY_GROUP_NAME" --vpc-id "$VPC_ID" \
			--description "$APP_NAME Fargate task: outbound only unless ALLOW_CIDR was given" \
			--query GroupId --output text
		SG_ID=${AWS_OUT:-sg-NEW}
		did "created security group $SECURITY_GROUP_NAME ($SG_ID)"
	fi
	if [[ -n ${ALLOW_CIDR:-} ]]; then
		if ! aws_try ec2 authorize-security-group-ingress --group-id "$SG_ID" \
			--protocol tcp --port 8080 --cidr "$ALLOW_CIDR"; then
			grep -q 'Duplicate' "$WORKDIR/err" || {
				cat "$WORKDIR/err" >&2
				die "opening port 8080 to $ALLOW_CIDR failed"
			}
			log "port 8080 is already open to $ALLOW_CIDR"
		fi
	fi
}

# awsvpc_configuration prints the --network-configuration value for SUBNET_LIST and SG_ID. The
# task gets a public IP so that it reaches the stream and AWS without a NAT gateway.
awsvpc_configuration() {
	printf 'awsvpcConfiguration={subnets=[%s],securityGroups=[%s],assignPublicIp=ENABLED}\n' "$SUBNET_LIST" "$SG_ID"
}

# task_url prints http://PUBLIC_IP:8080/ for the task $1, or nothing when it has no public IP.
task_url() {
	local eni
	aws_get ecs describe-tasks --cluster "$CLUSTER" --tasks "$1" \
		--query "tasks[0].attachments[0].details[?name=='networkInterfaceId'].value | [0]" --output text || return 0
	eni=$AWS_OUT
	[[ -n $eni ]] || return 0
	aws_get ec2 describe-network-interfaces --network-interface-ids "$eni" \
		--query 'NetworkInterfaces[0].Association.PublicIp' --output text || return 0
	[[ -n $AWS_OUT ]] && printf 'http://%s:8080/\n' "$AWS_OUT"
	return 0
}

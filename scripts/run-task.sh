#!/usr/bin/env bash
# Step 8: run one Fargate task of the latest task definition revision and wait until it runs.
#
# Network: SUBNETS (comma-separated) and SECURITY_GROUP, or else the default VPC's default
# subnets and a security group $APP_NAME-task made here (egress only; ALLOW_CIDR opens port
# 8080 to that range, e.g. your address/32, to reach the status page). The task gets a public
# IP so it can reach Twitter and AWS without a NAT gateway.
#
# Exactly one task runs at a time: Twitter allows one streaming connection per credentials, so
# a second task would knock the first off. A task already running the current revision is
# reused; tasks of older revisions are stopped, and waited for, before the new one starts.
# FORCE_NEW_TASK=1 replaces a current task too, which is how new secret values are picked up
# (ECS reads secrets only when a task starts; scripts/rotate-secret.sh does this for you).
#
# This is MODE=task, the blog's way: a task that stops stays stopped. MODE=service
# (scripts/create-service.sh) keeps one task running instead; while that service exists this
# script refuses to start a second task beside it.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# explain_stopped prints why a task is not running: ECS's stoppedReason and the container's.
explain_stopped() {
	aws_get ecs describe-tasks --cluster "$CLUSTER" --tasks "$1" \
		--query 'tasks[0].[lastStatus, stopCode, stoppedReason, containers[0].reason]' --output text || true
	log "task $1 did not reach RUNNING. ECS says (lastStatus, stopCode, stoppedReason, container reason):"
	printf '  %s\n' "$AWS_OUT" >&2
	log "secrets or image problems: scripts/register-taskdef.sh runs a preflight; logs: scripts/logs.sh"
}

main() {
	lib_init
	step "run-task: one Fargate task of $APP_NAME in cluster $CLUSTER"
	local taskdef task
	aws_get ecs describe-task-definition --task-definition "$APP_NAME" \
		--query taskDefinition.taskDefinitionArn --output text ||
		is_dry_run || die "no task definition $APP_NAME: run scripts/register-taskdef.sh first"
	taskdef=${AWS_OUT:-$APP_NAME}
	if service_get && [[ $SERVICE_DESIRED != 0 ]]; then
		die "service $SERVICE runs the worker in $CLUSTER (MODE=service): a one-off task beside it would hold a second stream connection. Use MODE=service scripts/deploy.sh, or delete the service first (scripts/teardown.sh removes everything)"
	fi

	# Tasks already wanted RUNNING (including ones still PENDING).
	local running="" current=""
	if aws_get ecs list-tasks --cluster "$CLUSTER" --family "$APP_NAME" --desired-status RUNNING \
		--query taskArns --output text && [[ -n $AWS_OUT ]]; then
		# shellcheck disable=SC2086 # task ARNs contain no spaces; split them into arguments.
		aws_get ecs describe-tasks --cluster "$CLUSTER" --tasks $AWS_OUT \
			--query 'tasks[].[taskArn, taskDefinitionArn]' --output text || true
		running=$AWS_OUT
	fi
	local stop=() arn def
	while read -r arn def; do
		[[ -n $arn ]] || continue
		if [[ $def == "$taskdef" && -z $current && ${FORCE_NEW_TASK:-0} != 1 ]]; then
			current=$arn
		else
			stop+=("$arn")
		fi
	done <<<"$running"

	for arn in ${stop[@]+"${stop[@]}"}; do
		aws_do ecs stop-task --cluster "$CLUSTER" --task "$arn" --reason "replaced by $taskdef" \
			--query task.taskArn --output text
		did "stopping $arn (one stream connection per credentials)"
	done
	if ((${#stop[@]})); then
		aws_do ecs wait tasks-stopped --cluster "$CLUSTER" --tasks "${stop[@]}"
	fi

	if [[ -n $current ]]; then
		log "task $current already runs $taskdef, reusing it (FORCE_NEW_TASK=1 replaces it)"
		task=$current
	else
		network
		aws_do ecs run-task --cluster "$CLUSTER" --task-definition "$taskdef" --launch-type FARGATE \
			--count 1 --started-by "$SCRIPT_NAME" \
			--network-configuration "$(awsvpc_configuration)" \
			--query '[tasks[0].taskArn, failures[0].reason]' --output text
		local reason
		read -r task reason <<<"$AWS_OUT"
		if is_dry_run; then
			return
		fi
		[[ -n $task && $task != None ]] || die "run-task started nothing: ${reason:-no reason given}"
		log "started $task"
	fi

	# The waiter polls describe-tasks (every 6 s, up to 10 min) and fails as soon as the task
	# stops, where the blog slept a fixed time and hoped.
	if ! aws_try ecs wait tasks-running --cluster "$CLUSTER" --tasks "$task"; then
		explain_stopped "$task"
		exit 1
	fi
	local url
	url=$(task_url "$task")
	log "task is RUNNING: $task"
	printf 'task %s\n' "$task"
	if [[ -n $url ]]; then
		printf 'url %s\n' "$url"
		[[ -n ${SECURITY_GROUP:-}${ALLOW_CIDR:-} ]] ||
			log "the status page is closed to the internet; rerun with ALLOW_CIDR=YOUR.IP/32 to open port 8080 to you"
	else
		log "the task has no public IP yet; scripts/status.sh shows it once assigned"
	fi
}

main "$@"

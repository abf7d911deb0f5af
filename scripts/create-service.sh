#!/usr/bin/env bash
# Step 8 with MODE=service: run the worker as an ECS service of one Fargate task, on the latest
# task definition revision, and wait until its deployment has rolled out.
#
# Unlike a one-off task (run-task.sh, MODE=task), a service replaces its task when it stops,
# and rolls to a new revision or to new secret values with a deployment
# (`update-service --force-new-deployment`, which scripts/rotate-secret.sh uses).
#
#   - desiredCount 1 and deploymentConfiguration maximumPercent 100, minimumHealthyPercent 0:
#     a filtered stream allows one connection per credentials, so ECS's default (start the new
#     task, then stop the old: 200/100) would hold two for a while and each would knock the
#     other off. 100/0 stops the old task first; the cost is a gap of one task start.
#   - the deployment circuit breaker with rollback: a deployment whose tasks keep failing to
#     start (a bad image, an unreadable secret) goes back to the last working revision instead
#     of retrying for ever.
#   - the same network as run-task.sh: SUBNETS and SECURITY_GROUP, or the default VPC and the
#     security group $APP_NAME-task, with a public IP.
#
# Idempotent: an existing service with the same revision, count, network and deployment
# settings is left alone; otherwise update-service brings it up to date (a new deployment).
# FORCE_NEW_DEPLOYMENT=1 starts a new deployment even then: ECS reads secrets only when a task
# starts. One-off tasks that run-task.sh started are stopped first (one connection).
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# DEPLOYMENT_CONFIGURATION is passed to create-service and update-service as it is. Shorthand
# syntax, which AWS CLI v1 and v2 both read.
readonly DEPLOYMENT_CONFIGURATION="maximumPercent=100,minimumHealthyPercent=0,deploymentCircuitBreaker={enable=true,rollback=true}"
# POLL_SECONDS is how often the rollout is checked while it is in progress.
readonly POLL_SECONDS=15

# sorted_csv prints the comma-separated list $1 sorted, so that two lists compare as sets.
sorted_csv() {
	tr ',' '\n' <<<"$1" | sort | paste -sd, -
}

# stop_one_off_tasks stops the tasks run-task.sh started in the cluster: beside the service's
# task they would hold a second stream connection.
stop_one_off_tasks() {
	if ! aws_get ecs list-tasks --cluster "$CLUSTER" --started-by run-task --desired-status RUNNING \
		--query taskArns --output text || [[ -z $AWS_OUT ]]; then
		return 0
	fi
	local arns arn
	read -r -a arns <<<"$AWS_OUT"
	for arn in "${arns[@]}"; do
		aws_do ecs stop-task --cluster "$CLUSTER" --task "$arn" --reason "replaced by service $SERVICE" \
			--query task.taskArn --output text
		did "stopping one-off task $arn (one stream connection per credentials)"
	done
	aws_do ecs wait tasks-stopped --cluster "$CLUSTER" --tasks "${arns[@]}"
}

# up_to_date reports whether the existing service already runs the task definition $1 with
# one task, the network of SUBNET_LIST and SG_ID, and DEPLOYMENT_CONFIGURATION. AWS always
# returns the deployment configuration; an emulator that does not keep it (moto) returns none,
# and then it is not compared.
up_to_date() {
	local taskdef=$1 got_def got_count got_subnets got_groups max min breaker rollback
	aws_get ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" \
		--query "services[0].[taskDefinition, desiredCount,
			join(',', networkConfiguration.awsvpcConfiguration.subnets || \`[]\`) || 'none',
			join(',', networkConfiguration.awsvpcConfiguration.securityGroups || \`[]\`) || 'none',
			deploymentConfiguration.maximumPercent, deploymentConfiguration.minimumHealthyPercent,
			deploymentConfiguration.deploymentCircuitBreaker.enable,
			deploymentConfiguration.deploymentCircuitBreaker.rollback]" --output text || return 1
	read -r got_def got_count got_subnets got_groups max min breaker rollback <<<"$AWS_OUT"
	[[ $got_def == "$taskdef" && $got_count == 1 ]] || return 1
	[[ $(sorted_csv "$got_subnets") == "$(sorted_csv "$SUBNET_LIST")" && $got_groups == "$SG_ID" ]] || return 1
	[[ $max == None && $min == None ]] && return 0
	[[ $max == 100 && $min == 0 && $breaker == [Tt]rue && $rollback == [Tt]rue ]]
}

# explain_failed prints what ECS says about a deployment that did not roll out: its reason and
# the last service events, which name the stopped tasks' errors.
explain_failed() {
	aws_get ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" \
		--query "services[0].deployments[?id=='$1'] | [0].rolloutStateReason" --output text || true
	log "deployment $1: ${AWS_OUT:-no reason given}"
	aws_get ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" \
		--query 'services[0].events[:5].message' --output text || true
	[[ -z $AWS_OUT ]] || printf '  %s\n' "$AWS_OUT" >&2
	log "scripts/status.sh shows the stopped tasks and why; scripts/logs.sh their logs"
}

# wait_for_deployment waits until the service's deployment $1 has rolled out (rolloutState
# COMPLETED), and stops the script when it failed or the circuit breaker replaced it with a
# rollback. Where deployments carry no rolloutState it falls back to `aws ecs wait
# services-stable`.
wait_for_deployment() {
	local id=$1 deadline=$((SECONDS + ${DEPLOY_TIMEOUT:-900})) primary state running
	while :; do
		aws_get ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" \
			--query "services[0].deployments[?status=='PRIMARY'] | [0].[id, rolloutState, runningCount]" \
			--output text || die "service $SERVICE disappeared while deploying"
		read -r primary state running <<<"$AWS_OUT"
		if [[ $primary != "$id" ]]; then
			explain_failed "$id"
			die "deployment $id is no longer the service's primary one ($primary is): the circuit breaker rolled it back, or another deployment started"
		fi
		case $state in
		COMPLETED)
			log "deployment $id completed: $running task(s) running"
			return 0
			;;
		FAILED)
			explain_failed "$id"
			die "deployment $id failed"
			;;
		None | "")
			log "deployments here carry no rolloutState; waiting with aws ecs wait services-stable"
			aws_do ecs wait services-stable --cluster "$CLUSTER" --services "$SERVICE"
			return 0
			;;
		esac
		if ((SECONDS >= deadline)); then
			explain_failed "$id"
			die "deployment $id still $state after ${DEPLOY_TIMEOUT:-900}s (DEPLOY_TIMEOUT)"
		fi
		log "deployment $id: $state, $running running; checking again in ${POLL_SECONDS}s"
		sleep "$POLL_SECONDS"
	done
}

main() {
	lib_init
	step "create-service: service $SERVICE of one Fargate task in cluster $CLUSTER"
	local taskdef
	aws_get ecs describe-task-definition --task-definition "$APP_NAME" \
		--query taskDefinition.taskDefinitionArn --output text ||
		is_dry_run || die "no task definition $APP_NAME: run scripts/register-taskdef.sh first"
	taskdef=${AWS_OUT:-$APP_NAME}

	stop_one_off_tasks
	network
	local query="service.deployments[?status=='PRIMARY'] | [0].id"
	if service_get; then
		if [[ ${FORCE_NEW_DEPLOYMENT:-0} != 1 ]] && up_to_date "$taskdef"; then
			log "service $SERVICE already runs $taskdef with one task, reusing it (FORCE_NEW_DEPLOYMENT=1 replaces its task)"
			printf 'service %s\n' "$SERVICE"
			return
		fi
		local force=()
		[[ ${FORCE_NEW_DEPLOYMENT:-0} == 1 ]] && force=(--force-new-deployment)
		aws_do ecs update-service --cluster "$CLUSTER" --service "$SERVICE" --task-definition "$taskdef" \
			--desired-count 1 --deployment-configuration "$DEPLOYMENT_CONFIGURATION" \
			--network-configuration "$(awsvpc_configuration)" ${force[@]+"${force[@]}"} \
			--query "$query" --output text
		did "updated service $SERVICE: deployment ${AWS_OUT:-(new)} of $taskdef"
	else
		aws_do ecs create-service --cluster "$CLUSTER" --service-name "$SERVICE" --task-definition "$taskdef" \
			--desired-count 1 --launch-type FARGATE --deployment-configuration "$DEPLOYMENT_CONFIGURATION" \
			--network-configuration "$(awsvpc_configuration)" \
			--query "$query" --output text
		did "created service $SERVICE: deployment ${AWS_OUT:-(new)} of $taskdef"
	fi
	is_dry_run && return
	[[ -n $AWS_OUT ]] || die "ECS returned no primary deployment for service $SERVICE"
	wait_for_deployment "$AWS_OUT"

	printf 'service %s\n' "$SERVICE"
	local task url
	if aws_get ecs list-tasks --cluster "$CLUSTER" --service-name "$SERVICE" --desired-status RUNNING \
		--query 'taskArns[0]' --output text && [[ -n $AWS_OUT ]]; then
		task=$AWS_OUT
		printf 'task %s\n' "$task"
		url=$(task_url "$task")
		if [[ -n $url ]]; then
			printf 'url %s\n' "$url"
			[[ -n ${SECURITY_GROUP:-}${ALLOW_CIDR:-} ]] ||
				log "the status page is closed to the internet; rerun with ALLOW_CIDR=YOUR.IP/32 to open port 8080 to you"
		fi
	fi
}

main "$@"

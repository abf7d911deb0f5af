#!/usr/bin/env bash
# Removes everything the deploy scripts made, in reverse order, and says what it removed: the
# service (scaled to 0, then deleted, so that it starts no new task), tasks, task definition
# revisions (deregistered), cluster, the security group it created, ECR
# repository (with its images), log group, roles, table, and the secrets.
#
# The secrets removed are those of SOURCE only ($APP_NAME/$SOURCE, /$APP_NAME/$SOURCE/*): each
# source has its own, and tearing down SOURCE=x never deletes the Twitter credentials. The
# other sources' Secrets Manager secrets that still exist are named at the end, with the
# command that removes them.
#
# Secrets: a Secrets Manager secret is scheduled for deletion with a 7-day recovery window
# (`aws secretsmanager restore-secret` brings it back, and create-secrets.sh does so itself);
# FORCE_DELETE_SECRETS=1 deletes it at once, without recovery. SSM parameters have no recovery,
# so they are kept unless FORCE_DELETE_SECRETS=1. KEEP_TABLE=1 keeps the table and its data.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REMOVED=()
removed() {
	REMOVED+=("$1")
	did "removed $1"
}
absent() { log "$1: not there, nothing to remove"; }

# delete_service scales the service to 0 and deletes it, and waits until it is INACTIVE: until
# then it would replace the tasks stop_tasks stops, and the cluster could not go.
delete_service() {
	if ! service_get; then
		absent "service $SERVICE"
		return
	fi
	aws_do ecs update-service --cluster "$CLUSTER" --service "$SERVICE" --desired-count 0 \
		--query service.desiredCount --output text
	aws_do ecs delete-service --cluster "$CLUSTER" --service "$SERVICE" --query service.status --output text
	aws_do ecs wait services-inactive --cluster "$CLUSTER" --services "$SERVICE"
	removed "service $SERVICE"
}

stop_tasks() {
	if ! aws_get ecs list-tasks --cluster "$CLUSTER" --desired-status RUNNING --query taskArns --output text ||
		[[ -z $AWS_OUT ]]; then
		absent "running tasks in $CLUSTER"
		return
	fi
	local arns arn
	read -r -a arns <<<"$AWS_OUT"
	for arn in "${arns[@]}"; do
		aws_do ecs stop-task --cluster "$CLUSTER" --task "$arn" --reason "scripts/teardown.sh" \
			--query task.taskArn --output text
	done
	# The cluster and the security group can only go once the tasks (and their network
	# interfaces) are gone.
	aws_do ecs wait tasks-stopped --cluster "$CLUSTER" --tasks "${arns[@]}"
	removed "${#arns[@]} task(s)"
}

deregister_task_definitions() {
	local arns arn n=0
	aws_get ecs list-task-definitions --family-prefix "$APP_NAME" --status ACTIVE \
		--query taskDefinitionArns --output text || true
	read -r -a arns <<<"$AWS_OUT"
	for arn in ${arns[@]+"${arns[@]}"}; do
		# --family-prefix also matches longer family names; keep only this family.
		[[ $arn == *":task-definition/$APP_NAME:"* ]] || continue
		aws_do ecs deregister-task-definition --task-definition "$arn" --query taskDefinition.status --output text
		n=$((n + 1))
	done
	if ((n)); then
		removed "$n task definition revision(s) of $APP_NAME (deregistered: AWS keeps INACTIVE revisions visible)"
	else
		absent "active task definitions of $APP_NAME"
	fi
}

delete_cluster() {
	if aws_get ecs describe-clusters --clusters "$CLUSTER" \
		--query "clusters[?status=='ACTIVE'].clusterArn" --output text && [[ -n $AWS_OUT ]]; then
		aws_do ecs delete-cluster --cluster "$CLUSTER" --query cluster.status --output text
		removed "cluster $CLUSTER"
	else
		absent "cluster $CLUSTER"
	fi
}

delete_security_group() {
	if [[ -n ${SECURITY_GROUP:-} ]]; then
		log "SECURITY_GROUP=$SECURITY_GROUP is yours, keeping it"
		return
	fi
	if ! default_vpc || ! aws_get ec2 describe-security-groups \
		--filters "Name=vpc-id,Values=$VPC_ID" "Name=group-name,Values=$SECURITY_GROUP_NAME" \
		--query 'SecurityGroups[0].GroupId' --output text || [[ -z $AWS_OUT ]]; then
		absent "security group $SECURITY_GROUP_NAME"
		return
	fi
	local sg=$AWS_OUT deadline=$((SECONDS + 300))
	# A stopped task's network interface is released a little after the task stops; until then
	# the group is "in use". Retry for up to five minutes.
	until aws_try ec2 delete-security-group --group-id "$sg"; do
		if ! grep -q DependencyViolation "$WORKDIR/err" || ((SECONDS > deadline)); then
			cat "$WORKDIR/err" >&2
			die "deleting security group $sg failed"
		fi
		log "security group $sg still in use by a network interface; retrying in 10s"
		sleep 10
	done
	removed "security group $SECURITY_GROUP_NAME ($sg)"
}

delete_repository() {
	if aws_get ecr describe-repositories --repository-names "$REPOSITORY" \
		--query 'repositories[0].repositoryUri' --output text; then
		aws_do ecr delete-repository --repository-name "$REPOSITORY" --force \
			--query repository.repositoryName --output text
		removed "ECR repository $REPOSITORY and its images"
	else
		absent "ECR repository $REPOSITORY"
	fi
}

delete_log_group() {
	if aws_get logs describe-log-groups --log-group-name-prefix "$LOG_GROUP" \
		--query "logGroups[?logGroupName=='$LOG_GROUP'].logGroupName" --output text && [[ -n $AWS_OUT ]]; then
		aws_do logs delete-log-group --log-group-name "$LOG_GROUP"
		removed "log group $LOG_GROUP"
	else
		absent "log group $LOG_GROUP"
	fi
}

delete_role() {
	local role=$1 policy
	if ! aws_get iam get-role --role-name "$role" --query Role.Arn --output text; then
		absent "role $role"
		return
	fi
	aws_get iam list-role-policies --role-name "$role" --query PolicyNames --output text || true
	for policy in $AWS_OUT; do
		aws_do iam delete-role-policy --role-name "$role" --policy-name "$policy"
	done
	aws_get iam list-attached-role-policies --role-name "$role" \
		--query 'AttachedPolicies[].PolicyArn' --output text || true
	for policy in $AWS_OUT; do
		aws_do iam detach-role-policy --role-name "$role" --policy-arn "$policy"
	done
	aws_do iam delete-role --role-name "$role"
	removed "role $role"
}

delete_table() {
	if [[ ${KEEP_TABLE:-0} == 1 ]]; then
		log "KEEP_TABLE=1: keeping table $TABLE_NAME"
		return
	fi
	if aws_get dynamodb describe-table --table-name "$TABLE_NAME" --query Table.TableStatus --output text; then
		aws_do dynamodb delete-table --table-name "$TABLE_NAME" --query TableDescription.TableStatus --output text
		aws_do dynamodb wait table-not-exists --table-name "$TABLE_NAME"
		removed "table $TABLE_NAME and its data"
	else
		absent "table $TABLE_NAME"
	fi
}

delete_secrets() {
	local force=${FORCE_DELETE_SECRETS:-0}
	if secret_arn; then
		if [[ $force == 1 ]]; then
			aws_do secretsmanager delete-secret --secret-id "$SECRET_ARN" --force-delete-without-recovery \
				--query Name --output text
			removed "secret $SECRET_NAME (no recovery)"
		else
			aws_do secretsmanager delete-secret --secret-id "$SECRET_ARN" --recovery-window-in-days 7 \
				--query DeletionDate --output text
			removed "secret $SECRET_NAME: scheduled for deletion in 7 days (restore-secret undoes it; FORCE_DELETE_SECRETS=1 deletes at once)"
		fi
	elif [[ -n $SECRET_ARN ]] && ! is_dry_run; then
		if [[ $force == 1 ]]; then
			aws_do secretsmanager delete-secret --secret-id "$SECRET_ARN" --force-delete-without-recovery \
				--query Name --output text
			removed "secret $SECRET_NAME (was scheduled for deletion; now deleted without recovery)"
		else
			log "secret $SECRET_NAME is already scheduled for deletion"
		fi
	else
		absent "secret $SECRET_NAME"
	fi

	local key names=()
	for key in "${SECRET_KEYS[@]}"; do
		if aws_get ssm describe-parameters --parameter-filters "Key=Name,Option=Equals,Values=$SSM_PREFIX/$key" \
			--query 'length(Parameters)' --output text && [[ $AWS_OUT == 1 ]]; then
			names+=("$SSM_PREFIX/$key")
		fi
	done
	if ((${#names[@]} == 0)); then
		absent "SSM parameters $SSM_PREFIX/*"
	elif [[ $force == 1 ]]; then
		aws_do ssm delete-parameters --names "${names[@]}" --query DeletedParameters --output text
		removed "SSM parameters ${names[*]}"
	else
		log "keeping SSM parameters ${names[*]}: they have no recovery; FORCE_DELETE_SECRETS=1 deletes them"
	fi
}

# note_other_sources names the Secrets Manager secrets of the other sources of this APP_NAME
# that still exist: they are not this teardown's to delete. Metadata only (describe-secret).
note_other_sources() {
	local other
	for other in twitter x mastodon; do
		[[ $other != "$SOURCE" ]] || continue
		if aws_get secretsmanager describe-secret --secret-id "$APP_NAME/$other" \
			--query DeletedDate --output text && [[ -z $AWS_OUT ]]; then
			log "kept secret $APP_NAME/$other of SOURCE=$other (each source has its own); SOURCE=$other scripts/teardown.sh removes it"
		fi
	done
}

main() {
	lib_init
	step "teardown: removing $APP_NAME (and the secrets of SOURCE=$SOURCE) from $AWS_REGION"
	delete_service
	stop_tasks
	deregister_task_definitions
	delete_cluster
	delete_security_group
	delete_repository
	delete_log_group
	delete_role "$TASK_ROLE"
	delete_role "$EXECUTION_ROLE"
	delete_table
	delete_secrets
	note_other_sources
	if ((${#REMOVED[@]})); then
		log "removed ${#REMOVED[@]} resource group(s):"
		printf '  - %s\n' "${REMOVED[@]}" >&2
	else
		log "nothing to remove"
	fi
}

main "$@"

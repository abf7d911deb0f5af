#!/usr/bin/env bash
# Shows the app's tasks: state, health, task definition revision and URL, and for a task that
# stopped, why.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	lib_init
	local arns="" status
	for status in RUNNING STOPPED; do
		if aws_get ecs list-tasks --cluster "$CLUSTER" --family "$APP_NAME" --desired-status "$status" \
			--query taskArns --output text && [[ -n $AWS_OUT ]]; then
			arns+=" $AWS_OUT"
		fi
	done
	if [[ -z ${arns// /} ]]; then
		is_dry_run || log "no tasks of $APP_NAME in cluster $CLUSTER (scripts/run-task.sh starts one)"
		return
	fi
	# shellcheck disable=SC2086 # task ARNs contain no spaces; split them into arguments.
	aws_get ecs describe-tasks --cluster "$CLUSTER" --tasks $arns \
		--query "tasks[].[taskArn, lastStatus, healthStatus, taskDefinitionArn, attachments[0].details[?name=='networkInterfaceId'].value | [0], stoppedReason]" \
		--output text || die "describe-tasks failed"
	local arn last health def eni reason ip
	while IFS=$'\t' read -r arn last health def eni reason; do
		printf 'task    %s\n  state   %s, health %s\n  taskdef %s\n' "$arn" "$last" "$health" "${def##*/}"
		if [[ $last == STOPPED ]]; then
			printf '  stopped %s\n' "$reason"
		elif [[ -n $eni && $eni != None ]] &&
			aws_get ec2 describe-network-interfaces --network-interface-ids "$eni" \
				--query 'NetworkInterfaces[0].Association.PublicIp' --output text && [[ -n $AWS_OUT ]]; then
			ip=$AWS_OUT
			printf '  url     http://%s:8080/\n' "$ip"
		fi
	done <<<"$AWS_OUT"
}

main "$@"

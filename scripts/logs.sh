#!/usr/bin/env bash
# Tails the log group /ecs/$APP_NAME. SINCE is how far back to start, in minutes (default 10);
# FOLLOW=0 prints what is there and exits.
#
# AWS CLI v2 has `aws logs tail --follow`; v1 does not, so there the script polls
# filter-log-events, resuming after the last event it printed.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	lib_init
	local since_min=${SINCE:-10} follow=${FOLLOW:-1}
	[[ $since_min =~ ^[0-9]+$ ]] || die "SINCE=$since_min: want whole minutes"
	if [[ $(aws --version 2>&1) == aws-cli/2* ]]; then
		local args=(logs tail "$LOG_GROUP" --since "${since_min}m" --format short)
		[[ $follow == 1 ]] && args+=(--follow)
		print_call "${args[@]}"
		is_dry_run && return
		exec aws "${AWS_ARGS[@]}" "${args[@]}"
	fi

	local start=$((($(date +%s) - since_min * 60) * 1000)) last
	while :; do
		aws_get logs filter-log-events --log-group-name "$LOG_GROUP" --start-time "$start" \
			--query 'events[].[timestamp, logStreamName, message]' --output text ||
			die "log group $LOG_GROUP does not exist (scripts/create-log-group.sh)"
		if [[ -n $AWS_OUT ]]; then
			printf '%s\n' "$AWS_OUT"
			last=$(tail -n1 <<<"$AWS_OUT" | cut -f1)
			[[ $last =~ ^[0-9]+$ ]] && start=$((last + 1))
		fi
		[[ $follow == 1 ]] || return 0
		# Polling, not synchronisation: CloudWatch Logs has no push API for CLI v1.
		sleep 5
	done
}

main "$@"

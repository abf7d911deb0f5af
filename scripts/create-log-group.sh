#!/usr/bin/env bash
# Step 4: the CloudWatch log group the awslogs driver writes to. ECS does not create it (the
# task fails to start without it), and a retention keeps the bill from growing forever.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	lib_init
	step "create-log-group: $LOG_GROUP, kept $LOG_RETENTION_DAYS days"
	if aws_get logs describe-log-groups --log-group-name-prefix "$LOG_GROUP" \
		--query "logGroups[?logGroupName=='$LOG_GROUP'].logGroupName" --output text && [[ -n $AWS_OUT ]]; then
		log "log group $LOG_GROUP exists, reusing it"
	else
		aws_do logs create-log-group --log-group-name "$LOG_GROUP"
		did "created log group $LOG_GROUP"
	fi
	# Setting the retention every time converges an existing group to LOG_RETENTION_DAYS.
	aws_do logs put-retention-policy --log-group-name "$LOG_GROUP" --retention-in-days "$LOG_RETENTION_DAYS"
}

main "$@"

#!/usr/bin/env bash
# Step 2: the DynamoDB table the task writes matches to, with the blog's key schema (HASH user,
# RANGE date, both strings) and on-demand billing, so an idle stream costs nothing.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	lib_init
	step "create-table: DynamoDB table $TABLE_NAME"
	if aws_get dynamodb describe-table --table-name "$TABLE_NAME" --query Table.TableStatus --output text; then
		log "table $TABLE_NAME exists ($AWS_OUT), reusing it"
		[[ $AWS_OUT == ACTIVE ]] && return
	else
		aws_do dynamodb create-table --table-name "$TABLE_NAME" \
			--attribute-definitions AttributeName=user,AttributeType=S AttributeName=date,AttributeType=S \
			--key-schema AttributeName=user,KeyType=HASH AttributeName=date,KeyType=RANGE \
			--billing-mode PAY_PER_REQUEST --query TableDescription.TableArn --output text
		did "created table $TABLE_NAME"
	fi
	# The waiter polls until the table is ACTIVE (and fails after its own limit), instead of
	# the blog's guess of how long creation takes.
	aws_do dynamodb wait table-exists --table-name "$TABLE_NAME"
	log "table $TABLE_NAME is active"
}

main "$@"

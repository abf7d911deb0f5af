#!/usr/bin/env bash
# Step 6: the ECS cluster. For Fargate it is only a namespace for tasks; it costs nothing.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
	lib_init
	step "create-cluster: ECS cluster $CLUSTER"
	# A deleted cluster is still described, as INACTIVE, for a while; only ACTIVE counts.
	if aws_get ecs describe-clusters --clusters "$CLUSTER" \
		--query "clusters[?status=='ACTIVE'].clusterArn" --output text && [[ -n $AWS_OUT ]]; then
		log "cluster $CLUSTER exists, reusing it ($AWS_OUT)"
		return
	fi
	aws_do ecs create-cluster --cluster-name "$CLUSTER" --query cluster.clusterArn --output text
	did "created cluster $CLUSTER ${AWS_OUT:+($AWS_OUT)}"
}

main "$@"

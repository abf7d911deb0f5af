#!/usr/bin/env bash
# Step 5: the ECR repository (scan on push), then build the image, log in and push it, tagged
# with the git commit.
#
# IMAGE=URI skips this step: the task runs that image. REGISTRY=host[:port] pushes to another
# registry instead of the account's ECR (CI uses a local one) and skips the ECR repository and
# login. CONTAINER_CLI picks docker (default) or podman; BUILD_FLAGS adds words to the build
# command (e.g. "--network none --build-arg GOPROXY=off" for an offline build).
#
# The login pipes `aws ecr get-login-password` into `login --password-stdin`: the token never
# appears on a command line, and it works with AWS CLI v1 and v2 (the blog's `aws ecr
# get-login` was removed in v2).
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_repository() {
	if aws_get ecr describe-repositories --repository-names "$REPOSITORY" \
		--query 'repositories[0].repositoryUri' --output text; then
		log "ECR repository $REPOSITORY exists, reusing it"
		return
	fi
	aws_do ecr create-repository --repository-name "$REPOSITORY" \
		--image-scanning-configuration scanOnPush=true --query repository.repositoryUri --output text
	did "created ECR repository $REPOSITORY ${AWS_OUT:+($AWS_OUT)}"
}

# run_cli prints a container CLI command and runs it unless DRY_RUN=1.
run_cli() {
	print_command "$@"
	is_dry_run && return 0
	"$@"
}

ecr_login() {
	printf '%s aws ecr get-login-password | %s login --username AWS --password-stdin %s\n' \
		"$(is_dry_run && printf '[dry-run] +' || printf '+')" "$CONTAINER_CLI" "$ECR_REGISTRY" >&2
	is_dry_run && return 0
	aws "${AWS_ARGS[@]}" ecr get-login-password |
		"$CONTAINER_CLI" login --username AWS --password-stdin "$ECR_REGISTRY" >&2 ||
		die "logging $CONTAINER_CLI in to $ECR_REGISTRY failed"
}

main() {
	lib_init
	step "build-push: the container image"
	if [[ -n ${IMAGE:-} ]]; then
		log "IMAGE=$IMAGE given: skipping build and push"
		return
	fi
	command -v "$CONTAINER_CLI" >/dev/null || is_dry_run ||
		die "$CONTAINER_CLI is not installed: install Docker, or set CONTAINER_CLI=podman, or give a built image with IMAGE=URI"

	local tag image platform
	tag=$(image_tag)
	image=$(image_uri)
	[[ $tag == *-dirty ]] && log "the working tree has uncommitted changes: tag $tag (commit them for a reproducible image)"

	if [[ -z ${REGISTRY:-} ]]; then
		ensure_repository
		if [[ $tag != *-dirty ]] && aws_get ecr describe-images --repository-name "$REPOSITORY" \
			--image-ids "imageTag=$tag" --query 'imageDetails[0].imageDigest' --output text; then
			log "image $image is already in ECR ($AWS_OUT), reusing it"
			return
		fi
	fi

	platform=linux/amd64
	[[ $CPU_ARCHITECTURE == ARM64 ]] && platform=linux/arm64
	local build=("$CONTAINER_CLI" build --platform "$platform" --build-arg "VERSION=$tag" -t "$image")
	if [[ -n ${BUILD_FLAGS:-} ]]; then
		local extra
		read -r -a extra <<<"$BUILD_FLAGS"
		build+=("${extra[@]}")
	fi
	run_cli "${build[@]}" "$REPO_ROOT"

	local push=("$CONTAINER_CLI" push)
	if [[ -n ${REGISTRY:-} ]]; then
		# A local registry (CI's) speaks plain HTTP; podman needs to be told, docker allows
		# localhost by default.
		if [[ $CONTAINER_CLI == *podman* && $REGISTRY =~ ^(localhost|127\.0\.0\.1)(:|$) ]]; then
			push+=(--tls-verify=false)
		fi
	else
		ecr_login
	fi
	run_cli "${push[@]}" "$image"
	did "pushed $image"
}

main "$@"

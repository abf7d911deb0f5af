// Package scripts holds the deployment scripts (bash) that put streammatch on ECS Fargate, and
// the Go tests that run them end to end: shellcheck, a DRY_RUN that makes no AWS call, two
// deploys, a rotation and a teardown against moto_server for each secret store, the same for
// SOURCE=x and SOURCE=mastodon (their own secrets and task definition templates), a deploy as
// an ECS service (MODE=service) rotated with rotate-secret.sh, and the real Dockerfile
// built offline with podman, run read-only as the task definition's user, and pushed to a local
// registry through build-push.sh.
//
// Its one Go API is the IAM policy templates in policies/, which create-roles.sh renders for a
// deployment and `go run ./local` renders through Policy, so that both get the same documents.
package scripts

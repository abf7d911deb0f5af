// Package secrets does what the ECS agent does with a task definition's secrets, for running the
// task locally: it parses valueFrom references with the agent's grammar, resolves them against
// Secrets Manager and SSM Parameter Store with the execution role's credentials, and loads and
// lints task definitions. The service itself never imports it: on ECS the agent injects the
// values before the container starts.
package secrets

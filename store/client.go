package store

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streammatch/streammatch/internal/awsconfig"
)

// NewClient returns the DynamoDB client for the whole process (it is safe for concurrent use).
// Credentials come from the SDK's default chain: on Fargate that is the task role, served at
// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (or AWS_CONTAINER_CREDENTIALS_FULL_URI locally).
// region may be empty, and then AWS_REGION decides. endpointURL, when not empty, sends every
// request there (moto_server, DynamoDB Local); when empty the SDK still honours
// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_DYNAMODB itself.
func NewClient(ctx context.Context, region, endpointURL string) (*dynamodb.Client, error) {
	cfg, err := awsconfig.Load(ctx, region, endpointURL, config.WithRetryer(newRetryer))
	if err != nil {
		return nil, err
	}
	return dynamodb.NewFromConfig(cfg), nil
}

// newRetryer is the SDK's standard retryer (3 attempts, jittered backoff) without its
// client-side retry quota. The quota is a token bucket shared by the whole client: every retry
// takes tokens and only successes give them back, so under sustained throttling it runs dry
// and every later call fails at once with "retry quota exceeded" instead of being retried.
// That would turn a throttled table into lost items. The Writer has its own exponential
// backoff with full jitter and a time budget per batch (Config.MaxRetryTime), which is what
// paces a throttled writer; the SDK's attempts only absorb short blips.
func newRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.RateLimiter = ratelimit.None
	})
}

// Package awsconfig loads the AWS configuration the service's clients share: credentials from
// the SDK's default chain (on Fargate, the task role, served at
// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, or AWS_CONTAINER_CREDENTIALS_FULL_URI locally), the
// region given or else AWS_REGION, and every request sent to an endpoint when one is given
// (moto_server, LocalStack, DynamoDB Local). Without one the SDK still honours AWS_ENDPOINT_URL
// and the per-service AWS_ENDPOINT_URL_* variables itself.
package awsconfig

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Load returns the configuration for region and endpointURL (either may be empty), with extra
// load options (a retryer) applied after them.
func Load(ctx context.Context, region, endpointURL string, extra ...func(*config.LoadOptions) error) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if endpointURL != "" {
		opts = append(opts, config.WithBaseEndpoint(endpointURL))
	}
	cfg, err := config.LoadDefaultConfig(ctx, append(opts, extra...)...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS region: set AWS_REGION, e.g. us-east-1")
	}
	return cfg, nil
}

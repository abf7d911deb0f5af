package rotation

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/streammatch/streammatch/internal/awsconfig"
)

// secretsAPI is the part of *secretsmanager.Client that the Checker uses: two calls that return
// metadata (version ids, stages, dates) and never a value, which is why the task role may have
// them. Integration tests run against moto_server with the real client; the interface is for
// unit tests that inject what an emulator does not produce on demand (access denied, throttling).
type secretsAPI interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	ListSecretVersionIds(ctx context.Context, in *secretsmanager.ListSecretVersionIdsInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error)
}

var _ secretsAPI = (*secretsmanager.Client)(nil)

// NewClient returns the Secrets Manager client of the drift check, built like the DynamoDB
// client in store.NewClient: credentials from the SDK's default chain (on Fargate, the task
// role), region from region or else AWS_REGION, and every request sent to endpointURL when it is
// not empty (moto_server, LocalStack).
func NewClient(ctx context.Context, region, endpointURL string) (*secretsmanager.Client, error) {
	cfg, err := awsconfig.Load(ctx, region, endpointURL)
	if err != nil {
		return nil, err
	}
	return secretsmanager.NewFromConfig(cfg), nil
}

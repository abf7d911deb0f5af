package secrets

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// The AWS calls Resolver makes, each behind the smallest interface that lists them. The
// integration tests run against moto_server with the real clients; the interfaces exist so
// that unit tests can inject faults (throttling, a response without a requested parameter)
// that an emulator does not produce on demand.

// secretsManagerAPI is the part of *secretsmanager.Client that Resolver uses.
type secretsManagerAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// parameterStoreAPI is the part of *ssm.Client that Resolver uses.
type parameterStoreAPI interface {
	GetParameters(ctx context.Context, in *ssm.GetParametersInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
}

// callerIdentityAPI is the part of *sts.Client that Resolver uses: only to learn the account of
// the execution role, see Resolver.parameterFallbackAllowed.
type callerIdentityAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, optFns ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

var (
	_ secretsManagerAPI = (*secretsmanager.Client)(nil)
	_ parameterStoreAPI = (*ssm.Client)(nil)
	_ callerIdentityAPI = (*sts.Client)(nil)
)

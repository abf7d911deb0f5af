package store

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// batchWriteAPI is the part of the DynamoDB client the Writer uses. *dynamodb.Client satisfies
// it; tests put a small fake behind it to inject throttling, unprocessed items and invalid
// items, which moto cannot produce on demand.
type batchWriteAPI interface {
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

var _ batchWriteAPI = (*dynamodb.Client)(nil)

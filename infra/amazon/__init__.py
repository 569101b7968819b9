"""Adapters to Amazon Web Services (SES, SNS, SQS, DynamoDB) through boto3; tested
against moto server."""

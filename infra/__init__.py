"""Everything that knows which technology is in use, by role:

- ``wiring``: the composition root, one module per area, the only place that
  chooses an adapter;
- ``entrypoints``: the ``shop`` CLI, the HTTP app and its edge, problem+json,
  health and metrics, the scaled mode's roles;
- adapters by the technology they speak: ``postgres``, ``redis``, ``opensearch``,
  ``payments`` (the providers), ``smtp``, ``amazon`` (SES, SNS, SQS, DynamoDB),
  ``webpush``; ``prometheus/`` holds the alert rules;
- ``settings``: every setting; ``aws/``: the Terraform of the AWS deployment."""

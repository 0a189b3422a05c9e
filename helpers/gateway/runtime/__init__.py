"""The in-process Lambda runtime, one concern per module.

`environ` (per-environment `os.environ`), `output` (stdout/stderr/logging of an invocation),
`loading` (a deployment package's modules under a private name), `environments` (a function's
execution environments, reclaimed when idle too long), `credentials` (each environment's own
role credentials, naming the caller of a signed request) and `invocation` (one call, as Lambda
reports it). Importing them
patches nothing; `helpers.gateway.lambda_runtime` is the public face and installs the
process-wide hooks (`lambda_runtime.install()`).
"""

"""The kernel: what every app builds on and that knows no domain (errors, money, clock,
request context, the workflow machinery). It imports no other app of the project."""
